"""pvcast models in BentoML's model store: saving, the ``production`` pointer, resolving, loading.

A model is a folder in the store holding ``model.onnx`` (the complete forecast graph) and its metadata in
BentoML's ``model.yaml`` (feature contract, quantiles, windows, metrics, code version). "production" is a
pointer file beside BentoML's own ``latest`` file; promotion moves it, nothing is copied. No torch here.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import bentoml
import onnxruntime as ort
from bentoml.exceptions import BentoMLException, NotFound
from pydantic import BaseModel, ConfigDict

from feature_repo.errors import PvcastError
from service.inference import check_contract, open_session

logger = logging.getLogger(__name__)

MODEL_NAME = "pvcast_forecaster"
ONNX_FILE = "model.onnx"
PRODUCTION = "production"


class ModelNotFoundError(PvcastError, LookupError):
    pass


class ModelMetadata(BaseModel):
    """What travels with every model and is checked before it serves."""

    model_config = ConfigDict(frozen=True, extra="allow")

    feature_service: str
    feature_names: list[str]
    quantiles: list[float]
    step_seconds: int
    horizon_steps: int
    inputs: dict[str, str]
    outputs: dict[str, str]
    training_window: dict[str, str]
    test_window: dict[str, str]
    metrics: dict[str, dict[str, float]]
    parks: list[str]
    code_version: str
    baselines: dict[str, Any] = {}
    training: dict[str, Any] = {}
    onnx_sha256: str = ""
    reference: dict[str, Any] = {}  # feature distribution of the training window, for drift monitoring


@dataclass(frozen=True)
class LoadedModel:
    tag: str
    version: str
    metadata: ModelMetadata
    session: ort.InferenceSession
    path: Path
    created_at: datetime  # when the model was saved (= trained), UTC


def save_model(onnx_path: Path, metadata: ModelMetadata, labels: dict[str, str] | None = None) -> str:
    """Store ``onnx_path`` with its metadata as a new version; returns the tag."""
    digest = hashlib.sha256(onnx_path.read_bytes()).hexdigest()
    meta = metadata.model_copy(update={"onnx_sha256": digest})
    with bentoml.models.create(
        MODEL_NAME, module="pvcast.onnx", labels=labels or {}, metadata=meta.model_dump()
    ) as ref:
        Path(ref.path, ONNX_FILE).write_bytes(onnx_path.read_bytes())
    logger.info("saved model %s", ref.tag)
    return str(ref.tag)


def _model_dir() -> Path:
    home = Path(os.environ.get("BENTOML_HOME", Path.home() / "bentoml"))
    return home / "models" / MODEL_NAME


def production_version() -> str | None:
    pointer = _model_dir() / PRODUCTION
    return pointer.read_text().strip() if pointer.exists() else None


def resolve(reference: str) -> str:
    """``production``, ``latest``, a version or a full tag → a full tag that exists."""
    if reference == PRODUCTION:
        version = production_version()
        if version is None:
            raise ModelNotFoundError("no production model yet: run `pvcast train --promote` (or `pvcast demo`)")
        reference = version
    tag = reference if ":" in reference else f"{MODEL_NAME}:{reference}"
    try:
        return str(bentoml.models.get(tag).tag)
    except NotFound:
        raise ModelNotFoundError(f"model {tag} is not in the store at {_model_dir().parent.parent}") from None
    except BentoMLException as exc:  # malformed name or version
        raise ModelNotFoundError(f"{reference!r} is not a model reference: {exc}") from None


def promote(reference: str) -> str:
    """Point ``production`` at ``reference`` (atomically); returns the tag now in production."""
    tag = resolve(reference)
    load(tag)  # refuse to promote a model that would not pass the service's start-up checks
    directory = _model_dir()
    with tempfile.NamedTemporaryFile("w", dir=directory, delete=False) as tmp:
        tmp.write(tag.split(":", 1)[1])
    Path(tmp.name).replace(directory / PRODUCTION)
    logger.info("production -> %s", tag)
    return tag


def metadata_of(reference: str) -> ModelMetadata:
    return ModelMetadata.model_validate(bentoml.models.get(resolve(reference)).info.metadata)


def load(reference: str, threads: int = 1) -> LoadedModel:
    """Open a model's onnxruntime session and check it against the code's feature contract."""
    tag = resolve(reference)
    model = bentoml.models.get(tag)
    meta = ModelMetadata.model_validate(model.info.metadata)
    path = Path(model.path) / ONNX_FILE
    session = open_session(path, threads)
    check_contract(session, meta.feature_names, meta.feature_service, meta.horizon_steps, len(meta.quantiles))
    return LoadedModel(
        tag=tag,
        version=str(model.tag.version),
        metadata=meta,
        session=session,
        path=path,
        created_at=model.info.creation_time,
    )


def list_models() -> list[dict[str, Any]]:
    """Every stored version, newest first, with its headline metric and whether it is in production."""
    production = production_version()
    rows = []
    for model in sorted(bentoml.models.list(MODEL_NAME), key=lambda m: m.info.creation_time, reverse=True):
        meta: dict[str, Any] = dict(model.info.metadata)
        metrics = meta.get("metrics", {}).get("model", {})
        rows.append({
            "tag": str(model.tag),
            "created_at": model.info.creation_time.isoformat(),
            "production": model.tag.version == production,
            "pinball_mean_pct": metrics.get("pinball_mean_pct"),
            "quantiles": meta.get("quantiles"),
        })  # fmt: skip
    return rows
