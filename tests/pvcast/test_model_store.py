"""The model store (pvcast/model_store.py): saving, resolving, the ``production`` pointer and promotion.

Works in the test session's throwaway BentoML store with small untrained graphs exported by the real
``export_onnx``. Every test leaves the ``production`` pointer as it found it (the trained model, if the
session has built it), so the rest of the suite is unaffected.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import run_models

from pvcast.contract import ModelMetadata
from pvcast.errors import FeatureContractError, ModelNotFoundError
from pvcast.model_store import MODEL_NAME, PRODUCTION, ModelStore
from pvcast.pv.features import FEATURE_NAMES
from pvcast.schema import FEATURE_SERVICE_NAME
from training.config import ModelConfig
from training.export import export_onnx
from training.model import HybridQuantileLSTM

model_store = run_models()


def pointer_file() -> Path:
    """Where the documented layout puts the pointer: beside BentoML's ``latest`` in the model's folder."""
    return model_store.home / "models" / MODEL_NAME / PRODUCTION


@pytest.fixture(autouse=True)
def keep_production_pointer() -> Iterator[None]:
    """Restore the production pointer (or its absence) after each test."""
    path = pointer_file()
    before = path.read_bytes() if path.exists() else None
    yield
    if before is None:
        path.unlink(missing_ok=True)
    else:
        path.write_bytes(before)


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small untrained hybrid (96 steps, 3 quantiles) exported the real way."""
    torch.manual_seed(0)
    model = HybridQuantileLSTM(len(FEATURE_NAMES), ModelConfig(hidden_size=4, num_layers=1)).eval()
    x = np.random.default_rng(0).normal(size=(3, 96, len(FEATURE_NAMES))).astype(np.float32)
    cap = np.full((3, 1), 100.0, np.float32)
    return export_onnx(
        model, x, cap, tmp_path_factory.mktemp("tiny") / "model.onnx", {"feature_service": FEATURE_SERVICE_NAME}
    )


def metadata(**overrides: object) -> ModelMetadata:
    values: dict[str, object] = {
        "feature_service": FEATURE_SERVICE_NAME,
        "feature_names": list(FEATURE_NAMES),
        "quantiles": [0.1, 0.5, 0.9],
        "step_seconds": 900,
        "horizon_steps": 96,
        "inputs": {},
        "outputs": {},
        "training_window": {"start": "2026-01-01T00:00:00+00:00", "end": "2026-06-01T00:00:00+00:00"},
        "test_window": {"start": "2026-06-02T00:00:00+00:00", "end": "2026-07-01T00:00:00+00:00"},
        "metrics": {"model": {"pinball_mean_pct": 1.0}},
        "parks": ["p1"],
        "code_version": "test",
    }
    return ModelMetadata(**(values | overrides))


@pytest.fixture(scope="module")
def good_tags(tiny_onnx: Path) -> tuple[str, str]:
    """Two valid stored versions."""
    return model_store.save(tiny_onnx, metadata()), model_store.save(tiny_onnx, metadata(code_version="test-2"))


@pytest.fixture(scope="module")
def bad_tag(tiny_onnx: Path) -> str:
    """A stored version whose metadata disagrees with the code's feature contract (names reversed)."""
    return model_store.save(tiny_onnx, metadata(feature_names=list(reversed(FEATURE_NAMES))))


def version(tag: str) -> str:
    return tag.split(":", 1)[1]


# --- save / resolve -------------------------------------------------------------------------------------


def test_save_model_stores_graph_and_metadata_with_digest(tiny_onnx: Path, good_tags: tuple[str, str]) -> None:
    """A saved version holds the exact ONNX bytes and its metadata, with onnx_sha256 filled in."""
    tag = good_tags[0]
    assert tag.startswith(f"{MODEL_NAME}:")
    meta = model_store.metadata_of(tag)
    assert meta.onnx_sha256 == hashlib.sha256(tiny_onnx.read_bytes()).hexdigest()
    assert meta.feature_names == list(FEATURE_NAMES)
    loaded = model_store.load(tag)
    assert loaded.path.read_bytes() == tiny_onnx.read_bytes()
    assert loaded.version == version(tag)


def test_resolve_accepts_version_tag_and_latest(tiny_onnx: Path, good_tags: tuple[str, str]) -> None:
    """A bare version and a full tag resolve to the full tag; 'latest' is the most recently saved version."""
    first, _ = good_tags
    assert model_store.resolve(version(first)) == first
    assert model_store.resolve(first) == first
    newest = model_store.save(tiny_onnx, metadata(code_version="latest-check"))
    assert model_store.resolve("latest") == newest != first


@pytest.mark.parametrize("reference", ["nosuchversion", f"{MODEL_NAME}:nosuchversion", "other_model:abc"])
def test_resolve_unknown_version_raises_model_not_found(reference: str) -> None:
    """Unknown versions, tags and model names raise ModelNotFoundError naming the tag (a PvcastError: the CLI
    turns it into one line and exit code 2)."""
    with pytest.raises(ModelNotFoundError, match="is not in the store"):
        model_store.resolve(reference)


@pytest.mark.parametrize("reference", ["bad name!", ""])
def test_resolve_malformed_reference_raises_model_not_found(reference: str) -> None:
    """A reference that is not even a valid tag is a 'model not found' too, not an internal BentoML error
    (otherwise `pvcast promote --to 'bad name!'` ends in a traceback)."""
    with pytest.raises(ModelNotFoundError):
        model_store.resolve(reference)


def test_resolve_production_without_pointer() -> None:
    """No pointer yet → ModelNotFoundError telling how to make one."""
    pointer_file().unlink(missing_ok=True)
    assert model_store.production_version() is None
    with pytest.raises(ModelNotFoundError, match="no production model yet"):
        model_store.resolve("production")


# --- promote --------------------------------------------------------------------------------------------


def test_promote_moves_the_pointer(good_tags: tuple[str, str]) -> None:
    """promote writes the version into the pointer; 'production' then resolves, loads and lists as it."""
    first, second = good_tags
    assert model_store.promote(version(first)) == first
    assert pointer_file().read_text() == version(first)
    assert model_store.production_version() == version(first)
    assert model_store.resolve("production") == first
    assert model_store.promote(second) == second
    assert model_store.load("production").tag == second
    flagged = {row["tag"] for row in model_store.list_models() if row["production"]}
    assert flagged == {second}


def test_promote_refuses_a_model_failing_the_contract_and_keeps_the_pointer(
    good_tags: tuple[str, str], bad_tag: str
) -> None:
    """A stored model whose feature names disagree with the code is refused with FeatureContractError and the
    pointer still names the previous production model, byte for byte."""
    model_store.promote(good_tags[0])
    before = pointer_file().read_bytes()
    with pytest.raises(FeatureContractError, match="feature names/order"):
        model_store.promote(bad_tag)
    assert pointer_file().read_bytes() == before
    assert model_store.resolve("production") == good_tags[0]


def test_promote_refuses_unknown_version_and_keeps_the_pointer(good_tags: tuple[str, str]) -> None:
    """Promoting a version that does not exist changes nothing."""
    model_store.promote(good_tags[1])
    with pytest.raises(ModelNotFoundError):
        model_store.promote("nosuchversion")
    assert model_store.production_version() == version(good_tags[1])


def test_promote_is_atomic_when_the_final_rename_fails(
    good_tags: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pointer is replaced by a rename: if the rename fails, the old pointer is intact (never truncated
    or half-written)."""
    model_store.promote(good_tags[0])
    directory = pointer_file().parent
    files_before = set(directory.iterdir())

    def failing_replace(self: Path, target: object) -> Path:
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(Path, "replace", failing_replace)
    with pytest.raises(OSError, match="simulated"):
        model_store.promote(good_tags[1])
    monkeypatch.undo()
    assert model_store.production_version() == version(good_tags[0])
    for stray in set(directory.iterdir()) - files_before:  # the unrenamed temporary file, if any
        stray.unlink()


def test_concurrent_readers_never_see_a_partial_pointer(good_tags: tuple[str, str]) -> None:
    """While production flips between two versions 20 times, a reader polling the pointer only ever sees one
    of the two complete versions (never a missing file, an empty or a partial one); no temporary file stays."""
    first, second = (version(t) for t in good_tags)
    model_store.promote(first)
    directory = pointer_file().parent
    files_before = set(directory.iterdir())
    seen: list[str | None] = []
    done = threading.Event()

    def reader() -> None:
        while not done.is_set():
            seen.append(model_store.production_version())

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(20):
            model_store.promote(second if i % 2 == 0 else first)
    finally:
        done.set()
        thread.join()
    assert len(seen) > 20
    assert set(seen) <= {first, second}, {s for s in seen if s not in (first, second)}
    assert model_store.production_version() == first
    assert set(directory.iterdir()) == files_before


# --- metadata and location ----------------------------------------------------------------------------------


def test_models_stored_before_the_telemetry_flag_keep_using_telemetry(tiny_onnx: Path) -> None:
    """A model whose metadata predates ``use_telemetry`` (the key absent from model.yaml) is read as a model
    trained with telemetry, and its FeatureSpec says so; a model stored with the flag off keeps it off."""
    old = metadata().model_dump()
    del old["use_telemetry"]
    assert ModelMetadata.model_validate(old).spec.use_telemetry is True
    blanked = model_store.save(tiny_onnx, metadata(use_telemetry=False))
    assert model_store.metadata_of(blanked).spec.use_telemetry is False
    assert model_store.metadata_of(blanked).spec.horizon_steps == 96


def test_a_store_elsewhere_than_bentomls_home_is_refused(tmp_path: Path, good_tags: tuple[str, str]) -> None:
    """BentoML reads BENTOML_HOME once; a ModelStore built on another folder would move a pointer no server
    reads. It is refused when it meets a model, naming both folders."""
    elsewhere = ModelStore(tmp_path / "other-home")
    with pytest.raises(ModelNotFoundError, match="set BENTOML_HOME"):
        elsewhere.resolve(good_tags[0])
    assert not (tmp_path / "other-home").exists()
