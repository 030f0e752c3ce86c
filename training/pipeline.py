"""The one train → evaluate → export → register pipeline, as small steps (OpenSTEF's train_model_pipeline → core
→ steps).

* :func:`fit_candidate` — the core: train (one model, or the mean of several seeds), export ONNX with the
  contract in its metadata and check it against torch, fit the baselines, forecast the held-out window
  through onnxruntime (exactly what is served), score every method and assemble the metadata;
* :func:`register` — store a candidate in the model store.

``pvcast train`` (:func:`train_and_register`) adds the data window and ``--promote``; ``pvcast retrain``
(``training/mlops/retrain.py``) adds MLflow and the champion/challenger policy; the GEFCom2014 harness
(``training/benchmarks/gef2014.py``) uses the train and export steps with its own protocol, seeds and ensemble.
"""

from __future__ import annotations

import logging
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from feast import FeatureStore

from feature_repo.store import read_table, registered_parks
from pvcast.contract import ModelContract, ModelMetadata, onnx_metadata, open_session
from pvcast.model_store import ONNX_FILE, ModelStore
from pvcast.pv.features import FEATURE_NAMES
from pvcast.schema import EVENT_TIMESTAMP, FEATURE_SERVICE_NAME, GENERATION_VIEW, ISSUED_AT, WEATHER_VIEW
from pvcast.settings import StoreConfig
from pvcast.timeutils import from_epoch_seconds
from training.config import TrainConfig
from training.dataset import Dataset, build_dataset, issue_times, split_by_time
from training.evaluate import fit_baselines, predict_all, score_all
from training.export import export_onnx, parity_check
from training.mlops.drift import reference_distribution
from training.seed_ensemble import MeanOfModels
from training.train import TrainResult, train_model

logger = logging.getLogger(__name__)

PARITY_SAMPLES = 16
"""Held-out samples on which the exported graph must reproduce torch (at batch 1 and at this batch)."""


@dataclass(frozen=True)
class Split:
    """Training, early-stopping and held-out windows, separated in issue time."""

    train: Dataset
    validation: Dataset
    test: Dataset


@dataclass(frozen=True)
class Candidate:
    """A trained, exported and scored model, not yet stored: ``path`` is its ONNX graph."""

    path: Path
    metadata: ModelMetadata
    result: TrainResult
    test: Dataset
    predictions: dict[str, np.ndarray]  # method → quantiles [kW] on the held-out window
    parity: float

    @property
    def scores(self) -> dict[str, dict[str, float]]:
        return self.metadata.metrics


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


def contract_of(config: TrainConfig) -> ModelContract:
    """The contract a model trained with ``config`` will keep."""
    return ModelContract.of(FEATURE_NAMES, config.model.quantiles, config.spec)


# --- the steps ---------------------------------------------------------------------------------------------


def train_members(split: Split, config: TrainConfig, seeds: Sequence[int]) -> list[TrainResult]:
    """One model per seed of ``seeds`` (``config`` otherwise), on the same training and validation windows."""
    return [train_model(split.train, split.validation, replace(config, seed=seed)) for seed in seeds]


def as_one_module(results: Sequence[TrainResult]) -> torch.nn.Module:
    """The served module: the one model, or the mean of several (exported as ONE graph either way)."""
    return results[0].model if len(results) == 1 else MeanOfModels([r.model for r in results])


def export_checked(module: torch.nn.Module, example: Dataset, path: Path, metadata: dict[str, str]) -> float:
    """Export ``module`` to ``path`` with ``metadata`` and check the graph against torch on the first
    :data:`PARITY_SAMPLES` of ``example``; returns the worst difference (a fraction of capacity)."""
    export_onnx(module, example.features, example.capacity_ac_kw, path, metadata)
    return parity_check(module, path, example.features[:PARITY_SAMPLES], example.capacity_ac_kw[:PARITY_SAMPLES])


def fit_candidate(split: Split, config: TrainConfig, parks: list[str], work: Path) -> Candidate:
    """Train → export (parity-checked) → baselines → held-out forecasts through onnxruntime → scores → metadata.
    The graph is written to ``work``."""
    result = train_model(split.train, split.validation, config)
    contract = contract_of(config)
    path = work / ONNX_FILE
    parity = export_checked(result.model, split.test, path, onnx_metadata(contract))
    session = open_session(path, threads=config.threads)
    baselines = fit_baselines(split.train, config.model.quantiles)
    predictions = predict_all(session, split.test, baselines)
    scores = score_all(predictions, split.test, config.model.quantiles)
    meta = ModelMetadata(
        **contract.model_dump(),
        training_window=window_of(split.train),
        test_window=window_of(split.test),
        metrics=scores,
        parks=parks,
        code_version=code_version(),
        baselines=baselines.to_dict(),
        training={
            "best_epoch": result.best_epoch,
            "seconds": round(result.seconds, 1),
            "parity_max_abs_fraction": parity,
            "config": _without_none(asdict(config)),
        },
        reference=reference_distribution(split.train.features, window_of(split.train)),
    )
    return Candidate(path, meta, result, split.test, predictions, parity)


def register(candidate: Candidate, models: ModelStore, labels: dict[str, str] | None = None) -> str:
    """Store the candidate's graph and metadata as a new version (not promoted); returns its tag."""
    return models.save(candidate.path, candidate.metadata, {"feature_service": FEATURE_SERVICE_NAME} | (labels or {}))


# --- `pvcast train` ---------------------------------------------------------------------------------------


def build_split(
    store: FeatureStore,
    store_config: StoreConfig,
    config: TrainConfig,
    parks: list[str],
    start: pd.Timestamp,
    end: pd.Timestamp,
) -> Split:
    """The point-in-time data set of ``parks`` for issue times ``start`` .. ``end``, split by issue time."""
    logger.info(
        "building the training set: %d parks, issue times %s .. %s every %g h",
        len(parks),
        start,
        end,
        config.issue_every_hours,
    )
    data = build_dataset(store, store_config, parks, issue_times(start, end, config.issue_every_hours), config.spec)
    horizon_s = config.horizon_steps * config.step_seconds
    split = Split(*split_by_time(data, config.validation_days, config.test_days, horizon_s))
    logger.info("samples: train %d, validation %d, test %d", len(split.train), len(split.validation), len(split.test))
    return split


def train_and_register(
    store: FeatureStore, store_config: StoreConfig, config: TrainConfig, models: ModelStore, promote: bool
) -> TrainReport:
    """``pvcast train``: every registered park over all the data, stored, promoted if asked."""
    parks = [p.park_id for p in registered_parks(store_config)]
    split = build_split(store, store_config, config, parks, *data_window(store_config))
    with tempfile.TemporaryDirectory() as work:
        candidate = fit_candidate(split, config, parks, Path(work))
        tag = register(candidate, models)
    if promote:
        models.promote(tag)
    c = candidate
    return TrainReport(tag, promote, c.scores, c.result, c.test, c.predictions, c.parity)


def window_of(data: Dataset) -> dict[str, str]:
    """First and last issue time of a window (ISO 8601, UTC)."""
    return {
        "start": from_epoch_seconds(int(data.issued_at.min())).isoformat(),
        "end": from_epoch_seconds(int(data.issued_at.max())).isoformat(),
    }


def _without_none(value: dict[str, Any]) -> dict[str, Any]:
    """The configuration as model-store metadata (which takes no None: unset options are left out)."""
    return {k: _without_none(v) if isinstance(v, dict) else v for k, v in value.items() if v is not None}
