"""Structured JSON logs with the request id, and a filter that keeps secrets out of every log line.

Configured only by the service entry point (``service/service.py``), for pvcast's own loggers.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import time

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

SECRET = re.compile(r"(pvc_[A-Za-z0-9_\-]{4,}|(?i:bearer)\s+\S+|password=[^,\s]+|://:[^@\s]+@)")
PVCAST_LOGGERS = ("pvcast", "service", "feature_repo", "training")


def redact(text: str) -> str:
    return SECRET.sub("[REDACTED]", text)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id and any ``extra`` fields given."""

    RESERVED = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
            "request_id": request_id.get(),
        }
        entry |= {k: v for k, v in record.__dict__.items() if k not in self.RESERVED}
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, default=str)


def configure(level: int = logging.INFO) -> None:
    """JSON lines on stderr for pvcast's loggers (idempotent)."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    for name in PVCAST_LOGGERS:
        log = logging.getLogger(name)
        log.handlers = [handler]
        log.setLevel(level)
        log.propagate = False
