"""Hot reload (issue 5): a running service follows promotions without failing a request, refuses a model that
fails its checks, exports the served version, and logs the forecasts it serves to the offline store.

The service runs over its own copy of the model store (BENTOML_HOME), of the demo feature store and its own
Redis database (the test database's number − 3, flushed), so neither the promotions here nor what other tests
left in Redis (e.g. a park deleted through the API, which older metadata cannot overwrite) cross over.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import pandas as pd
import pytest
import redis
from api_fixtures import READ, copy_store, serve
from conftest import REPO_ROOT, run_models, stop_service

from pvcast.model_store import MODEL_NAME, PRODUCTION
from service.forecaster import ModelHandle, ServedModel
from service.housekeeping import ModelRefusedError, Reloader, prepare

pytestmark = [pytest.mark.integration, pytest.mark.http]

PARKS = ["synthetic-greensboro", "synthetic-miami", "synthetic-sandpoint"]


def own_database(redis_url: str, offset: int = 3) -> str:
    parsed = urlparse(redis_url)
    db = int(parsed.path.strip("/") or 0)
    return parsed._replace(path=f"/{(db - offset) % 16}").geturl()


def in_home(home: Path, code: str) -> str:
    """Run ``code`` in a Python process whose BentoML model store is ``home``; its stdout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROMETHEUS_")} | {"BENTOML_HOME": str(home)}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip().splitlines()[-1]


@dataclass
class Reloading:
    url: str
    home: Path
    store: Any
    log: Path
    proc: subprocess.Popen[bytes]
    versions: dict[str, str] = field(default_factory=dict)


@pytest.fixture(scope="module")
def reloading(
    trained: Any, demo_store: Any, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Reloading]:
    root = tmp_path_factory.mktemp("reload")
    home = root / "bentoml"
    shutil.copytree(os.environ["BENTOML_HOME"], home)
    # A second good version (the same graph saved again: a new version to promote) and a broken one.
    copy = in_home(
        home,
        "from pvcast.model_store import ModelStore; from pvcast.settings import PvcastSettings; "
        "m = ModelStore(PvcastSettings().bentoml_home); l = m.load('production'); print(m.save(l.path, l.metadata))",
    )
    broken_file = root / "broken.onnx"
    broken_file.write_bytes(b"not an onnx graph")
    broken = in_home(
        home,
        "from pathlib import Path; from pvcast.model_store import ModelStore; "
        "from pvcast.settings import PvcastSettings; m = ModelStore(PvcastSettings().bentoml_home); "
        f"print(m.save(Path({str(broken_file)!r}), m.metadata_of('production')))",
    )
    url = own_database(redis_url)
    redis.Redis.from_url(url).flushdb()
    config = copy_store(demo_store, root / "store", url)
    extra = {
        "BENTOML_HOME": str(home),
        "PVCAST_RELOAD_SECONDS": "0.5",
        "PVCAST_FORECAST_LOG_FLUSH_SECONDS": "1",
        "PVCAST_RATE_PER_SECOND": "100000",  # the hammer is not a rate-limit test
        "PVCAST_RATE_BURST": "100000",
    }
    proc, service_url = serve(config, url, root / "serve.log", extra)
    versions = {
        "first": trained.tag.split(":", 1)[1],
        "second": copy.split(":", 1)[1],
        "broken": broken.split(":", 1)[1],
    }
    try:
        yield Reloading(service_url, home, config, root / "serve.log", proc, versions)
    finally:
        stop_service(proc)
        redis.Redis.from_url(url).flushdb()


@dataclass
class Hammer:
    """Threads sending single and batch forecasts as fast as they can, counting outcomes and versions."""

    url: str
    threads: int = 3
    statuses: Counter[int] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)  # model_version of every answer, in completion order
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, worker: int) -> None:
        headers = {"Authorization": f"Bearer {READ}"}
        with httpx.Client(base_url=self.url, headers=headers, timeout=30) as client:
            i = 0
            while not self._stop.is_set():
                i += 1
                try:
                    if (i + worker) % 4:
                        r = client.post("/forecast", json={"park_id": PARKS[i % 3], "horizon_hours": 6})
                        versions = [r.json()["model_version"]] if r.status_code == 200 else []
                    else:
                        r = client.post("/forecast/batch", json={"park_ids": PARKS, "horizon_hours": 6})
                        versions = [x["model_version"] for x in r.json()["results"]] if r.status_code == 200 else []
                except Exception as exc:  # a dropped connection is a failed request
                    with self._lock:
                        self.errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                with self._lock:
                    self.statuses[r.status_code] += 1
                    self.seen.extend(versions)

    def __enter__(self) -> Hammer:
        self._threads = [threading.Thread(target=self.run, args=(w,), daemon=True) for w in range(self.threads)]
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=60)

    def wait_for(self, version: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if version in self.seen[-20:]:
                    return
            time.sleep(0.1)
        raise AssertionError(f"answers never switched to {version}; last: {self.seen[-3:]}")


def promote(home: Path, version: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROMETHEUS_")} | {"BENTOML_HOME": str(home)}
    pvcast = Path(sys.executable).with_name("pvcast")
    subprocess.run([str(pvcast), "promote", "--to", version], cwd=REPO_ROOT, env=env, check=True, capture_output=True)


def metric_lines(url: str, name: str) -> list[str]:
    return [line for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines() if line.startswith(name)]


def test_promotion_under_load_swaps_the_model_with_zero_failed_requests(reloading: Reloading) -> None:
    first, second = reloading.versions["first"], reloading.versions["second"]
    with Hammer(reloading.url) as hammer:
        hammer.wait_for(first)
        time.sleep(1.0)
        promote(reloading.home, second)
        hammer.wait_for(second)
        time.sleep(1.5)
    print(f"\nhot reload under load: {dict(hammer.statuses)}, {len(hammer.seen)} park answers, errors={hammer.errors}")
    assert hammer.errors == []
    assert set(hammer.statuses) == {200}, hammer.statuses
    assert hammer.seen[0] == first and hammer.seen[-1] == second
    switched = hammer.seen.index(second)
    assert set(hammer.seen[:switched]) == {first} and set(hammer.seen[switched:]) == {second}  # one clean switch
    assert any(f'version="{second}"}} 1.0' in line for line in metric_lines(reloading.url, "pvcast_model_info{"))
    assert any(f'version="{first}"}} 0.0' in line for line in metric_lines(reloading.url, "pvcast_model_info{"))
    trained_at = metric_lines(reloading.url, "pvcast_model_trained_timestamp_seconds ")
    assert trained_at and abs(float(trained_at[0].split()[-1]) - time.time()) < 7 * 86400


def test_a_broken_promotion_is_refused_and_the_old_model_keeps_serving(reloading: Reloading) -> None:
    serving = httpx.post(
        f"{reloading.url}/forecast", json={"park_id": PARKS[0]}, headers={"Authorization": f"Bearer {READ}"}
    ).json()["model_version"]
    broken = reloading.versions["broken"]
    # `pvcast promote` refuses it (it loads the model first), so the pointer is moved the way a faulty tool
    # or a hand edit would: directly.
    pointer = reloading.home / "models" / MODEL_NAME / PRODUCTION
    pointer.write_text(broken)
    with Hammer(reloading.url, threads=2) as hammer:
        deadline = time.monotonic() + 20
        while not metric_lines(reloading.url, 'pvcast_model_reloads_total{outcome="refused"}'):
            assert time.monotonic() < deadline, "the broken model was never checked"
            time.sleep(0.25)
        time.sleep(1.0)
    assert hammer.errors == [] and set(hammer.statuses) == {200}, (hammer.statuses, hammer.errors)
    assert set(hammer.seen) == {serving}
    assert f"refusing model {broken}" in reloading.log.read_text(errors="replace")
    pointer.write_text(serving)


def test_served_forecasts_are_logged_to_the_offline_store(reloading: Reloading) -> None:
    from feature_repo.forecast_log import read_forecast_log

    # The service logs a park's first forecast in each 15-minute issue slot (the hammer tests may have been it).
    before = pd.Timestamp.now(tz="UTC").floor("15min")
    with httpx.Client(base_url=reloading.url, headers={"Authorization": f"Bearer {READ}"}, timeout=30) as client:
        assert client.post("/forecast/batch", json={"park_ids": PARKS, "horizon_hours": 2}).status_code == 200
    deadline = time.monotonic() + 20
    while True:
        log = read_forecast_log(reloading.store, start=before, by="issued_at")
        if set(log["park_id"]) >= set(PARKS) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    recent = log[log["issued_at"] >= before]
    assert set(recent["park_id"]) >= set(PARKS)
    per_forecast = recent.groupby(["park_id", "issued_at"]).size()
    assert (per_forecast == 96).all()  # the whole served horizon, not only the requested 2 h
    assert set(recent["model_version"]) <= {reloading.versions["first"], reloading.versions["second"]}


def test_reloader_ignores_the_served_version_and_refuses_an_unknown_one_once(trained: Any) -> None:
    models = run_models()
    loaded = models.load(trained.tag)
    handle = ModelHandle(ServedModel.of(loaded))
    pointer = {"value": loaded.version}
    reloader = Reloader(handle, models, pointer=lambda: pointer["value"])
    assert reloader.poll() is None and handle.current.loaded is loaded
    pointer["value"] = "doesnotexist0000"
    assert reloader.poll() is None and reloader.refused == {"doesnotexist0000"}
    assert reloader.poll() is None and handle.current.loaded is loaded
    with pytest.raises(ModelRefusedError):
        prepare(models, "doesnotexist0000", threads=1)
