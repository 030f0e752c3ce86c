"""Reference forecasts scored beside the model on the same held-out window.

* physics-only: the pvlib power estimate driven by the forecast irradiance (channel ``physics_power``);
* smart persistence: the clear-sky index of the latest measurement persisted over the horizon and applied
  to the clear-sky physics power (the training-mean index where no daytime measurement is available yet).

Both are point forecasts; their quantiles come from the empirical distribution of their own errors on the
training window, conditional on the point forecast's magnitude (``ResidualQuantiles``). Output uses the
same post-processing as the model: kW, clipped to [0, capacity], zero while the sun is down.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from feature_repo.features import ELEVATION_CHANNEL, FEATURE_NAMES, PHYSICS_CHANNEL

F32 = NDArray[np.float32]
_CLEAR = FEATURE_NAMES.index("physics_power_clearsky")
_CSI = FEATURE_NAMES.index("measured_csi")
_HAS_CSI = FEATURE_NAMES.index("measured_available")


def physics_point(features: F32) -> F32:
    """Physics-only point forecast as a fraction of capacity."""
    return features[..., PHYSICS_CHANNEL]


def persistence_point(features: F32, fallback_csi: float) -> F32:
    """Smart (clear-sky-index) persistence as a fraction of capacity."""
    csi = np.where(features[..., _HAS_CSI] > 0, features[..., _CSI], fallback_csi)
    return (csi * features[..., _CLEAR]).astype(np.float32)


def mean_measured_csi(features: F32) -> float:
    has = features[:, 0, _HAS_CSI] > 0
    return float(features[has, 0, _CSI].mean()) if has.any() else 1.0


@dataclass(frozen=True)
class ResidualQuantiles:
    """Quantiles of (measured − point) per bin of the point forecast, fitted on daytime training cells."""

    edges: NDArray[np.float64]
    table: NDArray[np.float64]  # (bins, quantiles)

    @classmethod
    def fit(
        cls, point: F32, target: F32, sun_up: NDArray[np.bool_], quantiles: Sequence[float], bins: int = 12
    ) -> ResidualQuantiles:
        keep = sun_up & np.isfinite(target)
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

    def predict(self, point: F32) -> F32:
        which = np.clip(np.searchsorted(self.edges, point, side="right") - 1, 0, len(self.edges) - 2)
        return (point[..., None] + self.table[which]).astype(np.float32)


def to_kw(fractions: F32, features: F32, capacity_ac_kw: F32) -> F32:
    """The model's post-processing in numpy: kW, clipped to [0, capacity], zero at night, sorted."""
    capacity = capacity_ac_kw[..., None]
    power = np.minimum(np.clip(np.sort(fractions, axis=-1) * capacity, 0.0, None), capacity)
    return (power * (features[..., ELEVATION_CHANNEL : ELEVATION_CHANNEL + 1] > 0)).astype(np.float32)
