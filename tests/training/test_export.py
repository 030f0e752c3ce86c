"""ONNX export of the trained model (training/export.py) and the start-up contract check (pvcast/contract.py).

The real ``export_onnx`` and ``parity_check`` run on the model trained by the default configuration, into a
temporary folder; the resulting graph is then opened the way the service opens it.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
import torch
from conftest import run_models

from pvcast.contract import (
    INPUT_CAPACITY,
    INPUT_FEATURES,
    OUTPUT_QUANTILES,
    FeatureSpec,
    ModelContract,
    check_contract,
    open_session,
    run_session,
)
from pvcast.errors import FeatureContractError
from pvcast.pv.features import ELEVATION_CHANNEL, FEATURE_NAMES
from pvcast.schema import FEATURE_SERVICE_NAME
from training.config import ModelConfig
from training.export import PARITY_TOLERANCE, ExportParityError, export_onnx, parity_check
from training.model import HybridQuantileLSTM

pytestmark = [
    pytest.mark.integration,
]

EXPORT_METADATA = {"feature_service": FEATURE_SERVICE_NAME, "exported_by": "tests/training/test_export.py"}


@pytest.fixture(scope="module")
def daylight(trained: Any) -> tuple[np.ndarray, np.ndarray]:
    """Held-out samples with sunshine (so parity is judged on non-zero output), 16 of them, several parks."""
    test = trained.test
    sunny = np.flatnonzero((test.features[..., ELEVATION_CHANNEL] > 0).mean(axis=1) > 0.3)
    rows = sunny[np.linspace(0, len(sunny) - 1, 16).astype(int)]
    assert len(set(test.park_id[rows])) > 1
    return test.features[rows], test.capacity_ac_kw[rows]


@pytest.fixture(scope="module")
def exported(trained: Any, daylight: tuple[np.ndarray, np.ndarray], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The trained model exported by the real export_onnx into an empty folder."""
    features, capacity = daylight
    folder = tmp_path_factory.mktemp("export")
    return export_onnx(trained.result.model, features, capacity, folder / "model.onnx", EXPORT_METADATA)


def test_export_writes_one_self_contained_file(exported: Path) -> None:
    """Exactly one file appears (no ``.onnx.data`` beside it) and no initializer points at external data."""
    assert sorted(p.name for p in exported.parent.iterdir()) == ["model.onnx"]
    graph = onnx.load(str(exported), load_external_data=False)
    external = [t.name for t in graph.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    assert external == []
    assert len(graph.graph.initializer) > 0
    onnx.checker.check_model(graph)


def test_export_has_named_io_and_symbolic_batch_axis(exported: Path) -> None:
    """Inputs/outputs carry the contract's names and shapes; axis 0 is a symbol (str), not a frozen number."""
    session = open_session(exported)
    inputs = {i.name: i.shape for i in session.get_inputs()}
    outputs = {o.name: o.shape for o in session.get_outputs()}
    assert set(inputs) == {INPUT_FEATURES, INPUT_CAPACITY}
    assert set(outputs) == {OUTPUT_QUANTILES}
    assert isinstance(inputs[INPUT_FEATURES][0], str)
    assert isinstance(inputs[INPUT_CAPACITY][0], str)
    assert isinstance(outputs[OUTPUT_QUANTILES][0], str)
    assert inputs[INPUT_FEATURES][1:] == [96, len(FEATURE_NAMES)]
    assert inputs[INPUT_CAPACITY][1:] == [1]
    assert outputs[OUTPUT_QUANTILES][1:] == [96, 3]


@pytest.mark.parametrize("batch", [1, 5, 16])
def test_onnx_matches_torch_at_batch(
    trained: Any, exported: Path, daylight: tuple[np.ndarray, np.ndarray], batch: int
) -> None:
    """onnxruntime reproduces torch to <= 1e-4 of capacity at batch 1 and at larger batches (the example batch
    used for export cannot have frozen the batch size)."""
    features, capacity = daylight[0][:batch], daylight[1][:batch]
    with torch.no_grad():
        expected = trained.result.model(torch.from_numpy(features), torch.from_numpy(capacity)).numpy()
    got = run_session(open_session(exported), features, capacity)
    assert got.shape == expected.shape == (batch, 96, 3)
    assert expected.max() > 0.1 * capacity.min(), "precondition: parity judged on real (non-zero) output"
    assert np.max(np.abs(got - expected) / capacity[:, :, None]) <= PARITY_TOLERANCE


def test_parity_check_passes_and_reports_the_difference(
    trained: Any, exported: Path, daylight: tuple[np.ndarray, np.ndarray]
) -> None:
    """The real parity_check over batches 1 and 16 passes and returns a difference within the tolerance."""
    worst = parity_check(trained.result.model, exported, *daylight)
    assert 0 <= worst <= PARITY_TOLERANCE
    assert PARITY_TOLERANCE == 1e-4


def test_parity_check_refuses_a_model_changed_after_export(
    trained: Any, exported: Path, daylight: tuple[np.ndarray, np.ndarray]
) -> None:
    """Perturbing the torch weights after export (a stale graph) makes parity_check raise ExportParityError."""
    perturbed = copy.deepcopy(trained.result.model)
    with torch.no_grad():
        perturbed.head[-1].bias.add_(0.05)  # shifts every quantile by up to 5 % of capacity
    with pytest.raises(ExportParityError, match="differs from torch"):
        parity_check(perturbed, exported, *daylight)


def test_export_attaches_metadata_props(exported: Path) -> None:
    """The key/value metadata given to export_onnx is in the graph's metadata_props, verbatim."""
    props = {p.key: p.value for p in onnx.load(str(exported), load_external_data=False).metadata_props}
    assert props == props | EXPORT_METADATA


def test_stored_production_graph_carries_feature_service(trained: Any) -> None:
    """The model the pipeline stored (and the service loads) names its feature service inside the graph too."""
    loaded = run_models().load("production")
    props = {p.key: p.value for p in onnx.load(str(loaded.path), load_external_data=False).metadata_props}
    assert props.get("feature_service") == FEATURE_SERVICE_NAME


# --- check_contract ---------------------------------------------------------------------------------------


def _contract(session: Any, **overrides: Any) -> None:
    """check_contract of a model whose metadata has the code's contract (96 steps, 3 levels) but ``overrides``."""
    levels = overrides.pop("n_quantiles", 3)
    spec = FeatureSpec(horizon_steps=overrides.pop("horizon_steps", 96))
    contract = ModelContract.of(FEATURE_NAMES, [(i + 1) / (levels + 1) for i in range(levels)], spec)
    check_contract(session, contract.model_copy(update=overrides), FEATURE_NAMES)


def test_check_contract_accepts_the_exported_model(exported: Path) -> None:
    """The freshly exported graph with the code's feature names, service, horizon and 3 quantiles passes."""
    _contract(open_session(exported))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"feature_names": list(reversed(FEATURE_NAMES))}, "feature names/order"),
        ({"feature_names": list(FEATURE_NAMES[:-1])}, "feature names/order"),
        ({"feature_names": [*FEATURE_NAMES[:2][::-1], *FEATURE_NAMES[2:]]}, "feature names/order"),
        ({"feature_names": [*FEATURE_NAMES, "extra"]}, "feature names/order"),
        ({"horizon_steps": 48}, r"expected \[batch, 48, 25\]"),
        ({"horizon_steps": 192}, r"expected \[batch, 192, 25\]"),
        ({"n_quantiles": 5}, r"expected \[batch, 96, 5\]"),
        ({"feature_service": "pv_forecast_v0"}, "feature service"),
    ],
    ids=["reversed", "missing", "swapped", "extra", "horizon-48", "horizon-192", "quantiles", "service"],
)
def test_check_contract_refuses_mismatch(exported: Path, overrides: dict[str, Any], message: str) -> None:
    """Wrong feature names or order, wrong horizon, wrong quantile count or wrong feature service → refused."""
    with pytest.raises(FeatureContractError, match=message):
        _contract(open_session(exported), **overrides)


@pytest.fixture(scope="module")
def tiny_graphs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Small untrained graphs: one with a 48-step horizon, one whose batch axis is frozen to 3."""
    torch.manual_seed(0)
    model = HybridQuantileLSTM(len(FEATURE_NAMES), ModelConfig(hidden_size=4, num_layers=1)).eval()
    rng = np.random.default_rng(0)
    folder = tmp_path_factory.mktemp("tiny")
    x48 = rng.normal(size=(3, 48, len(FEATURE_NAMES))).astype(np.float32)
    cap = np.full((3, 1), 100.0, np.float32)
    short = export_onnx(model, x48, cap, folder / "h48" / "model.onnx", EXPORT_METADATA)
    frozen = folder / "frozen" / "model.onnx"
    frozen.parent.mkdir()
    x96 = rng.normal(size=(3, 96, len(FEATURE_NAMES))).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's own deprecation chatter, as in export_onnx
        torch.onnx.export(
            model, (torch.from_numpy(x96), torch.from_numpy(cap)), str(frozen), dynamo=True, external_data=False,
            input_names=[INPUT_FEATURES, INPUT_CAPACITY], output_names=[OUTPUT_QUANTILES], verbose=False,
        )  # fmt: skip
    return {"h48": short, "frozen": frozen}


def test_check_contract_refuses_a_graph_of_another_horizon(tiny_graphs: dict[str, Path]) -> None:
    """A graph built for 48 steps is refused by a 96-step contract (and accepted by a 48-step one)."""
    session = open_session(tiny_graphs["h48"])
    with pytest.raises(FeatureContractError, match=r"has shape \['batch', 48, 25\], expected \[batch, 96, 25\]"):
        _contract(session)
    _contract(session, horizon_steps=48)


def test_check_contract_refuses_a_frozen_batch_axis(tiny_graphs: dict[str, Path]) -> None:
    """A graph whose batch size was frozen at export (no dynamic axis) is refused."""
    session = open_session(tiny_graphs["frozen"])
    assert session.get_inputs()[0].shape[0] == 3, "precondition: the batch axis really is frozen"
    with pytest.raises(FeatureContractError, match="batch axis is not symbolic"):
        _contract(session)
