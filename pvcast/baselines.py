"""Reference forecasts and the degraded mode: one implementation, used by evaluation, benchmarks and the service.

* physics-only: the pvlib power estimate driven by the forecast irradiance (channel ``physics_power``);
* smart persistence: the clear-sky index of the latest measurement persisted over the horizon and applied
  to the clear-sky physics power (the training-mean index where no daytime measurement is available yet).

Both are point forecasts; their quantiles come from the empirical distribution of their own errors on the
training window, conditional on the point forecast's magnitude (:class:`ResidualQuantiles`). They are fitted
with the model and stored in its metadata (``baselines``). Output goes through the model's post-processing
(:func:`postprocess`): sorted, kW, within [0, capacity], zero while the sun is down.

The service's degraded mode — a park without a fresh weather forecast — is smart persistence with the
model's own fitted error quantiles (:class:`DegradedMode`), on tensors built from nominal weather.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from pvcast.contract import ModelMetadata
from pvcast.pv.features import CLEAR_CHANNEL, CSI_CHANNEL, HAS_CSI_CHANNEL, PHYSICS_CHANNEL, sun_up

F32 = NDArray[np.float32]
Float = TypeVar("Float", bound=np.floating)


def physics_point(features: F32) -> F32:
    """Physics-only point forecast as a fraction of capacity."""
    return features[..., PHYSICS_CHANNEL]


def persistence_point(features: F32, fallback_csi: float) -> F32:
    """Smart (clear-sky-index) persistence as a fraction of capacity."""
    csi = np.where(features[..., HAS_CSI_CHANNEL] > 0, features[..., CSI_CHANNEL], fallback_csi)
    return (csi * features[..., CLEAR_CHANNEL]).astype(np.float32)


def mean_measured_csi(features: F32) -> float:
    has = features[:, 0, HAS_CSI_CHANNEL] > 0
    return float(features[has, 0, CSI_CHANNEL].mean()) if has.any() else 1.0


def postprocess(fractions: NDArray[Float], features: F32, capacity_ac_kw: ArrayLike = 1.0) -> NDArray[Float]:
    """The model's post-processing in numpy: quantiles sorted, × capacity (kW; the default 1 keeps fractions),
    within [0, capacity], zero while the sun is down. Keeps the dtype of its inputs."""
    capacity = np.asarray(capacity_ac_kw)[..., None]
    power = np.minimum(np.clip(np.sort(fractions, axis=-1) * capacity, 0.0, None), capacity)
    return power * sun_up(features)[..., None]


@dataclass(frozen=True)
class ResidualQuantiles:
    """Quantiles of (measured − point) per bin of the point forecast, fitted on daytime training cells."""

    edges: NDArray[np.float64]
    table: NDArray[np.float64]  # (bins, quantiles)

    @classmethod
    def fit(
        cls, point: F32, target: F32, day: NDArray[np.bool_], quantiles: Sequence[float], bins: int = 12
    ) -> ResidualQuantiles:
        keep = day & np.isfinite(target)
        x, residual = point[keep], (target - point)[keep]
        edges = np.unique(np.quantile(x, np.linspace(0, 1, bins + 1)))
        which = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, len(edges) - 2)
        table = np.stack(
            [
                np.quantile(residual[which == b], quantiles) if (which == b).any() else np.zeros(len(quantiles))
                for b in range(len(edges) - 1)
            ]
        )
        return cls(edges=edges.astype(np.float64), table=table)

    @classmethod
    def none(cls, levels: int) -> ResidualQuantiles:
        """No error model: every level is the point forecast (a model stored without baselines)."""
        return cls(np.array([0.0, 1.0]), np.zeros((1, levels)))

    def predict(self, point: F32) -> F32:
        which = np.clip(np.searchsorted(self.edges, point, side="right") - 1, 0, len(self.edges) - 2)
        return (point[..., None] + self.table[which]).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {"edges": self.edges.tolist(), "table": self.table.tolist()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ResidualQuantiles:
        return cls(np.asarray(data["edges"]), np.asarray(data["table"]))


def fit_physics(features: F32, target: F32, quantiles: Sequence[float]) -> ResidualQuantiles:
    """The physics-only baseline's error quantiles on training tensors and target fractions."""
    return ResidualQuantiles.fit(physics_point(features), target, sun_up(features), quantiles)


@dataclass(frozen=True)
class Baselines:
    """Baseline error models fitted on the training window (stored with the model as ``baselines``)."""

    physics: ResidualQuantiles
    persistence: ResidualQuantiles
    fallback_csi: float

    @classmethod
    def fit(cls, features: F32, target: F32, quantiles: Sequence[float]) -> Baselines:
        csi = mean_measured_csi(features)
        persistence = ResidualQuantiles.fit(persistence_point(features, csi), target, sun_up(features), quantiles)
        return cls(physics=fit_physics(features, target, quantiles), persistence=persistence, fallback_csi=csi)

    def to_dict(self) -> dict[str, Any]:
        return {
            "physics": self.physics.to_dict(),
            "persistence": self.persistence.to_dict(),
            "fallback_csi": self.fallback_csi,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Baselines:
        return cls(
            ResidualQuantiles.from_dict(data["physics"]),
            ResidualQuantiles.from_dict(data["persistence"]),
            float(data["fallback_csi"]),
        )

    def physics_kw(self, features: F32, capacity_ac_kw: F32) -> F32:
        return postprocess(self.physics.predict(physics_point(features)), features, capacity_ac_kw)

    def persistence_kw(self, features: F32, capacity_ac_kw: F32) -> F32:
        return persistence_forecast(self.persistence, self.fallback_csi, features, capacity_ac_kw)


def persistence_forecast(errors: ResidualQuantiles, fallback_csi: float, features: F32, capacity_ac_kw: F32) -> F32:
    """Smart persistence's quantiles [kW] (n, steps, levels), post-processed like the model's."""
    return postprocess(errors.predict(persistence_point(features, fallback_csi)), features, capacity_ac_kw)


@dataclass(frozen=True)
class DegradedMode:
    """The service's answer when the model cannot run (no fresh weather forecast): smart persistence with the
    error quantiles the model's training fitted."""

    persistence: ResidualQuantiles
    fallback_csi: float

    @classmethod
    def of(cls, metadata: ModelMetadata) -> DegradedMode:
        fitted = metadata.baselines.get("persistence")
        errors = ResidualQuantiles.from_dict(fitted) if fitted else ResidualQuantiles.none(len(metadata.quantiles))
        return cls(errors, float(metadata.baselines.get("fallback_csi", 1.0)))

    def predict_kw(self, features: F32, capacity_ac_kw: F32) -> F32:
        """Quantiles [kW] (n, steps, levels), post-processed like the model's."""
        return persistence_forecast(self.persistence, self.fallback_csi, features, capacity_ac_kw)
