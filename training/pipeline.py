"""Train → evaluate against baselines → export ONNX (parity-checked) → store with metadata → (promote)."""

from __future__ import annotations

import logging
import subprocess
import tempfile
from dataclasses import dataclass
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from feast import FeatureStore

from feature_repo.features import FEATURE_NAMES
from feature_repo.schema import (
    EVENT_TIMESTAMP,
    FEATURE_SERVICE_NAME,
    GENERATION_VIEW,
    ISSUED_AT,
    WEATHER_VIEW,
)
from feature_repo.store import StoreConfig, read_table, registered_parks
from feature_repo.timeutils import from_epoch_seconds
from service import model_store
from service.inference import INPUT_CAPACITY, INPUT_FEATURES, OUTPUT_QUANTILES, open_session, run_session
from training.config import TrainConfig
from training.dataset import Dataset, build_dataset, issue_times, split_by_time
from training.evaluate import fit_baselines, predict_all, score_all
from training.export import export_onnx, parity_check
from training.mlops.drift import reference_distribution
from training.train import TrainResult, train_model

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainReport:
    tag: str
    promoted: bool
    scores: dict[str, dict[str, float]]
    result: TrainResult
    test: Dataset
    predictions: dict[str, np.ndarray]
    parity: float


def code_version() -> str:
    """The git commit of the checkout if there is one, else the installed package version."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
        ).stdout.strip()
        return f"{sha}{'-dirty' if dirty else ''}"
    except (OSError, subprocess.CalledProcessError):
        return importlib_metadata.version("pvcast")


def data_window(config: StoreConfig) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Issue times that have both forecasts and (at least partly) measured outcomes."""
    weather = read_table(config, WEATHER_VIEW)[ISSUED_AT]
    generation = read_table(config, GENERATION_VIEW)[EVENT_TIMESTAMP]
    return max(weather.min(), generation.min()), min(weather.max(), generation.max())


def train_and_register(
    store: FeatureStore, store_config: StoreConfig, config: TrainConfig, promote: bool
) -> TrainReport:
    parks = [p.park_id for p in registered_parks(store_config)]
    start, end = data_window(store_config)
    logger.info(
        "building the training set: %d parks, issue times %s .. %s every %g h",
        len(parks),
        start,
        end,
        config.issue_every_hours,
    )
    data = build_dataset(store, store_config, parks, issue_times(start, end, config.issue_every_hours), config.spec)
    horizon_s = config.horizon_steps * config.step_seconds
    train, validation, test = split_by_time(data, config.validation_days, config.test_days, horizon_s)
    logger.info("samples: train %d, validation %d, test %d", len(train), len(validation), len(test))
    result = train_model(train, validation, config)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / model_store.ONNX_FILE
        export_onnx(result.model, test.features, test.capacity_ac_kw, path, {"feature_service": FEATURE_SERVICE_NAME})
        parity = parity_check(result.model, path, test.features[:16], test.capacity_ac_kw[:16])
        session = open_session(path, threads=config.threads)
        baselines = fit_baselines(train, config.model.quantiles)
        predictions = predict_all(lambda f, c: run_session(session, f, c), test, baselines)
        scores = score_all(predictions, test, config.model.quantiles)
        meta = model_metadata(config, parks, train, test, scores, baselines.to_dict(), result, parity)
        tag = model_store.save_model(path, meta, labels={"feature_service": FEATURE_SERVICE_NAME})
    if promote:
        model_store.promote(tag)
    return TrainReport(tag, promote, scores, result, test, predictions, parity)


def _window(data: Dataset) -> dict[str, str]:
    return {
        "start": from_epoch_seconds(int(data.issued_at.min())).isoformat(),
        "end": from_epoch_seconds(int(data.issued_at.max())).isoformat(),
    }


def model_metadata(
    config: TrainConfig,
    parks: list[str],
    train: Dataset,
    test: Dataset,
    scores: dict[str, dict[str, float]],
    baselines: dict[str, object],
    result: TrainResult,
    parity: float,
) -> model_store.ModelMetadata:
    steps, n = config.horizon_steps, len(FEATURE_NAMES)
    return model_store.ModelMetadata(
        feature_service=FEATURE_SERVICE_NAME,
        feature_names=list(FEATURE_NAMES),
        quantiles=list(config.model.quantiles),
        step_seconds=config.step_seconds,
        horizon_steps=steps,
        inputs={
            INPUT_FEATURES: f"float32 [batch, {steps}, {n}]: channels in feature_names order",
            INPUT_CAPACITY: "float32 [batch, 1]: AC capacity of each park [kW]",
        },
        outputs={
            OUTPUT_QUANTILES: f"float32 [batch, {steps}, {len(config.model.quantiles)}]: power [kW] per quantile level"
        },
        training_window=_window(train),
        test_window=_window(test),
        metrics=scores,
        parks=parks,
        code_version=code_version(),
        baselines=baselines,
        training={
            "best_epoch": result.best_epoch,
            "seconds": round(result.seconds, 1),
            "parity_max_abs_fraction": parity,
            "config": _config_dict(config),
        },
        reference=reference_distribution(train.features, _window(train)),
    )


def _config_dict(config: TrainConfig) -> dict[str, object]:
    """The configuration as model-store metadata (which takes no None: unset options are left out)."""
    from dataclasses import asdict

    return _without_none(asdict(config))


def _without_none(value: dict[str, Any]) -> dict[str, Any]:
    return {k: _without_none(v) if isinstance(v, dict) else v for k, v in value.items() if v is not None}
