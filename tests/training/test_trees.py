"""The shared quantile trees (training/trees.py) and their ONNX conversion (training/onnx_trees.py), on a tensor
of made-up channels (the module is generic over the asset kind): the design matrix by hand, float32-exact
thresholds that change no prediction, and the converted graph equal to LightGBM within 1e-5 at batch 1 and n."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from pvcast.contract import INPUT_CAPACITY, INPUT_FEATURES, open_session
from training.onnx_trees import TREES_OUTPUT, trees_graph
from training.trees import (
    LEVELS_9,
    QuantileTrees,
    TensorDesign,
    TreeSettings,
    fitted_levels,
    float32_thresholds,
    interpolation_matrix,
    shift_steps,
)

NAMES = ("irradiance", "cloud", "temperature", "elevation", "constant")
LEVELS_99 = tuple(round(i / 100, 2) for i in range(1, 100))
TOLERANCE = 1e-5
"""The tree converters' bar: max |ONNX − LightGBM| as a fraction of capacity."""


def tensor(n: int = 120, steps: int = 24, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random channels with a daily 'elevation', three capacities, a noisy target that follows 'irradiance'."""
    rng = np.random.default_rng(seed)
    features = rng.uniform(0, 1, (n, steps, len(NAMES))).astype(np.float32)
    hour = np.arange(steps) / steps * 2 * np.pi
    elevation = np.sin(hour - np.pi / 2)[None, :] * 0.6 + rng.normal(0, 0.05, (n, 1))
    features[..., 3] = elevation.astype(np.float32)
    features[..., 4] = 0.5
    capacity = rng.choice([1560.0, 4940.0, 4000.0], (n, 1)).astype(np.float32)
    target = np.clip(features[..., 0] * (elevation > 0) * rng.uniform(0.5, 1.1, (n, steps)), 0, 1)
    target[rng.random(target.shape) < 0.02] = np.nan  # missing measurements are never fitted
    return features, capacity, target.astype(np.float32)


def design(mean_mask: str | None = "elevation") -> TensorDesign:
    return TensorDesign(NAMES, channels=NAMES, context=("irradiance", "cloud"), offsets=(-2, -1, 1, 2),
                        mean_mask=mean_mask)  # fmt: skip


def fitted(levels: tuple[float, ...], mean_mask: str | None = "elevation") -> tuple[QuantileTrees, tuple]:
    features, capacity, target = tensor()
    settings = TreeSettings(levels=fitted_levels(levels), n_estimators=40, max_rows=2000)
    trees = QuantileTrees(design(mean_mask), settings).fit(features, capacity, target, features[..., 3] > -0.1)
    return trees, (features, capacity)


def test_design_matrix_columns_by_hand() -> None:
    features, capacity, _ = tensor(n=2, steps=6)
    d = design()
    x = d.matrix(features, capacity).reshape(2, 6, -1)
    assert x.shape[-1] == d.n_columns == 5 + 2 * 4 + 2 + 1
    np.testing.assert_array_equal(x[..., :5], features)
    np.testing.assert_array_equal(x[1, :, 5], features[1, [0, 0, 0, 1, 2, 3], 0])  # irradiance 2 steps earlier
    np.testing.assert_array_equal(x[1, :, 12], features[1, [2, 3, 4, 5, 5, 5], 1])  # cloud 2 steps later
    day = features[0, :, 3] > 0
    assert x[0, 3, 13] == np.float32(features[0, day, 0].astype(np.float64).mean())  # daylight mean, irradiance
    assert (x[0, :, -1] == capacity[0, 0]).all()
    np.testing.assert_array_equal(shift_steps(features, 100)[:, 0], features[:, -1])


def test_fitted_levels_and_interpolation() -> None:
    assert fitted_levels((0.1, 0.5, 0.9)) == (0.1, 0.5, 0.9)
    assert fitted_levels(LEVELS_99) == LEVELS_9
    values = np.array([[1.0, 2.0, 4.0]])
    out = values @ interpolation_matrix((0.1, 0.5, 0.9), LEVELS_99)
    np.testing.assert_allclose(out[0], np.interp(LEVELS_99, (0.1, 0.5, 0.9), values[0]))
    assert (interpolation_matrix(LEVELS_9, LEVELS_99) >= 0).all()


def test_unknown_channel_is_refused() -> None:
    with pytest.raises(ValueError, match="not in the tensor"):
        TensorDesign(NAMES, channels=("irradiance", "wind"))


def test_fitting_needs_a_row() -> None:
    features, capacity, target = tensor(n=4)
    with pytest.raises(ValueError, match="no training row"):
        QuantileTrees(design(), TreeSettings(levels=(0.5,))).fit(features, capacity, target, target > 5)


def test_float32_thresholds_change_no_prediction() -> None:
    """Every threshold becomes a float32 value and every prediction on float32 inputs stays bit-identical."""
    import lightgbm as lgb

    features, capacity, target = tensor()
    x = design().matrix(features, capacity)
    keep = np.isfinite(target.reshape(-1))
    params = TreeSettings().params(0.5) | {"colsample_bytree": 1.0}
    original = lgb.train(params, lgb.Dataset(x[keep], target.reshape(-1)[keep]), num_boost_round=30)
    exact = float32_thresholds(original)
    thresholds = [float(v) for line in exact.model_to_string().splitlines() if line.startswith("threshold=")
                  for v in line.removeprefix("threshold=").split()]  # fmt: skip
    assert thresholds and all(float(np.float32(t)) == t for t in thresholds)
    before = [float(v) for line in original.model_to_string().splitlines() if line.startswith("threshold=")
              for v in line.removeprefix("threshold=").split()]  # fmt: skip
    assert any(float(np.float32(t)) != t for t in before), "precondition: LightGBM's own thresholds are doubles"
    np.testing.assert_array_equal(exact.predict(x), original.predict(x))


@pytest.mark.parametrize("levels", [(0.1, 0.5, 0.9), LEVELS_99], ids=["3-levels", "99-levels"])
@pytest.mark.parametrize("mean_mask", ["elevation", None], ids=["masked-mean", "plain-mean"])
def test_onnx_graph_equals_lightgbm(tmp_path: Path, levels: tuple[float, ...], mean_mask: str | None) -> None:
    """The graph built from onnxmltools' conversion reproduces ``QuantileTrees.predict`` to 1e-5 at batch 1
    and at batch n (symbolic batch and steps), and its levels never cross."""
    trees, (features, capacity) = fitted(levels, mean_mask)
    path = trees_graph(trees, levels, tmp_path / "trees.onnx")
    session = open_session(path)
    expected = trees.predict(features, capacity, levels)
    for n in (1, len(features)):
        feeds = {INPUT_FEATURES: features[:n], INPUT_CAPACITY: capacity[:n]}
        got = session.run([TREES_OUTPUT], feeds)[0]
        assert got.shape == expected[:n].shape
        assert np.abs(got - expected[:n]).max() <= TOLERANCE
    assert (np.diff(got, axis=-1) >= 0).all()
    short = session.run([TREES_OUTPUT], {INPUT_FEATURES: features[:3, :10], INPUT_CAPACITY: capacity[:3]})[0]
    assert np.abs(short - trees.predict(features[:3, :10], capacity[:3], levels)).max() <= TOLERANCE


def test_the_graph_holds_converted_tree_ensembles(tmp_path: Path) -> None:
    """One TreeEnsembleRegressor per fitted level (onnxmltools' output), in the ai.onnx.ml domain."""
    trees, _ = fitted((0.1, 0.5, 0.9))
    model = onnx.load(str(trees_graph(trees, (0.1, 0.5, 0.9), tmp_path / "trees.onnx")))
    ensembles = [n for n in model.graph.node if n.op_type == "TreeEnsembleRegressor"]
    assert len(ensembles) == 3 and {n.domain for n in ensembles} == {"ai.onnx.ml"}
