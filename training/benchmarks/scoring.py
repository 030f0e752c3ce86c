"""The GEFCom2014 solar score and its official benchmark, as pure numpy functions.

Score (Hong et al. 2016): the pinball loss averaged over the 99 quantile levels 0.01..0.99, over every hour of
the task's month (night included) and the three zones, on power normalised by nominal capacity.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.floating]

QUANTILES_99: Final = tuple(round(i / 100, 2) for i in range(1, 100))
"""The competition's quantile levels."""


def pinball_loss(pred: Array, target: Array, levels: Sequence[float]) -> float:
    """Mean pinball loss of ``pred`` (..., quantiles) against ``target`` (...), over every cell and level."""
    q = np.asarray(levels, dtype=np.float64)
    error = np.asarray(target, dtype=np.float64)[..., None] - np.asarray(pred, dtype=np.float64)
    return float(np.mean(np.maximum(q * error, (q - 1.0) * error)))


def median_index(levels: Sequence[float]) -> int:
    return int(np.argmin(np.abs(np.asarray(levels) - 0.5)))


def mae_of_median(pred: Array, target: Array, levels: Sequence[float]) -> float:
    """MAE of the median quantile [same unit as target]."""
    return float(np.mean(np.abs(np.asarray(pred)[..., median_index(levels)] - target)))


def nmae_of_median(pred: Array, target: Array, levels: Sequence[float]) -> float:
    """MAE of the median divided by the mean target (a share, not a percentage)."""
    mean = float(np.mean(target))
    return mae_of_median(pred, target, levels) / mean if mean > 0 else float("nan")


def task_scores(pred: Array, target: Array, levels: Sequence[float]) -> dict[str, float]:
    """The report's record for one method and task: pinball, MAE and nMAE of the median (normalised power)."""
    return {
        "pinball": pinball_loss(pred, target, levels),
        "mae": mae_of_median(pred, target, levels),
        "nmae": nmae_of_median(pred, target, levels),
    }


def official_benchmark(power_year_before: Array, n_levels: int = len(QUANTILES_99)) -> NDArray[np.float64]:
    """The organisers' benchmark: every quantile is the power at the same hour one year earlier."""
    values = np.asarray(power_year_before, dtype=np.float64)
    return np.repeat(values[..., None], n_levels, axis=-1)


def reliability(pred: Array, target: Array, mask: NDArray[np.bool_]) -> NDArray[np.float64]:
    """Observed frequency of ``target <= quantile`` for each level, over the cells in ``mask``."""
    below = np.asarray(target)[..., None] <= np.asarray(pred)
    return below[mask].mean(axis=0).astype(np.float64)
