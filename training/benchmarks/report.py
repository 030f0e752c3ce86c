"""The benchmark's report: ``results.json``, a Markdown table beside the leaderboard, a reliability diagram
and one fan chart per zone (PNG)."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pvcast.pv.features import sun_up
from training.benchmarks import scoring

logger = logging.getLogger(__name__)

LEADERBOARD_GLOB = "leaderboard_tasks_*.csv"
OURS = "pvcast: "


def results_document(served_method: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    return {"served_method": served_method, "records": records}


def write_results(path: Path, document: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path


def mean_pinball(records: list[dict[str, Any]]) -> dict[str, float]:
    """Mean pinball per method over the tasks in ``records``."""
    frame = pd.DataFrame(records)
    return frame.groupby("method", sort=False)["pinball"].mean().to_dict()


def read_leaderboard(data_dir: Path) -> pd.DataFrame | None:
    """The organisers' leaderboard (team, task, pinball) if a ``leaderboard_tasks_*.csv`` sits beside the data."""
    for folder in (data_dir, data_dir / "gefcom2014_solar"):
        files = sorted(folder.glob(LEADERBOARD_GLOB))
        if files:
            return pd.concat([pd.read_csv(f) for f in files], ignore_index=True).drop_duplicates(["team", "task"])
    return None


def markdown_table(records: list[dict[str, Any]], served: str, leaderboard: pd.DataFrame | None) -> str:
    """Pinball per task (columns) for pvcast's methods and, where published, every team; sorted by the mean."""
    ours = pd.DataFrame(records)
    ours["team"] = OURS + ours["method"] + np.where(ours["method"] == served, " (served)", "")
    rows = [ours[["team", "task", "pinball"]]]
    tasks = sorted(set(ours["task"]))
    if leaderboard is not None:
        rows.append(leaderboard[leaderboard["task"].isin(tasks)][["team", "task", "pinball"]])
    table = pd.concat(rows).pivot_table(index="team", columns="task", values="pinball", aggfunc="first")
    table = table.reindex(columns=tasks)
    complete = table.notna().all(axis=1)
    table["mean"] = table.mean(axis=1).where(complete)
    table = table.sort_values("mean", na_position="last")
    header = "| rank | team / method | " + " | ".join(f"task {t}" for t in tasks) + " | mean |"
    lines = [header, "|---:|---|" + "---:|" * (len(tasks) + 1)]
    for rank, (team, row) in enumerate(table.iterrows(), start=1):
        cells = " | ".join("" if pd.isna(row[t]) else f"{row[t]:.5f}" for t in [*tasks, "mean"])
        name = f"**{team}**" if str(team).startswith(OURS) else str(team)
        lines.append(f"| {rank if complete[team] else ''} | {name} | {cells} |")
    if leaderboard is not None:
        best = leaderboard[leaderboard["task"].isin(tasks)].groupby("task")["pinball"].min()
        if len(best) == len(tasks):
            lines.append(
                f"| | best team on each task | {' | '.join(f'{best[t]:.5f}' for t in tasks)} | {best.mean():.5f} |"
            )
    return "\n".join(lines) + "\n"


def plot_reliability(observed: dict[str, np.ndarray], levels: Sequence[float], path: Path) -> Path:
    """Observed frequency of power ≤ quantile against the quantile level, per method (daylight hours)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    ax.plot([0, 1], [0, 1], color="grey", linewidth=0.8, linestyle="--", label="ideal")
    for method, freq in observed.items():
        ax.plot(levels, freq, linewidth=1.2, label=method)
    ax.set(
        xlabel="quantile level",
        ylabel="observed frequency (daylight hours)",
        xlim=(0, 1),
        ylim=(0, 1),
        title="GEFCom2014: reliability",
    )
    ax.legend(loc="upper left", fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def reliability_by_method(results: Sequence[Any]) -> dict[str, np.ndarray]:
    """Pooled over tasks: for each method, the observed frequency below each quantile on daylight hours."""
    below: dict[str, list[np.ndarray]] = {}
    for r in results:
        day = sun_up(r.test.features)
        for method, pred in r.predictions.items():
            below.setdefault(method, []).append((r.target[..., None] <= pred)[day])
    return {m: np.concatenate(v).mean(axis=0) for m, v in below.items()}


def plot_fans(result: Any, method: str, out: Path, days: int = 7) -> list[Path]:
    """One PNG per zone: the first ``days`` days of the task's month, quantile bands of ``method`` and measured."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    pred, levels = result.predictions[method], scoring.QUANTILES_99
    for park in sorted(set(result.test.park_id)):
        rows = np.flatnonzero(result.test.park_id == park)[:days]
        times = pd.to_datetime(result.test.valid_time[rows].ravel(), unit="s", utc=True)
        fan = pred[rows].reshape(-1, len(levels))
        fig, ax = plt.subplots(figsize=(12, 4))
        for lo, hi, alpha in ((0, 98, 0.15), (9, 89, 0.25), (24, 74, 0.35)):
            ax.fill_between(
                times,
                fan[:, lo],
                fan[:, hi],
                step="post",
                alpha=alpha,
                color="tab:blue",
                label=f"P{levels[lo] * 100:g}–P{levels[hi] * 100:g}",
                linewidth=0,
            )
        ax.step(times, fan[:, scoring.median_index(levels)], where="post", color="tab:blue", linewidth=1.2, label="P50")
        ax.step(times, result.target[rows].ravel(), where="post", color="black", linewidth=0.9, label="measured")
        ax.set(
            ylabel="power / nominal power",
            ylim=(0, 1.05),
            title=f"{park}: GEFCom2014 task {result.task}, {method}, day-ahead (00 UTC runs)",
        )
        ax.legend(loc="upper right", fontsize=8, ncol=5)
        fig.autofmt_xdate()
        path = out / f"fan_{park}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        paths.append(path)
    return paths
