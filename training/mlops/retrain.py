"""Retraining with champion/challenger promotion, tracked in MLflow.

``pvcast retrain``:

1. builds the data set of the latest ``window_days`` (point in time, as ``pvcast train``) and splits it into
   training, validation and a held-out RECENT window (the last ``test_days``);
2. trains a challenger, exports and parity-checks its ONNX graph and stores it (NOT promoted), carrying the
   MLflow run id (label ``mlflow_run_id``) and the reference feature distribution;
3. scores the challenger and the champion (the production model) — both through onnxruntime, exactly as
   served — on the SAME held-out window, overall and per park;
4. promotes the challenger only if its mean pinball loss is lower than the champion's by at least
   ``min_improvement_pct`` (relative) AND no park's pinball loss is more than ``max_park_regression_pct``
   worse than the champion's on that park; without a usable champion the challenger is promoted;
5. records the decision, its reason and both scores in the MLflow run (with parameters, the data window and
   its content hash, the feature service version, and the fan chart as an artifact).
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from feature_repo.store import open_store, registered_parks
from pvcast.contract import run_in_batches
from pvcast.errors import PvcastError
from pvcast.model_store import PRODUCTION, ModelStore
from pvcast.schema import FEATURE_SERVICE_NAME
from pvcast.settings import StoreConfig
from training.config import TrainConfig
from training.dataset import Dataset, build_dataset
from training.evaluate import plot_fan, sun_up
from training.metrics import score
from training.mlops.tracking import Tracker
from training.pipeline import (
    Candidate,
    Split,
    build_split,
    code_version,
    data_window,
    fit_candidate,
    register,
    window_of,
)

logger = logging.getLogger(__name__)

METRIC = "pinball_mean_pct"


@dataclass(frozen=True)
class PromotionPolicy:
    min_improvement_pct: float = 2.0  # relative improvement of the mean pinball loss needed to promote
    max_park_regression_pct: float = 10.0  # no park may get worse than this (relative), whatever the mean


@dataclass
class Decision:
    challenger: str
    champion: str | None
    promoted: bool
    reason: str
    window: dict[str, str]
    scores: dict[str, dict[str, Any]] = field(default_factory=dict)  # role → {"overall": {...}, "parks": {...}}
    mlflow_run_id: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        lines = [
            f"challenger {self.challenger}: {'PROMOTED' if self.promoted else 'refused'} — {self.reason}",
            f"held-out window {self.window.get('start')} .. {self.window.get('end')} (MLflow run {self.mlflow_run_id})",
            f"{'':<28}{'challenger':>14}{'champion':>14}",
        ]
        roles = [r for r in ("challenger", "champion") if r in self.scores]
        lines.append(f"{METRIC:<28}" + "".join(f"{self.scores[r]['overall'][METRIC]:>14.3f}" for r in roles))
        for park in self.scores["challenger"]["parks"]:
            values = "".join(f"{self.scores[r]['parks'].get(park, {}).get(METRIC, float('nan')):>14.3f}" for r in roles)
            lines.append(f"  {park:<26}{values}")
        return "\n".join(lines)


def decide(challenger: dict[str, Any], champion: dict[str, Any] | None, policy: PromotionPolicy) -> tuple[bool, str]:
    """The promotion rule on {"overall": scores, "parks": {park: scores}} of both models."""
    if champion is None:
        return True, "no usable production model: the challenger becomes the first"
    new, old = challenger["overall"][METRIC], champion["overall"][METRIC]
    improvement = 100.0 * (old - new) / old
    if improvement < policy.min_improvement_pct:
        return (
            False,
            f"{METRIC} {new:.3f} vs {old:.3f}: {improvement:+.1f} % < the required {policy.min_improvement_pct:g} %",
        )
    for park, scores in challenger["parks"].items():
        before = champion["parks"].get(park, {}).get(METRIC)
        if before:
            regression = 100.0 * (scores[METRIC] - before) / before
            if regression > policy.max_park_regression_pct:
                return False, f"park {park} gets {regression:.1f} % worse (> {policy.max_park_regression_pct:g} %)"
    return True, f"{METRIC} {new:.3f} vs {old:.3f}: {improvement:+.1f} % better, no park worse than allowed"


def content_hash(*parts: Dataset) -> str:
    """SHA-256 of the data a model was trained and judged on (features, targets, keys)."""
    digest = hashlib.sha256()
    for data in parts:
        for array in (data.park_id.astype(str), data.issued_at, data.features, data.target_kw):
            digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def scores_by_park(pred: np.ndarray, data: Dataset, quantiles: list[float]) -> dict[str, Any]:
    day = sun_up(data)
    overall = score(pred, data.target_kw, data.capacity_ac_kw, day, quantiles)
    parks = {}
    for park in sorted(set(data.park_id)):
        mask = data.park_id == park
        parks[str(park)] = score(pred[mask], data.target_kw[mask], data.capacity_ac_kw[mask], day[mask], quantiles)
    return {"overall": overall, "parks": parks}


def retrain(
    config: StoreConfig,
    train_config: TrainConfig,
    models: ModelStore,
    window_days: int,
    policy: PromotionPolicy,
    promote: bool = True,
    tracking_uri: str | None = None,
    out: Path = Path(".pvcast/reports"),
) -> Decision:
    store = open_store(config)
    parks = [p.park_id for p in registered_parks(config)]
    first, last = data_window(config)
    split = build_split(store, config, train_config, parks, max(first, last - pd.Timedelta(days=window_days)), last)
    tracker = Tracker(tracking_uri, run_name="retrain", tags={"pvcast.job": "retrain"})
    try:
        decision = _retrain(config, train_config, models, policy, promote, tracker, split, parks, out)
    except BaseException:
        tracker.end("FAILED")
        raise
    tracker.end()
    return decision


def _retrain(
    config: StoreConfig,
    train_config: TrainConfig,
    models: ModelStore,
    policy: PromotionPolicy,
    promote: bool,
    tracker: Tracker,
    split: Split,
    parks: list[str],
    out: Path,
) -> Decision:
    tracker.params(_params(train_config, policy, split, config))
    quantiles = list(train_config.model.quantiles)
    with tempfile.TemporaryDirectory() as tmp:
        candidate = _tracked(fit_candidate(split, train_config, parks, Path(tmp)), tracker.run_id)
        tag = register(candidate, models, {"mlflow_run_id": tracker.run_id})
    challenger = scores_by_park(candidate.predictions["model"], split.test, quantiles)
    champion_tag, champion = _champion_scores(config, train_config, models, split.test)
    promoted, reason = decide(challenger, champion, policy)
    decision = Decision(
        tag,
        champion_tag,
        promoted and promote,
        reason if promote else f"{reason} (--no-promote)",
        window_of(split.test),
    )
    decision.scores = {"challenger": challenger} | ({"champion": champion} if champion else {})
    decision.mlflow_run_id = tracker.run_id
    if decision.promoted:
        models.promote(tag)
    _record(tracker, decision, split.test, candidate.predictions["model"], quantiles, out)
    return decision


def _tracked(candidate: Candidate, run_id: str) -> Candidate:
    """The candidate with its MLflow run in the metadata's training record."""
    meta = candidate.metadata
    return replace(candidate, metadata=meta.model_copy(update={"training": meta.training | {"mlflow_run_id": run_id}}))


def _champion_scores(
    config: StoreConfig, train_config: TrainConfig, models: ModelStore, test: Dataset
) -> tuple[str | None, dict[str, Any] | None]:
    """The production model's scores on the held-out window (its own spec), or (None, None)."""
    if models.production_version() is None:
        return None, None
    try:
        champion = models.load(PRODUCTION)
    except PvcastError as exc:
        logger.warning("the production model cannot be scored (%s): judged as absent", exc)
        return None, None
    meta = champion.metadata
    data = test
    if meta.spec != train_config.spec:
        times = pd.DatetimeIndex(pd.to_datetime(np.unique(test.issued_at), unit="s", utc=True))
        data = build_dataset(open_store(config), config, sorted(set(test.park_id)), times, meta.spec)
    pred = run_in_batches(champion.session, data.features, data.capacity_ac_kw)
    return champion.tag, scores_by_park(pred, data, meta.quantiles)


def _params(config: TrainConfig, policy: PromotionPolicy, split: Split, store: StoreConfig) -> dict[str, Any]:
    train, validation, test = split.train, split.validation, split.test
    flat = {f"train.{k}": v for k, v in asdict(config).items() if k != "model"}
    flat |= {f"model.{k}": v for k, v in asdict(config.model).items()}
    flat |= {f"policy.{k}": v for k, v in asdict(policy).items()}
    for name, data in (("train", train), ("validation", validation), ("test", test)):
        flat |= {f"data.{name}.{k}": v for k, v in window_of(data).items()} | {f"data.{name}.samples": len(data)}
    flat |= {
        "data.sha256": content_hash(train, validation, test),
        "data.store": str(store.repo_path),
        "feature_service": FEATURE_SERVICE_NAME,
        "code_version": code_version(),
    }
    return flat


def _record(
    tracker: Tracker, decision: Decision, test: Dataset, pred: np.ndarray, quantiles: list[float], out: Path
) -> None:
    tracker.tags(
        {
            "pvcast.model": decision.challenger,
            "pvcast.champion": decision.champion or "",
            "pvcast.decision": "promoted" if decision.promoted else "refused",
            "pvcast.reason": decision.reason,
        }
    )
    for role, scores in decision.scores.items():
        tracker.metrics(scores["overall"], prefix=f"{role}.")
        for park, values in scores["parks"].items():
            tracker.metrics({METRIC: values[METRIC]}, prefix=f"{role}.park.{park}.")
    out.mkdir(parents=True, exist_ok=True)
    path = out / "decision.json"
    path.write_text(json.dumps(decision.to_dict(), indent=2, default=float))
    tracker.artifact(path)
    park = str(sorted(set(test.park_id))[0])
    try:
        tracker.artifact(plot_fan(test, pred, quantiles, park, out / f"fan_{park}.png"))
    except ValueError as exc:
        logger.warning("no fan chart: %s", exc)
