"""Timezone-aware UTC time helpers. Naive timestamps are rejected, never guessed."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from pvcast.errors import NaiveTimestampError


def require_utc(value: datetime | pd.Timestamp | str, name: str = "timestamp") -> pd.Timestamp:
    """Return ``value`` as a UTC ``pd.Timestamp``; raise if it carries no timezone."""
    ts = pd.Timestamp(value)
    if ts.tzinfo is None:
        raise NaiveTimestampError(f"{name}={value!s} has no timezone: give it in UTC, e.g. '2026-01-01T00:00Z'")
    return ts.tz_convert("UTC")


def utc_now() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC")


def epoch_seconds(ts: pd.Timestamp) -> int:
    """Whole seconds since 1970-01-01 UTC."""
    return int(require_utc(ts).value // 1_000_000_000)


def from_epoch_seconds(seconds: int | float) -> pd.Timestamp:
    return pd.Timestamp(int(seconds), unit="s", tz="UTC")


def ceil_epoch(seconds: np.ndarray | int, step_seconds: int) -> np.ndarray:
    """Smallest multiple of ``step_seconds`` that is >= ``seconds``: the first interval starting at or after it."""
    s = np.asarray(seconds, dtype=np.int64)
    return -(-s // step_seconds) * step_seconds


def floor_epoch(seconds: np.ndarray | int, step_seconds: int) -> np.ndarray:
    s = np.asarray(seconds, dtype=np.int64)
    return (s // step_seconds) * step_seconds


def utc_series(values: pd.Series, name: str) -> pd.Series:
    """A datetime column as tz-aware UTC with microsecond precision (what the DuckDB offline store reads)."""
    series = pd.to_datetime(values)
    if series.dt.tz is None:
        raise NaiveTimestampError(f"column {name!r} holds naive timestamps: store UTC-aware times only")
    return series.dt.tz_convert("UTC").astype("datetime64[us, UTC]")


def iso_duration(seconds: int) -> str:
    """Seconds as an ISO 8601 duration: 900 → 'PT15M', 3600 → 'PT1H', 5400 → 'PT1H30M'."""
    if seconds <= 0:
        raise ValueError(f"a duration must be positive, got {seconds} s")
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    parts = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "") + (f"{secs}S" if secs else "")
    return "PT" + parts
