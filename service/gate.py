"""The front door of every request, as one ASGI middleware: request id, body size limit, API key, scope and
per-key rate limit — all before the body is parsed — then latency metrics and one JSON access log line.

The scope of each route is declared at the route (``service/routes.py::scoped``); the gate reads it from the
table built from the app's routes at start-up. The API documentation is open (and BentoML's probes and
/metrics never reach the app); a path no route knows passes without a key to its JSON 404.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from fastapi.responses import JSONResponse

from pvcast.errors import PvcastError
from pvcast.keys import ApiKey
from service import errors, metrics
from service.auth import authenticate, require_scope
from service.logs import request_id
from service.ratelimit import RateLimiter
from service.routes import RouteRule, RouteTable

logger = logging.getLogger("service.access")

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Message, Receive, Send], Awaitable[None]]

UNKNOWN = "other"
"""The metrics' endpoint label of a path no route knows."""
REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


@dataclass(frozen=True)
class GateConfig:
    keys: tuple[ApiKey, ...]
    limiter: RateLimiter
    rate_per_second: float
    burst: int
    max_body_bytes: int
    routes: RouteTable
    max_in_flight: int = 32


def _header(scope: Message, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _error(status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(errors.body(kind, message), status_code=status, headers=headers)


class Gate:
    def __init__(self, app: ASGIApp, config: Callable[[], GateConfig | None]) -> None:
        self.app = app
        self.config = config
        self.in_flight = 0  # requests of this worker past the gate (one event loop: no lock needed)

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = _header(scope, b"x-request-id")
        rid = given if given and REQUEST_ID.match(given) else uuid.uuid4().hex
        token = request_id.set(rid)
        status = [500]
        key_name = [""]

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        tic = time.perf_counter()
        admitted = False
        config = self.config()
        rule = config.routes.match(scope["path"], scope["method"]) if config is not None else None
        try:
            refusal, receive = await self.admit(scope, receive, key_name, config, rule)
            if refusal is None and config is not None and rule is not None and rule.scope is not None:
                refusal, admitted = self.shed(config), True
            if refusal is not None:
                await refusal(scope, receive, send_with_id)
            else:
                await self.app(scope, receive, send_with_id)
        finally:
            if admitted:
                self.in_flight -= 1
            endpoint = rule.template if rule is not None else UNKNOWN
            self.record(scope, endpoint, status[0], time.perf_counter() - tic, key_name[0])
            request_id.reset(token)

    async def admit(
        self, scope: Message, receive: Receive, key_name: list[str], config: GateConfig | None, rule: RouteRule | None
    ) -> tuple[JSONResponse | None, Receive]:
        """Body size, key, scope and rate limit of a route that needs a scope; open and unknown paths pass."""
        if config is None or rule is None or rule.scope is None:
            return None, receive
        too_big, receive = await self.limit_body(scope, receive, config.max_body_bytes)
        if too_big:
            return _error(413, "payload_too_large", f"request body exceeds {config.max_body_bytes} bytes"), receive
        needed = rule.scope
        try:
            key = authenticate(_header(scope, b"authorization"), config.keys)
            key_name[0] = key.name
            require_scope(key, needed)
        except PvcastError as exc:
            code, kind = errors.status_of(exc)
            headers = {"WWW-Authenticate": "Bearer"} if code == 401 else None
            return _error(code, kind, str(exc), headers), receive
        rate, burst = key.rate_per_second or config.rate_per_second, key.burst or config.burst
        decision = config.limiter.check(key.name, rate, burst)
        if not decision.allowed:
            metrics.rate_limited.labels(key=key.name).inc()
            message = f"rate limit of key {key.name!r} exceeded; retry after {decision.retry_after_s} s"
            return _error(429, "rate_limited", message, {"Retry-After": str(decision.retry_after_s)}), receive
        return None, receive

    def shed(self, config: GateConfig) -> JSONResponse | None:
        """Overload protection: beyond ``max_in_flight`` requests in progress, 503 at once (retry shortly) rather
        than queueing into timeouts. Counts the request as in flight when it is let through."""
        self.in_flight += 1
        if self.in_flight > config.max_in_flight:
            message = f"the service is at capacity ({config.max_in_flight} requests in progress); retry shortly"
            return _error(503, "unavailable", message, {"Retry-After": "1"})
        return None

    @staticmethod
    async def limit_body(scope: Message, receive: Receive, limit: int) -> tuple[bool, Receive]:
        """Refuse bodies over ``limit`` bytes: by Content-Length, or by reading a chunked body up to the limit."""
        length = _header(scope, b"content-length")
        if length is not None:
            return (not length.isdigit() or int(length) > limit), receive
        if scope["method"] in ("GET", "HEAD", "DELETE", "OPTIONS"):
            return False, receive
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return True, receive
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        replayed = [False]

        async def replay() -> Message:
            if not replayed[0]:
                replayed[0] = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return False, replay

    @staticmethod
    def record(scope: Message, endpoint: str, status: int, seconds: float, key: str) -> None:
        """Latency by route template (one series per endpoint whatever the ids in the path), and the access log."""
        metrics.request_seconds.labels(endpoint=endpoint, method=scope["method"], status=str(status)).observe(seconds)
        logger.info(
            "%s %s %d",
            scope["method"],
            endpoint,
            status,
            extra={"status": status, "duration_ms": round(seconds * 1000, 2), "key": key or None},
        )
