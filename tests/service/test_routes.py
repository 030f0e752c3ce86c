"""Routes declare their scope (service/routes.py): the gate's table is read from the app, not kept by hand.

Unit tests on small FastAPI apps (the live service's behaviour over HTTP is in test_http.py and test_api.py).
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from prometheus_client import REGISTRY

from pvcast.keys import ApiKey, hash_key
from service import errors
from service.gate import Gate, GateConfig
from service.ratelimit import RateLimiter
from service.routes import RouteTable, UnknownRoute, scoped


def small_app(*, with_unscoped: bool = False) -> FastAPI:
    app = FastAPI()
    errors.install(app)
    router = APIRouter()  # BentoML includes the service's routes through a router, as here

    @router.post("/things", dependencies=scoped("write"))
    def make_thing() -> dict[str, str]:
        return {"made": "yes"}

    @router.get("/things/{thing_id}", dependencies=scoped("read"))
    def get_thing(thing_id: str) -> dict[str, str]:
        return {"thing_id": thing_id}

    if with_unscoped:

        @router.get("/forgotten")
        def forgotten() -> dict[str, str]:
            return {}

    app.include_router(router)
    app.router.routes.append(UnknownRoute())
    return app


def request(app: FastAPI, method: str, path: str, key: str | None = None) -> httpx.Response:
    """One request through the app in process (ASGI), redirects not followed."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}

    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.request(method, path, headers=headers)

    return asyncio.run(send())


def gated_app() -> FastAPI:
    """small_app behind the real gate, configured as the service configures it at start-up."""
    app = small_app()
    reader = ApiKey(name="reader", sha256=hash_key("pvc_reader"), scopes=("read",))
    config = GateConfig(
        keys=(reader,),
        limiter=RateLimiter(None),
        rate_per_second=100.0,
        burst=100,
        max_body_bytes=4096,
        routes=RouteTable.of(app),
    )
    app.add_middleware(Gate, config=lambda: config)
    return app


def observed(endpoint: str, method: str, status: int) -> float:
    labels = {"endpoint": endpoint, "method": method, "status": str(status)}
    return REGISTRY.get_sample_value("pvcast_request_duration_seconds_count", labels) or 0.0


def test_the_table_holds_each_routes_declared_scope_and_template() -> None:
    table = RouteTable.of(small_app())
    rule = table.match("/things/abc", "GET")
    assert rule is not None and (rule.template, rule.scope) == ("/things/{thing_id}", "read")
    rule = table.match("/things", "POST")
    assert rule is not None and (rule.template, rule.scope) == ("/things", "write")
    docs = table.match("/docs", "GET")
    assert docs is not None and docs.scope is None  # the documentation is open
    assert table.match("/things/a/b", "GET") is None and table.match("/other", "GET") is None


def test_a_known_path_with_another_method_keeps_the_paths_scope() -> None:
    """GET /things has no route, but the path is /things': the gate still asks for its key (then 405)."""
    rule = RouteTable.of(small_app()).match("/things", "GET")
    assert rule is not None and rule.scope == "write"


def test_an_endpoint_without_a_scope_refuses_to_start() -> None:
    """A new endpoint that forgets scoped() is a start-up error, never an open door."""
    with pytest.raises(RuntimeError, match=r"/forgotten declares no scope"):
        RouteTable.of(small_app(with_unscoped=True))


def test_unknown_paths_get_json_404_and_wrong_methods_405() -> None:
    app = small_app()
    for path in ("/nope", "/things/a/b", "/things/a%2Fb"):
        response = request(app, "GET", path)
        assert response.status_code == 404 and response.json()["error"] == "not_found", path
    response = request(app, "GET", "/things")
    assert response.status_code == 405 and response.json()["error"] == "method_not_allowed"
    assert request(app, "GET", "/things/x").json() == {"thing_id": "x"}


def test_a_trailing_slash_redirects_to_the_route_it_names() -> None:
    app = small_app()
    response = request(app, "POST", "/things/")
    assert response.status_code == 307 and response.headers["location"].endswith("/things")
    response = request(app, "GET", "/readyz/")  # BentoML's probe, served beside the app
    assert response.status_code == 307 and response.headers["location"].endswith("/readyz")


def test_the_gate_asks_for_the_scope_the_route_declares() -> None:
    """Through the gate: the read route with a read key passes, the write route is 403, no key is 401, and a
    path no route knows needs no key (it is a 404)."""
    app = gated_app()
    assert request(app, "GET", "/things/x", "pvc_reader").json() == {"thing_id": "x"}
    assert request(app, "POST", "/things", "pvc_reader").status_code == 403
    assert request(app, "GET", "/things/x").status_code == 401
    assert request(app, "GET", "/things/a/b").status_code == 404


def test_the_gate_labels_metrics_with_the_matched_template() -> None:
    """One latency series per route template, whatever the id in the path; unknown paths share "other"."""
    app = gated_app()
    before = observed("/things/{thing_id}", "GET", 200), observed("other", "GET", 404)
    for thing in ("a", "b", "c"):
        request(app, "GET", f"/things/{thing}", "pvc_reader")
    request(app, "GET", "/no-such-path")
    after = observed("/things/{thing_id}", "GET", 200), observed("other", "GET", 404)
    assert (after[0] - before[0], after[1] - before[1]) == (3.0, 1.0)
    assert observed("/things/a", "GET", 200) == 0.0
