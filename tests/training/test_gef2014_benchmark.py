"""The GEFCom2014 benchmark: the scorer against the published leaderboard, the protocol's information regime,
the methods' building blocks, and the quick benchmark end to end through the CLI."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from feature_repo.store import read_table
from pvcast.schema import GENERATION_VIEW, ISSUED_AT, WEATHER_VIEW
from pvcast.settings import StoreConfig
from training.benchmarks import methods, report, scoring
from training.benchmarks.gef2014 import daily_runs, publish
from training.cli import main
from training.cli.benchmark import positive_int, task_list
from training.sources import gef2014 as gefcom

LEADERBOARD = "leaderboard_tasks_1_10.csv"


# --- scorer -------------------------------------------------------------------------------------------


def test_pinball_loss_by_hand() -> None:
    pred = np.array([[0.2, 0.5, 0.8]])
    levels = (0.1, 0.5, 0.9)
    # target 0.6: errors 0.4, 0.1, −0.2 → 0.04, 0.05, 0.02 → mean 0.03666…
    assert scoring.pinball_loss(pred, np.array([0.6]), levels) == pytest.approx((0.04 + 0.05 + 0.02) / 3)
    assert scoring.pinball_loss(np.zeros((2, 99)), np.zeros(2), scoring.QUANTILES_99) == 0.0


def test_the_competition_levels() -> None:
    assert len(scoring.QUANTILES_99) == 99
    assert scoring.QUANTILES_99[0] == 0.01 and scoring.QUANTILES_99[-1] == 0.99
    assert scoring.QUANTILES_99[scoring.median_index(scoring.QUANTILES_99)] == 0.5


@pytest.mark.data
def test_the_scorer_reproduces_the_published_benchmark_row(shared_data: Path) -> None:
    """All quantiles = the power one year earlier, scored like the organisers: every task 1–10 within 1e-4."""
    folder = shared_data / "gefcom2014_solar"
    hourly = gefcom.read_gefcom(gefcom.csv_path(folder))
    board = pd.read_csv(folder / LEADERBOARD)
    published = board[board["team"] == "Benchmark - Solar"].set_index("task")["pinball"]
    power = hourly.set_index(["park_id", "valid_time"])["power"]
    for task in range(1, 11):
        start, end = gefcom.task_month(task)
        month = hourly[(hourly["valid_time"] >= start) & (hourly["valid_time"] < end)]
        before = power.reindex(
            pd.MultiIndex.from_arrays([month["park_id"], month["valid_time"] - pd.DateOffset(years=1)])
        )
        pred = scoring.official_benchmark(before.to_numpy())
        score = scoring.pinball_loss(pred, month["power"].to_numpy(), scoring.QUANTILES_99)
        assert score == pytest.approx(published[task], abs=1e-4), task
        assert len(month) == 3 * 24 * start.days_in_month  # every hour of the month, three zones


# --- the protocol's information regime ----------------------------------------------------------------


def three_months() -> pd.DataFrame:
    """Hand-made GEFCom rows for June–August 2013 (zone 1), parsed."""
    ending = pd.date_range("2013-06-01 01:00", "2013-09-01 00:00", freq="h")
    hours = np.arange(len(ending))
    raw = pd.DataFrame(
        {
            "ZONEID": 1, "TIMESTAMP": ending.strftime("%Y%m%d %H:%M"), "TASK": 0, "POWER": 0.3,
            "VAR78": 0.0, "VAR79": 0.0, "VAR134": 94000.0, "VAR157": 60.0, "VAR164": 0.5, "VAR165": 1.0,
            "VAR166": 1.0, "VAR167": 285.0, "VAR169": 3600.0 * 100 * (hours % 24 + 1), "VAR175": 0.0,
            "VAR178": 0.0, "VAR228": 0.0,
        }
    )  # fmt: skip
    return gefcom.parse_gefcom(raw)


def test_the_store_holds_power_before_the_month_and_nwp_up_to_its_end_only(tmp_path: Path) -> None:
    from feature_repo.store import init_store

    config = StoreConfig(repo_path=tmp_path / "store")
    init_store(config)
    start, end = gefcom.task_month(4)  # July 2013
    publish(config, three_months(), start, end)
    power = read_table(config, GENERATION_VIEW)
    weather = read_table(config, WEATHER_VIEW)
    assert power["valid_time_epoch_s"].max() + 3600 == int(start.timestamp())  # the last hour of June
    assert power["event_timestamp"].max() == start
    assert weather[ISSUED_AT].max() == end - pd.Timedelta(days=1)  # the run of July 31
    assert weather[ISSUED_AT].min() == pd.Timestamp("2013-06-01", tz="UTC")


def test_daily_runs_cover_the_month_at_00utc() -> None:
    start, end = gefcom.task_month(4)
    runs = daily_runs(three_months(), start, end)
    assert len(runs) == 31 and runs[0] == start and (runs.hour == 0).all()


# --- building blocks of the methods --------------------------------------------------------------------


def test_interpolation_matrix_reproduces_np_interp_and_keeps_the_ends() -> None:
    fitted = (0.1, 0.5, 0.9)
    values = np.array([[1.0, 2.0, 4.0]])
    out = values @ methods.interpolation_matrix(fitted, scoring.QUANTILES_99)
    np.testing.assert_allclose(out[0], np.interp(scoring.QUANTILES_99, fitted, values[0]))
    assert out[0, 0] == 1.0 and out[0, -1] == 4.0
    assert np.all(np.diff(out[0]) >= 0)


def test_climatology_is_the_empirical_quantile_per_month_and_hour() -> None:
    times = pd.date_range("2012-07-01", periods=24 * 31, freq="h", tz="UTC")
    seconds = gefcom.epoch_seconds(pd.Series(times))
    power = np.where(times.hour == 2, np.linspace(0, 1, len(times)), 0.0)
    clim = methods.Climatology.fit(seconds, power, (0.1, 0.5, 0.9))
    noon = clim.predict(np.array([int(pd.Timestamp("2013-07-05 02:00", tz="UTC").timestamp())]))
    np.testing.assert_allclose(noon[0], np.quantile(power[times.hour == 2], (0.1, 0.5, 0.9)))
    night = clim.predict(np.array([int(pd.Timestamp("2013-07-05 14:00", tz="UTC").timestamp())]))
    assert (night == 0).all()


def test_gbm_features_add_neighbours_daily_means_and_capacity() -> None:
    from pvcast.pv.features import FEATURE_NAMES

    features = np.random.default_rng(0).random((2, 24, len(FEATURE_NAMES))).astype(np.float32)
    capacity = np.array([[1.56], [4.94]], dtype=np.float32)
    x = methods.gbm_features(features, capacity)
    assert x.shape == (48, len(methods.GBM_CHANNELS) + 3 * len(methods.GBM_CONTEXT) + 1)
    assert x[24, -1] == pytest.approx(4.94)
    ghi = FEATURE_NAMES.index("ghi")
    previous = len(methods.GBM_CHANNELS)  # first context column: ghi of the previous step
    assert x[5, previous] == features[0, 4, ghi] and x[0, previous] == features[0, 0, ghi]


def test_task_list_option() -> None:
    assert task_list("4-10") == (4, 5, 6, 7, 8, 9, 10)
    assert task_list("1,3,5-6") == (1, 3, 5, 6)
    for bad in ("0-3", "16", "a", "4-x"):
        with pytest.raises(argparse.ArgumentTypeError):
            task_list(bad)


def test_hybrid_seeds_option() -> None:
    assert positive_int("3") == 3
    for bad in ("0", "-1", "x", "1.5"):
        with pytest.raises(argparse.ArgumentTypeError):
            positive_int(bad)


def test_markdown_table_ranks_methods_among_teams() -> None:
    records = [
        {"task": 4, "method": "hybrid", "pinball": 0.0125},
        {"task": 4, "method": "benchmark", "pinball": 0.0331},
    ]
    board = pd.DataFrame({"team": ["Gang-gang", "dmlab"], "task": [4, 4], "pinball": [0.01292, 0.01238]})
    table = report.markdown_table(records, "hybrid", board)
    lines = table.splitlines()
    assert "dmlab" in lines[2] and "pvcast: hybrid (served)" in lines[3] and "Gang-gang" in lines[4]
    assert "best team on each task | 0.01238" in table


def test_a_data_folder_without_the_csv_exits_2_with_one_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["benchmark", "gefcom2014", "--data", str(tmp_path), "--tasks", "4", "--out", str(tmp_path / "o")])
    assert code == 2
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and errors[0].exc_info is None
    assert "\n" not in errors[0].getMessage() and "gefcom2014_solar.csv" in errors[0].getMessage()
    assert capsys.readouterr().out == ""


# --- the quick benchmark, end to end ----------------------------------------------------------------


@pytest.mark.data
@pytest.mark.integration
def test_quick_benchmark_beats_the_official_benchmark_clearly(shared_data: Path, tmp_path: Path) -> None:
    """`pvcast benchmark gefcom2014 --quick`: one task through Feast, training, ONNX and onnxruntime."""
    out = tmp_path / "gefcom"
    folder = shared_data / "gefcom2014_solar"
    assert (
        main(["benchmark", "gefcom2014", "--data", str(folder), "--tasks", "4-10", "--quick", "--out", str(out)]) == 0
    )
    document = json.loads((out / "results.json").read_text())
    served = document["served_method"]
    scores = {r["method"]: r for r in document["records"]}
    assert {r["task"] for r in document["records"]} == {4}
    assert set(scores) == {"benchmark", "climatology", "physics", "gbm", "hybrid", "ensemble"}
    assert served == "ensemble"
    assert scores["benchmark"]["pinball"] == pytest.approx(0.0331, abs=1e-4)  # the published benchmark row
    assert scores[served]["pinball"] < 0.6 * scores["benchmark"]["pinball"]
    assert all(set(r) == {"task", "method", "pinball", "mae", "nmae"} for r in document["records"])
    assert "Gang-gang" in (out / "results.md").read_text()
    for name in ("reliability.png", "fan_gefcom-zone1.png", "fan_gefcom-zone2.png", "fan_gefcom-zone3.png"):
        assert (out / name).stat().st_size > 10_000
    assert (out / "models" / "task4_hybrid.onnx").is_file() and (out / "models" / "task4_ensemble.onnx").is_file()


# --- the served ensemble: one ONNX graph -----------------------------------------------------------------


def tiny_tensors(n: int = 12) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from pvcast.pv.features import ELEVATION_CHANNEL, FEATURE_NAMES, PHYSICS_CHANNEL

    rng = np.random.default_rng(3)
    features = rng.random((n, 24, len(FEATURE_NAMES))).astype(np.float32)
    features[..., ELEVATION_CHANNEL] = np.sin(np.arange(24) / 24 * 2 * np.pi)[None, :].astype(np.float32)
    capacity = rng.choice([1.56, 4.94, 4.0], size=(n, 1)).astype(np.float32)
    target = np.clip(features[..., PHYSICS_CHANNEL] + rng.normal(0, 0.1, (n, 24)), 0, 1).astype(np.float32)
    return features, capacity, target


def test_the_ensemble_graph_is_the_mean_of_hybrid_and_gbm(tmp_path: Path) -> None:
    """One .onnx with the hybrid's inputs and output; equal to w·hybrid + (1 − w)·GBM at batch 1 and n; monotone,
    within [0, capacity] and zero at night."""
    import torch

    from pvcast.contract import open_session, run_session
    from pvcast.pv.features import FEATURE_NAMES
    from training.benchmarks.onnx_ensemble import build_ensemble
    from training.config import ModelConfig
    from training.export import export_onnx
    from training.model import HybridQuantileLSTM

    levels = (0.1, 0.5, 0.9)
    features, capacity, target = tiny_tensors()
    torch.manual_seed(0)
    hybrid = HybridQuantileLSTM(len(FEATURE_NAMES), ModelConfig(quantiles=levels, hidden_size=4, initial_gap=0.05))
    hybrid_path = export_onnx(hybrid.eval(), features, capacity, tmp_path / "hybrid.onnx", {"k": "v"})
    gbm = methods.GbmQuantiles(methods.GbmSettings(max_iter=5, levels=(0.1, 0.3, 0.7, 0.9), min_samples_leaf=5))
    gbm.fit(features, capacity, target)
    path = build_ensemble(hybrid_path, gbm, 0.25, levels, tmp_path / "ensemble.onnx")
    session = open_session(path)
    expected = 0.25 * run_session(open_session(hybrid_path), features, capacity)
    expected += 0.75 * gbm.predict(features, capacity, levels) * capacity[..., None]
    got = run_session(session, features, capacity)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    np.testing.assert_allclose(run_session(session, features[:1], capacity[:1]), got[:1], atol=1e-6)
    assert np.all(np.diff(got, axis=-1) >= -1e-6)
    assert np.all(got >= 0) and np.all(got <= capacity[..., None] + 1e-5)
    night = features[..., 8] <= 0  # solar_elevation
    assert np.all(got[night] == 0)


def test_a_small_initial_gap_keeps_99_quantiles_within_reach() -> None:
    """With the layer's default the outer quantiles of 99 start tens of capacities apart."""
    import torch

    from pvcast.pv.features import FEATURE_NAMES
    from training.config import ModelConfig
    from training.model import HybridQuantileLSTM

    features = torch.from_numpy(tiny_tensors(4)[0])
    spreads = []
    for gap in (None, 0.01):
        torch.manual_seed(0)
        model = HybridQuantileLSTM(len(FEATURE_NAMES), ModelConfig(quantiles=scoring.QUANTILES_99, initial_gap=gap))
        with torch.no_grad():
            q = model.fractions(features)
        spreads.append(float((q[..., -1] - q[..., 0]).mean()))
    assert spreads[0] > 20
    assert spreads[1] < 3


def test_the_seed_ensemble_graph_is_the_mean_of_its_members(tmp_path: Path) -> None:
    """MeanOfModels of two seeds exports to one .onnx equal to the members' mean at batch 1 and n, monotone,
    within [0, capacity] and zero at night. (Small one-layer members: the exporter's time grows with the graph.)"""
    import torch

    from pvcast.contract import open_session, run_session
    from pvcast.pv.features import ELEVATION_CHANNEL, FEATURE_NAMES
    from training.config import ModelConfig
    from training.export import export_onnx, parity_check
    from training.model import HybridQuantileLSTM
    from training.seed_ensemble import MeanOfModels

    features, capacity, _ = tiny_tensors()
    members = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        config = ModelConfig(quantiles=(0.1, 0.5, 0.9), hidden_size=4, num_layers=1, initial_gap=0.05)
        members.append(HybridQuantileLSTM(len(FEATURE_NAMES), config).eval())
    mean = MeanOfModels(members)
    path = export_onnx(mean, features, capacity, tmp_path / "mean.onnx", {"k": "v"})
    parity_check(mean, path, features, capacity)
    with torch.no_grad():
        outputs = [m(torch.from_numpy(features), torch.from_numpy(capacity)).numpy() for m in members]
    session = open_session(path)
    got = run_session(session, features, capacity)
    np.testing.assert_allclose(got, np.mean(outputs, axis=0), atol=1e-4)
    np.testing.assert_allclose(run_session(session, features[:1], capacity[:1]), got[:1], atol=1e-6)
    assert not np.allclose(outputs[0], outputs[1], atol=1e-3)  # the seeds differ, so the mean is not trivial
    assert np.all(np.diff(got, axis=-1) >= 0)
    assert np.all(got >= 0) and np.all(got <= capacity[..., None] + 1e-5)
    assert np.all(got[features[..., ELEVATION_CHANNEL] <= 0] == 0)
