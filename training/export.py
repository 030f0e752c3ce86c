"""ONNX export of the complete forecast graph, with a parity check against torch that fails the export."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch

from pvcast.contract import INPUT_CAPACITY, INPUT_FEATURES, OUTPUT_QUANTILES, open_session, run_session
from pvcast.errors import ExportParityError

logger = logging.getLogger(__name__)

PARITY_TOLERANCE = 1e-4
"""Max |ONNX − torch| of the output as a fraction of AC capacity. (An absolute 1e-4 kW is below float32
resolution for a multi-MW park: one ULP at 4000 kW is 2.4e-4 kW.)"""
EXAMPLE_BATCH = 3  # > 1 so the exporter cannot specialise the batch axis to 1


def export_onnx(
    model: torch.nn.Module, example: np.ndarray, capacity: np.ndarray, path: Path, metadata: dict[str, str]
) -> Path:
    """Write ONE self-contained .onnx file (weights inside) with a symbolic batch axis and metadata."""
    model.eval()
    batch = torch.export.Dim("batch", min=1, max=1_000_000)
    args = (torch.from_numpy(example[:EXAMPLE_BATCH]), torch.from_numpy(capacity[:EXAMPLE_BATCH]))
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's own deprecation chatter
        torch.onnx.export(
            model,
            args,
            str(path),
            dynamo=True,
            external_data=False,
            input_names=[INPUT_FEATURES, INPUT_CAPACITY],
            output_names=[OUTPUT_QUANTILES],
            dynamic_shapes={"features": {0: batch}, "capacity_ac_kw": {0: batch}},
            verbose=False,
        )
    _attach_metadata(path, metadata)
    return path


def _attach_metadata(path: Path, metadata: dict[str, str]) -> None:
    graph = onnx.load(str(path))
    onnx.helper.set_model_props(graph, metadata)
    onnx.save(graph, str(path))


def parity_check(model: torch.nn.Module, path: Path, features: np.ndarray, capacity: np.ndarray) -> float:
    """Max |ONNX − torch| / capacity at batch 1 and at the full batch; raises ExportParityError above 1e-4."""
    session = open_session(path)
    worst = 0.0
    for n in (1, len(features)):
        with torch.no_grad():
            expected = model(torch.from_numpy(features[:n]), torch.from_numpy(capacity[:n])).numpy()
        got = run_session(session, features[:n], capacity[:n])
        worst = max(worst, float(np.max(np.abs(got - expected) / capacity[:n, :, None])))
    if not worst <= PARITY_TOLERANCE:
        raise ExportParityError(
            f"ONNX output differs from torch by {worst:.2e} of capacity (> {PARITY_TOLERANCE:g}); export refused"
        )
    logger.info(
        "ONNX parity with torch: max |difference| %.2e of capacity over batches of 1 and %d",
        worst,
        len(features),
    )
    return worst
