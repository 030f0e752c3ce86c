"""Domain errors → HTTP status codes and JSON bodies, in one place. Nothing internal leaks to clients."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from pvcast.errors import (
    AuthenticationError,
    HorizonTooLongError,
    InvalidJobError,
    InvalidParkError,
    IssuedInFutureError,
    JobNotFoundError,
    NaiveTimestampError,
    PermissionDeniedError,
    PvcastError,
    QuantileNotServedError,
    SharedStateUnavailableError,
    StoreUnavailableError,
    UnknownParkError,
)

logger = logging.getLogger(__name__)

STATUS: dict[type[PvcastError], tuple[int, str]] = {
    AuthenticationError: (401, "unauthorized"),
    PermissionDeniedError: (403, "forbidden"),
    UnknownParkError: (404, "not_found"),
    JobNotFoundError: (404, "not_found"),
    HorizonTooLongError: (422, "validation_error"),
    QuantileNotServedError: (422, "validation_error"),
    IssuedInFutureError: (422, "validation_error"),
    InvalidJobError: (422, "validation_error"),
    InvalidParkError: (422, "validation_error"),
    NaiveTimestampError: (422, "validation_error"),
    StoreUnavailableError: (503, "unavailable"),
    SharedStateUnavailableError: (503, "unavailable"),
}
HTTP_ERRORS = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large", 429: "rate_limited"}


def body(error: str, message: str, details: list[dict[str, str | None]] | None = None) -> dict[str, object]:
    return {"error": error, "message": message, "details": details or []}


def status_of(exc: PvcastError) -> tuple[int, str]:
    for kind in type(exc).__mro__:
        if kind in STATUS:
            return STATUS[kind]
    return 500, "internal_error"


def field_path(loc: tuple[object, ...] | list[object]) -> str:
    """('body', 'items', 3, 'power_kw') → 'items[3].power_kw'."""
    path = ""
    for part in list(loc)[1:] if loc and loc[0] in ("body", "query", "path", "header") else loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "body"


async def _domain(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, PvcastError)
    status, kind = status_of(exc)
    field = getattr(exc, "field", None)
    reason = exc.reason if isinstance(exc, InvalidParkError) else str(exc)
    details: list[dict[str, str | None]] = [{"field": field, "message": reason}] if field else []
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body(kind, str(exc), details), status_code=status, headers=headers)


def _error_field(error: Any) -> str:
    return "body" if error["type"] == "json_invalid" else field_path(error["loc"])


async def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = [{"field": _error_field(e), "message": e["msg"]} for e in exc.errors()]
    summary = "; ".join(f"{d['field']}: {d['message']}" for d in details)
    return JSONResponse(body("validation_error", f"invalid request: {summary}", details), status_code=422)


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    kind = HTTP_ERRORS.get(exc.status_code, "error")
    return JSONResponse(body(kind, str(exc.detail)), status_code=exc.status_code, headers=getattr(exc, "headers", None))


def park_error(exc: PvcastError) -> dict[str, str]:
    """The error object of one park inside a batch answer."""
    return {"error": status_of(exc)[1], "message": str(exc)}


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse(body("internal_error", "internal error; it has been logged"), status_code=500)


def install(app: FastAPI) -> None:
    app.add_exception_handler(PvcastError, _domain)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)
