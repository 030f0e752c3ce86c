"""The training pipeline end to end (training/pipeline.py) on the demo year: skill, stored metadata, point in time.

Uses the session fixture ``trained``: the DEFAULT training configuration on one year of synthetic demo data,
promoted to production — the same run `make demo` makes.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import run_models

from feature_repo.store import open_store, read_offline, read_table
from pvcast.contract import FeatureSpec, ModelMetadata, run_session
from pvcast.pv.features import FEATURE_NAMES, build_inputs
from pvcast.schema import ENTITY_KEY, FEATURE_SERVICE_NAME, GENERATION_VIEW, STEP_SECONDS
from training.evaluate import METHODS, score_all

pytestmark = [
    pytest.mark.integration,
]

HORIZON_STEPS = 96
model_store = run_models()


# --- skill (acceptance criterion) -----------------------------------------------------------------------


def test_hybrid_beats_both_baselines_on_held_out_window(trained: Any) -> None:
    """ACCEPTANCE: on the held-out window the hybrid's mean pinball (% of capacity) is lower than BOTH the
    physics-only and the smart-persistence baseline."""
    scores = trained.scores
    assert set(scores) == set(METHODS)
    model = scores["model"]["pinball_mean_pct"]
    assert model < scores["physics"]["pinball_mean_pct"], scores
    assert model < scores["smart_persistence"]["pinball_mean_pct"], scores
    assert 0 < model < 5


def test_reported_scores_are_those_of_the_predictions(trained: Any) -> None:
    """The score table is recomputed from the stored predictions and the held-out labels (no stale numbers)."""
    again = score_all(trained.predictions, trained.test, (0.1, 0.5, 0.9))
    for method in METHODS:
        for metric, value in trained.scores[method].items():
            assert again[method][metric] == pytest.approx(value, rel=1e-9, abs=1e-12), (method, metric)


def test_evaluated_predictions_are_the_served_graph(trained: Any) -> None:
    """What was scored as "model" is what the stored production ONNX graph outputs on the held-out window
    (to 1e-6 of capacity: thread count and batching may reorder float sums)."""
    loaded = model_store.load("production")
    assert loaded.tag == trained.tag
    test = trained.test
    served = np.concatenate(
        [
            run_session(loaded.session, test.features[i : i + 512], test.capacity_ac_kw[i : i + 512])
            for i in range(0, len(test), 512)
        ]
    )
    difference = np.abs(served - trained.predictions["model"]) / test.capacity_ac_kw[:, :, None]
    assert difference.max() <= 1e-6


def test_held_out_window_has_labels_and_all_parks(trained: Any) -> None:
    """The held-out window covers every registered park with measured labels (so the comparison means something)."""
    test = trained.test
    assert set(test.park_id) == {"synthetic-greensboro", "synthetic-miami", "synthetic-sandpoint"}
    assert np.isfinite(test.target_kw).mean() > 0.9
    assert test.features.shape[1:] == (HORIZON_STEPS, len(FEATURE_NAMES))


# --- stored metadata ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def meta(trained: Any) -> ModelMetadata:
    assert model_store.production_version() == trained.tag.split(":", 1)[1]
    return model_store.metadata_of("production")


def test_metadata_carries_the_feature_contract(meta: ModelMetadata) -> None:
    """Feature service, feature names IN ORDER, quantile levels, step 900 s and horizon 96 travel with the model."""
    assert meta.feature_service == FEATURE_SERVICE_NAME
    assert meta.feature_names == list(FEATURE_NAMES)
    assert meta.quantiles == [0.1, 0.5, 0.9]
    assert meta.step_seconds == STEP_SECONDS == 900
    assert meta.horizon_steps == HORIZON_STEPS
    assert set(meta.inputs) == {"features", "capacity_ac_kw"}
    assert set(meta.outputs) == {"quantiles_kw"}
    assert meta.parks == ["synthetic-greensboro", "synthetic-miami", "synthetic-sandpoint"]


def test_metadata_windows_test_after_training_without_overlap(trained: Any, meta: ModelMetadata) -> None:
    """Training and test windows are UTC, the test window starts after the training window ends plus one
    horizon (no forecast of the training set sees a label of the test set), and match the held-out data."""
    train_start, train_end = (pd.Timestamp(meta.training_window[k]) for k in ("start", "end"))
    test_start, test_end = (pd.Timestamp(meta.test_window[k]) for k in ("start", "end"))
    for ts in (train_start, train_end, test_start, test_end):
        assert ts.tzinfo is not None and ts.utcoffset() == pd.Timedelta(0)
    assert train_start < train_end < test_start <= test_end
    assert train_end + pd.Timedelta(seconds=HORIZON_STEPS * STEP_SECONDS) <= test_start
    assert test_start == pd.Timestamp(int(trained.test.issued_at.min()), unit="s", tz="UTC")
    assert test_end == pd.Timestamp(int(trained.test.issued_at.max()), unit="s", tz="UTC")


def test_metadata_metrics_and_provenance(trained: Any, meta: ModelMetadata) -> None:
    """The evaluation travels with the model (same numbers as the report), with a code version and baselines."""
    assert set(meta.metrics) == set(METHODS)
    for method in METHODS:
        assert meta.metrics[method] == pytest.approx(trained.scores[method], rel=1e-9)
    assert isinstance(meta.code_version, str)
    assert meta.code_version.strip() != ""
    dumped = meta.model_dump()
    assert {"physics", "persistence", "fallback_csi"} <= set(dumped["baselines"])


def test_metadata_onnx_sha256_matches_stored_file(meta: ModelMetadata) -> None:
    """onnx_sha256 is the SHA-256 of the model.onnx actually stored for production."""
    loaded = model_store.load("production")
    assert len(meta.onnx_sha256) == 64
    assert hashlib.sha256(loaded.path.read_bytes()).hexdigest() == meta.onnx_sha256


# --- point in time ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sampled(trained: Any, demo_store: Any) -> tuple[np.ndarray, pd.DataFrame]:
    """Twelve held-out samples (each park, issue times spread over the window, odd hours included) and the
    rows the offline point-in-time join returns for them."""
    test = trained.test
    rows = []
    for park in sorted(set(test.park_id)):
        idx = np.flatnonzero(test.park_id == park)
        rows += idx[np.linspace(0, len(idx) - 1, 4).astype(int)].tolist()
    rows = np.array(rows)
    frame = read_offline(
        open_store(demo_store.config),
        test.park_id[rows].tolist(),
        [pd.Timestamp(int(t), unit="s", tz="UTC") for t in test.issued_at[rows]],
    )
    return rows, frame


def test_inputs_use_only_weather_known_at_issue_time(trained: Any, sampled: tuple[np.ndarray, pd.DataFrame]) -> None:
    """For every sampled forecast the joined weather run starts at or before issued_at (demo runs are valid
    from their issue time), and it is the LATEST run by then: runs are 6-hourly, so it is < 6 h old."""
    rows, frame = sampled
    issued = trained.test.issued_at[rows]
    valid_from = frame["valid_from_epoch_s"].to_numpy(dtype=np.int64)
    assert (valid_from <= issued).all()
    assert (issued - valid_from < 6 * 3600).all()


def test_inputs_use_only_telemetry_known_at_issue_time(
    trained: Any, demo_store: Any, sampled: tuple[np.ndarray, pd.DataFrame]
) -> None:
    """The joined measurement's interval ENDED by issued_at (valid_time + 900 s <= issued_at), and no later
    interval that had also ended by then exists in the store (the join took the latest known one)."""
    rows, frame = sampled
    issued = trained.test.issued_at[rows]
    valid = frame["valid_time_epoch_s"].to_numpy(dtype=np.float64)
    assert np.isfinite(valid).all()
    assert (valid + STEP_SECONDS <= issued).all()
    generation = read_table(demo_store.config, GENERATION_VIEW)
    for park, t, v in zip(frame[ENTITY_KEY], issued, valid, strict=True):
        times = generation.loc[generation[ENTITY_KEY] == park, "valid_time_epoch_s"].to_numpy()
        known = times[times + STEP_SECONDS <= t]
        assert known.max() == v


def test_held_out_inputs_are_built_from_the_point_in_time_rows(
    trained: Any, sampled: tuple[np.ndarray, pd.DataFrame]
) -> None:
    """Rebuilding the sampled inputs from those point-in-time rows gives the held-out tensor itself: the test
    set's inputs came from data known at issued_at and nothing else."""
    rows, frame = sampled
    test = trained.test
    columns = {
        c: [None if v is None or (isinstance(v, float) and np.isnan(v)) else v for v in frame[c].tolist()]
        for c in frame.columns
    }
    inputs = build_inputs(columns, test.issued_at[rows], FeatureSpec(STEP_SECONDS, HORIZON_STEPS))
    np.testing.assert_allclose(inputs.features, test.features[rows], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(inputs.valid_time, test.valid_time[rows])
    assert (test.valid_time[rows, 0] >= test.issued_at[rows]).all()
