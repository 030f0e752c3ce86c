"""The serving benchmark: ``make bench-serve`` (``python -m service.bench``). Self-contained and reproducible.

1. A model with the default architecture (what production runs; its accuracy does not matter here) is trained
   on a short synthetic demo into a throwaway BentoML home — or ``--bentoml-home`` with a production model.
2. A SYNTHETIC population of 100, then 1,000 parks (fresh weather run, recent telemetry) is written to a
   throwaway store and materialized into the real Redis (database ``--redis-db``, flushed before and after).
3. ``bentoml serve`` of the forecast service runs against it; a separate process (``service.bench.load``)
   drives it open-loop at fixed rates. Measured: one park (24 h, 15 min, 3 quantiles) at 100 requests/s and a
   rate sweep; batch calls of 100 and 1,000 parks; telemetry throughput and the "exactly N distinct rows after
   a burst with duplicates and out-of-order rows" check; peak RSS of the service's processes.
4. The same load on a trivial BentoML endpoint (``service.bench.floor``): the framework's own floor.

Prints a table and writes ``bench-serve.json``. Needs a Redis (REDIS_URL, default redis://127.0.0.1:6379).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import psutil
import redis
from pydantic import Field

from feature_repo.store import init_store, materialize, read_table, write_table
from pvcast.keys import hash_key
from pvcast.schema import GENERATION_VIEW, PARK_VIEW, WEATHER_VIEW
from pvcast.settings import PvcastSettings, StoreConfig, child_environment
from service.bench import population
from service.bench.load import LoadStats
from service.launch import ServiceStartError, stop_group, wait_ready

logger = logging.getLogger("pvcast.bench")


class BenchSettings(PvcastSettings):
    """The serving benchmark's own setting: the Redis it flushes and fills (a database is chosen by option)."""

    bench_redis_url: str = Field(default="redis://127.0.0.1:6379", validation_alias="BENCH_REDIS_URL")


KEY = "pvc_bench-key"
RATES = (100, 125, 150, 200, 250, 300, 400, 500, 600, 800)
QUARTER = 900
PVCAST_CLI = "import sys; from training.cli import main; sys.exit(main())"  # the `pvcast` command


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RssSampler:
    """Peak resident memory of a process tree [MB], sampled every 0.2 s in a thread."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak_mb, self._stop = pid, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            try:
                root = psutil.Process(self.pid)
                total = sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])
            except psutil.Error:
                continue
            self.peak_mb = max(self.peak_mb, total / 2**20)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return round(self.peak_mb, 1)


@contextmanager
def serving(target: str, env: dict[str, str], log: Path) -> Iterator[tuple[str, RssSampler]]:
    """``bentoml serve target`` on a free port until the block ends; yields its URL and an RSS sampler."""
    port = free_port()
    clean = child_environment(env)
    cmd = [sys.executable, "-m", "bentoml", "serve", target, "--port", str(port)]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env=clean, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    sampler = RssSampler(proc.pid)
    try:
        try:
            wait_ready(proc, url, log, timeout=240)
        except ServiceStartError as exc:
            raise SystemExit(str(exc)) from None
        yield url, sampler
    finally:
        sampler.stop()
        stop_group(proc)


def load(url: str, bodies: list[Any], rate: float, seconds: float) -> LoadStats:
    """Run the load generator in its own process (so it does not share the service's interpreter)."""
    spec = {
        "url": url,
        "bodies": bodies,
        "rate": rate,
        "seconds": seconds,
        "headers": {"Authorization": f"Bearer {KEY}"},
    }
    out = subprocess.run(
        [sys.executable, "-m", "service.bench.load"], input=json.dumps(spec), capture_output=True, text=True, check=True
    )
    return LoadStats(**json.loads(out.stdout))


def train_model(home: Path, work: Path) -> None:
    """A model of the default architecture on 21 synthetic days, 1 epoch: what it costs to serve, not to fit."""
    logger.info("training a benchmark model (default architecture, 1 epoch) into %s", home)
    cmd = [sys.executable, "-c", PVCAST_CLI, "--repo", str(work / "model_store"), "demo", "--days", "21"]
    cmd += ["--epochs", "1", "--test-days", "3", "--validation-days", "3", "--out", str(work / "reports")]
    done = subprocess.run(cmd, env=child_environment({"BENTOML_HOME": str(home)}), capture_output=True, text=True)
    if done.returncode:
        raise SystemExit("training the benchmark model failed:\n" + done.stderr[-3000:])


def build_store(folder: Path, redis_url: str, parks: list[Any], now: pd.Timestamp) -> StoreConfig:
    """The synthetic parks with a weather run issued an hour ago and an hour of telemetry 30 h old (the
    telemetry benchmark then sends the 25 h after it), materialized."""
    redis.Redis.from_url(redis_url).flushdb()
    config = StoreConfig(repo_path=folder, online="redis", redis_url=redis_url)
    store = init_store(config)
    write_table(config, PARK_VIEW, population.park_table(parks, now - pd.Timedelta(days=30)))
    write_table(config, WEATHER_VIEW, population.weather_runs(parks, now.floor("h") - pd.Timedelta(hours=1)))
    write_table(config, GENERATION_VIEW, population.telemetry(parks, now - pd.Timedelta(hours=30)))
    with contextlib.redirect_stdout(sys.stderr):  # Feast prints its progress
        materialize(store, now)
    return config


def service_env(config: StoreConfig, redis_url: str, home: Path, workers: int) -> dict[str, str]:
    keys = [
        {"name": "bench", "sha256": hash_key(KEY), "scopes": ["read", "write"], "rate_per_second": 1e6, "burst": 1e6}
    ]
    return {
        "BENTOML_HOME": str(home),
        "PVCAST_FEATURE_REPO": str(config.repo_path),
        "PVCAST_ONLINE_STORE": "redis",
        "REDIS_URL": redis_url,
        "PVCAST_API_KEYS": json.dumps(keys),
        "BENTOML_CONFIG_OPTIONS": f"services.pvcast.workers={workers}",
    }


def timed_calls(url: str, path: str, body: dict[str, Any], repeat: int) -> dict[str, float]:
    """Sequential calls from one client: median and max wall time [ms] (the first, warm-up call not counted)."""
    times = []
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}"}, timeout=120) as client:
        for i in range(repeat + 1):
            tic = time.perf_counter()
            response = client.post(path, json=body)
            response.raise_for_status()
            if i:
                times.append((time.perf_counter() - tic) * 1000)
    return {"median_ms": round(float(np.median(times)), 1), "max_ms": round(float(np.max(times)), 1)}


def sweep(url: str, bodies: list[Any], seconds: float) -> list[LoadStats]:
    results = []
    for rate in RATES:
        stats = load(url, bodies, rate, seconds)
        logger.info("  %4d req/s: %s", rate, stats)
        results.append(stats)
        if stats.p95_ms >= 200 or stats.ok < 0.9 * stats.sent:
            break
    return results


def max_rate(results: list[LoadStats]) -> float:
    good = [r.throughput_rps for r in results if r.p95_ms < 200 and r.errors == 0]
    return max(good, default=0.0)


def telemetry_burst(url: str, config: StoreConfig, parks: list[Any], now: pd.Timestamp) -> dict[str, Any]:
    """Pushes of 500 measurements (50 parks × 10 quarter hours, all new keys) from 4 concurrent clients for
    ~10 s, then a burst of repeats and shuffled rows: accepted/s, and the offline table holds exactly the
    distinct (park, valid_time) pairs sent."""
    ids = [p.park_id for p in parks]
    newest = int((pd.Timestamp.now(tz="UTC").floor("15min") - pd.Timedelta(minutes=15)).timestamp())
    payloads = []
    for block in range(200):  # the first round of 1,000 parks is the newest data (pushed online), then older
        chosen = ids[(block * 50) % len(ids) :][:50]
        base = newest - (block // max(1, len(ids) // 50)) * 10 * QUARTER
        rows = [
            {"park_id": p, "valid_time": _stamp(base - k * QUARTER), "power_kw": 1.0} for p in chosen for k in range(10)
        ]
        payloads.append({"measurements": rows})
    before = len(read_table(config, GENERATION_VIEW))
    tic = time.perf_counter()
    stats = load(url.replace("/forecast", "") + "/telemetry", payloads, rate=40, seconds=len(payloads) / 40)
    seconds = time.perf_counter() - tic
    distinct = {(r["park_id"], r["valid_time"]) for p in payloads for r in p["measurements"]}
    rng = np.random.default_rng(1)
    repeats = [payloads[i] for i in rng.choice(len(payloads), 40)]
    for payload in repeats:
        rows = payload["measurements"]
        payload["measurements"] = [rows[i] for i in rng.permutation(len(rows))]
    load(url.replace("/forecast", "") + "/telemetry", repeats, rate=20, seconds=2)
    resent = resend_all(url.replace("/forecast", "") + "/telemetry", payloads)
    after = read_table(config, GENERATION_VIEW)
    added = len(after) - before
    return {
        "rows_sent": sum(len(p["measurements"]) for p in payloads) + sum(len(p["measurements"]) for p in repeats),
        "distinct_rows_sent": len(distinct),
        "rows_added_offline": added,
        "exactly_distinct": added == len(distinct) and not after.duplicated(["park_id", "valid_time_epoch_s"]).any(),
        "rows_per_s": round(stats.ok * 500 / seconds, 0),
        "resent_after_burst": resent,
        "load": asdict(stats),
    }


def resend_all(url: str, payloads: list[dict[str, Any]]) -> dict[str, int]:
    """Every payload once more, one at a time, retrying a 503 as a client must: the burst's shed payloads get
    stored and the others count as duplicates, so the store must then hold each distinct row exactly once."""
    totals = {"accepted": 0, "duplicates": 0, "retries_after_503": 0}
    with httpx.Client(headers={"Authorization": f"Bearer {KEY}"}, timeout=120) as client:
        for payload in payloads:
            while (response := client.post(url, json=payload)).status_code == 503:
                totals["retries_after_503"] += 1
                time.sleep(float(response.headers.get("Retry-After", "1")))
            response.raise_for_status()
            body = response.json()
            totals["accepted"] += body["accepted"]
            totals["duplicates"] += body["duplicates"]
    return totals


def _stamp(seconds: int) -> str:
    return pd.Timestamp(seconds, unit="s", tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def single_bodies(parks: list[Any]) -> list[dict[str, Any]]:
    rng = np.random.default_rng(2)
    return [{"park_id": parks[i].park_id, "horizon_hours": 24} for i in rng.integers(0, len(parks), 997)]


def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="pvcast-bench-"))
    redis_url = f"{args.redis_url.rstrip('/')}/{args.redis_db}"
    try:
        home = args.bentoml_home
        if home is None:
            home = work / "bentoml"
            train_model(home, work)
        now = pd.Timestamp.now(tz="UTC")
        everyone = population.synthetic_parks(1000)
        report: dict[str, Any] = {
            "machine": {"cpus": os.cpu_count()},
            "seconds_per_rate": args.seconds,
            "workers": args.workers,
        }

        logger.info("100 parks materialized in Redis db %d", args.redis_db)
        config = build_store(work / "store100", redis_url, everyone[:100], now)
        env = service_env(config, redis_url, home, args.workers)
        with serving("service.service:PVCast", env, work / "serve100.log") as (
            url,
            rss,
        ):
            bodies = single_bodies(everyone[:100])
            load(f"{url}/forecast", bodies, 50, 3)  # warm-up (first requests fill caches), not counted
            report["single_100rps"] = asdict(load(f"{url}/forecast", bodies, 100, args.seconds))
            logger.info("single park at 100 req/s: %s", report["single_100rps"])
            report["sweep"] = [asdict(s) for s in sweep(f"{url}/forecast", bodies, args.seconds)]
            batch = {"park_ids": [p.park_id for p in everyone[:100]], "horizon_hours": 24}
            report["batch_100"] = timed_calls(url, "/forecast/batch", batch, 10)
            logger.info("batch of 100: %s", report["batch_100"])
        peak = rss.peak_mb

        logger.info("1,000 parks materialized in Redis db %d", args.redis_db)
        config = build_store(work / "store1000", redis_url, everyone, now)
        env = service_env(config, redis_url, home, args.workers)
        with serving("service.service:PVCast", env, work / "serve1000.log") as (
            url,
            rss,
        ):
            batch = {"park_ids": [p.park_id for p in everyone], "horizon_hours": 24}
            report["batch_1000"] = timed_calls(url, "/forecast/batch", batch, 5)  # its first call warms every park
            logger.info("batch of 1,000: %s", report["batch_1000"])
            report["single_100rps_1000_parks"] = asdict(
                load(f"{url}/forecast", single_bodies(everyone), 100, args.seconds)
            )
            logger.info("single park of 1,000 at 100 req/s: %s", report["single_100rps_1000_parks"])
            report["telemetry"] = telemetry_burst(f"{url}/forecast", config, everyone, now)
            logger.info("telemetry: %s", {k: v for k, v in report["telemetry"].items() if k != "load"})
        peak = max(peak, rss.peak_mb)

        logger.info("the framework's floor: a trivial BentoML endpoint")
        with serving("service.bench.floor:Floor", {"BENTOML_HOME": str(home)}, work / "floor.log") as (url, _):
            ping = [{"park_id": p.park_id} for p in everyone[:100]]
            load(f"{url}/ping", ping, 50, 3)  # warm-up
            report["floor_100rps"] = asdict(load(f"{url}/ping", ping, 100, args.seconds))
            report["floor_sweep"] = [asdict(s) for s in sweep(f"{url}/ping", ping, args.seconds)]
        report["peak_rss_mb"] = peak
        return report
    finally:
        redis.Redis.from_url(redis_url).flushdb()
        shutil.rmtree(work, ignore_errors=True)


def headline(report: dict[str, Any]) -> dict[str, Any]:
    return {
        "single_p95_ms_at_100rps": report["single_100rps"]["p95_ms"],
        "max_rps_with_p95_under_200ms": max_rate([LoadStats(**s) for s in report["sweep"]]),
        "batch_100_ms": report["batch_100"]["median_ms"],
        "batch_1000_ms": report["batch_1000"]["median_ms"],
        "telemetry_rows_per_s": report["telemetry"]["rows_per_s"],
        "telemetry_exactly_distinct": report["telemetry"]["exactly_distinct"],
        "floor_p95_ms_at_100rps": report["floor_100rps"]["p95_ms"],
        "floor_max_rps_with_p95_under_200ms": max_rate([LoadStats(**s) for s in report["floor_sweep"]]),
        "peak_rss_mb": report["peak_rss_mb"],
    }


def table(report: dict[str, Any], figures: dict[str, Any]) -> str:
    lines = ["", "endpoint / load                     sent     ok  errors  503   p50 ms   p95 ms   p99 ms   ok/s"]

    def row(name: str, s: dict[str, Any]) -> None:
        lines.append(
            f"{name:<34} {s['sent']:>6} {s['ok']:>6} {s['errors']:>7} {s['shed_503']:>4} {s['p50_ms']:>8} "
            f"{s['p95_ms']:>8} {s['p99_ms']:>8} {s['throughput_rps']:>6}"
        )

    row("forecast, 100 parks, 100 req/s", report["single_100rps"])
    row("forecast, 1,000 parks, 100 req/s", report["single_100rps_1000_parks"])
    for s in report["sweep"]:
        row(f"forecast sweep {s['rate']:.0f} req/s", s)
    row("trivial BentoML, 100 req/s", report["floor_100rps"])
    for s in report["floor_sweep"]:
        row(f"trivial sweep {s['rate']:.0f} req/s", s)
    lines.append("")
    lines.append(f"batch of 100 parks: {report['batch_100']}   batch of 1,000 parks: {report['batch_1000']}")
    lines.append(f"telemetry: { {k: v for k, v in report['telemetry'].items() if k != 'load'} }")
    lines.append("")
    lines.extend(f"{k:<36} {v}" for k, v in figures.items())
    ratio = figures["single_p95_ms_at_100rps"] / max(figures["floor_p95_ms_at_100rps"], 1e-9)
    lines.append(f"{'p95 ratio forecast / trivial endpoint':<36} {ratio:.1f}")
    return "\n".join(lines)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    for noisy in ("feast", "bentoml", "urllib3", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(prog="python -m service.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--redis-url", default=BenchSettings().bench_redis_url)
    parser.add_argument("--redis-db", type=int, default=10, help="database used and FLUSHED (default 10)")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each fixed-rate run")
    parser.add_argument("--bentoml-home", type=Path, default=None, help="use its production model (default: train one)")
    parser.add_argument("--workers", type=int, default=1, help="BentoML workers of the forecast service (default 1)")
    parser.add_argument("--out", type=Path, default=Path("bench-serve.json"))
    args = parser.parse_args()
    report = run(args)
    figures = headline(report)
    args.out.write_text(json.dumps(figures | {"details": report}, indent=2) + "\n")
    sys.stdout.write(table(report, figures) + f"\n\nwritten to {args.out}\n")


if __name__ == "__main__":
    main()
