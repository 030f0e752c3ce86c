"""Quantile trees (``training/trees.py``) as ONNX nodes, composed into one graph with onnx's public helpers.

Each fitted level's LightGBM booster is converted by a maintained converter, ``onnxmltools.convert_lightgbm``
(the quantile objective becomes a ``TreeEnsembleRegressor`` with post_transform NONE); its nodes are renamed
and added to the graph being built, after the design matrix (built from the graph inputs by ONNX operators,
the same columns as :meth:`TensorDesign.matrix`), and followed by the sort (TopK) and the interpolation to the
served levels (a constant matrix product). The boosters' thresholds are float32-exact
(``trees.float32_thresholds``), so the graph decides every row as LightGBM does. No private attribute of any
model object is read.

:class:`GraphBuilder` collects nodes and constants with unique names; :func:`extend` appends them to a model
(e.g. the torch export of a hybrid). Kinds compose their own methods from these pieces
(``training/method.py`` for PV); :func:`trees_graph` writes the trees alone (for parity checks).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final, cast

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from pvcast.contract import INPUT_CAPACITY, INPUT_FEATURES
from training.trees import QuantileTrees, TensorDesign, interpolation_matrix

ML_DOMAIN: Final = "ai.onnx.ml"
ML_OPSET: Final = 3
MAIN_OPSET: Final = 18
CONVERTER_OPSET: Final = 15
"""onnxmltools 1.16's LightGBM converter takes an integer target opset of at most 15; its tree nodes are then
composed into graphs of a higher main opset (they live in the ai.onnx.ml domain)."""
TREES_OUTPUT: Final = "tree_quantiles"
I64 = np.int64


class GraphBuilder:
    """Nodes and constants with unique names (``prefix`` + hint + counter), appended to a graph at the end."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.nodes: list[onnx.NodeProto] = []
        self.constants: list[onnx.TensorProto] = []
        self.count = 0

    def name(self, hint: str) -> str:
        self.count += 1
        return f"{self.prefix}{hint}_{self.count}"

    def const(self, value: np.ndarray, hint: str = "c") -> str:
        name = self.name(hint)
        self.constants.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def scalar(self, value: float, dtype: type = np.float32) -> str:
        return self.const(np.array(value, dtype))

    def op(self, op_type: str, inputs: Sequence[str], hint: str = "", **attributes: object) -> str:
        out = self.name(hint or op_type.lower())
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], **cast(dict[str, Any], attributes)))
        return out

    def channels(self, design: TensorDesign, names: Sequence[str]) -> str:
        """``features[..., names]``: [batch, steps, len(names)]."""
        return self.op("Gather", [INPUT_FEATURES, self.const(np.array(design.index(names), I64))], axis=2)

    def steps(self) -> str:
        """The horizon length as a 1-element int64 tensor."""
        return self.op("Shape", [INPUT_FEATURES], start=1, end=2)


def shifted(b: GraphBuilder, x: str, offset: int, steps: str) -> str:
    """``x[:, clip(t + offset)]`` along axis 1, like ``trees.shift_steps`` (offset may exceed the horizon)."""
    count = b.op("Squeeze", [steps])
    index = b.op("Range", [b.const(np.array(0, I64)), count, b.const(np.array(1, I64))])
    moved = b.op("Add", [index, b.const(np.array(offset, I64))])
    last = b.op("Sub", [count, b.const(np.array(1, I64))])
    clipped = b.op("Min", [b.op("Max", [moved, b.const(np.array(0, I64))]), last])
    return b.op("Gather", [x, clipped], axis=1)


def design_nodes(b: GraphBuilder, design: TensorDesign) -> str:
    """The flat design matrix [batch · steps, columns] from the graph inputs (same columns, same float32
    values as :meth:`TensorDesign.matrix`)."""
    steps = b.steps()
    context = b.channels(design, design.context) if design.context else ""
    columns = [b.channels(design, design.channels)]
    columns += [shifted(b, context, offset, steps) for offset in design.offsets]
    zeros = b.op("Mul", [b.channels(design, design.channels[:1]), b.scalar(0.0)])  # [batch, steps, 1]
    axis1 = b.const(np.array([1], I64))
    if design.horizon_mean and design.context:
        columns.append(b.op("Add", [zeros, _context_mean(b, design, context, axis1)]))
    if design.capacity:
        columns.append(b.op("Add", [zeros, b.op("Unsqueeze", [INPUT_CAPACITY, axis1])]))
    matrix = b.op("Concat", columns, axis=2)
    return b.op("Reshape", [matrix, b.const(np.array([-1, design.n_columns], I64))])


def _context_mean(b: GraphBuilder, design: TensorDesign, context: str, axis1: str) -> str:
    """[batch, 1, context]: masked mean over the horizon in double, rounded once to float."""
    context64 = b.op("Cast", [context], to=TensorProto.DOUBLE)
    if design.mean_mask is None:
        total = b.op("ReduceSum", [context64, axis1], keepdims=1)
        count = b.op("Cast", [b.steps()], to=TensorProto.DOUBLE)
    else:
        above = b.op("Greater", [b.channels(design, [design.mean_mask]), b.scalar(0.0)])
        mask = b.op("Cast", [above], to=TensorProto.DOUBLE)
        total = b.op("ReduceSum", [b.op("Mul", [context64, mask]), axis1], keepdims=1)
        count = b.op("ReduceSum", [mask, axis1], keepdims=1)
    mean = b.op("Div", [total, b.op("Max", [count, b.scalar(1.0, np.float64)])])
    return b.op("Cast", [mean], to=TensorProto.FLOAT)


def converted_booster(b: GraphBuilder, booster: object, n_columns: int, x: str, prefix: str) -> tuple[str, int]:
    """Convert one booster with onnxmltools and add its nodes and initializers (names prefixed) to ``b``;
    returns (output [rows, 1], the ai.onnx.ml opset the converter used)."""
    from onnxmltools import convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType

    converted = convert_lightgbm(
        booster, initial_types=[("x", FloatTensorType([None, n_columns]))], target_opset=CONVERTER_OPSET, zipmap=False
    )
    graph = converted.graph
    rename = {graph.input[0].name: x}
    for node in graph.node:
        rename.update({o: f"{prefix}{o}" for o in node.output})
    rename.update({init.name: f"{prefix}{init.name}" for init in graph.initializer})
    for node in graph.node:
        copy = onnx.NodeProto()
        copy.CopyFrom(node)
        copy.name = f"{prefix}{node.name}"
        copy.input[:] = [rename.get(i, i) for i in node.input]
        copy.output[:] = [rename[o] for o in node.output]
        b.nodes.append(copy)
    for init in graph.initializer:
        tensor = onnx.TensorProto()
        tensor.CopyFrom(init)
        tensor.name = rename[init.name]
        b.constants.append(tensor)
    ml = max((o.version for o in converted.opset_import if o.domain == ML_DOMAIN), default=ML_OPSET)
    return rename[graph.output[0].name], ml


def sorted_levels(b: GraphBuilder, trees: QuantileTrees, flat: str) -> tuple[str, int]:
    """Every booster on the design rows, sorted ascending: ([rows, fitted levels], ai.onnx.ml opset)."""
    outputs, ml = [], ML_OPSET
    for j, booster in enumerate(trees.boosters):
        out, version = converted_booster(b, booster, trees.design.n_columns, flat, f"{b.prefix}level{j}_")
        outputs.append(out)
        ml = max(ml, version)
    raw = b.op("Concat", outputs, axis=1)
    values, indices = b.name("sorted"), b.name("indices")
    k = b.const(np.array([len(outputs)], I64))
    b.nodes.append(helper.make_node("TopK", [raw, k], [values, indices], axis=-1, largest=0, sorted=1))
    return values, ml


def served_levels(b: GraphBuilder, trees: QuantileTrees, levels: Sequence[float]) -> tuple[str, int]:
    """``trees.predict`` as nodes: [batch, steps, levels] (unclipped), and the ai.onnx.ml opset needed."""
    values, ml = sorted_levels(b, trees, design_nodes(b, trees.design))
    matrix = interpolation_matrix(trees.settings.levels, levels).astype(np.float32)
    flat = b.op("MatMul", [values, b.const(matrix, "interpolation")])
    batch_steps = b.op("Shape", [INPUT_FEATURES], start=0, end=2)
    shape = b.op("Concat", [batch_steps, b.const(np.array([len(levels)], I64))], axis=0)
    return b.op("Reshape", [flat, shape], "tree_levels"), ml


def extend(model: onnx.ModelProto, b: GraphBuilder, ml_opset: int = ML_OPSET) -> onnx.ModelProto:
    """Append ``b``'s nodes and constants to ``model`` and declare the ai.onnx.ml opset its trees need."""
    model.graph.node.extend(b.nodes)
    model.graph.initializer.extend(b.constants)
    known = [o for o in model.opset_import if o.domain == ML_DOMAIN]
    if known:
        known[0].version = max(known[0].version, ml_opset)
    else:
        model.opset_import.append(helper.make_opsetid(ML_DOMAIN, ml_opset))
    return model


def empty_model(name: str, steps: int | None, channels: int, outputs: dict[str, int]) -> onnx.ModelProto:
    """A model with the contract's inputs (symbolic batch) and float outputs [batch, steps, n] of ``outputs``."""
    graph = helper.make_graph(
        [],
        name,
        [
            helper.make_tensor_value_info(INPUT_FEATURES, TensorProto.FLOAT, ["batch", steps, channels]),
            helper.make_tensor_value_info(INPUT_CAPACITY, TensorProto.FLOAT, ["batch", 1]),
        ],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, ["batch", steps, n]) for o, n in outputs.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", MAIN_OPSET)])


def save(model: onnx.ModelProto, path: Path, metadata: dict[str, str] | None = None) -> Path:
    """Check and write one self-contained .onnx file with ``metadata`` (key/value) attached."""
    if metadata:
        helper.set_model_props(model, metadata)
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def trees_graph(trees: QuantileTrees, levels: Sequence[float], path: Path, steps: int | None = None) -> Path:
    """The trees alone: inputs ``features`` and ``capacity_ac_kw``, output :data:`TREES_OUTPUT` =
    ``trees.predict(features, capacity_ac_kw, levels)`` as float32 [batch, steps, levels]."""
    model = empty_model("quantile_trees", steps, len(trees.design.feature_names), {TREES_OUTPUT: len(levels)})
    b = GraphBuilder("trees_")
    out, ml = served_levels(b, trees, levels)
    b.nodes.append(helper.make_node("Identity", [out], [TREES_OUTPUT]))
    return save(extend(model, b, ml), path)
