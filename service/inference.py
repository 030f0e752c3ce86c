"""The onnxruntime side of the model contract: open a session, check it against the feature contract, run it.

No torch here: this is what the service image runs, and what evaluation scores.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from feature_repo.errors import FeatureContractError
from feature_repo.features import FEATURE_NAMES
from feature_repo.schema import FEATURE_SERVICE_NAME

INPUT_FEATURES = "features"
INPUT_CAPACITY = "capacity_ac_kw"
OUTPUT_QUANTILES = "quantiles_kw"


def open_session(path: Path, threads: int = 1) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run_session(session: ort.InferenceSession, features: np.ndarray, capacity_ac_kw: np.ndarray) -> np.ndarray:
    """Quantiles [kW], shape (batch, steps, quantiles)."""
    feeds = {
        INPUT_FEATURES: np.ascontiguousarray(features, dtype=np.float32),
        INPUT_CAPACITY: np.ascontiguousarray(capacity_ac_kw, dtype=np.float32),
    }
    return session.run([OUTPUT_QUANTILES], feeds)[0]


def check_contract(
    session: ort.InferenceSession,
    feature_names: list[str],
    feature_service: str,
    horizon_steps: int,
    n_quantiles: int,
) -> None:
    """Refuse a model whose metadata or graph disagree with the code's feature contract."""
    problems = []
    if feature_service != FEATURE_SERVICE_NAME:
        problems.append(f"feature service {feature_service!r} != {FEATURE_SERVICE_NAME!r}")
    if list(feature_names) != list(FEATURE_NAMES):
        problems.append(f"feature names/order differ from the code's {len(FEATURE_NAMES)} features")
    inputs = {i.name: i.shape for i in session.get_inputs()}
    outputs = {o.name: o.shape for o in session.get_outputs()}
    if inputs.get(INPUT_FEATURES, [None])[1:] != [horizon_steps, len(FEATURE_NAMES)]:
        problems.append(
            f"input {INPUT_FEATURES!r} has shape {inputs.get(INPUT_FEATURES)}, "
            f"expected [batch, {horizon_steps}, {len(FEATURE_NAMES)}]"
        )
    if INPUT_CAPACITY not in inputs:
        problems.append(f"input {INPUT_CAPACITY!r} missing")
    if outputs.get(OUTPUT_QUANTILES, [None])[1:] != [horizon_steps, n_quantiles]:
        problems.append(
            f"output {OUTPUT_QUANTILES!r} has shape {outputs.get(OUTPUT_QUANTILES)}, "
            f"expected [batch, {horizon_steps}, {n_quantiles}]"
        )
    if not isinstance(inputs.get(INPUT_FEATURES, [1])[0], str):
        problems.append("the batch axis is not symbolic")
    if problems:
        raise FeatureContractError("model refused: " + "; ".join(problems))
