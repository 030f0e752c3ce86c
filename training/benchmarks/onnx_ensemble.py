"""One ONNX graph for the hybrid + GBM ensemble: the same inputs and output as the hybrid's graph.

The exported hybrid graph (``features`` [batch, steps, channels], ``capacity_ac_kw`` [batch, 1] →
``quantiles_kw``) is extended with the GBM: its design matrix is built from ``features`` and
``capacity_ac_kw`` by ONNX operators (the same columns as ``methods.gbm_features``), the boosted trees of
every fitted level run as ONE ``TreeEnsembleRegressor`` (thresholds in double precision, as scikit-learn
compares them), the levels are sorted (TopK), interpolated to the served levels (a constant matrix product),
clipped to [0, 1], zeroed while the sun is down and scaled to kW. The output is the weighted mean of the two
forecasts: both are monotone in the level, within [0, capacity] and zero at night, so the mean is too.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from pvcast.contract import INPUT_CAPACITY, INPUT_FEATURES, OUTPUT_QUANTILES
from pvcast.pv.features import ELEVATION_CHANNEL, FEATURE_NAMES
from training.benchmarks.methods import GBM_CHANNELS, GBM_CONTEXT, GbmQuantiles, interpolation_matrix

ML_DOMAIN = "ai.onnx.ml"
HYBRID_OUTPUT = "hybrid_quantiles_kw"


def tree_ensemble_node(gbm: GbmQuantiles, inputs: str, output: str) -> onnx.NodeProto:
    """Every level's boosted trees as one TreeEnsembleRegressor with one target per level."""
    attrs: dict[str, list[object]] = {k: [] for k in (
        "nodes_treeids", "nodes_nodeids", "nodes_featureids", "nodes_values", "nodes_modes",
        "nodes_truenodeids", "nodes_falsenodeids", "nodes_missing_value_tracks_true",
        "target_treeids", "target_nodeids", "target_ids", "target_weights",
    )}  # fmt: skip
    tree = 0
    for target, model in enumerate(gbm.models):
        for iteration in model._predictors:
            _add_tree(attrs, iteration[0].nodes, tree, target)
            tree += 1
    base = [float(np.ravel(m._baseline_prediction)[0]) for m in gbm.models]
    return helper.make_node(
        "TreeEnsembleRegressor",
        [inputs],
        [output],
        domain=ML_DOMAIN,
        n_targets=len(gbm.models),
        aggregate_function="SUM",
        post_transform="NONE",
        base_values_as_tensor=numpy_helper.from_array(np.array(base, dtype=np.float64)),
        nodes_values_as_tensor=numpy_helper.from_array(np.array(attrs.pop("nodes_values"), dtype=np.float64)),
        target_weights_as_tensor=numpy_helper.from_array(np.array(attrs.pop("target_weights"), dtype=np.float64)),
        **cast(dict[str, Any], attrs),
    )


def _add_tree(attrs: dict[str, list[object]], nodes: np.ndarray, tree: int, target: int) -> None:
    for i, node in enumerate(nodes):
        leaf = bool(node["is_leaf"])
        attrs["nodes_treeids"].append(tree)
        attrs["nodes_nodeids"].append(i)
        attrs["nodes_featureids"].append(0 if leaf else int(node["feature_idx"]))
        attrs["nodes_values"].append(0.0 if leaf else float(node["num_threshold"]))
        attrs["nodes_modes"].append("LEAF" if leaf else "BRANCH_LEQ")
        attrs["nodes_truenodeids"].append(0 if leaf else int(node["left"]))
        attrs["nodes_falsenodeids"].append(0 if leaf else int(node["right"]))
        attrs["nodes_missing_value_tracks_true"].append(0 if leaf else int(node["missing_go_to_left"]))
        if leaf:
            attrs["target_treeids"].append(tree)
            attrs["target_nodeids"].append(i)
            attrs["target_ids"].append(target)
            attrs["target_weights"].append(float(node["value"]))


class _Builder:
    """Nodes and constants appended to an existing graph, with unique names."""

    def __init__(self, prefix: str) -> None:
        self.prefix, self.nodes, self.constants, self.count = prefix, [], [], 0  # type: ignore[var-annotated]

    def name(self, hint: str) -> str:
        self.count += 1
        return f"{self.prefix}{hint}_{self.count}"

    def const(self, value: np.ndarray, hint: str = "c") -> str:
        name = self.name(hint)
        self.constants.append(numpy_helper.from_array(value, name))
        return name

    def op(self, op_type: str, inputs: Sequence[str], hint: str = "", **attributes: object) -> str:
        out = self.name(hint or op_type.lower())
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], **cast(dict[str, Any], attributes)))
        return out


def _gbm_branch(b: _Builder, gbm: GbmQuantiles, levels: Sequence[float]) -> str:
    """The GBM's served forecast [kW] (batch, steps, levels) from the graph inputs."""
    i64 = np.int64
    features, capacity = INPUT_FEATURES, INPUT_CAPACITY
    channels = b.op("Gather", [features, b.const(np.array([FEATURE_NAMES.index(n) for n in GBM_CHANNELS], i64))],
                    axis=2)  # fmt: skip
    context = b.op("Gather", [features, b.const(np.array([FEATURE_NAMES.index(n) for n in GBM_CONTEXT], i64))],
                   axis=2)  # fmt: skip
    steps = b.op("Shape", [features], start=1, end=2)  # [steps]
    last = b.op("Sub", [steps, b.const(np.array([1], i64))])
    zero, one, axis1 = b.const(np.array([0], i64)), b.const(np.array([1], i64)), b.const(np.array([1], i64))
    head = b.op("Slice", [context, zero, one, axis1])
    body_prev = b.op("Slice", [context, zero, last, axis1])
    previous = b.op("Concat", [head, body_prev], axis=1)
    body_next = b.op("Slice", [context, one, steps, axis1])
    tail = b.op("Slice", [context, last, steps, axis1])
    following = b.op("Concat", [body_next, tail], axis=1)
    elevation = b.op("Gather", [features, b.const(np.array([ELEVATION_CHANNEL], i64))], axis=2)
    day = b.op("Cast", [b.op("Greater", [elevation, b.const(np.array(0.0, np.float32))])], to=TensorProto.FLOAT)
    day_sum = b.op("ReduceSum", [day, axis1], keepdims=1)
    total = b.op("ReduceSum", [b.op("Mul", [context, day]), axis1], keepdims=1)
    mean = b.op("Div", [total, b.op("Max", [day_sum, b.const(np.array(1.0, np.float32))])])
    ones = b.op("Mul", [context, b.const(np.array(0.0, np.float32))])  # zeros of the context's shape
    mean_wide = b.op("Add", [ones, mean])
    cap3 = b.op("Unsqueeze", [capacity, b.const(np.array([1], i64))])  # (batch, 1, 1)
    cap_wide = b.op("Add", [b.op("Gather", [ones, b.const(np.array([0], i64))], axis=2), cap3])
    design = b.op("Concat", [channels, previous, following, mean_wide, cap_wide], axis=2)
    flat = b.op("Reshape", [design, b.const(np.array([-1, _n_columns()], i64))])
    raw = b.name("gbm_levels")
    b.nodes.append(tree_ensemble_node(gbm, b.op("Cast", [flat], to=TensorProto.DOUBLE), raw))
    batch_steps = b.op("Shape", [features], start=0, end=2)
    shape = b.op("Concat", [batch_steps, b.const(np.array([len(gbm.models)], i64))], axis=0)
    fitted = b.op("Reshape", [b.op("Cast", [raw], to=TensorProto.FLOAT), shape])
    k = b.const(np.array([len(gbm.models)], i64))
    sorted_name, indices = b.name("sorted"), b.name("indices")
    b.nodes.append(helper.make_node("TopK", [fitted, k], [sorted_name, indices], axis=-1, largest=0, sorted=1))
    matrix = interpolation_matrix(gbm.settings.levels, levels).astype(np.float32)
    served = b.op("MatMul", [sorted_name, b.const(matrix, "interpolation")])
    clipped = b.op("Clip", [served, b.const(np.array(0.0, np.float32)), b.const(np.array(1.0, np.float32))])
    return b.op("Mul", [b.op("Mul", [clipped, day]), cap3], "gbm_kw")


def _n_columns() -> int:
    return len(GBM_CHANNELS) + 3 * len(GBM_CONTEXT) + 1


def build_ensemble(hybrid_path: Path, gbm: GbmQuantiles, weight: float, levels: Sequence[float], path: Path) -> Path:
    """Write one .onnx: ``weight`` × hybrid + (1 − weight) × GBM, same inputs and output as the hybrid."""
    model = onnx.load(str(hybrid_path))
    graph = model.graph
    for node in graph.node:  # the hybrid's output becomes an intermediate value
        node.output[:] = [HYBRID_OUTPUT if o == OUTPUT_QUANTILES else o for o in node.output]
    b = _Builder("ens_")
    gbm_kw = _gbm_branch(b, gbm, levels)
    hybrid_part = b.op("Mul", [HYBRID_OUTPUT, b.const(np.array(weight, np.float32))])
    gbm_part = b.op("Mul", [gbm_kw, b.const(np.array(1.0 - weight, np.float32))])
    b.nodes.append(helper.make_node("Add", [hybrid_part, gbm_part], [OUTPUT_QUANTILES]))
    graph.node.extend(b.nodes)
    graph.initializer.extend(b.constants)
    if not any(o.domain == ML_DOMAIN for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid(ML_DOMAIN, 3))
    model.metadata_props.append(
        onnx.StringStringEntryProto(key="ensemble", value=f"hybrid {weight:g} + gbm {1 - weight:g}")
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path
