"""The front door of every request, as one ASGI middleware: request id, body size limit, API key, scope and
per-key rate limit — all before the body is parsed — then latency metrics and one JSON access log line.

Probes, metrics and the API documentation are open; every other route needs a key with its scope.
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
from pvcast.keys import ApiKey, Scope
from service import errors, metrics
from service.auth import authenticate, require_scope
from service.logs import request_id
from service.ratelimit import RateLimiter

logger = logging.getLogger("service.access")

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Message, Receive, Send], Awaitable[None]]

OPEN_PATHS = frozenset({"/livez", "/readyz", "/metrics", "/docs", "/docs/oauth2-redirect", "/openapi.json", "/redoc"})
SCOPES: tuple[tuple[str, Scope], ...] = (
    ("/forecast", "read"),
    ("/telemetry", "write"),
    ("/parks", "admin"),
    ("/jobs", "admin"),
)
TEMPLATES = (("/parks/", "/parks/{park_id}"), ("/jobs/", "/jobs/{job_id}"))
KNOWN = frozenset({"/forecast", "/forecast/batch", "/telemetry", "/parks", "/jobs/backfill"}) | OPEN_PATHS
REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


@dataclass(frozen=True)
class GateConfig:
    keys: tuple[ApiKey, ...]
    limiter: RateLimiter
    rate_per_second: float
    burst: int
    max_body_bytes: int
    max_in_flight: int = 32


def required_scope(path: str) -> Scope | None:
    for prefix, scope in SCOPES:
        if path == prefix or path.startswith(prefix + "/"):
            return scope
    return None


def endpoint_label(path: str) -> str:
    """The route template, so metrics have one series per endpoint whatever the ids in the path."""
    if path in KNOWN:
        return path
    for prefix, template in TEMPLATES:
        if path.startswith(prefix) and path != "/jobs/backfill":
            return template
    return "other"


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
        try:
            refusal, receive = await self.admit(scope, receive, key_name)
            if refusal is None and scope["path"] not in OPEN_PATHS:
                refusal, admitted = self.shed(), True
            if refusal is not None:
                await refusal(scope, receive, send_with_id)
            else:
                await self.app(scope, receive, send_with_id)
        finally:
            if admitted:
                self.in_flight -= 1
            self.record(scope, status[0], time.perf_counter() - tic, key_name[0])
            request_id.reset(token)

    async def admit(self, scope: Message, receive: Receive, key_name: list[str]) -> tuple[JSONResponse | None, Receive]:
        path = scope["path"]
        config = self.config()
        if path in OPEN_PATHS or config is None:
            return None, receive
        too_big, receive = await self.limit_body(scope, receive, config.max_body_bytes)
        if too_big:
            return _error(413, "payload_too_large", f"request body exceeds {config.max_body_bytes} bytes"), receive
        needed = required_scope(path)
        if needed is None:
            return None, receive
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

    def shed(self) -> JSONResponse | None:
        """Overload protection: beyond ``max_in_flight`` requests in progress, 503 at once (retry shortly) rather
        than queueing into timeouts. Counts the request as in flight when it is let through."""
        self.in_flight += 1
        config = self.config()
        if config is not None and self.in_flight > config.max_in_flight:
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
    def record(scope: Message, status: int, seconds: float, key: str) -> None:
        endpoint = endpoint_label(scope["path"])
        metrics.request_seconds.labels(endpoint=endpoint, method=scope["method"], status=str(status)).observe(seconds)
        if endpoint not in ("/livez", "/readyz", "/metrics"):
            logger.info(
                "%s %s %d",
                scope["method"],
                endpoint,
                status,
                extra={"status": status, "duration_ms": round(seconds * 1000, 2), "key": key or None},
            )
