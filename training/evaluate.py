"""Scoring the served model against the baselines on one window, as a table and a fan chart."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from feature_repo.features import ELEVATION_CHANNEL
from training import baselines as bl
from training.dataset import Dataset
from training.metrics import central_index, interval_indices, score

Predictor = Callable[[np.ndarray, np.ndarray], np.ndarray]
METHODS = ("model", "physics", "smart_persistence")


@dataclass(frozen=True)
class Baselines:
    """Baseline error models fitted on the training window (stored with the model)."""

    physics: bl.ResidualQuantiles
    persistence: bl.ResidualQuantiles
    fallback_csi: float

    def to_dict(self) -> dict[str, Any]:
        table = {
            k: {"edges": v.edges.tolist(), "table": v.table.tolist()}
            for k, v in (("physics", self.physics), ("persistence", self.persistence))
        }
        return {**table, "fallback_csi": self.fallback_csi}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Baselines:
        def rq(d: dict[str, Any]) -> bl.ResidualQuantiles:
            return bl.ResidualQuantiles(np.asarray(d["edges"]), np.asarray(d["table"]))

        return cls(rq(data["physics"]), rq(data["persistence"]), float(data["fallback_csi"]))


def sun_up(data: Dataset) -> np.ndarray:
    return data.features[..., ELEVATION_CHANNEL] > 0


def fit_baselines(train: Dataset, quantiles: Sequence[float]) -> Baselines:
    csi = bl.mean_measured_csi(train.features)
    target = train.target_fraction
    return Baselines(
        physics=bl.ResidualQuantiles.fit(bl.physics_point(train.features), target, sun_up(train), quantiles),
        persistence=bl.ResidualQuantiles.fit(
            bl.persistence_point(train.features, csi), target, sun_up(train), quantiles
        ),
        fallback_csi=csi,
    )


def predict_in_batches(predict: Predictor, data: Dataset, batch: int = 2048) -> np.ndarray:
    parts = [
        predict(data.features[i : i + batch], data.capacity_ac_kw[i : i + batch]) for i in range(0, len(data), batch)
    ]
    return np.concatenate(parts)


def predict_all(predict: Predictor, data: Dataset, baselines: Baselines) -> dict[str, np.ndarray]:
    """Quantile forecasts [kW] of every method on ``data``."""
    f, cap = data.features, data.capacity_ac_kw
    return {
        "model": predict_in_batches(predict, data),
        "physics": bl.to_kw(baselines.physics.predict(bl.physics_point(f)), f, cap),
        "smart_persistence": bl.to_kw(
            baselines.persistence.predict(bl.persistence_point(f, baselines.fallback_csi)), f, cap
        ),
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
