"""The model contract: what a forecast graph eats and returns, the metadata that travels with it, and how it runs.

The exported ONNX graph is the whole forecast: ``features`` float32 [batch, steps, channels] and
``capacity_ac_kw`` float32 [batch, 1] in, ``quantiles_kw`` float32 [batch, steps, levels] out. Training
writes a graph with its :class:`ModelMetadata`; evaluation, benchmarks and the service run it through
onnxruntime here (no torch) and refuse a graph whose metadata or shapes disagree with the code
(:func:`check_contract`). A model's :class:`FeatureSpec` is built from its metadata in one place only
(:attr:`ModelContract.spec`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import onnxruntime as ort
from pydantic import BaseModel, ConfigDict

from pvcast.errors import FeatureContractError
from pvcast.schema import FEATURE_SERVICE_NAME, STEP_SECONDS

INPUT_FEATURES: Final = "features"
INPUT_CAPACITY: Final = "capacity_ac_kw"
OUTPUT_QUANTILES: Final = "quantiles_kw"


@dataclass(frozen=True)
class FeatureSpec:
    """Shape of a forecast: step length [s] and number of steps; whether live telemetry informs it.

    ``use_telemetry=False`` blanks the ``measured_*`` channels (as if no measurement were known) for models
    whose forecasts are issued without telemetry (e.g. day-ahead benchmarks where power is only known up to
    the start of the forecast month), so training sees what serving will see.
    """

    step_seconds: int = STEP_SECONDS
    horizon_steps: int = 96
    use_telemetry: bool = True

    @property
    def horizon_hours(self) -> float:
        return self.horizon_steps * self.step_seconds / 3600.0


class ModelContract(BaseModel):
    """What a graph promises: its inputs and outputs, in the code's feature contract. Known before training."""

    model_config = ConfigDict(frozen=True, extra="allow")

    feature_service: str
    feature_names: list[str]
    quantiles: list[float]
    step_seconds: int
    horizon_steps: int
    use_telemetry: bool = True  # models stored before the flag travelled were all trained with telemetry
    inputs: dict[str, str]
    outputs: dict[str, str]

    @classmethod
    def of(cls, feature_names: Sequence[str], quantiles: Sequence[float], spec: FeatureSpec) -> ModelContract:
        steps, channels, levels = spec.horizon_steps, len(feature_names), len(quantiles)
        return cls(
            feature_service=FEATURE_SERVICE_NAME,
            feature_names=list(feature_names),
            quantiles=list(quantiles),
            step_seconds=spec.step_seconds,
            horizon_steps=steps,
            use_telemetry=spec.use_telemetry,
            inputs={
                INPUT_FEATURES: f"float32 [batch, {steps}, {channels}]: channels in feature_names order",
                INPUT_CAPACITY: "float32 [batch, 1]: AC capacity of each park [kW]",
            },
            outputs={OUTPUT_QUANTILES: f"float32 [batch, {steps}, {levels}]: power [kW] per quantile level"},
        )

    @property
    def spec(self) -> FeatureSpec:
        """The shape of this model's forecasts: THE way a FeatureSpec is built from metadata."""
        return FeatureSpec(self.step_seconds, self.horizon_steps, self.use_telemetry)


class ModelMetadata(ModelContract):
    """What travels with every stored model (BentoML's model.yaml) and is checked before it serves."""

    training_window: dict[str, str]
    test_window: dict[str, str]
    metrics: dict[str, dict[str, float]]
    parks: list[str]
    code_version: str
    baselines: dict[str, Any] = {}
    training: dict[str, Any] = {}
    onnx_sha256: str = ""
    reference: dict[str, Any] = {}  # feature distribution of the training window, for drift monitoring


def onnx_metadata(contract: ModelContract, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The key/value metadata written into the ONNX graph: the feature service's name, the rest of the contract
    as JSON, plus ``extra`` — so a graph found on its own still says what it eats and returns."""
    shape = ("feature_names", "quantiles", "step_seconds", "horizon_steps", "use_telemetry")
    props = {"feature_service": contract.feature_service} | {k: json.dumps(getattr(contract, k)) for k in shape}
    return props | dict(extra or {})


# --- running a graph ---------------------------------------------------------------------------------------


def open_session(path: Path, threads: int = 1) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run_session(session: ort.InferenceSession, features: np.ndarray, capacity_ac_kw: np.ndarray) -> np.ndarray:
    """Quantiles [kW], shape (batch, steps, quantiles)."""
    feeds = {
        INPUT_FEATURES: np.ascontiguousarray(features, dtype=np.float32),
        INPUT_CAPACITY: np.ascontiguousarray(capacity_ac_kw, dtype=np.float32),
    }
    return session.run([OUTPUT_QUANTILES], feeds)[0]


def run_in_batches(
    session: ort.InferenceSession, features: np.ndarray, capacity_ac_kw: np.ndarray, batch: int = 2048
) -> np.ndarray:
    """:func:`run_session` over many rows, ``batch`` rows per call (bounded memory for whole data sets)."""
    parts = [
        run_session(session, features[i : i + batch], capacity_ac_kw[i : i + batch])
        for i in range(0, len(features), batch)
    ]
    return np.concatenate(parts)


def check_contract(session: ort.InferenceSession, contract: ModelContract, feature_names: Sequence[str]) -> None:
    """Refuse a model whose metadata or graph disagree with the code's feature contract (``feature_names``:
    the channels the code's tensor builder produces)."""
    problems = []
    if contract.feature_service != FEATURE_SERVICE_NAME:
        problems.append(f"feature service {contract.feature_service!r} != {FEATURE_SERVICE_NAME!r}")
    if list(contract.feature_names) != list(feature_names):
        problems.append(f"feature names/order differ from the code's {len(feature_names)} features")
    inputs = {i.name: i.shape for i in session.get_inputs()}
    outputs = {o.name: o.shape for o in session.get_outputs()}
    steps, levels = contract.horizon_steps, len(contract.quantiles)
    if inputs.get(INPUT_FEATURES, [None])[1:] != [steps, len(feature_names)]:
        problems.append(
            f"input {INPUT_FEATURES!r} has shape {inputs.get(INPUT_FEATURES)}, "
            f"expected [batch, {steps}, {len(feature_names)}]"
        )
    if INPUT_CAPACITY not in inputs:
        problems.append(f"input {INPUT_CAPACITY!r} missing")
    if outputs.get(OUTPUT_QUANTILES, [None])[1:] != [steps, levels]:
        problems.append(
            f"output {OUTPUT_QUANTILES!r} has shape {outputs.get(OUTPUT_QUANTILES)}, "
            f"expected [batch, {steps}, {levels}]"
        )
    if not isinstance(inputs.get(INPUT_FEATURES, [1])[0], str):
        problems.append("the batch axis is not symbolic")
    if problems:
        raise FeatureContractError("model refused: " + "; ".join(problems))
