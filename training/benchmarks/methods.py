"""Forecasting methods scored by the benchmarks, beside the served LSTM/physics hybrid.

Every method returns quantiles as fractions of AC capacity, shape (forecasts, steps, levels), and sees only
what the protocol allows: the model tensors built by the shared tensor builder (forecast weather, physics,
solar geometry) and measured power from before the forecast month.

* ``climatology``: empirical quantiles of the measured power per hour of day and calendar month;
* ``physics``: the pvlib estimate on the forecast irradiance (``physics_power``), quantiles from its past
  errors (the physics-only baseline of ``pvcast.baselines``);
* ``gbm``: gradient-boosted quantile regression (scikit-learn) on the same channels, plus each channel's
  neighbouring steps, its daylight mean over the horizon and the park's capacity (which tells parks apart).
  A few levels are fitted and interpolated linearly to the requested ones.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np
from numpy.typing import NDArray
from sklearn.ensemble import HistGradientBoostingRegressor
from threadpoolctl import threadpool_limits

from pvcast import baselines as bl
from pvcast.pv.features import FEATURE_NAMES, sun_up

logger = logging.getLogger(__name__)

F32 = NDArray[np.float32]
F64 = NDArray[np.float64]

GBM_CHANNELS: Final = tuple(
    n for n in FEATURE_NAMES if not n.startswith("measured_") and n not in ("dc_ac_ratio", "horizon")
)
"""Channels the GBM reads directly (blanked telemetry and per-park constants carry nothing here)."""
GBM_CONTEXT: Final = ("ghi", "clearsky_index", "cloud_cover", "physics_power", "poa_global")
"""Channels whose previous and next step and daylight mean over the horizon are added: the NWP's timing
errors and the day's overall cloudiness matter more than one hour's value."""
GBM_LEVELS: Final = (0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99)
"""Fitted levels; the others are interpolated (17 fitted levels scored the same on the trial tasks 1–3)."""


# --- climatology ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Climatology:
    """Quantiles of measured power (fraction of capacity) per (calendar month, hour of day) [UTC]."""

    table: F64  # (12, 24, levels)

    @classmethod
    def fit(cls, valid_time: NDArray[np.int64], power: F64, levels: Sequence[float]) -> Climatology:
        month, hour = _month_hour(valid_time)
        keep = np.isfinite(power)
        overall = np.stack([_quantiles(power[keep & (hour == h)], levels) for h in range(24)])
        table = np.empty((12, 24, len(levels)))
        for m in range(12):
            for h in range(24):
                cell = power[keep & (month == m) & (hour == h)]
                table[m, h] = _quantiles(cell, levels) if cell.size else overall[h]
        return cls(table)

    def predict(self, valid_time: NDArray[np.int64]) -> F64:
        month, hour = _month_hour(valid_time)
        return self.table[month, hour]


def _month_hour(valid_time: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    days = valid_time // 86400
    months = days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64) % 12
    return months, (valid_time % 86400) // 3600


def _quantiles(values: F64, levels: Sequence[float]) -> F64:
    return np.quantile(values, levels) if values.size else np.zeros(len(levels))


# --- physics-only --------------------------------------------------------------------------------------


def predict_physics(model: bl.ResidualQuantiles, features: F32) -> F64:
    """The physics-only baseline (``pvcast.baselines.fit_physics``) as fractions of capacity."""
    return bl.postprocess(model.predict(bl.physics_point(features)).astype(np.float64), features)


# --- gradient-boosted quantile regression --------------------------------------------------------------


def gbm_features(features: F32, capacity_ac_kw: F32) -> F32:
    """Per-step design matrix (forecasts × steps, columns) from the model tensor and the park capacity.

    Columns: ``GBM_CHANNELS``; the previous step of each ``GBM_CONTEXT`` channel (the first step repeats
    itself), the next step (the last repeats), the daylight mean over the horizon; the capacity [kW].
    ``training.benchmarks.onnx_ensemble`` builds the same matrix inside the ONNX graph.
    """
    context = features[..., [FEATURE_NAMES.index(n) for n in GBM_CONTEXT]]
    previous = np.concatenate([context[:, :1], context[:, :-1]], axis=1)
    following = np.concatenate([context[:, 1:], context[:, -1:]], axis=1)
    day = sun_up(features)[..., None].astype(np.float32)
    mean = (context * day).sum(axis=1, keepdims=True) / np.maximum(day.sum(axis=1, keepdims=True), 1.0)
    columns = [
        features[..., [FEATURE_NAMES.index(n) for n in GBM_CHANNELS]],
        previous,
        following,
        np.broadcast_to(mean, context.shape),
        np.broadcast_to(capacity_ac_kw[:, None, :], (*features.shape[:2], 1)),
    ]
    matrix = np.concatenate(columns, axis=-1).astype(np.float32)
    return matrix.reshape(-1, matrix.shape[-1])


@dataclass(frozen=True)
class GbmSettings:
    max_iter: int = 200
    learning_rate: float = 0.05
    max_leaf_nodes: int = 31
    min_samples_leaf: int = 20
    levels: tuple[float, ...] = GBM_LEVELS
    seed: int = 0


@dataclass
class GbmQuantiles:
    """One HistGradientBoostingRegressor per fitted level, trained on daylight steps with a measurement."""

    settings: GbmSettings
    models: list[HistGradientBoostingRegressor] = field(default_factory=list)

    def fit(self, features: F32, capacity_ac_kw: F32, target: F32) -> GbmQuantiles:
        x = gbm_features(features, capacity_ac_kw)
        y = target.reshape(-1)
        keep = sun_up(features).reshape(-1) & np.isfinite(y)
        s = self.settings
        with threadpool_limits(1):  # OpenMP spin-waits badly on a shared 2-core machine
            self.models = [
                HistGradientBoostingRegressor(
                    loss="quantile",
                    quantile=q,
                    max_iter=s.max_iter,
                    learning_rate=s.learning_rate,
                    max_leaf_nodes=s.max_leaf_nodes,
                    min_samples_leaf=s.min_samples_leaf,
                    random_state=s.seed,
                ).fit(x[keep], y[keep])
                for q in s.levels
            ]
        return self

    def predict_levels(self, features: F32, capacity_ac_kw: F32) -> F64:
        """The fitted levels, sorted (forecasts, steps, fitted levels), before gating."""
        x = gbm_features(features, capacity_ac_kw)
        with threadpool_limits(1):
            raw = np.stack([m.predict(x) for m in self.models], axis=-1)
        return np.sort(raw, axis=-1).reshape((*features.shape[:2], len(self.models)))

    def predict(self, features: F32, capacity_ac_kw: F32, levels: Sequence[float]) -> F64:
        fitted = self.predict_levels(features, capacity_ac_kw)
        return bl.postprocess(fitted @ interpolation_matrix(self.settings.levels, levels), features)


def interpolation_matrix(fitted: Sequence[float], wanted: Sequence[float]) -> F64:
    """(fitted, wanted) weights of linear interpolation between fitted levels (constant beyond the ends).

    A matrix product keeps it one linear operation (and monotone: the weights are non-negative).
    """
    eye = np.eye(len(fitted))
    return np.stack([np.interp(wanted, fitted, eye[i]) for i in range(len(fitted))])
