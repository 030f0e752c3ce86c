"""Forecast scores as pure numpy functions. Power in kW; normalised scores are fractions of AC capacity.

Every function takes ``mask`` — the cells that count (a measurement exists; for "daytime" scores also the
sun is up) — so missing telemetry never scores as zero.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.floating]


def pinball(pred: Array, target: Array, level: float, mask: NDArray[np.bool_]) -> float:
    """Mean pinball loss of quantile ``level`` (units of pred/target)."""
    error = (target - pred)[mask]
    return float(np.mean(np.maximum(level * error, (level - 1) * error))) if error.size else float("nan")


def mae(pred: Array, target: Array, mask: NDArray[np.bool_]) -> float:
    return float(np.mean(np.abs(pred - target)[mask])) if mask.any() else float("nan")


def rmse(pred: Array, target: Array, mask: NDArray[np.bool_]) -> float:
    return float(np.sqrt(np.mean(np.square(pred - target)[mask]))) if mask.any() else float("nan")


def coverage(lower: Array, upper: Array, target: Array, mask: NDArray[np.bool_]) -> float:
    """Share of measurements inside [lower, upper]."""
    inside = (target >= lower) & (target <= upper)
    return float(np.mean(inside[mask])) if mask.any() else float("nan")


def central_index(quantiles: Sequence[float]) -> int:
    return int(np.argmin(np.abs(np.asarray(quantiles) - 0.5)))


def interval_indices(quantiles: Sequence[float], lower: float = 0.1, upper: float = 0.9) -> tuple[int, int]:
    """Indices of the P10 and P90 levels (or the closest available)."""
    qs = np.asarray(quantiles)
    return int(np.argmin(np.abs(qs - lower))), int(np.argmin(np.abs(qs - upper)))


def score(
    pred_kw: Array,
    target_kw: Array,
    capacity_ac_kw: Array,
    sun_up: NDArray[np.bool_],
    quantiles: Sequence[float],
) -> dict[str, float]:
    """The standard table for one method: pred (n, steps, q), target (n, steps), capacity (n, 1)."""
    measured = np.isfinite(target_kw)
    day = measured & sun_up
    target = np.where(measured, target_kw, 0.0)
    pred_frac, target_frac = pred_kw / capacity_ac_kw[..., None], target / capacity_ac_kw
    median = pred_kw[..., central_index(quantiles)]
    lo, hi = interval_indices(quantiles)
    result = {
        "mae_kw": mae(median, target, measured),
        "nmae_pct": 100 * mae(median / capacity_ac_kw, target_frac, measured),
        "nmae_day_pct": 100 * mae(median / capacity_ac_kw, target_frac, day),
        "rmse_kw": rmse(median, target, measured),
        "nrmse_day_pct": 100 * rmse(median / capacity_ac_kw, target_frac, day),
    }
    per_q = {
        f"pinball_q{q:g}_pct": 100 * pinball(pred_frac[..., i], target_frac, q, measured)
        for i, q in enumerate(quantiles)
    }
    result |= per_q
    result["pinball_mean_pct"] = float(np.mean(list(per_q.values())))
    result[f"coverage_p{quantiles[lo] * 100:g}_p{quantiles[hi] * 100:g}_day_pct"] = 100 * coverage(
        pred_kw[..., lo], pred_kw[..., hi], target, day
    )
    return result
