"""Offline jobs composed from library functions; the CLI and Kubernetes Jobs call these."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from feature_repo.store import init_store, materialize, open_store, registered_parks, write_table
from pvcast.baselines import Baselines
from pvcast.model_store import ModelStore
from pvcast.pv.plant import parks_from_frame
from pvcast.schema import GENERATION_VIEW, PARK_VIEW, WEATHER_VIEW
from pvcast.settings import StoreConfig
from pvcast.timeutils import require_utc
from training.config import ModelConfig, TrainConfig
from training.dataset import Dataset, build_dataset, issue_times
from training.evaluate import format_table, plot_fan, predict_all, score_all
from training.pipeline import TrainReport, train_and_register
from training.sources.demo import build_demo_dataset

logger = logging.getLogger(__name__)


def build_demo_store(config: StoreConfig, end: pd.Timestamp, days: int, seed: int) -> None:
    """Synthetic demo parks → offline store → online store (materialized up to ``end``)."""
    end = require_utc(end, "end").floor("15min")
    logger.info("building %d days of SYNTHETIC demo data ending %s", days, end)
    demo = build_demo_dataset(end, days=days, seed=seed)
    parks_from_frame(demo.parks)  # validate before anything is written
    store = init_store(config)
    write_table(config, PARK_VIEW, demo.parks)
    write_table(config, WEATHER_VIEW, demo.weather_forecasts)
    write_table(config, GENERATION_VIEW, demo.generation)
    materialize(store, end, end - pd.Timedelta(days=7))
    logger.info("demo store ready in %s (%d parks)", config.repo_path, len(demo.parks))


def train_config_from_args(args: argparse.Namespace) -> TrainConfig:
    steps = args.horizon_hours * 3600 / 900
    if steps != int(steps) or steps < 1:
        raise ValueError(f"--horizon-hours must be a positive multiple of 0.25 h, got {args.horizon_hours}")
    return TrainConfig(
        model=ModelConfig(quantiles=tuple(args.quantiles), hidden_size=args.hidden_size),
        horizon_steps=int(steps),
        issue_every_hours=args.issue_every_hours,
        max_epochs=args.epochs,
        seed=args.seed,
        test_days=args.test_days,
        validation_days=args.validation_days,
    )


def train_job(config: StoreConfig, train_config: TrainConfig, models: ModelStore, promote: bool, out: Path) -> str:
    report = train_and_register(open_store(config), config, train_config, models, promote)
    plot = _plot(report.test, report.predictions["model"], train_config.model.quantiles, None, out)
    return _summary(report, plot)


def _summary(report: TrainReport, plot: Path | None) -> str:
    r = report.result
    lines = [
        f"model {report.tag}{' (now in production)' if report.promoted else ''}",
        f"trained {r.seconds:.0f} s, best epoch {r.best_epoch}, ONNX parity {report.parity:.1e} of capacity",
        f"held-out window: {len(report.test)} forecasts",
        format_table(report.scores),
    ]
    if plot:
        lines.append(f"fan chart: {plot}")
    return "\n".join(lines)


def evaluate_job(
    config: StoreConfig,
    models: ModelStore,
    reference: str,
    start: pd.Timestamp | None,
    end: pd.Timestamp | None,
    park: str | None,
    out: Path,
) -> tuple[dict[str, dict[str, float]], str]:
    """Score a stored ONNX model (what the service runs) and the baselines on a window."""
    loaded = models.load(reference)
    meta = loaded.metadata
    window_start = start if start is not None else pd.Timestamp(meta.test_window["start"])
    window_end = end if end is not None else pd.Timestamp(meta.test_window["end"])
    parks = [p.park_id for p in registered_parks(config) if p.park_id in meta.parks]
    spec = meta.spec
    every = pd.Timedelta(seconds=meta.training.get("config", {}).get("issue_every_hours", 1.0) * 3600)
    data = build_dataset(
        open_store(config),
        config,
        parks,
        issue_times(window_start, window_end, every / pd.Timedelta(hours=1)),
        spec,
    )
    baselines = Baselines.from_dict(meta.baselines)
    predictions = predict_all(loaded.session, data, baselines)
    scores = score_all(predictions, data, meta.quantiles)
    plot = _plot(data, predictions["model"], meta.quantiles, park, out)
    header = f"model {loaded.tag} on {len(data)} forecasts issued {window_start} .. {window_end}"
    return scores, "\n".join([header, format_table(scores), f"fan chart: {plot}" if plot else ""]).rstrip()


def _plot(data: Dataset, pred_kw: np.ndarray, quantiles: Sequence[float], park: str | None, out: Path) -> Path | None:
    park_id = park or str(sorted(set(data.park_id))[0])
    try:
        return plot_fan(data, pred_kw, list(quantiles), park_id, out / f"fan_{park_id}.png")
    except ValueError as exc:
        logger.warning("no fan chart: %s", exc)
        return None
