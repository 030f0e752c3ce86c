"""Scoring the served model against the baselines on one window, as a table and a fan chart."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pandas as pd

from pvcast.baselines import Baselines
from pvcast.contract import run_in_batches
from pvcast.pv import features as pv_features
from training.dataset import Dataset
from training.metrics import central_index, interval_indices, score

METHODS = ("model", "physics", "smart_persistence")


def sun_up(data: Dataset) -> np.ndarray:
    return pv_features.sun_up(data.features)


def fit_baselines(train: Dataset, quantiles: Sequence[float]) -> Baselines:
    """The baselines' error models on the training window (``pvcast.baselines``)."""
    return Baselines.fit(train.features, train.target_fraction, quantiles)


def predict_all(session: ort.InferenceSession, data: Dataset, baselines: Baselines) -> dict[str, np.ndarray]:
    """Quantile forecasts [kW] of every method on ``data``: the model through onnxruntime (what is served)."""
    f, cap = data.features, data.capacity_ac_kw
    return {
        "model": run_in_batches(session, f, cap),
        "physics": baselines.physics_kw(f, cap),
        "smart_persistence": baselines.persistence_kw(f, cap),
    }


def score_all(
    predictions: dict[str, np.ndarray], data: Dataset, quantiles: Sequence[float]
) -> dict[str, dict[str, float]]:
    return {
        name: score(pred, data.target_kw, data.capacity_ac_kw, sun_up(data), quantiles)
        for name, pred in predictions.items()
    }


def format_table(scores: dict[str, dict[str, float]]) -> str:
    """Metrics as rows, methods as columns; the best method per row is marked with *."""
    methods = list(scores)
    metrics = list(next(iter(scores.values())))
    lines = [f"{'metric':<28}" + "".join(f"{m:>20}" for m in methods)]
    for metric in metrics:
        values = [scores[m][metric] for m in methods]
        best = _best(metric, values)
        lines.append(f"{metric:<28}" + "".join(f"{v:>19.3f}{'*' if i == best else ' '}" for i, v in enumerate(values)))
    return "\n".join(lines)


def _best(metric: str, values: list[float]) -> int:
    if metric.startswith("coverage"):
        level = _nominal_coverage(metric)
        return int(np.nanargmin([abs(v - level) for v in values]))
    return int(np.nanargmin(values))


def _nominal_coverage(metric: str) -> float:
    """``coverage_p10_p90_day_pct`` → 80."""
    found = re.match(r"coverage_p([\d.]+)_p([\d.]+)", metric)
    return float(found.group(2)) - float(found.group(1)) if found else 80.0


def plot_fan(
    data: Dataset, pred_kw: np.ndarray, quantiles: Sequence[float], park_id: str, path: Path, days: int = 7
) -> Path:
    """P10–P90 band and P50 of day-ahead forecasts issued at 00 UTC against measured power, one park, one week."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    times, fan, measured = _day_ahead_series(data, pred_kw, park_id, days)
    lo, hi = interval_indices(quantiles)
    fig, ax = plt.subplots(figsize=(12, 4))
    ax.fill_between(
        times,
        fan[:, lo],
        fan[:, hi],
        step="post",
        alpha=0.3,
        label=f"P{quantiles[lo] * 100:g}–P{quantiles[hi] * 100:g}",
    )
    ax.step(times, fan[:, central_index(quantiles)], where="post", label="P50", linewidth=1.2)
    ax.step(times, measured, where="post", color="black", linewidth=0.8, label="measured")
    ax.set(ylabel="AC power [kW]", title=f"{park_id}: day-ahead forecasts issued 00 UTC vs measured")
    ax.legend(loc="upper right")
    fig.autofmt_xdate()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def _day_ahead_series(
    data: Dataset, pred_kw: np.ndarray, park_id: str, days: int
) -> tuple[pd.DatetimeIndex, np.ndarray, np.ndarray]:
    """Concatenate the first 24 h of each 00-UTC forecast of the last ``days`` days with full labels."""
    steps_per_day = 86400 // int(data.valid_time[0, 1] - data.valid_time[0, 0])
    rows = np.flatnonzero((data.park_id == park_id) & (data.issued_at % 86400 == 0))
    rows = rows[np.isfinite(data.target_kw[rows, :steps_per_day]).mean(axis=1) > 0.9][-days:]
    if rows.size == 0:
        raise ValueError(f"no 00-UTC forecast with measurements for {park_id} in this window")
    valid = data.valid_time[rows, :steps_per_day].ravel()
    fan = pred_kw[rows, :steps_per_day].reshape(-1, pred_kw.shape[-1])
    return pd.to_datetime(valid, unit="s", utc=True), fan, data.target_kw[rows, :steps_per_day].ravel()
