"""pvcast models in BentoML's model store: saving, the ``production`` pointer, resolving, loading.

A model is a folder in the store holding ``model.onnx`` (the complete forecast graph) and its metadata in
BentoML's ``model.yaml`` (feature contract, quantiles, windows, metrics, code version). "production" is a
pointer file beside BentoML's own ``latest`` file; promotion moves it, nothing is copied. No torch here.

BentoML locates its store from ``BENTOML_HOME`` (read once, when bentoml is imported); the entry points build
:class:`ModelStore` from the same variable (``PvcastSettings.bentoml_home``). A store whose folder is not the
one BentoML uses is refused at its first model, rather than writing pointers where no model lives.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import bentoml
import onnxruntime as ort
from bentoml.exceptions import BentoMLException, NotFound

from pvcast.contract import ModelMetadata, check_contract, open_session
from pvcast.errors import ModelNotFoundError
from pvcast.pv.features import FEATURE_NAMES

logger = logging.getLogger(__name__)

MODEL_NAME: Final = "pvcast_forecaster"
ONNX_FILE: Final = "model.onnx"
PRODUCTION: Final = "production"


@dataclass(frozen=True)
class LoadedModel:
    tag: str
    version: str
    metadata: ModelMetadata
    session: ort.InferenceSession
    path: Path
    created_at: datetime  # when the model was saved (= trained), UTC


@dataclass(frozen=True)
class ModelStore:
    """The pvcast models under BentoML home ``home`` (``<home>/models/pvcast_forecaster/``)."""

    home: Path

    @property
    def directory(self) -> Path:
        return self.home / "models" / MODEL_NAME

    def save(self, onnx_path: Path, metadata: ModelMetadata, labels: dict[str, str] | None = None) -> str:
        """Store ``onnx_path`` with its metadata as a new version; returns the tag."""
        digest = hashlib.sha256(onnx_path.read_bytes()).hexdigest()
        meta = metadata.model_copy(update={"onnx_sha256": digest})
        with bentoml.models.create(
            MODEL_NAME, module="pvcast.onnx", labels=labels or {}, metadata=meta.model_dump()
        ) as ref:
            Path(ref.path, ONNX_FILE).write_bytes(onnx_path.read_bytes())
        self._check_location(Path(bentoml.models.get(ref.tag).path))  # ref.path was the staging folder
        logger.info("saved model %s", ref.tag)
        return str(ref.tag)

    def production_version(self) -> str | None:
        pointer = self.directory / PRODUCTION
        return pointer.read_text().strip() if pointer.exists() else None

    def resolve(self, reference: str) -> str:
        """``production``, ``latest``, a version or a full tag → a full tag that exists."""
        if reference == PRODUCTION:
            version = self.production_version()
            if version is None:
                raise ModelNotFoundError("no production model yet: run `pvcast train --promote` (or `pvcast demo`)")
            reference = version
        tag = reference if ":" in reference else f"{MODEL_NAME}:{reference}"
        try:
            model = bentoml.models.get(tag)
        except NotFound:
            raise ModelNotFoundError(f"model {tag} is not in the store at {self.home}") from None
        except BentoMLException as exc:  # malformed name or version
            raise ModelNotFoundError(f"{reference!r} is not a model reference: {exc}") from None
        self._check_location(Path(model.path))
        return str(model.tag)

    def promote(self, reference: str) -> str:
        """Point ``production`` at ``reference`` (atomically); returns the tag now in production."""
        tag = self.resolve(reference)
        self.load(tag)  # refuse to promote a model that would not pass the service's start-up checks
        with tempfile.NamedTemporaryFile("w", dir=self.directory, delete=False) as tmp:
            tmp.write(tag.split(":", 1)[1])
        Path(tmp.name).replace(self.directory / PRODUCTION)
        logger.info("production -> %s", tag)
        return tag

    def metadata_of(self, reference: str) -> ModelMetadata:
        return ModelMetadata.model_validate(bentoml.models.get(self.resolve(reference)).info.metadata)

    def load(self, reference: str, threads: int = 1) -> LoadedModel:
        """Open a model's onnxruntime session and check it against the code's feature contract."""
        tag = self.resolve(reference)
        model = bentoml.models.get(tag)
        meta = ModelMetadata.model_validate(model.info.metadata)
        path = Path(model.path) / ONNX_FILE
        session = open_session(path, threads)
        check_contract(session, meta, FEATURE_NAMES)
        return LoadedModel(
            tag=tag,
            version=str(model.tag.version),
            metadata=meta,
            session=session,
            path=path,
            created_at=model.info.creation_time,
        )

    def list_models(self) -> list[dict[str, Any]]:
        """Every stored version, newest first, with its headline metric and whether it is in production."""
        production = self.production_version()
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

    def _check_location(self, model_path: Path) -> None:
        """BentoML keeps this model where this store's pointer lives, or the two disagree on BENTOML_HOME."""
        if model_path.resolve().parent != self.directory.resolve():
            raise ModelNotFoundError(
                f"BentoML keeps models in {model_path.parent}, not in {self.directory}: set BENTOML_HOME to "
                f"{self.home} before pvcast starts (BentoML reads it once, at import)"
            )
