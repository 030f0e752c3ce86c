"""Locust load test of the pvcast API: the weighted mix of real use.

Usage (headless, as `make loadtest` runs it; TARGET_URL is the gateway or a single `bentoml serve`):

    PVCAST_API_KEY=pvc_... make loadtest TARGET_URL=https://api.pvcast.example.com LOADTEST_TIME=5m
    PVCAST_API_KEY=pvc_... .venv/bin/locust -f loadtests/locustfile.py --headless -u 20 -r 5 -t 60s \\
        --host http://127.0.0.1:3000 --csv build/loadtest/pvcast --html build/loadtest/report.html

Settings (environment):
    PVCAST_API_KEY          key with the read scope; write for telemetry pushes; admin lets it list GET /parks
                            (default: .pvcast/api_key, the demo's key). All users share it: its rate limit must
                            cover the offered load, or the service's 429s count as failures
    PVCAST_PARK_IDS         comma-separated park ids, used when GET /parks is unavailable (no admin scope, or
                            an API without it)
    PVCAST_HORIZON_HOURS    forecast horizon of every request (default 24)
    PVCAST_BATCH_SIZE       parks per batch forecast (default 10, capped at the number of parks)
    PVCAST_SLO_P95_MS       p95 latency objective [ms] (default 200)
    PVCAST_MAX_FAIL_RATIO   largest acceptable share of failed requests (default 0.001 = 0.1 %)
    PVCAST_LOCUST_SUMMARY   optional path: a JSON summary (endpoints used, model versions seen) is written there

Weighted mix (per user, ~1 request per second): 60 % single-park forecasts, 20 % batch forecasts, 20 % telemetry
pushes. The API's /openapi.json decides what can run: a missing endpoint (POST /forecast/batch, POST /telemetry,
GET /parks) is announced loudly at start and its weight goes to single-park forecasts, so the file works against
every version of the API and uses the full mix where the API has it.

Exit code: 1 when the p95 of all requests exceeds PVCAST_SLO_P95_MS or more than PVCAST_MAX_FAIL_RATIO of them
failed (the reason is logged), else 0.
"""

from __future__ import annotations

import json
import logging
import random
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from locust import FastHttpUser, constant_throughput, events, task
from locust.env import Environment
from pydantic import Field

from pvcast.settings import PvcastSettings

logger = logging.getLogger("pvcast.loadtest")

WEIGHTS = {"forecast": 6, "batch": 2, "telemetry": 2}
ENDPOINTS = {"batch": ("post", "/forecast/batch"), "telemetry": ("post", "/telemetry"), "parks": ("get", "/parks")}


@dataclass
class Plan:
    """What this run does, decided once at test start from the API's OpenAPI document."""

    key: str = ""
    park_ids: list[str] = field(default_factory=list)
    capacity_kw: dict[str, float] = field(default_factory=dict)
    available: dict[str, bool] = field(default_factory=dict)
    horizon_hours: float = 24.0
    batch_size: int = 10
    versions: dict[str, dict[str, Any]] = field(default_factory=dict)


PLAN = Plan()


class LoadTestSettings(PvcastSettings):
    """The load test's own settings (environment PVCAST_*; see the module docstring)."""

    api_key: str | None = None
    park_ids: str = Field(default="", description="comma-separated park ids")
    horizon_hours: float = 24.0
    batch_size: int = 10
    slo_p95_ms: float = 200.0
    max_fail_ratio: float = 0.001
    locust_summary: Path | None = None


def api_key(settings: LoadTestSettings) -> str:
    if settings.api_key:
        return settings.api_key
    saved = Path(".pvcast/api_key")
    if saved.exists():
        return saved.read_text().strip()
    raise SystemExit("set PVCAST_API_KEY (a key with the read scope; write for telemetry pushes)")


def get_json(url: str, key: str) -> tuple[int, Any]:
    """GET outside Locust's statistics (discovery is not load)."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return exc.code, None


def discover(host: str, key: str, settings: LoadTestSettings) -> None:
    """Which endpoints the API has, and the parks to use (GET /parks, else PVCAST_PARK_IDS)."""
    status, spec = get_json(f"{host}/openapi.json", key)
    if status != 200:
        raise SystemExit(f"{host}/openapi.json answered {status}: is TARGET_URL the pvcast API?")
    paths = spec.get("paths", {})
    PLAN.available = {name: method in paths.get(path, {}) for name, (method, path) in ENDPOINTS.items()}
    for name, (method, path) in ENDPOINTS.items():
        if not PLAN.available[name]:
            fallback = "parks come from PVCAST_PARK_IDS" if name == "parks" else f"the {name} share runs as /forecast"
            logger.warning("!!! %s %s is NOT in this API (/openapi.json): %s", method.upper(), path, fallback)
    if PLAN.available["parks"]:
        status, parks = get_json(f"{host}/parks", key)
        if status == 200:
            parks = parks.get("parks", parks) if isinstance(parks, dict) else parks
            PLAN.park_ids = [p["park_id"] for p in parks]
            PLAN.capacity_kw = {p["park_id"]: float(p.get("capacity_ac_kw", 1000.0)) for p in parks}
            logger.info("parks from GET /parks: %d", len(PLAN.park_ids))
        else:
            logger.warning("!!! GET /parks answered %d (needs the admin scope): using PVCAST_PARK_IDS", status)
    if not PLAN.park_ids:
        PLAN.park_ids = [p.strip() for p in settings.park_ids.split(",") if p.strip()]
    if not PLAN.park_ids:
        raise SystemExit("no parks: the API has no GET /parks for this key and PVCAST_PARK_IDS is empty")


@events.test_start.add_listener
def on_test_start(environment: Environment, **_: Any) -> None:
    settings = LoadTestSettings()
    PLAN.key = api_key(settings)
    PLAN.horizon_hours = settings.horizon_hours
    discover((environment.host or "").rstrip("/"), PLAN.key, settings)
    PLAN.batch_size = max(1, min(settings.batch_size, len(PLAN.park_ids)))
    mix = {name: weight for name, weight in WEIGHTS.items() if name == "forecast" or PLAN.available[name]}
    mix["forecast"] += sum(w for n, w in WEIGHTS.items() if n not in mix)
    logger.info("pvcast mix: %s over %d parks, horizon %g h", mix, len(PLAN.park_ids), PLAN.horizon_hours)
    PVCastUser.tasks = [getattr(PVCastUser, name) for name, weight in mix.items() for _ in range(weight)]


@events.quitting.add_listener
def on_quitting(environment: Environment, **_: Any) -> None:
    """Fail the run above the latency objective or the failure budget; write the summary."""
    total = environment.stats.total
    settings = LoadTestSettings()
    slo_ms, max_fail = settings.slo_p95_ms, settings.max_fail_ratio
    p95 = total.get_response_time_percentile(0.95) or 0.0
    problems = []
    if total.num_requests == 0:
        problems.append("no request was made")
    if p95 > slo_ms:
        problems.append(f"p95 {p95:.0f} ms > SLO {slo_ms:.0f} ms")
    if total.fail_ratio > max_fail:
        problems.append(f"{total.fail_ratio:.3%} of {total.num_requests} requests failed (budget {max_fail:.3%})")
    for problem in problems:
        logger.error("SLO violated: %s", problem)
    environment.process_exit_code = 1 if problems else 0
    write_summary(settings.locust_summary, total.num_requests, total.num_failures, p95)


def write_summary(path: Path | None, requests: int, failures: int, p95_ms: float) -> None:
    if path:
        summary = {"requests": requests, "failures": failures, "p95_ms": p95_ms, "endpoints": PLAN.available,
                   "parks": len(PLAN.park_ids), "model_versions": PLAN.versions}  # fmt: skip
        Path(path).write_text(json.dumps(summary, indent=2))


def note_version(version: str) -> None:
    """When each model version answered: first and last time (s since the epoch) and how often."""
    now = time.time()
    seen = PLAN.versions.setdefault(version, {"count": 0, "first": now, "last": now})
    seen["count"] += 1
    seen["last"] = now


def quarter_hour_ago() -> str:
    now = datetime.now(UTC)
    start = now.replace(minute=now.minute - now.minute % 15, second=0, microsecond=0) - timedelta(minutes=15)
    return start.isoformat().replace("+00:00", "Z")


class PVCastUser(FastHttpUser):
    """One client of the API: a trading desk or a park controller, about one request per second."""

    wait_time = constant_throughput(1.0)

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {PLAN.key}"}

    def check_forecast(self, reply: Any) -> None:
        """A 200 with a model_version and the requested steps, else a failure."""
        if reply.status_code != 200:
            reply.failure(f"HTTP {reply.status_code}: {reply.text[:200]}")
            return
        data = reply.json()
        results = data.get("results", [data])
        for result in results:
            if not result.get("forecast") or "model_version" not in result:
                reply.failure(f"malformed forecast: {str(result)[:200]}")
                return
            note_version(result["model_version"])

    @task
    def forecast(self) -> None:
        body = {"park_id": random.choice(PLAN.park_ids), "horizon_hours": PLAN.horizon_hours}
        with self.client.post("/forecast", json=body, headers=self.headers(), catch_response=True) as reply:
            self.check_forecast(reply)

    @task
    def batch(self) -> None:
        body = {"park_ids": random.sample(PLAN.park_ids, PLAN.batch_size), "horizon_hours": PLAN.horizon_hours}
        with self.client.post("/forecast/batch", json=body, headers=self.headers(), catch_response=True) as reply:
            self.check_forecast(reply)

    @task
    def telemetry(self) -> None:
        park = random.choice(PLAN.park_ids)
        power = round(random.uniform(0, PLAN.capacity_kw.get(park, 1000.0)), 1)
        body = {"measurements": [{"park_id": park, "valid_time": quarter_hour_ago(), "power_kw": power}]}
        with self.client.post("/telemetry", json=body, headers=self.headers(), catch_response=True) as reply:
            if reply.status_code != 200:
                reply.failure(f"HTTP {reply.status_code}: {reply.text[:200]}")
