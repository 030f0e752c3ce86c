"""Typed training configuration. Built by the CLI from its options; nothing reads the environment here."""

from __future__ import annotations

from dataclasses import dataclass, field

from pvcast.contract import FeatureSpec
from pvcast.schema import STEP_SECONDS


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of the LSTM/physics hybrid."""

    quantiles: tuple[float, ...] = (0.1, 0.5, 0.9)
    hidden_size: int = 48
    num_layers: int = 2
    dropout: float = 0.1
    initial_gap: float | None = None
    """Initial spacing of adjacent quantiles [fraction of capacity]; None keeps the layer's default (~0.7).
    Many levels (e.g. 99) need a small one, or the outer quantiles start tens of capacities apart."""

    def __post_init__(self) -> None:
        qs = self.quantiles
        if not qs or any(not 0 < q < 1 for q in qs) or list(qs) != sorted(set(qs)):
            raise ValueError(f"quantiles must be strictly increasing levels in (0, 1), got {qs}")


@dataclass(frozen=True)
class TrainConfig:
    """How to build the data set and fit the model."""

    model: ModelConfig = field(default_factory=ModelConfig)
    step_seconds: int = STEP_SECONDS
    horizon_steps: int = 96
    issue_every_hours: float = 2.0
    validation_days: int = 21
    test_days: int = 28
    max_epochs: int = 15
    patience: int = 3
    batch_size: int = 256
    learning_rate: float = 2e-3
    weight_decay: float = 1e-5
    seed: int = 42
    threads: int = 2
    use_telemetry: bool = True  # False: the measured_* channels are blanked (see FeatureSpec)

    @property
    def spec(self) -> FeatureSpec:
        return FeatureSpec(
            step_seconds=self.step_seconds, horizon_steps=self.horizon_steps, use_telemetry=self.use_telemetry
        )
