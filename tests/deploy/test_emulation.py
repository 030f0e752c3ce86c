"""Local cluster emulation: what the Kubernetes deployment promises, proven with real processes on one machine.

Three `bentoml serve` replicas (separate ports, one shared store folder and model store, one real Redis online
store in its own database) behind a local nginx acting as the ingress, loaded by Locust in its own process:

  (a) every replica gives the same answer to the same request, and the balancer spreads the load;
  (b) killing a replica (SIGKILL) during a Locust run loses no request: nginx retries on another replica;
  (c) replacing the replicas one by one with a newly promoted model version during a Locust run fails no
      request, and the answers switch to the new `model_version`.

A replacement is drained first (marked `down`, nginx reloaded) and readmitted after its /readyz, as the
Kubernetes endpoints controller does with readiness probes. Locust's statistics of each run are printed.
The latency objective is NOT asserted here (2 shared cores host three replicas, their restarts, nginx and
Locust); `make loadtest` measures it against a real deployment.

Settings: PVCAST_EMULATION_REDIS_URL (default: PVCAST_TEST_REDIS_URL with database 14; flushed).
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import shutil
import signal
import string
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

import httpx
import pandas as pd
import psutil
import pytest
import redis
from conftest import _BENTOML_HOME, REPO_ROOT, free_port, start_service, stop_service

from service.launch import wait_ready

# The timeout covers the session's `trained` fixture when this module is the first to need it (~4 min idle, far
# more on a machine shared with other jobs); the three proofs themselves take about 5 minutes.
pytestmark = [pytest.mark.emulation, pytest.mark.integration, pytest.mark.http, pytest.mark.timeout(2400)]

HERE = Path(__file__).resolve().parent
LOCUSTFILE = REPO_ROOT / "loadtests" / "locustfile.py"
LOADTEST_KEY = "pvc_emulation-loadtest-key"
REPLICAS = 3


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if found is None:
        message = "nginx is not installed (`make nginx` installs the Debian package)"
        if os.environ.get("CI"):
            pytest.fail(message + " — required on CI")
        pytest.skip("SKIPPED FOR MISSING NGINX: " + message)
    return found


def emulation_redis_url() -> str:
    if os.environ.get("PVCAST_EMULATION_REDIS_URL"):
        return os.environ["PVCAST_EMULATION_REDIS_URL"]
    parsed = urlparse(os.environ.get("PVCAST_TEST_REDIS_URL", "redis://127.0.0.1:6379/15"))
    return urlunparse(parsed._replace(path="/14"))


@dataclass
class Replica:
    port: int
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Cluster:
    env: dict[str, str]
    replicas: list[Replica]
    nginx: str
    prefix: Path
    port: int
    park_ids: list[str]
    bentoml_home: Path
    drained: set[int] = field(default_factory=set)
    nginx_proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start_replica(self, i: int) -> subprocess.Popen[bytes]:
        replica = self.replicas[i]
        replica.proc = start_service(self.env, replica.port, replica.log)
        return replica.proc

    def wait_replica(self, i: int) -> None:
        replica = self.replicas[i]
        assert replica.proc is not None
        wait_ready(replica.proc, replica.url, replica.log, timeout=300)

    def write_nginx_conf(self) -> Path:
        servers = "\n".join(
            f"        server 127.0.0.1:{r.port} max_fails=1 fail_timeout=5s{' down' if i in self.drained else ''};"
            for i, r in enumerate(self.replicas)
        )
        template = string.Template((HERE / "nginx.conf.template").read_text())
        conf = self.prefix / "nginx.conf"
        conf.write_text(template.substitute(prefix=self.prefix, servers=servers, port=self.port))
        return conf

    def start_nginx(self) -> None:
        conf = self.write_nginx_conf()
        cmd = [self.nginx, "-p", str(self.prefix), "-c", str(conf), "-e", str(self.prefix / "error.log")]
        subprocess.run([*cmd, "-t"], check=True, capture_output=True)
        self.nginx_proc = subprocess.Popen(cmd, start_new_session=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{self.url}/livez", timeout=2)
                return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError("nginx did not start:\n" + (self.prefix / "error.log").read_text())

    def reload_nginx(self) -> None:
        """Graceful reconfiguration: old workers finish their requests, new ones use the new upstream list."""
        conf = self.write_nginx_conf()
        subprocess.run([self.nginx, "-p", str(self.prefix), "-c", str(conf), "-t"], check=True, capture_output=True)
        assert self.nginx_proc is not None
        self.nginx_proc.send_signal(signal.SIGHUP)
        time.sleep(1.0)  # the new workers take over

    def replace_replica(self, i: int) -> float:
        """Drain, stop, start, wait for /readyz, readmit (a rolling update of one pod). Returns seconds taken."""
        started = time.monotonic()
        self.drained.add(i)
        self.reload_nginx()
        proc = self.replicas[i].proc
        if proc is not None:
            stop_replica(proc)
        self.start_replica(i)
        self.wait_replica(i)
        self.drained.discard(i)
        self.reload_nginx()
        return time.monotonic() - started

    def stop(self) -> None:
        if self.nginx_proc is not None and self.nginx_proc.poll() is None:
            self.nginx_proc.send_signal(signal.SIGQUIT)
            try:
                self.nginx_proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.nginx_proc.pid, signal.SIGKILL)
        for replica in self.replicas:
            if replica.proc is not None:
                stop_replica(replica.proc)


def stop_replica(proc: subprocess.Popen[bytes]) -> None:
    """Graceful stop (SIGTERM: BentoML drains and stops its workers), then no worker may outlive its server."""
    try:
        workers = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        workers = []
    stop_service(proc)
    for worker in workers:  # psutil refuses to signal a reused pid
        with contextlib.suppress(psutil.NoSuchProcess):
            worker.kill()


def kill_tree(pid: int) -> None:
    """SIGKILL a replica as a node failure would: the server and its workers (BentoML starts each worker in a
    session of its own, so killing the process group alone leaves them serving)."""
    parent = psutil.Process(pid)
    for proc in [*parent.children(recursive=True), parent]:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()


def keys_json() -> str:
    from pvcast.keys import hash_key

    return json.dumps([{"name": "loadtest", "sha256": hash_key(LOADTEST_KEY), "scopes": ["read", "write", "admin"]}])


def redis_store(demo_store: Any, tmp: Path, url: str) -> Path:
    """A copy of the demo store whose online store is Redis (database 14), materialized up to now."""
    from feature_repo.store import init_store, materialize
    from pvcast.settings import StoreConfig

    folder = tmp / "store"
    shutil.copytree(demo_store.config.repo_path, folder, ignore=shutil.ignore_patterns("online_store.db"))
    config = StoreConfig(repo_path=folder, online="redis", redis_url=url)
    materialize(init_store(config), pd.Timestamp.now(tz="UTC"))
    return folder


@pytest.fixture(scope="module")
def cluster(trained: Any, demo_store: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    from feature_repo.store import registered_parks

    nginx = nginx_binary()
    url = emulation_redis_url()
    client = redis.Redis.from_url(url)
    client.flushdb()
    tmp = tmp_path_factory.mktemp("emulation")
    store = redis_store(demo_store, tmp, url)
    home = tmp / "bentoml"
    shutil.copytree(os.environ.get("BENTOML_HOME", _BENTOML_HOME), home)  # (c) must not move the session's pointer
    env = {
        "PVCAST_FEATURE_REPO": str(store),
        "PVCAST_ONLINE_STORE": "redis",
        "REDIS_URL": url,
        "PVCAST_API_KEYS": keys_json(),
        "BENTOML_HOME": str(home),
        "BENTOML_CONFIG_OPTIONS": "services.pvcast.workers=1",
        # (c) proves the rolling replacement; hot reload (tests/service/test_hot_reload.py) would switch the
        # replicas by itself and hide a broken rollout.
        "PVCAST_RELOAD_SECONDS": "0",
    }
    replicas = [Replica(port=free_port(), log=tmp / f"replica-{i}.log") for i in range(REPLICAS)]
    prefix = tmp / "nginx"
    prefix.mkdir()
    parks = [p.park_id for p in registered_parks(demo_store.config)]
    state = Cluster(env, replicas, nginx, prefix, free_port(), parks, home)
    try:
        for i in range(REPLICAS):
            state.start_replica(i)
        for i in range(REPLICAS):
            state.wait_replica(i)
        state.start_nginx()
        yield state
    finally:
        state.stop()
        client.flushdb()


# --- Locust -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LocustRun:
    exit_code: int
    rows: list[dict[str, str]]
    summary: dict[str, Any]
    output: str

    @property
    def total(self) -> dict[str, str]:
        return next(r for r in self.rows if r["Name"] == "Aggregated")

    @property
    def requests(self) -> int:
        return int(self.total["Request Count"])

    @property
    def failures(self) -> int:
        return int(self.total["Failure Count"])


def run_locust(
    cluster: Cluster, name: str, seconds: int, users: int, during: Callable[[subprocess.Popen[bytes]], None]
) -> LocustRun:
    """Locust as its own process (it monkey-patches the standard library) against the nginx ingress.

    ``during(proc)`` runs while Locust does (the disruption of the test); Locust then runs to its time limit,
    or stops earlier when ``during`` sends it SIGTERM.
    """
    out = cluster.prefix.parent / f"locust-{name}"
    out.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROMETHEUS_")} | {
        "PVCAST_API_KEY": LOADTEST_KEY,
        "PVCAST_PARK_IDS": ",".join(cluster.park_ids),
        "PVCAST_SLO_P95_MS": "60000",  # latency is not what these tests prove (module docstring)
        "PVCAST_MAX_FAIL_RATIO": "0",
        "PVCAST_LOCUST_SUMMARY": str(out / "summary.json"),
    }
    cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--only-summary", "--host",
           cluster.url, "-u", str(users), "-r", str(users), "-t", f"{seconds}s", "--csv", str(out / "stats"),
           "--html", str(out / "report.html"), "--stop-timeout", "10"]  # fmt: skip
    log = out / "locust.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT)
    try:
        during(proc)
        proc.wait(timeout=seconds + 120)
    finally:
        if proc.poll() is None:
            proc.kill()
    output = log.read_text(errors="replace")
    with (out / "stats_stats.csv").open() as f:
        rows = list(csv.DictReader(f))
    summary = json.loads((out / "summary.json").read_text())
    return LocustRun(proc.returncode, rows, summary, output)


def show(run: LocustRun, title: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Print the Locust statistics into the test output (also when the test passes)."""
    lines = [f"\n=== Locust: {title}", f"{'name':<22}{'requests':>10}{'failures':>10}{'p50 ms':>8}{'p95 ms':>8}"
             f"{'p99 ms':>8}{'max ms':>8}{'req/s':>8}"]  # fmt: skip
    for r in run.rows:
        lines.append(
            f"{r['Type'] + ' ' + r['Name'] if r['Type'] else r['Name']:<22}{r['Request Count']:>10}"
            f"{r['Failure Count']:>10}{r['50%']:>8}{r['95%']:>8}{r['99%']:>8}"
            f"{float(r['Max Response Time']):>8.0f}{float(r['Requests/s']):>8.1f}"
        )
    lines.append(f"endpoints in this API: {run.summary['endpoints']}; model versions seen: "
                 f"{ {v: s['count'] for v, s in run.summary['model_versions'].items()} }")  # fmt: skip
    with capsys.disabled():
        print("\n".join(lines))


def upstreams_in_log(cluster: Cluster, since: int = 0) -> dict[str, int]:
    """Requests per replica address in the nginx access log (from byte offset ``since``)."""
    text = (cluster.prefix / "access.log").read_text()[since:]
    counts: dict[str, int] = {}
    for addresses in re.findall(r"upstream=(\S+)", text):
        for address in addresses.split(","):
            counts[address.strip()] = counts.get(address.strip(), 0) + 1
    return counts


def forecast(url: str, park_id: str) -> dict[str, Any]:
    reply = httpx.post(
        f"{url}/forecast",
        json={"park_id": park_id, "horizon_hours": 24},
        headers={"Authorization": f"Bearer {LOADTEST_KEY}"},
        timeout=30,
    )
    assert reply.status_code == 200, reply.text
    answer: dict[str, Any] = reply.json()
    return answer


def production_version(cluster: Cluster) -> str:
    return (cluster.bentoml_home / "models" / "pvcast_forecaster" / "production").read_text().strip()


# --- the proofs -------------------------------------------------------------------------------------------


def test_a_every_replica_gives_the_same_answer(cluster: Cluster, capsys: pytest.CaptureFixture[str]) -> None:
    """(a) Stateless replicas on one online store: identical answers directly and through the balancer."""
    for park in cluster.park_ids:
        for _attempt in range(3):  # issued_at differs per call; a quarter-hour boundary may fall in between
            direct = [forecast(r.url, park) for r in cluster.replicas]
            answers = direct + [forecast(cluster.url, park) for _ in range(3)]  # through the balancer
            bodies = [{k: v for k, v in a.items() if k != "issued_at"} for a in answers]
            if all(b == bodies[0] for b in bodies):
                break
        assert all(b == bodies[0] for b in bodies), f"replicas disagree for {park}"
        assert bodies[0]["model_version"] == production_version(cluster)
        assert len(bodies[0]["forecast"]) == 96
    offset = (cluster.prefix / "access.log").stat().st_size
    run = run_locust(cluster, "baseline", seconds=15, users=8, during=lambda proc: None)
    show(run, "(a) baseline through nginx, 3 replicas", capsys)
    assert run.exit_code == 0, run.output[-3000:]
    assert run.failures == 0 and run.requests >= 60
    served = upstreams_in_log(cluster, offset)
    assert {f"127.0.0.1:{r.port}" for r in cluster.replicas} <= set(served), served


def test_b_killing_a_replica_loses_no_request(cluster: Cluster, capsys: pytest.CaptureFixture[str]) -> None:
    """(b) SIGKILL one replica mid-run: nginx retries its in-flight and refused requests on the others."""
    victim = cluster.replicas[1]
    assert victim.proc is not None
    errors_before = (cluster.prefix / "error.log").read_text()

    def kill(proc: subprocess.Popen[bytes]) -> None:
        time.sleep(8)
        assert victim.proc is not None
        kill_tree(victim.proc.pid)
        victim.proc.wait(timeout=10)

    run = run_locust(cluster, "kill", seconds=25, users=10, during=kill)
    show(run, f"(b) replica on :{victim.port} killed (SIGKILL, server and workers) after 8 s", capsys)
    assert victim.proc.poll() is not None, "the victim survived"
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{victim.url}/livez", timeout=2)
    retried = (cluster.prefix / "error.log").read_text()[len(errors_before) :]
    assert f"127.0.0.1:{victim.port}" in retried, "no request ever reached the dead replica: nothing was proven"
    assert run.exit_code == 0, run.output[-3000:]
    assert run.failures == 0 and run.requests >= 150
    cluster.replace_replica(1)  # back to three for (c)


def promote_new_version(cluster: Cluster) -> str:
    """A newly promoted model version: the production ONNX and metadata stored again as a new version."""
    code = (
        "from pvcast.model_store import ModelStore\n"
        "from pvcast.settings import PvcastSettings\n"
        "m = ModelStore(PvcastSettings().bentoml_home)\n"
        "loaded = m.load('production')\n"
        "tag = m.save(loaded.path, loaded.metadata, labels={'source': 'tests/deploy re-save'})\n"
        "print(m.promote(tag))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROMETHEUS_")} | {
        "BENTOML_HOME": str(cluster.bentoml_home)
    }
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.strip().splitlines()[-1].split(":", 1)[1]


def test_c_rolling_promotion_fails_no_request(cluster: Cluster, capsys: pytest.CaptureFixture[str]) -> None:
    """(c) Promote a new version, replace the replicas one by one under load: no failure, answers switch."""
    old = production_version(cluster)
    new = promote_new_version(cluster)
    assert new != old and production_version(cluster) == new
    timings: list[float] = []
    switched_at: list[float] = []

    def roll(proc: subprocess.Popen[bytes]) -> None:
        time.sleep(5)
        for i in range(REPLICAS):
            timings.append(cluster.replace_replica(i))
        switched_at.append(time.time())
        time.sleep(8)  # steady traffic on the new version only
        proc.send_signal(signal.SIGTERM)  # Locust stops, writes its statistics and runs its quitting hook

    run = run_locust(cluster, "rollout", seconds=400, users=8, during=roll)
    show(run, f"(c) rolling replacement {old} -> {new} ({', '.join(f'{t:.0f} s' for t in timings)} per replica)",
         capsys)  # fmt: skip
    assert run.exit_code == 0, run.output[-3000:]
    assert run.failures == 0 and run.requests >= 100
    versions = run.summary["model_versions"]
    assert set(versions) == {old, new}, versions
    assert versions[old]["last"] <= switched_at[0] < versions[new]["last"], versions
    for replica in cluster.replicas:
        assert forecast(replica.url, cluster.park_ids[0])["model_version"] == new
