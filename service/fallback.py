"""The degraded-mode forecast: smart persistence on clear-sky physics power, with error quantiles from training.

When a park has no fresh weather forecast the model cannot run, so the service answers like the training
baseline "smart persistence": the clear-sky index of the latest measurement (or the training window's mean
index when there is none) times the clear-sky physics power, plus the quantiles of that baseline's errors
fitted on the model's training window (stored in its metadata, ``baselines.persistence``). The service
image has no training package, so the few lines of numpy are here; ``tests/service/test_fallback.py`` proves
they equal ``training/baselines.py`` on the same inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from feature_repo.features import ELEVATION_CHANNEL, FEATURE_NAMES

F32 = NDArray[np.float32]
_CLEAR = FEATURE_NAMES.index("physics_power_clearsky")
_CSI = FEATURE_NAMES.index("measured_csi")
_HAS_CSI = FEATURE_NAMES.index("measured_available")


@dataclass(frozen=True)
class Fallback:
    edges: NDArray[np.float64]  # bins of the point forecast [fraction of capacity]
    table: NDArray[np.float64]  # (bins, quantiles) error quantiles per bin
    fallback_csi: float

    @classmethod
    def from_metadata(cls, baselines: dict[str, Any], n_quantiles: int) -> Fallback:
        fitted = baselines.get("persistence")
        if fitted is None:  # a model stored without baselines: the point forecast for every level
            return cls(np.array([0.0, 1.0]), np.zeros((1, n_quantiles)), float(baselines.get("fallback_csi", 1.0)))
        return cls(np.asarray(fitted["edges"]), np.asarray(fitted["table"]), float(baselines.get("fallback_csi", 1.0)))

    def point(self, features: F32) -> F32:
        """Smart persistence as a fraction of capacity."""
        csi = np.where(features[..., _HAS_CSI] > 0, features[..., _CSI], self.fallback_csi)
        return (csi * features[..., _CLEAR]).astype(np.float32)

    def quantiles(self, point: F32) -> F32:
        which = np.clip(np.searchsorted(self.edges, point, side="right") - 1, 0, len(self.edges) - 2)
        return (point[..., None] + self.table[which]).astype(np.float32)

    def predict_kw(self, features: F32, capacity_ac_kw: F32) -> F32:
        """Quantiles [kW] (n, steps, levels), post-processed like the model: sorted, within [0, capacity], zero
        while the sun is down."""
        fractions = self.quantiles(self.point(features))
        capacity = capacity_ac_kw[..., None]
        power = np.minimum(np.clip(np.sort(fractions, axis=-1) * capacity, 0.0, None), capacity)
        return (power * (features[..., ELEVATION_CHANNEL : ELEVATION_CHANNEL + 1] > 0)).astype(np.float32)
