"""Monitoring building blocks without a model: PSI/KS, the promotion rule, the forecast log's layout,
sampling and pruning, and the Prometheus textfile."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from feature_repo.forecast_log import ForecastLogBuffer, ServedForecasts, log_forecasts, read_forecast_log, sampled
from pvcast.pv.features import ELEVATION_CHANNEL, FEATURE_NAMES
from pvcast.settings import StoreConfig
from training.mlops.drift import DriftThresholds, bin_fractions, compare, psi, reference_distribution
from training.mlops.monitor import ACCURACY_JOB
from training.mlops.prometheus import MetricsSink, export, job_registry
from training.mlops.retrain import PromotionPolicy, decide


def features(n: int, shift: float = 0.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    f = rng.normal(size=(n, 96, len(FEATURE_NAMES))).astype(np.float32)
    f[..., ELEVATION_CHANNEL] = np.abs(f[..., ELEVATION_CHANNEL]) * np.where(np.arange(96) % 2, 1, -1)  # half night
    f[..., FEATURE_NAMES.index("clearsky_index")] += shift
    return f


def test_psi_is_zero_for_equal_shares_and_grows_with_the_shift() -> None:
    assert psi([0.5, 0.5], [0.5, 0.5]) == 0.0
    assert psi([0.5, 0.5], [0.4, 0.6]) == pytest.approx(0.1 * np.log(1.5), rel=1e-6)
    assert psi([0.1] * 10, [0.0] * 9 + [1.0]) > 5  # empty bins are floored, not infinite


def test_reference_bins_hold_ties_and_out_of_range_values() -> None:
    night = reference_distribution(np.zeros((3, 96, len(FEATURE_NAMES)), dtype=np.float32))
    assert night["values"] == 0 and night["features"] == {}  # no daylight: nothing to summarise
    flags = np.zeros((10, 96, len(FEATURE_NAMES)), dtype=np.float32)
    flags[..., ELEVATION_CHANNEL] = 10.0  # all daylight
    flags[:4, :, FEATURE_NAMES.index("measured_available")] = 1.0  # a 0/1 feature, 40 % ones
    summary = reference_distribution(flags)["features"]["measured_available"]
    assert summary["edges"] == [0.0, 1.0] and summary["fractions"] == [0.6, 0.4, 0.0]
    assert set(summary["quantiles"]) == {0.0, 1.0}
    edges = summary["edges"]
    assert bin_fractions(np.array([2.0, -1.0]), edges).tolist() == [0.5, 0.0, 0.5]


def test_only_daylight_steps_enter_the_reference_and_a_shift_is_detected() -> None:
    reference = reference_distribution(features(200))
    assert reference["values"] == 200 * 48 and len(reference["features"]["ghi"]["quantiles"]) == 101
    names = ["clearsky_index", "ghi"]
    same = {d.feature: d for d in compare(reference, features(50, seed=1), names, DriftThresholds())}
    moved = {d.feature: d for d in compare(reference, features(50, shift=0.5, seed=1), names, DriftThresholds())}
    assert same["clearsky_index"].psi < 0.05 and not same["clearsky_index"].breach
    assert moved["clearsky_index"].psi > 0.2 and moved["clearsky_index"].ks > 0.15 and moved["clearsky_index"].breach
    assert not moved["ghi"].breach
    few = compare(reference, features(2, shift=3.0), names, DriftThresholds(min_values=500))
    assert all(np.isnan(d.psi) and not d.breach for d in few)  # 96 values: not judged


def scores(mean: float, parks: dict[str, float]) -> dict[str, object]:
    return {"overall": {"pinball_mean_pct": mean}, "parks": {p: {"pinball_mean_pct": v} for p, v in parks.items()}}


def test_promotion_needs_a_margin_and_no_park_much_worse() -> None:
    policy = PromotionPolicy(min_improvement_pct=2.0, max_park_regression_pct=10.0)
    champion = scores(1.00, {"a": 1.0, "b": 1.0})
    assert decide(scores(0.90, {"a": 0.8, "b": 1.0}), champion, policy)[0]
    assert not decide(scores(0.99, {"a": 0.98, "b": 1.0}), champion, policy)[0]  # 1 % < 2 %
    refused, reason = decide(scores(0.90, {"a": 0.6, "b": 1.2}), champion, policy)
    assert not refused and "park b gets 20.0 % worse" in reason
    assert decide(scores(5.0, {"a": 5.0}), None, policy)[0]  # the first model


def batch(n: int, issued: pd.Timestamp, version: str = "v1") -> ServedForecasts:
    t0 = int(issued.timestamp())
    return ServedForecasts(
        park_id=[f"p{i}" for i in range(n)],
        issued_at=np.full(n, t0, dtype=np.int64),
        valid_time=t0 + 900 * np.tile(np.arange(8, dtype=np.int64), (n, 1)),
        quantiles_kw=np.sort(np.random.default_rng(0).uniform(0, 100, (n, 8, 3)), axis=-1),
        quantile_levels=[0.1, 0.5, 0.9],
        capacity_ac_kw=np.full((n, 1), 100.0),
        model_version=version,
    )


def test_the_log_is_partitioned_by_issue_date_and_pruned_on_read(tmp_path: Path) -> None:
    config = StoreConfig(repo_path=tmp_path)
    log_forecasts(config, batch(2, pd.Timestamp("2026-06-01T23:00Z")))
    log_forecasts(config, batch(2, pd.Timestamp("2026-06-20T12:00Z")))
    folders = sorted(p.name for p in (tmp_path / "data" / "forecast_log").iterdir())
    assert folders == ["date=2026-06-01", "date=2026-06-20"]
    assert len(read_forecast_log(config)) == 2 * 2 * 8
    june_2 = read_forecast_log(config, pd.Timestamp("2026-06-02T00:00Z"), pd.Timestamp("2026-06-03T00:00Z"))
    assert len(june_2) == 2 * 4 and (june_2["valid_time"] >= pd.Timestamp("2026-06-02T00:00Z")).all()
    by_issue = read_forecast_log(config, pd.Timestamp("2026-06-20T00:00Z"), None, by="issued_at")
    assert set(by_issue["issued_at"]) == {pd.Timestamp("2026-06-20T12:00Z")}


def test_sampling_keeps_whole_forecasts_deterministically(tmp_path: Path) -> None:
    config = StoreConfig(repo_path=tmp_path)
    big = batch(400, pd.Timestamp("2026-06-01T12:00Z"))
    buffer = ForecastLogBuffer(config, sample_rate=0.25, max_rows=10**9, max_seconds=3600)
    buffer.add(big)
    assert buffer.flush() is not None and buffer.flush() is None
    log = read_forecast_log(config)
    kept = set(log["park_id"])
    assert 60 < len(kept) < 140 and len(log) == 8 * len(kept)  # whole forecasts only
    assert kept == {p for p in big.park_id if sampled(p, int(big.issued_at[0]), 0.25)}


def test_one_forecast_per_park_version_and_issue_slot(tmp_path: Path) -> None:
    """The service's setting: later forecasts of a park in the same 15-minute slot are not logged again; a new
    slot or a new model version is; many batches flush as one table with each batch's own rows."""
    config = StoreConfig(repo_path=tmp_path)
    buffer = ForecastLogBuffer(config, max_rows=10**9, max_seconds=3600, slot_seconds=900)
    noon = pd.Timestamp("2026-06-01T12:00Z")
    buffer.add(batch(3, noon))
    buffer.add(batch(3, noon + pd.Timedelta(minutes=10)))  # same slot: nothing new
    buffer.add(batch(3, noon + pd.Timedelta(minutes=15)))  # next slot
    buffer.add(batch(2, noon + pd.Timedelta(minutes=16), version="v2"))  # a hot reload: new version
    assert buffer.flush() is not None
    log = read_forecast_log(config)
    issues = log.groupby(["model_version", "issued_at"])["park_id"].nunique()
    assert issues.to_dict() == {
        ("v1", noon): 3,
        ("v1", noon + pd.Timedelta(minutes=15)): 3,
        ("v2", noon + pd.Timedelta(minutes=16)): 2,
    }
    assert len(log) == 8 * 8 and all(list(q) == [0.1, 0.5, 0.9] for q in log["quantile_levels"])


def test_a_forecast_left_out_by_sampling_does_not_take_its_slot(tmp_path: Path) -> None:
    slot = int(pd.Timestamp("2026-06-01T12:00Z").timestamp())
    first = next(t for t in range(slot, slot + 450) if not sampled("p0", t, 0.5))
    later = next(t for t in range(first + 1, slot + 900) if sampled("p0", t, 0.5))
    buffer = ForecastLogBuffer(StoreConfig(repo_path=tmp_path), sample_rate=0.5, max_rows=10**9, slot_seconds=900)
    buffer.add(batch(1, pd.Timestamp(first, unit="s", tz="UTC")))  # sampled out
    buffer.add(batch(1, pd.Timestamp(later, unit="s", tz="UTC")))  # same slot, sampled in: logged
    assert buffer.flush() is not None
    logged = read_forecast_log(StoreConfig(repo_path=tmp_path))["issued_at"]
    assert set(logged) == {pd.Timestamp(later, unit="s", tz="UTC")}


def test_a_batch_with_inconsistent_shapes_is_refused(tmp_path: Path) -> None:
    bad = batch(2, pd.Timestamp("2026-06-01T12:00Z"))
    bad = ServedForecasts(
        bad.park_id, bad.issued_at, bad.valid_time[:, :4], bad.quantiles_kw, [0.1, 0.5, 0.9], bad.capacity_ac_kw, "v"
    )
    with pytest.raises(ValueError, match="shapes disagree"):
        log_forecasts(StoreConfig(repo_path=tmp_path), bad)


def test_job_metrics_go_to_a_textfile_atomically(tmp_path: Path) -> None:
    path = tmp_path / "textfile" / "pvcast_monitor_accuracy.prom"
    assert export(job_registry(ACCURACY_JOB, 2), ACCURACY_JOB, MetricsSink(prom_file=path)) == [str(path)]
    text = path.read_text()
    assert 'pvcast_job_breaches{job="pvcast_monitor_accuracy"} 2.0' in text
    assert "# TYPE pvcast_job_last_run_timestamp_seconds gauge" in text
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind
    assert export(job_registry(ACCURACY_JOB, 0), ACCURACY_JOB, MetricsSink()) == []
