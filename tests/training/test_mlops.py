"""The MLOps loop on a small synthetic store with small, fast models: champion/challenger retraining tracked in
MLflow, manual promotion, accuracy monitoring of forecasts logged by the forecast-log writer from real model
outputs, and drift monitoring against the reference stored with the model.

The module runs one sequence (module fixtures): a deliberately weak model is promoted as the first champion,
a properly trained challenger must replace it, and a weak challenger must then be refused. The production
pointer of the session is restored afterwards.
"""

from __future__ import annotations

import contextlib
import io
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest
from conftest import run_models

from feature_repo.forecast_log import ForecastLogBuffer, ServedForecasts, log_forecasts, read_forecast_log
from feature_repo.store import open_store, read_table, registered_parks, write_table
from pvcast.contract import run_session
from pvcast.model_store import MODEL_NAME, PRODUCTION
from pvcast.schema import WEATHER_VIEW
from pvcast.settings import StoreConfig
from training.cli import main
from training.config import ModelConfig, TrainConfig
from training.dataset import build_dataset, issue_times
from training.evaluate import sun_up
from training.metrics import score
from training.mlops.tracking import list_runs

pytestmark = [pytest.mark.integration]
model_store = run_models()

DAYS = 60
SMALL = [
    "--hidden-size",
    "8",
    "--epochs",
    "3",
    "--issue-every-hours",
    "6",
    "--test-days",
    "7",
    "--validation-days",
    "7",
]
WEAK = ["--hidden-size", "8", "--epochs", "1", "--issue-every-hours", "6", "--test-days", "7", "--validation-days", "7"]


@dataclass(frozen=True)
class Loop:
    config: StoreConfig
    end: pd.Timestamp
    tracking: str
    out: Path
    weak: str  # the first champion
    better: dict[str, Any]  # decision of the good challenger
    worse: dict[str, Any]  # decision of the weak challenger


def cli(loop_or_config: Any, *args: str) -> int:
    config = loop_or_config.config if isinstance(loop_or_config, Loop) else loop_or_config
    return main(["--repo", str(config.repo_path), *args])


@pytest.fixture(scope="module")
def restore_production() -> Iterator[None]:
    before = model_store.production_version()
    yield
    pointer = model_store.home / "models" / MODEL_NAME / PRODUCTION
    if before is None:
        pointer.unlink(missing_ok=True)
    else:
        model_store.promote(before)


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory, restore_production: None) -> Loop:
    from training.jobs import build_demo_store
    from training.pipeline import train_and_register

    root = tmp_path_factory.mktemp("mlops")
    config = StoreConfig(repo_path=root / "store")
    end = pd.Timestamp.now(tz="UTC").floor("15min")
    build_demo_store(config, end, days=DAYS, seed=11)
    weak_config = TrainConfig(
        model=ModelConfig(hidden_size=8),
        max_epochs=1,
        learning_rate=1e-7,
        issue_every_hours=6,
        test_days=7,
        validation_days=7,
    )
    weak = train_and_register(open_store(config), config, weak_config, model_store, promote=True).tag
    tracking = f"sqlite:///{root / 'mlflow' / 'mlflow.db'}"
    (root / "mlflow").mkdir()
    out = root / "reports"
    common = ["--tracking-uri", tracking, "--out", str(out), "--json", "--window-days", "90"]
    decisions = []
    for options in (SMALL, WEAK):  # WEAK is SMALL stopped after its first epoch: it cannot be 2 % better
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            assert cli(config, "retrain", *options, *common) == 0
        decisions.append(json.loads(buffer.getvalue()))
    return Loop(config, end, tracking, out, weak, decisions[0], decisions[1])


def test_a_better_challenger_is_promoted_and_a_worse_one_refused(loop: Loop) -> None:
    better, worse = loop.better, loop.worse
    assert better["champion"] == loop.weak and better["promoted"], better["reason"]
    new = better["scores"]["challenger"]["overall"]["pinball_mean_pct"]
    old = better["scores"]["champion"]["overall"]["pinball_mean_pct"]
    assert new < 0.98 * old
    assert worse["champion"] == better["challenger"] and not worse["promoted"], worse["reason"]
    assert "< the required 2 %" in worse["reason"] or "worse (>" in worse["reason"]
    assert model_store.resolve("production") == better["challenger"]
    assert better["window"] == worse["window"]  # both judged on the same held-out window
    assert set(better["scores"]["challenger"]["parks"]) == {p.park_id for p in registered_parks(loop.config)}


def test_each_model_carries_its_mlflow_run_and_the_runs_record_decisions(
    loop: Loop, capsys: pytest.CaptureFixture[str]
) -> None:
    import bentoml

    model = bentoml.models.get(loop.better["challenger"])
    assert model.info.labels["mlflow_run_id"] == loop.better["mlflow_run_id"]
    assert model_store.metadata_of(loop.better["challenger"]).training["mlflow_run_id"] == loop.better["mlflow_run_id"]
    runs = list_runs(loop.tracking)
    assert [r["decision"] for r in runs] == ["refused", "promoted"]  # newest first
    assert [r["run_id"] for r in runs] == [loop.worse["mlflow_run_id"], loop.better["mlflow_run_id"]]
    assert all(len(r["data_sha256"]) == 64 for r in runs)
    assert runs[0]["data_sha256"] == runs[1]["data_sha256"]  # same data window, same content
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=loop.tracking)
    run = client.get_run(loop.better["mlflow_run_id"])
    assert run.data.params["feature_service"] == "pv_forecast_v1"
    assert run.data.params["data.test.start"] == loop.better["window"]["start"]
    assert "champion.pinball_mean_pct" in run.data.metrics and "challenger.pinball_mean_pct" in run.data.metrics
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert "decision.json" in artifacts and any(a.endswith(".png") for a in artifacts)
    assert cli(loop, "runs", "--tracking-uri", loop.tracking) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and "refused" in lines[0] and "promoted" in lines[1]


def test_promote_rolls_back_and_forward_by_hand(loop: Loop, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(loop, "promote", "--to", loop.weak.split(":")[1]) == 0
    assert model_store.production_version() == loop.weak.split(":")[1]
    assert cli(loop, "promote", "--to", loop.better["challenger"]) == 0
    assert model_store.resolve("production") == loop.better["challenger"]
    assert capsys.readouterr().out.count("production ->") == 2


def test_the_production_pointer_is_cheap_to_poll_and_never_seen_half_written(loop: Loop) -> None:
    """The hot-reload contract: a poller reading `production_version()` while promotions happen only ever sees
    a complete version string, and a poll costs well under a millisecond."""
    versions = [loop.weak.split(":")[1], loop.better["challenger"].split(":")[1]]
    seen: set[str | None] = set()
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            seen.add(model_store.production_version())

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        for i in range(10):
            model_store.promote(versions[i % 2])
    finally:
        stop.set()
        poller.join()
    assert seen == set(versions)
    started = time.perf_counter()
    for _ in range(1000):
        model_store.production_version()
    assert time.perf_counter() - started < 1.0
    assert model_store.resolve("production") == loop.better["challenger"]


# --- accuracy on logged forecasts ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def logged(loop: Loop) -> dict[str, Any]:
    """Real forecasts of the production model for the last 3 days, logged through the forecast-log writer."""
    loaded = model_store.load("production")
    parks = [p.park_id for p in registered_parks(loop.config)]
    spec = TrainConfig(horizon_steps=loaded.metadata.horizon_steps).spec
    times = issue_times(loop.end - pd.Timedelta(days=3), loop.end - pd.Timedelta(days=1), 6)
    data = build_dataset(open_store(loop.config), loop.config, parks, times, spec)
    pred = run_session(loaded.session, data.features, data.capacity_ac_kw)
    batch = ServedForecasts(
        park_id=list(data.park_id),
        issued_at=data.issued_at,
        valid_time=data.valid_time,
        quantiles_kw=pred,
        quantile_levels=loaded.metadata.quantiles,
        capacity_ac_kw=data.capacity_ac_kw,
        model_version=loaded.version,
    )
    half = len(data) // 2
    log_forecasts(loop.config, _part(batch, slice(0, half)))
    buffer = ForecastLogBuffer(loop.config, max_rows=10**9, max_seconds=3600)
    buffer.add(_part(batch, slice(half, None)))
    assert read_forecast_log(loop.config).shape[0] == half * data.valid_time.shape[1]  # buffered, not yet written
    buffer.close()
    log_forecasts(loop.config, _part(batch, slice(0, 2)))  # a repeated write is harmless
    return {"data": data, "pred": pred, "quantiles": loaded.metadata.quantiles, "version": loaded.version}


def _part(batch: ServedForecasts, rows: slice) -> ServedForecasts:
    return ServedForecasts(
        list(batch.park_id)[rows],
        batch.issued_at[rows],
        batch.valid_time[rows],
        batch.quantiles_kw[rows],
        batch.quantile_levels,
        batch.capacity_ac_kw[rows],
        batch.model_version,
    )


def test_the_forecast_log_holds_what_was_served(loop: Loop, logged: dict[str, Any]) -> None:
    data, pred = logged["data"], logged["pred"]
    log = read_forecast_log(loop.config)
    assert len(log) == pred.shape[0] * pred.shape[1]
    assert set(log["model_version"]) == {logged["version"]}
    first = log[
        (log["park_id"] == data.park_id[0])
        & (log["issued_at"] == pd.Timestamp(int(data.issued_at[0]), unit="s", tz="UTC"))
    ]
    np.testing.assert_allclose(np.stack(first["quantiles_kw"].to_numpy()), pred[0], rtol=1e-6)
    assert (first["valid_time"].astype("int64") // 10**6).tolist() == data.valid_time[0].tolist()
    assert first["quantile_levels"].iloc[0].tolist() == logged["quantiles"]
    parts = list((loop.config.data_dir / "forecast_log").glob("date=*/part-*.parquet"))
    assert len(parts) >= 3 and all(p.parent.name.startswith("date=") for p in parts)


def test_monitor_accuracy_scores_logged_forecasts_like_the_offline_evaluation(
    loop: Loop, logged: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, pred = logged["data"], logged["pred"]
    last = pd.Timestamp(int(data.valid_time.max()) + 900, unit="s", tz="UTC")
    days = (last - pd.Timestamp(int(data.valid_time.min()), unit="s", tz="UTC")) / pd.Timedelta(days=1)
    prom = tmp_path / "accuracy.prom"
    window = ["--end", last.isoformat(), "--days", str(days), "--max-coverage-pct", "100"]  # a small, wide model
    args = ["monitor", "accuracy", *window, "--prom-file", str(prom), "--json"]
    assert cli(loop, *args) == 0
    report = json.loads(capsys.readouterr().out.split("\nmetrics:")[0])
    for park in report["parks"]:
        mask = data.park_id == park["park_id"]
        expected = score(
            pred[mask], data.target_kw[mask], data.capacity_ac_kw[mask], sun_up(data)[mask], logged["quantiles"]
        )
        assert park["pinball_pct"] == pytest.approx(expected["pinball_mean_pct"], rel=1e-4)
        assert park["nmae_pct"] == pytest.approx(expected["nmae_day_pct"], rel=0.15)  # daylight defined differently
        assert 40 < park["coverage_pct"] <= 100 and park["forecasts"] == mask.sum()
        assert not park["breach"]
    assert {d["day"] for d in report["daily"]} >= {(loop.end - pd.Timedelta(days=2)).strftime("%Y-%m-%d")}
    text = prom.read_text()
    assert 'pvcast_accuracy_pinball_pct{park_id="synthetic-greensboro"}' in text
    assert 'pvcast_job_breaches{job="pvcast_monitor_accuracy"} 0.0' in text

    assert cli(loop, *args[:-1], "--max-nmae-pct", "0.5") == 1  # a threshold nobody meets
    assert "BREACH: nMAE" in capsys.readouterr().out
    assert 'pvcast_job_breaches{job="pvcast_monitor_accuracy"} 3.0' in prom.read_text()


class _Gateway(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, str, bytes]]] = []

    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append(("PUT", self.path, body))
        self.send_response(202)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def pushgateway() -> Iterator[str]:
    """A local HTTP endpoint that records what prometheus_client pushes (a Pushgateway cannot run here)."""
    _Gateway.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Gateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


# --- drift (last: it shifts the store's recent weather) ------------------------------------------------


def test_drift_passes_unshifted_features_and_flags_shifted_ones(
    loop: Loop, pushgateway: str, capsys: pytest.CaptureFixture[str]
) -> None:
    reference = model_store.metadata_of("production").reference
    assert reference["values"] > 10_000 and set(reference["features"]) >= {"clearsky_index", "measured_csi"}
    drift = ["monitor", "drift", "--end", loop.end.isoformat(), "--json"]  # 14 days, issued every 6 h as trained
    assert cli(loop, *drift, "--pushgateway", pushgateway) == 0
    report = json.loads(capsys.readouterr().out.split("\nmetrics:")[0])
    assert [f["feature"] for f in report["features"]] == ["clearsky_index", "cloud_cover", "weather_lead"]
    assert report["breaches"] == 0 and all(f["psi"] < 0.2 for f in report["features"]), report["features"]
    assert 3 * 14 * 4 <= report["forecasts"] <= 3 * (14 * 4 + 1)
    method, path, body = _Gateway.received[-1]
    assert (method, path) == ("PUT", "/metrics/job/pvcast_monitor_drift")
    assert b'pvcast_drift_psi{feature="clearsky_index"}' in body

    weather = read_table(loop.config, WEATHER_VIEW)
    recent = weather["issued_at"] >= loop.end - pd.Timedelta(days=8)
    for name in ("ghi", "dni", "dhi"):  # e.g. a feed that switched units, or heavy soiling of the sensor
        weather.loc[recent, name] = weather.loc[recent, name].map(lambda a: (np.asarray(a) * 0.5).astype(np.float32))
    write_table(loop.config, WEATHER_VIEW, weather)
    assert cli(loop, *drift) == 1
    report = json.loads(capsys.readouterr().out)
    flagged = {f["feature"]: f for f in report["features"] if f["breach"]}
    assert set(flagged) == {"clearsky_index"} and flagged["clearsky_index"]["psi"] > 0.2
