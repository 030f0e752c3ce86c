"""Telemetry ingestion: validate measured power row by row, then store it idempotently (offline and online).

A payload that parses (types, timezones, finite numbers) is accepted row by row: each measurement that breaks
a rule is reported in ``rejected`` with its index and field, and every other one is stored. Rules: the park is
registered; ``valid_time`` is a quarter-hour interval beginning whose interval has ended (not in the future);
``power_kw`` is within [0, 1.1 × capacity_ac_kw]; a (park, valid_time) appears once per payload. Storing goes
through ``feature_repo.store.append_rows``: a (park, valid_time) already stored is a duplicate, not an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from feast import FeatureStore
from numpy.typing import NDArray

from feature_repo.online import OnlineReader
from feature_repo.store import append_rows
from pvcast.schema import ENTITY_KEY, EVENT_TIMESTAMP, GENERATION_VIEW, PARK_VIEW
from pvcast.settings import StoreConfig
from service import metrics

MAX_CAPACITY_RATIO = 1.1
CLOCK_SKEW_S = 60


@dataclass(frozen=True)
class Rows:
    """A payload as arrays, in request order."""

    park_id: NDArray[np.str_]
    valid_time: NDArray[np.int64]  # interval beginning [s since epoch]
    power_kw: NDArray[np.float64]


@dataclass(frozen=True)
class Outcome:
    accepted: int
    duplicates: int
    rejected: list[dict[str, object]]


def rejections(rows: Rows, capacity: NDArray[np.float64], now: float, step_seconds: int) -> list[dict[str, object]]:
    """The first broken rule of each invalid row, in row order (pure: no I/O)."""
    checks = [
        (~np.isfinite(capacity), "park_id", lambda i: f"unknown park_id {str(rows.park_id[i])!r}: register it first"),
        (
            rows.valid_time % step_seconds != 0,
            "valid_time",
            lambda i: f"must be the beginning of a {step_seconds // 60}-minute interval (e.g. 12:00, 12:15)",
        ),
        (
            rows.valid_time + step_seconds > now + CLOCK_SKEW_S,
            "valid_time",
            lambda i: "is in the future: the interval has not ended yet",
        ),
        (rows.power_kw < 0, "power_kw", lambda i: "must not be negative"),
        (
            rows.power_kw > MAX_CAPACITY_RATIO * np.nan_to_num(capacity, nan=np.inf),
            "power_kw",
            lambda i: f"exceeds {MAX_CAPACITY_RATIO} × capacity_ac_kw = {MAX_CAPACITY_RATIO * capacity[i]:g} kW",
        ),
        (_repeated(rows), "valid_time", lambda i: "duplicate (park_id, valid_time) in this payload"),
    ]
    found: dict[int, dict[str, object]] = {}
    for failed, name, message in checks:
        for i in np.flatnonzero(failed).tolist():
            if i not in found:
                found[i] = {"index": i, "field": f"measurements[{i}].{name}", "message": message(i)}
    return [found[i] for i in sorted(found)]


def _repeated(rows: Rows) -> NDArray[np.bool_]:
    """True for the second and later occurrences of a (park, valid_time) within the payload."""
    frame = pd.DataFrame({"p": rows.park_id, "t": rows.valid_time})
    return frame.duplicated(keep="first").to_numpy()


def generation_frame(rows: Rows, keep: NDArray[np.int64], step_seconds: int) -> pd.DataFrame:
    """Rows of the ``generation`` table: known at the END of their interval."""
    valid = rows.valid_time[keep]
    return pd.DataFrame({
        ENTITY_KEY: rows.park_id[keep].astype(object),
        "power_kw": rows.power_kw[keep].astype(np.float32),
        "valid_time_epoch_s": valid,
        EVENT_TIMESTAMP: pd.to_datetime(valid + step_seconds, unit="s", utc=True),
    })  # fmt: skip


class TelemetryWriter:
    def __init__(self, store: FeatureStore, config: StoreConfig, reader: OnlineReader, step_seconds: int) -> None:
        self.store, self.config, self.reader, self.step_seconds = store, config, reader, step_seconds

    def capacities(self, park_ids: Sequence[str]) -> dict[str, float]:
        unique = list(dict.fromkeys(park_ids))
        values = self.reader.read(unique, None, views=[PARK_VIEW]).rows["capacity_ac_kw"]
        return {p: (np.nan if v is None else float(v)) for p, v in zip(unique, values, strict=True)}

    def write(self, rows: Rows, now: float) -> Outcome:
        known = self.capacities(rows.park_id.tolist())
        capacity = np.array([known[p] for p in rows.park_id.tolist()], dtype=np.float64)
        refused = rejections(rows, np.where(capacity > 0, capacity, np.nan), now, self.step_seconds)
        keep = np.setdiff1d(np.arange(len(rows.park_id)), [r["index"] for r in refused]).astype(np.int64)
        accepted = duplicates = 0
        if len(keep):
            frame = generation_frame(rows, keep, self.step_seconds)
            result = append_rows(self.store, self.config, GENERATION_VIEW, frame)
            accepted, duplicates = result.appended, result.duplicates
        metrics.telemetry_rows.labels(outcome="accepted").inc(accepted)
        metrics.telemetry_rows.labels(outcome="duplicate").inc(duplicates)
        metrics.telemetry_rows.labels(outcome="rejected").inc(len(refused))
        return Outcome(accepted, duplicates, refused)
