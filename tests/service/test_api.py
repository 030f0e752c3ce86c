"""The production API over real HTTP: `bentoml serve` of the trained model over a copy of the demo store with
the real Redis online store (fixture ``api``), keys of every scope. Every endpoint's success and failure
cases: auth and scopes, 404, 422 with field paths, 413, 429, degraded mode, telemetry idempotency and the
intraday update, the park registry, backfill jobs readable from Redis, metrics and JSON logs. The outage
test (503 while Redis is down, recovery when it returns) runs its own service on a throwaway redis-server.

Every response read through :func:`call` is checked never to leak a Python traceback.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from pvcast.pv.plant import Park
from pvcast.schema import GENERATION_VIEW, WEATHER_VIEW
from tests.service import api_fixtures
from tests.service.api_fixtures import ADMIN, LIMITED, MAX_BODY, READ, WRITE, Api, copy_store, serve

pytestmark = [pytest.mark.http, pytest.mark.integration]
api = api_fixtures.api
throwaway_redis = api_fixtures.throwaway_redis

QUARTER = 900
PVCAST_CLI = "import sys; from training.cli import main; sys.exit(main())"  # the `pvcast` command
DEMO = "synthetic-miami"
THREE_PARKS = ["synthetic-miami", "synthetic-greensboro", "synthetic-sandpoint"]
# 3 parks x 26 years x 96 issue times a day: more than the 2,000,000 forecasts of one backfill job
TOO_LARGE = {
    "park_ids": THREE_PARKS,
    "start": "2000-01-01T00:00:00Z",
    "end": "2026-01-01T00:00:00Z",
    "every_hours": 0.25,
}


@pytest.fixture(scope="module")
def client(api: Api) -> Iterator[httpx.Client]:
    with api.client() as c:
        yield c


def call(client: httpx.Client, method: str, path: str, key: str | None = None, **kwargs: Any) -> httpx.Response:
    headers = dict(kwargs.pop("headers", {}))
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    response = client.request(method, path, headers=headers, **kwargs)
    assert "Traceback" not in response.text, response.text
    assert 'File "' not in response.text, response.text
    return response


def error(response: httpx.Response, status: int, kind: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["error"] == kind and body["message"], body
    assert isinstance(body["details"], list)
    return body


def fields(body: dict[str, Any]) -> list[str]:
    return [d["field"] for d in body["details"]]


def now_s() -> int:
    return int(time.time())


def noon_longitude(at: float) -> float:
    """A longitude where the mean solar time is about 12:00 at ``at`` [s since epoch]."""
    hours = (at % 86400) / 3600
    return round(((12 - hours) * 15 + 180) % 360 - 180, 3)


def park_body(longitude: float = -80.0, latitude: float = 0.0, ac: float = 1000.0) -> dict[str, float]:
    return {
        "latitude": latitude,
        "longitude": longitude,
        "altitude": 10,
        "capacity_dc_kwp": ac * 1.2,
        "capacity_ac_kw": ac,
        "surface_tilt": 10,
        "surface_azimuth": 180,
    }


def register(client: httpx.Client, park_id: str, **kw: float) -> None:
    response = call(client, "PUT", f"/parks/{park_id}", ADMIN, json=park_body(**kw))
    assert response.status_code in (200, 201), response.text


def weather_run(park_id: str, issued: pd.Timestamp, ghi: float = 600.0) -> pd.DataFrame:
    """A 48 h weather run for one park with constant values (daytime irradiance only matters by day)."""
    from pvcast.schema import WEATHER_VARIABLES

    values = {"ghi": ghi, "dni": ghi * 0.7, "dhi": ghi * 0.3, "temp_air": 25.0, "wind_speed": 2.0}
    values |= {"cloud_cover": 20.0, "relative_humidity": 60.0}
    row: dict[str, Any] = {"park_id": park_id, "issued_at": issued, "valid_from_epoch_s": int(issued.timestamp())}
    row["step_seconds"] = QUARTER
    row |= {v: np.full(192, values[v], dtype=np.float32) for v in WEATHER_VARIABLES}
    return pd.DataFrame([row])


def push_weather(api: Api, frame: pd.DataFrame) -> None:
    """Weather ingestion is another job's; the test writes through the same shared path it uses."""
    from feature_repo.store import append_rows, open_store

    append_rows(open_store(api.store), api.store, WEATHER_VIEW, frame)


def forecast(client: httpx.Client, body: dict[str, Any], key: str = READ) -> httpx.Response:
    return call(client, "POST", "/forecast", key, json=body)


def quantile_matrix(body: dict[str, Any], labels: tuple[str, ...] = ("p10", "p50", "p90")) -> np.ndarray:
    return np.array([[step[q] for q in labels] for step in body["forecast"]])


# --- forecast: options -------------------------------------------------------------------------------------


def test_forecast_has_the_degraded_fields(client: httpx.Client) -> None:
    """A park with a fresh weather forecast: the model answers, degraded false and no reason."""
    body = forecast(client, {"park_id": DEMO}).json()
    assert body["degraded"] is False and body["degraded_reason"] is None
    assert len(body["forecast"]) == 96


def test_quantile_subset(client: httpx.Client) -> None:
    """quantiles [0.9, 0.5] → exactly those levels, in the model's order, equal to the full answer's values."""
    full = forecast(client, {"park_id": DEMO, "horizon_hours": 2, "issued_at": "2026-01-01T12:00:00Z"})
    subset = forecast(
        client, {"park_id": DEMO, "horizon_hours": 2, "quantiles": [0.9, 0.5], "issued_at": "2026-01-01T12:00:00Z"}
    )
    assert subset.status_code == 200, subset.text
    assert subset.json()["quantiles"] == [0.5, 0.9]
    assert all(set(s) == {"valid_time", "p50", "p90"} for s in subset.json()["forecast"])
    assert [s["p90"] for s in subset.json()["forecast"]] == [s["p90"] for s in full.json()["forecast"]]


def test_quantile_not_served_is_422(client: httpx.Client) -> None:
    body = error(forecast(client, {"park_id": DEMO, "quantiles": [0.5, 0.25]}), 422, "validation_error")
    assert fields(body) == ["quantiles"] and "0.25" in body["message"]


@pytest.fixture(scope="module")
def as_of(api: Api) -> pd.Timestamp:
    """A past daytime instant inside the demo data, two days before its end."""
    from feature_repo.store import read_table

    end = read_table(api.store, GENERATION_VIEW)["event_timestamp"].max()
    return (end - pd.Timedelta(days=2)).floor("D") + pd.Timedelta(hours=18, minutes=7)


def test_issued_at_is_a_point_in_time_backtest(client: httpx.Client, api: Api, as_of: pd.Timestamp) -> None:
    """issued_at in the past: the forecast is labelled with it, starts at the next quarter hour, and does not
    change when information stamped after it is added (a weather run issued one hour later), while a forecast
    as of that later time does see the new run."""
    request = {"park_id": DEMO, "horizon_hours": 6, "issued_at": as_of.isoformat()}
    before = forecast(client, request)
    assert before.status_code == 200, before.text
    body = before.json()
    assert pd.Timestamp(body["issued_at"]) == as_of
    assert pd.Timestamp(body["forecast"][0]["valid_time"]) == as_of.ceil("15min")
    later = as_of.ceil("h") + pd.Timedelta(hours=1)
    later_request = request | {"issued_at": later.isoformat()}
    later_before = forecast(client, later_request).json()
    push_weather(api, weather_run(DEMO, later, ghi=0.0))  # a dark run: the later forecast must change
    assert forecast(client, request).json()["forecast"] == body["forecast"]
    assert forecast(client, later_request).json()["forecast"] != later_before["forecast"]


@pytest.mark.parametrize(
    ("issued_at", "field"),
    [("2999-01-01T00:00:00Z", "issued_at"), ("2026-01-01T00:00:00", "issued_at"), ("yesterday", "issued_at")],
    ids=["future", "naive", "garbage"],
)
def test_bad_issued_at_is_422(client: httpx.Client, issued_at: str, field: str) -> None:
    body = error(forecast(client, {"park_id": DEMO, "issued_at": issued_at}), 422, "validation_error")
    assert field in fields(body)


# --- degraded mode ---------------------------------------------------------------------------------------------


def test_park_without_weather_is_degraded_physics(client: httpx.Client) -> None:
    """A newly registered park has no weather forecast: 200 from the physics path, degraded with the reason;
    quantiles ordered, within [0, capacity], and daytime values positive (clear-sky based)."""
    park = "api-degraded-new"
    register(client, park, longitude=noon_longitude(now_s()))
    response = forecast(client, {"park_id": park})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["degraded"] is True and "no weather forecast" in body["degraded_reason"]
    q = quantile_matrix(body)
    assert (np.diff(q, axis=1) >= 0).all() and (q >= 0).all() and (q <= body["capacity_ac_kw"]).all()
    assert q[:8, 2].max() > 0, "midday physics power must be positive"
    assert (q == 0).any(axis=1).any(), "24 h contain a night with zero power"


def test_stale_weather_is_degraded_with_its_age(client: httpx.Client, api: Api) -> None:
    """A weather run older than the freshness limit (12 h here) but still covering the horizon → degraded,
    the reason states the age; a fresh run for the same park → the model again."""
    park = "api-degraded-stale"
    register(client, park)
    push_weather(api, weather_run(park, pd.Timestamp.now(tz="UTC").floor("15min") - pd.Timedelta(hours=20)))
    body = forecast(client, {"park_id": park}).json()
    assert body["degraded"] is True and "h old" in body["degraded_reason"] and "12" in body["degraded_reason"]
    push_weather(api, weather_run(park, pd.Timestamp.now(tz="UTC").floor("15min") - pd.Timedelta(minutes=30)))
    body = forecast(client, {"park_id": park}).json()
    assert body["degraded"] is False and body["degraded_reason"] is None


# --- batch ------------------------------------------------------------------------------------------------------


def test_batch_keeps_order_and_reports_errors_per_park(client: httpx.Client, as_of: pd.Timestamp) -> None:
    """Results in request order, repeats answered twice, an unknown park as an error entry; each forecast equals
    the single-park answer for the same issue time."""
    ids = ["synthetic-sandpoint", "no-such-park", DEMO, "synthetic-sandpoint"]
    common = {"horizon_hours": 3, "issued_at": as_of.isoformat()}
    response = call(client, "POST", "/forecast/batch", READ, json={"park_ids": ids, **common})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["park_id"] for r in results] == ids
    assert results[1]["error"]["error"] == "not_found" and "no-such-park" in results[1]["error"]["message"]
    single = forecast(client, {"park_id": DEMO, **common}).json()
    assert results[2] == single
    assert results[0] == results[3]


def test_batch_of_many_parks(client: httpx.Client) -> None:
    """1,000 ids (the three demo parks and unknown ones) in one call: 1,000 results, in order."""
    ids = [["synthetic-greensboro", DEMO, "synthetic-sandpoint", f"unknown-{i}"][i % 4] for i in range(1000)]
    response = call(client, "POST", "/forecast/batch", READ, json={"park_ids": ids, "horizon_hours": 24})
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["park_id"] for r in results] == ids
    assert sum("error" in r for r in results) == 250


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"park_ids": []}, "park_ids"),
        ({"park_ids": ["a"] * 10_001}, "park_ids"),
        ({"park_ids": [DEMO, "bad id!"]}, "park_ids[1]"),
        ({"park_ids": [DEMO], "horizon_hours": 30}, "horizon_hours"),
    ],
    ids=["empty", "too-many", "bad-id", "horizon-beyond-model"],
)
def test_batch_invalid_is_422(client: httpx.Client, body: dict[str, Any], field: str) -> None:
    assert field in fields(error(call(client, "POST", "/forecast/batch", READ, json=body), 422, "validation_error"))


# --- telemetry --------------------------------------------------------------------------------------------------


def telemetry(client: httpx.Client, rows: list[dict[str, Any]], key: str = WRITE) -> httpx.Response:
    return call(client, "POST", "/telemetry", key, json={"measurements": rows})


def stamp(seconds: int) -> str:
    return pd.Timestamp(seconds, unit="s", tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def test_telemetry_rules_reject_rows_not_the_payload(client: httpx.Client) -> None:
    """Valid rows are stored; each invalid one is reported with its index, field path and reason."""
    park = "api-telemetry-rules"
    register(client, park, ac=100.0)
    last = (now_s() // QUARTER - 1) * QUARTER
    rows = [
        {"park_id": park, "valid_time": stamp(last), "power_kw": 50.0},  # ok
        {"park_id": park, "valid_time": stamp(last), "power_kw": 51.0},  # repeated in payload
        {"park_id": park, "valid_time": stamp(last + 2 * QUARTER), "power_kw": 1.0},  # future
        {"park_id": park, "valid_time": stamp(last - QUARTER), "power_kw": -1.0},  # negative
        {"park_id": park, "valid_time": stamp(last - 2 * QUARTER), "power_kw": 111.0},  # > 1.1 × 100 kW
        {"park_id": "api-not-registered", "valid_time": stamp(last), "power_kw": 1.0},  # unknown park
        {"park_id": park, "valid_time": stamp(last - 7 * 60), "power_kw": 1.0},  # not a quarter hour
        {"park_id": park, "valid_time": stamp(last - 3 * QUARTER), "power_kw": 110.0},  # ok: exactly 1.1 ×
    ]
    response = telemetry(client, rows)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["accepted"], body["duplicates"]) == (2, 0)
    rejected = {r["index"]: r for r in body["rejected"]}
    assert {i: r["field"] for i, r in rejected.items()} == {
        1: "measurements[1].valid_time",
        2: "measurements[2].valid_time",
        3: "measurements[3].power_kw",
        4: "measurements[4].power_kw",
        5: "measurements[5].park_id",
        6: "measurements[6].valid_time",
    }
    assert "duplicate" in rejected[1]["message"] and "future" in rejected[2]["message"]
    assert "110" in rejected[4]["message"] and "api-not-registered" in rejected[5]["message"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ([{"park_id": DEMO, "valid_time": "2026-01-01T00:00:00", "power_kw": 1}], "measurements[0].valid_time"),
        ([{"park_id": DEMO, "valid_time": "2026-01-01T00:00:00Z", "power_kw": "x"}], "measurements[0].power_kw"),
        ([{"park_id": DEMO, "power_kw": 1}], "measurements[0].valid_time"),
        ([], "measurements"),
        (None, "measurements"),
    ],
    ids=["naive-time", "power-not-number", "missing-time", "empty", "wrong-key"],
)
def test_telemetry_that_does_not_parse_is_422(client: httpx.Client, payload: Any, field: str) -> None:
    body_json = {"rows": []} if payload is None else {"measurements": payload}
    body = error(call(client, "POST", "/telemetry", WRITE, json=body_json), 422, "validation_error")
    assert field in fields(body)


def test_telemetry_needs_the_write_scope(client: httpx.Client) -> None:
    row = [{"park_id": DEMO, "valid_time": stamp((now_s() // QUARTER - 1) * QUARTER), "power_kw": 1.0}]
    assert "write" in error(telemetry(client, row, key=READ), 403, "forbidden")["message"]
    error(telemetry(client, row, key="pvc_nobody"), 401, "unauthorized")


def test_telemetry_burst_stores_exactly_the_distinct_rows(client: httpx.Client, api: Api) -> None:
    """A burst of pushes with repeats across pushes and out-of-order rows: the offline table gains exactly one
    row per distinct (park, valid_time), and the counts add up (accepted + duplicates = rows sent)."""
    from feature_repo.store import read_table

    parks = [f"api-burst-{i}" for i in range(3)]
    for park in parks:
        register(client, park, ac=1000.0)
    last = (now_s() // QUARTER - 1) * QUARTER
    rng = np.random.default_rng(5)
    distinct = [(p, last - k * QUARTER) for p in parks for k in range(40)]
    sent = accepted = duplicates = 0
    for _ in range(12):
        chosen = rng.choice(len(distinct), size=25, replace=False)  # out of order, overlapping pushes
        rows = [{"park_id": distinct[i][0], "valid_time": stamp(distinct[i][1]), "power_kw": 1.0} for i in chosen]
        body = telemetry(client, rows).json()
        assert body["rejected"] == []
        sent, accepted, duplicates = sent + len(rows), accepted + body["accepted"], duplicates + body["duplicates"]
    table = read_table(api.store, GENERATION_VIEW)
    stored = table[table["park_id"].isin(parks)]
    keys = set(zip(stored["park_id"], stored["valid_time_epoch_s"], strict=True))
    assert accepted + duplicates == sent and duplicates > 0
    assert len(stored) == len(keys) == accepted
    assert keys <= {(p, t) for p, t in distinct}


def test_telemetry_feeds_the_next_forecast(client: httpx.Client, api: Api) -> None:
    """Intraday update: two identical parks at local noon with the same fresh weather forecast get the same
    forecast; after one reports zero power and the other full power for the last interval, the next hour of
    their forecasts differs (the model reads the measurement's clear-sky index)."""
    longitude = noon_longitude(now_s())
    twins = ["api-intraday-dark", "api-intraday-bright"]
    run = pd.Timestamp.now(tz="UTC").floor("15min") - pd.Timedelta(minutes=15)
    for park in twins:
        register(client, park, longitude=longitude, ac=1000.0)
        push_weather(api, weather_run(park, run, ghi=500.0))
    before = [quantile_matrix(forecast(client, {"park_id": p, "horizon_hours": 2}).json()) for p in twins]
    np.testing.assert_array_equal(before[0], before[1])
    last = stamp((now_s() // QUARTER - 1) * QUARTER)
    rows = [{"park_id": p, "valid_time": last, "power_kw": kw} for p, kw in zip(twins, (0.0, 950.0), strict=True)]
    body = telemetry(client, rows).json()
    assert body["accepted"] == 2
    after = [forecast(client, {"park_id": p, "horizon_hours": 2}).json() for p in twins]
    assert not any(a["degraded"] for a in after)
    assert not np.array_equal(quantile_matrix(after[0]), quantile_matrix(after[1]))


# --- park registry ------------------------------------------------------------------------------------------------


def test_park_lifecycle(client: httpx.Client, api: Api) -> None:
    """PUT creates (201) then updates (200); GET and the list show the latest metadata; DELETE (204) removes it
    from GET (404), the list, forecasts (404) and `pvcast parks`; deleting again is 404."""
    park = "api-lifecycle"
    created = call(client, "PUT", f"/parks/{park}", ADMIN, json=park_body(ac=500.0))
    assert created.status_code == 201 and created.json()["capacity_ac_kw"] == 500.0
    updated = call(client, "PUT", f"/parks/{park}", ADMIN, json=park_body(ac=600.0))
    assert updated.status_code == 200
    assert call(client, "GET", f"/parks/{park}", ADMIN).json() == {"park_id": park, **park_body(ac=600.0)}
    listed = {p["park_id"]: p for p in call(client, "GET", "/parks", ADMIN).json()["parks"]}
    assert listed[park]["capacity_ac_kw"] == 600.0 and DEMO in listed
    assert forecast(client, {"park_id": park}).json()["capacity_ac_kw"] == 600.0
    assert call(client, "DELETE", f"/parks/{park}", ADMIN).status_code == 204
    error(call(client, "GET", f"/parks/{park}", ADMIN), 404, "not_found")
    assert park not in {p["park_id"] for p in call(client, "GET", "/parks", ADMIN).json()["parks"]}
    error(forecast(client, {"park_id": park}), 404, "not_found")
    error(call(client, "DELETE", f"/parks/{park}", ADMIN), 404, "not_found")
    cli = subprocess.run(
        [sys.executable, "-c", PVCAST_CLI, "--repo", str(api.store.repo_path), "parks", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    names = {p["park_id"] for p in json.loads(cli.stdout)}
    assert park not in names and DEMO in names


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (park_body() | {"latitude": 91}, "latitude"),
        (park_body() | {"surface_azimuth": 360}, "surface_azimuth"),
        ({k: v for k, v in park_body().items() if k != "capacity_ac_kw"}, "capacity_ac_kw"),
        (park_body() | {"capacity_dc_kwp": 100_000}, "park"),
        (park_body() | {"owner": "x"}, "owner"),
    ],
    ids=["latitude", "azimuth", "missing-capacity", "dc-ac-ratio", "extra-field"],
)
def test_invalid_park_is_422(client: httpx.Client, body: dict[str, Any], field: str) -> None:
    result = error(call(client, "PUT", "/parks/api-invalid", ADMIN, json=body), 422, "validation_error")
    assert field in fields(result)


def test_park_endpoints_need_admin(client: httpx.Client) -> None:
    for key in (READ, WRITE):
        error(call(client, "GET", "/parks", key), 403, "forbidden")
        error(call(client, "PUT", "/parks/api-x", key, json=park_body()), 403, "forbidden")
        error(call(client, "DELETE", f"/parks/{DEMO}", key), 403, "forbidden")
    error(call(client, "GET", "/parks"), 401, "unauthorized")


def test_bad_park_id_in_path_is_422(client: httpx.Client) -> None:
    assert "park_id" in fields(error(call(client, "GET", "/parks/bad%20id!", ADMIN), 422, "validation_error"))


# --- jobs --------------------------------------------------------------------------------------------------------


def wait_job(client: httpx.Client, job_id: str, timeout: float = 300) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = call(client, "GET", f"/jobs/{job_id}", ADMIN).json()
        if status["status"] in ("succeeded", "failed"):
            return status
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} did not finish")


def test_backfill_job(client: httpx.Client, api: Api, as_of: pd.Timestamp) -> None:
    """202 with a job id at once; the state is in Redis (read here by another process than the one running
    it); it succeeds with every (park, issue time) forecast written as parquet, each equal to the
    single-park backtest for that issue time."""
    from service.jobs import JobStore

    start = as_of.floor("h") - pd.Timedelta(hours=6)
    request = {
        "park_ids": [DEMO, "synthetic-greensboro"],
        "start": start.isoformat(),
        "end": as_of.floor("h").isoformat(),
    }
    response = call(client, "POST", "/jobs/backfill", ADMIN, json=request | {"every_hours": 3, "horizon_hours": 2})
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    import redis

    assert JobStore(redis.Redis.from_url(api.redis_url), 60).get(job_id)["kind"] == "backfill"
    status = wait_job(client, job_id)
    assert status["status"] == "succeeded", status
    assert status["progress"] == 1.0
    result = status["result"]
    assert (result["parks"], result["issue_times"], result["forecasts"]) == (2, 3, 6)
    frame = pd.read_parquet(result["path"])
    assert len(frame) == 6 * 8 and set(frame["park_id"]) == {DEMO, "synthetic-greensboro"}
    single = forecast(client, {"park_id": DEMO, "horizon_hours": 2, "issued_at": start.isoformat()}).json()
    rows = frame[(frame["park_id"] == DEMO) & (frame["issued_at"] == start)].sort_values("valid_time")
    np.testing.assert_allclose(rows["p50_kw"].to_numpy(), [s["p50"] for s in single["forecast"]], atol=1e-3)


def test_job_whose_replica_died_is_reported_failed(api: Api, client: httpx.Client) -> None:
    """A job record whose lease has expired (its pod died) reads as failed with the reason, from any replica."""
    import redis

    from service.jobs import JobStore

    store = JobStore(redis.Redis.from_url(api.redis_url), 60)
    job_id = store.create("backfill", {"start": "x"})
    redis.Redis.from_url(api.redis_url).delete(f"pvcast:job:{job_id}:lease")
    status = call(client, "GET", f"/jobs/{job_id}", ADMIN).json()
    assert status["status"] == "failed" and "stopped" in status["error"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"}, "start"),
        ({"start": "2026-01-01T00:00:00Z", "end": "2999-01-01T00:00:00Z"}, "end"),
        ({"start": "2026-01-01T00:00:00", "end": "2026-01-02T00:00:00Z"}, "start"),
        (TOO_LARGE, "end"),
    ],
    ids=["reversed", "future", "naive", "too-large"],
)
def test_invalid_backfill_is_422(client: httpx.Client, body: dict[str, Any], field: str) -> None:
    assert field in fields(error(call(client, "POST", "/jobs/backfill", ADMIN, json=body), 422, "validation_error"))


def test_jobs_need_admin_and_unknown_job_is_404(client: httpx.Client) -> None:
    body = {"start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z"}
    error(call(client, "POST", "/jobs/backfill", READ, json=body), 403, "forbidden")
    error(call(client, "GET", "/jobs/" + "0" * 32, ADMIN), 404, "not_found")
    assert "job_id" in fields(error(call(client, "GET", "/jobs/nope", ADMIN), 422, "validation_error"))


# --- security -----------------------------------------------------------------------------------------------------


def test_body_over_the_limit_is_413(client: httpx.Client) -> None:
    """A body over PVCAST_MAX_BODY_BYTES → 413 JSON, by Content-Length and for a chunked body alike."""
    big = json.dumps({"park_ids": ["x" * 60] * (MAX_BODY // 50)}).encode()
    error(
        call(client, "POST", "/forecast/batch", READ, content=big, headers={"content-type": "application/json"}),
        413,
        "payload_too_large",
    )
    chunks = iter([big[i : i + 65536] for i in range(0, len(big), 65536)])
    response = call(
        client, "POST", "/forecast/batch", READ, content=chunks, headers={"content-type": "application/json"}
    )
    error(response, 413, "payload_too_large")  # fmt: skip


def test_rate_limit_is_429_with_retry_after(client: httpx.Client) -> None:
    """The limited key (burst 2, 0.2/s): the third quick request is 429 with Retry-After, other keys unaffected."""
    statuses = [forecast(client, {"park_id": DEMO, "horizon_hours": 1}, key=LIMITED) for _ in range(3)]
    assert [r.status_code for r in statuses[:2]] == [200, 200]
    body = error(statuses[2], 429, "rate_limited")
    assert int(statuses[2].headers["retry-after"]) >= 1 and "limited" in body["message"]
    assert forecast(client, {"park_id": DEMO, "horizon_hours": 1}).status_code == 200


def test_rate_limit_is_shared_through_redis(api: Api, client: httpx.Client) -> None:
    """The bucket lives in Redis (so every replica sees it): emptying it there lets the limited key through."""
    import redis

    assert redis.Redis.from_url(api.redis_url).exists("pvcast:ratelimit:limited")
    redis.Redis.from_url(api.redis_url).delete("pvcast:ratelimit:limited")
    assert forecast(client, {"park_id": DEMO, "horizon_hours": 1}, key=LIMITED).status_code == 200


def test_request_id_is_echoed_and_logged_as_json_without_secrets(client: httpx.Client, api: Api) -> None:
    """X-Request-ID comes back and appears in the JSON access log line; no key secret ever reaches the log."""
    rid = "api-test-request-1"
    body = {"park_id": DEMO, "horizon_hours": 1}
    response = call(client, "POST", "/forecast", READ, json=body, headers={"x-request-id": rid})
    assert response.headers["x-request-id"] == rid
    assert len(call(client, "GET", "/livez").headers.get("x-request-id", "x" * 32)) >= 1
    call(client, "POST", "/forecast", "pvc_wrong-secret-123", json={"park_id": DEMO})
    time.sleep(0.5)
    text = api.log.read_text(errors="replace")
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    mine = [line for line in lines if line.get("request_id") == rid]
    assert mine and mine[0]["logger"] == "service.access" and mine[0]["status"] == 200
    for secret in (READ, WRITE, ADMIN, LIMITED, "pvc_wrong-secret-123"):
        assert secret not in text


# --- metrics ------------------------------------------------------------------------------------------------------


def test_metrics_cover_latency_stages_feature_age_model_and_telemetry(client: httpx.Client) -> None:
    forecast(client, {"park_id": DEMO, "horizon_hours": 1})
    text = call(client, "GET", "/metrics").text
    for needle in (
        'pvcast_request_duration_seconds_bucket{endpoint="/forecast"',
        'pvcast_stage_duration_seconds_count{stage="features"}',
        'pvcast_stage_duration_seconds_count{stage="inference"}',
        'pvcast_stage_duration_seconds_count{stage="postprocess"}',
        'pvcast_feature_age_seconds_count{view="weather_forecast"}',
        "pvcast_model_info{",
        'pvcast_telemetry_rows_total{outcome="accepted"}',
        'pvcast_telemetry_rows_total{outcome="rejected"}',
    ):
        assert needle in text, needle


def test_openapi_documents_every_endpoint_with_examples(client: httpx.Client) -> None:
    spec = call(client, "GET", "/openapi.json").json()
    expected = {
        "/forecast": {"post"},
        "/forecast/batch": {"post"},
        "/telemetry": {"post"},
        "/parks": {"get"},
        "/parks/{park_id}": {"get", "put", "delete"},
        "/jobs/backfill": {"post"},
        "/jobs/{job_id}": {"get"},
    }
    for path, methods in expected.items():
        assert methods <= set(spec["paths"][path]), path
        for method in methods:
            responses = spec["paths"][path][method]["responses"]
            assert {"401", "403", "422", "429"} <= set(responses), (path, method)
    schemas = spec["components"]["schemas"]
    assert (
        "examples" in schemas["TelemetryRequest"]
        and "[kW]" in schemas["Measurement"]["properties"]["power_kw"]["description"]
    )
    assert "bearer" in json.dumps(spec["components"]["securitySchemes"]).lower()


# --- outage -------------------------------------------------------------------------------------------------------


def test_online_store_outage_is_503_and_recovers(
    demo_store: Any, throwaway_redis: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Redis stops: /readyz turns red and forecasts get 503 with a clear JSON message (no traceback); Redis comes
    back: ready again and forecasts succeed, without restarting the service."""
    from conftest import stop_service

    root = tmp_path_factory.mktemp("outage")
    config = copy_store(demo_store, root / "store", throwaway_redis.url)
    proc, url = serve(config, throwaway_redis.url, root / "serve.log")
    try:
        with httpx.Client(base_url=url, timeout=30) as c:
            assert forecast(c, {"park_id": DEMO}).status_code == 200
            throwaway_redis.stop()
            body = error(forecast(c, {"park_id": DEMO}), 503, "unavailable")
            assert "unreachable" in body["message"]
            assert c.get("/readyz").status_code == 503
            assert c.get("/livez").status_code == 200
            throwaway_redis.start()
            deadline = time.monotonic() + 30
            while c.get("/readyz").status_code != 200:
                assert time.monotonic() < deadline, "not ready again within 30 s"
                time.sleep(0.5)
            assert forecast(c, {"park_id": DEMO}).status_code == 200
    finally:
        stop_service(proc)


def test_no_park_in_the_demo_is_unregistered(api: Api) -> None:
    """Guard for the tests above: the copy holds the three demo parks."""
    from feature_repo.store import registered_parks

    assert {p.park_id for p in registered_parks(api.store)} >= {DEMO, "synthetic-greensboro", "synthetic-sandpoint"}
    assert all(isinstance(p, Park) for p in registered_parks(api.store))


# --- schema-driven fuzzing ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "scope_args"),
    [
        (f"{READ}", ["--exclude-path-regex", "^/(parks|jobs|telemetry)"]),
        (f"{WRITE}", ["--include-path", "/telemetry"]),
        (f"{ADMIN}", ["--include-path-regex", "^/(parks|jobs/\\{job_id\\})"]),
    ],
    ids=["read", "write", "admin"],
)
def test_schemathesis_finds_no_server_error(api: Api, key: str, scope_args: list[str], tmp_path: Any) -> None:
    """Schemathesis generates valid and invalid requests from the OpenAPI document for every operation (with a
    key of the operation's scope; the backfill submission is left out so fuzzing cannot start large jobs):
    no answer is a 5xx."""
    cmd = [sys.executable, "-m", "schemathesis.cli", "run", f"{api.url}/openapi.json", "--checks", "not_a_server_error"]
    cmd += ["-H", f"Authorization: Bearer {key}", "--max-examples", "25", "--seed", "7", "--workers", "1"]
    cmd += ["--request-timeout", "60", "--phases", "examples,coverage,fuzzing", *scope_args]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=900)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    tested = re.search(r"Tested: (\d+)", done.stdout)
    cases = re.search(r"(\d+) generated, (\d+) passed", done.stdout)
    assert tested and int(tested.group(1)) > 0, done.stdout[-3000:]
    assert cases and int(cases.group(1)) > 0 and cases.group(1) == cases.group(2), done.stdout[-3000:]
    print(f"\nschemathesis ({key.rsplit('-', 1)[-1]} key): {tested.group(0)} operations, {cases.group(0)}")
