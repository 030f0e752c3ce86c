"""The REST API over real HTTP: a `bentoml serve` process (session fixture ``served``) serving the trained
model over the materialized demo store, with a read-scoped key and a write-only key.

Every response read through :func:`call` is also checked never to leak a Python traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from feature_repo.store import registered_parks
from pvcast.pv import physics
from pvcast.pv.plant import PARK_FEATURES, PARK_ID_PATTERN, Park, ParkSpec

pytestmark = [
    pytest.mark.http,
    pytest.mark.integration,
]

DEMO_PARKS = ("synthetic-greensboro", "synthetic-miami", "synthetic-sandpoint")
QUARTER = pd.Timedelta(minutes=15)


@pytest.fixture(scope="module")
def client(served: Any) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.url, timeout=30) as c:
        yield c


@pytest.fixture(scope="module")
def parks(demo_store: Any) -> dict[str, Park]:
    return {p.park_id: p for p in registered_parks(demo_store.config)}


def call(client: httpx.Client, method: str, path: str, key: str | None = None, **kwargs: Any) -> httpx.Response:
    headers = dict(kwargs.pop("headers", {}))
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    response = client.request(method, path, headers=headers, **kwargs)
    assert "Traceback" not in response.text, response.text
    return response


def forecast(client: httpx.Client, key: str | None, body: object, **kwargs: Any) -> httpx.Response:
    return call(client, "POST", "/forecast", key, json=body, **kwargs)


def assert_error(response: httpx.Response, status: int, error: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["error"] == error
    assert isinstance(body["message"], str) and body["message"]
    assert isinstance(body["details"], list)
    return body


def utc(text: str) -> pd.Timestamp:
    ts = pd.Timestamp(text)
    assert ts.tzinfo is not None and ts.utcoffset() == pd.Timedelta(0), text
    return ts


def solar_elevation(park: Park, valid_times: pd.DatetimeIndex) -> np.ndarray:
    """Apparent solar elevation [°] at each interval's midpoint, from the shared physics module."""
    mid = (valid_times + QUARTER / 2).astype("int64").to_numpy() / 1e9
    position = physics.solar_position(physics.sun_ephemeris(mid), park.latitude, park.longitude, park.altitude)
    return np.asarray(position.apparent_elevation)


# --- 200 -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def day_ahead(client: httpx.Client, served: Any) -> dict[str, tuple[dict[str, Any], pd.Timestamp, pd.Timestamp]]:
    """A 24 h forecast of every demo park, with the wall-clock time just before and after each request."""
    answers = {}
    for park_id in DEMO_PARKS:
        before = pd.Timestamp.now(tz="UTC")
        response = forecast(client, served.read_key, {"park_id": park_id, "horizon_hours": 24})
        after = pd.Timestamp.now(tz="UTC")
        assert response.status_code == 200, response.text
        answers[park_id] = (response.json(), before, after)
    return answers


@pytest.mark.parametrize("park_id", DEMO_PARKS)
def test_forecast_fields(day_ahead: dict[str, Any], parks: dict[str, Park], trained: Any, park_id: str) -> None:
    """200 with the documented fields: park, UTC issue time (the request time), the served model version,
    capacity, unit kW, PT15M intervals labelled by their beginning, and the quantile levels."""
    body, before, after = day_ahead[park_id]
    assert body["park_id"] == park_id
    assert before - pd.Timedelta(seconds=1) <= utc(body["issued_at"]) <= after
    assert body["model_version"] == trained.tag.split(":", 1)[1]
    assert body["capacity_ac_kw"] == parks[park_id].capacity_ac_kw
    assert body["unit"] == "kW"
    assert body["interval_length"] == "PT15M"
    assert body["interval_label"] == "beginning"
    assert body["quantiles"] == [0.1, 0.5, 0.9]
    assert len(body["forecast"]) == 96
    assert all(set(step) == {"valid_time", "p10", "p50", "p90"} for step in body["forecast"])


@pytest.mark.parametrize("park_id", DEMO_PARKS)
def test_forecast_valid_times(day_ahead: dict[str, Any], park_id: str) -> None:
    """valid_time: 96 consecutive 15-minute UTC stamps starting at the first quarter-hour at or after issued_at."""
    body, _, _ = day_ahead[park_id]
    times = pd.DatetimeIndex([utc(step["valid_time"]) for step in body["forecast"]])
    issued = utc(body["issued_at"])
    assert times[0] == issued.ceil("15min")
    assert times[0] - issued < QUARTER
    assert (times.minute % 15 == 0).all() and (times.second == 0).all()
    assert (times[1:] - times[:-1] == QUARTER).all()
    assert all(step["valid_time"].endswith("Z") for step in body["forecast"])


@pytest.mark.parametrize("park_id", DEMO_PARKS)
def test_forecast_values_physical(day_ahead: dict[str, Any], parks: dict[str, Park], park_id: str) -> None:
    """p10 <= p50 <= p90, all within [0, capacity]; exactly 0 whenever the sun is down at the park (solar
    elevation from pvcast.pv.physics <= 0); and not all zero while the sun is well up."""
    body, _, _ = day_ahead[park_id]
    q = np.array([[s["p10"], s["p50"], s["p90"]] for s in body["forecast"]])
    assert (q[:, 0] <= q[:, 1]).all() and (q[:, 1] <= q[:, 2]).all()
    assert (q >= 0).all() and (q <= body["capacity_ac_kw"]).all()
    elevation = solar_elevation(parks[park_id], pd.DatetimeIndex([utc(s["valid_time"]) for s in body["forecast"]]))
    night = elevation <= 0
    assert night.any(), "precondition: a 24 h forecast contains night"
    assert (q[night] == 0).all(), elevation[night & (q.max(axis=1) > 0)]
    assert q[elevation > 5, 2].max() > 0


@pytest.mark.parametrize("hours", [1, 6, 13, 24])
def test_forecast_horizon_sets_step_count(client: httpx.Client, served: Any, hours: int) -> None:
    """horizon_hours N gives N × 4 quarter-hour steps."""
    response = forecast(client, served.read_key, {"park_id": "synthetic-miami", "horizon_hours": hours})
    assert response.status_code == 200, response.text
    assert len(response.json()["forecast"]) == hours * 4


def test_forecast_default_horizon_is_24h(client: httpx.Client, served: Any) -> None:
    """Without horizon_hours the forecast covers 24 h (96 steps)."""
    response = forecast(client, served.read_key, {"park_id": "synthetic-sandpoint"})
    assert response.status_code == 200, response.text
    assert len(response.json()["forecast"]) == 96


# --- 401 / 403 / 404 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer pvc_wrong-key"},
        {"Authorization": "Basic cmVhZGVyOnNlY3JldA=="},
        {"Authorization": "Token pvc_test-read-key"},
        {"Authorization": "Bearer"},
    ],
    ids=["no-header", "wrong-key", "basic-scheme", "token-scheme", "empty-bearer"],
)
def test_unauthenticated_is_401(client: httpx.Client, headers: dict[str, str]) -> None:
    """Missing header, unknown key or a non-Bearer scheme → 401 JSON error with a WWW-Authenticate: Bearer header."""
    response = forecast(client, None, {"park_id": "synthetic-miami"}, headers=headers)
    assert_error(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"


def test_read_key_under_another_scheme_is_refused(client: httpx.Client, served: Any) -> None:
    """The valid read key itself, sent as `Token <key>`, is still 401 (the scheme matters, not just the secret)."""
    response = forecast(
        client, None, {"park_id": "synthetic-miami"}, headers={"Authorization": f"Token {served.read_key}"}
    )
    assert_error(response, 401, "unauthorized")


def test_write_only_key_is_403(client: httpx.Client, served: Any) -> None:
    """A valid key without the read scope → 403 forbidden, naming the missing scope."""
    body = assert_error(forecast(client, served.write_key, {"park_id": "synthetic-miami"}), 403, "forbidden")
    assert "read" in body["message"]


def test_unknown_park_is_404(client: httpx.Client, served: Any) -> None:
    """A well-formed but unregistered park id → 404 not_found naming the park."""
    body = assert_error(forecast(client, served.read_key, {"park_id": "no-such-park"}), 404, "not_found")
    assert "no-such-park" in body["message"]


# --- 422 -----------------------------------------------------------------------------------------------

INVALID_BODIES = {
    "horizon-0": ({"park_id": "synthetic-miami", "horizon_hours": 0}, "horizon_hours"),
    "horizon-49": ({"park_id": "synthetic-miami", "horizon_hours": 49}, "horizon_hours"),
    "horizon-abc": ({"park_id": "synthetic-miami", "horizon_hours": "abc"}, "horizon_hours"),
    "horizon-fraction": ({"park_id": "synthetic-miami", "horizon_hours": 2.5}, "horizon_hours"),
    "missing-park": ({"horizon_hours": 3}, "park_id"),
    "bad-park-id": ({"park_id": "bad id!"}, "park_id"),
    "extra-field": ({"park_id": "synthetic-miami", "issued_by": "me"}, "issued_by"),
    "naive-issued-at": ({"park_id": "synthetic-miami", "issued_at": "2026-01-01T00:00:00"}, "issued_at"),
    "quantile-out-of-range": ({"park_id": "synthetic-miami", "quantiles": [1.5]}, "quantiles"),
}


@pytest.mark.parametrize("case", list(INVALID_BODIES))
def test_invalid_request_is_422_naming_the_field(client: httpx.Client, served: Any, case: str) -> None:
    """Schema violations → 422 validation_error whose details[].field names the offending field."""
    request, field = INVALID_BODIES[case]
    body = assert_error(forecast(client, served.read_key, request), 422, "validation_error")
    assert field in [d["field"] for d in body["details"]], body
    assert field in body["message"]


def test_horizon_beyond_the_model_is_422(client: httpx.Client, served: Any) -> None:
    """horizon_hours 30 is valid for the API (<= 48) but exceeds the served 24 h model → 422 saying so."""
    body = assert_error(
        forecast(client, served.read_key, {"park_id": "synthetic-miami", "horizon_hours": 30}), 422, "validation_error"
    )
    assert "24" in body["message"]


def test_horizon_beyond_the_model_names_the_field(client: httpx.Client, served: Any) -> None:
    """Like every other 422, the horizon-too-long error names horizon_hours in details[].field."""
    body = assert_error(
        forecast(client, served.read_key, {"park_id": "synthetic-miami", "horizon_hours": 30}), 422, "validation_error"
    )
    assert "horizon_hours" in [d["field"] for d in body["details"]], body


def test_malformed_json_is_422_without_traceback(client: httpx.Client, served: Any) -> None:
    """A body that is not JSON → 422 JSON error (and, as everywhere, no traceback)."""
    response = call(
        client, "POST", "/forecast", served.read_key, content=b"{not json", headers={"content-type": "application/json"}
    )
    assert_error(response, 422, "validation_error")


def test_wrong_method_is_405_json(client: httpx.Client, served: Any) -> None:
    """GET /forecast → 405 with the same JSON error shape."""
    assert_error(call(client, "GET", "/forecast", served.read_key), 405, "method_not_allowed")


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/parks/a%2Fb"), ("GET", "/parks/a/b"), ("GET", "/nope"), ("POST", "/nope"), ("GET", "/forecastx")],
    ids=["encoded-slash", "nested", "unknown-get", "unknown-post", "prefix-of-a-route"],
)
def test_unknown_route_is_404_json(client: httpx.Client, served: Any, method: str, path: str) -> None:
    """A path no route knows answers the API's JSON error (not BentoML's plain-text 404), with or without a key;
    no key is asked for a route that does not exist."""
    for key in (None, served.read_key):
        body = assert_error(call(client, method, path, key), 404, "not_found")
        assert body["details"] == []


def test_trailing_slash_still_redirects_to_the_route(client: httpx.Client, served: Any) -> None:
    """/parks/ and /forecast/ redirect (307) to the route without the slash, as the framework did before."""
    for method, path in (("GET", "/parks/"), ("POST", "/forecast/")):
        response = call(client, method, path, served.read_key, follow_redirects=False)
        assert response.status_code == 307, response.text
        assert response.headers["location"].endswith(path.rstrip("/"))


# --- probes, metrics, OpenAPI -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/livez", "/readyz", "/metrics"])
def test_probes_and_metrics_need_no_key(client: httpx.Client, path: str) -> None:
    """Kubernetes probes and the Prometheus scrape answer 200 without any Authorization header."""
    assert call(client, "GET", path).status_code == 200


def test_metrics_expose_served_model_version(client: httpx.Client, trained: Any) -> None:
    """/metrics carries pvcast_model_info{version="<served version>"} 1."""
    version = trained.tag.split(":", 1)[1]
    lines = [
        line for line in call(client, "GET", "/metrics").text.splitlines() if line.startswith("pvcast_model_info{")
    ]
    assert lines, "pvcast_model_info missing from /metrics"
    assert any(f'version="{version}"' in line and line.rstrip().endswith(" 1.0") for line in lines), lines


def test_openapi_documents_forecast(client: httpx.Client) -> None:
    """/openapi.json (no key needed) documents POST /forecast: request and response schemas and the 401, 403,
    404 and 422 responses with the error schema."""
    response = call(client, "GET", "/openapi.json")
    assert response.status_code == 200
    spec = response.json()
    post = spec["paths"]["/forecast"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/ForecastRequest")
    assert post["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/ForecastResponse")
    for status in ("401", "403", "404", "422"):
        assert post["responses"][status]["description"]
        assert post["responses"][status]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")
    request = spec["components"]["schemas"]["ForecastRequest"]
    assert request["properties"]["horizon_hours"]["minimum"] == 1
    assert request["properties"]["horizon_hours"]["maximum"] == 48
    assert request["required"] == ["park_id"]


def test_park_body_is_the_plant_model(client: httpx.Client) -> None:
    """The PUT /parks/{park_id} body in the live OpenAPI document is the plant model's ParkSpec: the same fields,
    in order, all required, with the same bounds and descriptions; the path's park id uses the model's pattern."""
    spec = call(client, "GET", "/openapi.json").json()
    put = spec["paths"]["/parks/{park_id}"]["put"]
    body = spec["components"]["schemas"][
        put["requestBody"]["content"]["application/json"]["schema"]["$ref"].split("/")[-1]
    ]
    assert list(body["properties"]) == list(PARK_FEATURES)
    assert body["required"] == list(PARK_FEATURES)
    for name, field in ParkSpec.model_fields.items():
        assert body["properties"][name]["description"] == field.description
    assert ParkSpec.model_json_schema()["properties"] == body["properties"]
    path_id = next(p for p in put["parameters"] if p["name"] == "park_id")
    assert path_id["schema"]["pattern"] == PARK_ID_PATTERN
