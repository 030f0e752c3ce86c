"""The forecast log: every forecast the service serves (or a deterministic sample), in the offline store.

Layout: ``<store>/data/forecast_log/date=YYYY-MM-DD/part-*.parquet`` — append-only part files, partitioned by
the UTC date of ``issued_at`` (hive style, so DuckDB, pyarrow or Spark read it as one table). A part file is
written to a temporary name and renamed, so readers never see half a file. One row per (forecast, valid
time):

=================  =========================  ==============================================================
column             type                       meaning
=================  =========================  ==============================================================
park_id            string
issued_at          timestamp[us, UTC]         when the forecast was made (the request time)
model_version      string                     the BentoML model version that produced it
valid_time         timestamp[us, UTC]         interval beginning; the value is the mean over 15 minutes
quantile_levels    list<float64>              e.g. [0.1, 0.5, 0.9]
quantiles_kw       list<float32>              power [kW] at each level, same order
capacity_ac_kw     float64                    the park's AC capacity when served (normalises scores)
logged_at          timestamp[us, UTC]
=================  =========================  ==============================================================

The service calls :class:`ForecastLogBuffer` (``add`` per response, cheap: it only appends arrays to a list;
``flush`` writes one part file; it flushes by itself past ``max_rows`` or ``max_seconds``). Batch jobs and
tests may call :func:`log_forecasts` directly. Sampling is by (park, issue time), so a sampled forecast is
logged whole. Re-logging the same forecast is harmless: readers keep the first row per
(park_id, issued_at, model_version, valid_time).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from numpy.typing import NDArray

from pvcast.schema import ENTITY_KEY, ISSUED_AT
from pvcast.settings import StoreConfig
from pvcast.timeutils import require_utc, utc_now

logger = logging.getLogger(__name__)

FORECAST_LOG_DIR: Final = "forecast_log"
KEY: Final = (ENTITY_KEY, ISSUED_AT, "model_version", "valid_time")
SCHEMA: Final = pa.schema(
    [
        (ENTITY_KEY, pa.string()),
        (ISSUED_AT, pa.timestamp("us", tz="UTC")),
        ("model_version", pa.string()),
        ("valid_time", pa.timestamp("us", tz="UTC")),
        ("quantile_levels", pa.list_(pa.float64())),
        ("quantiles_kw", pa.list_(pa.float32())),
        ("capacity_ac_kw", pa.float64()),
        ("logged_at", pa.timestamp("us", tz="UTC")),
    ]
)


@dataclass(frozen=True)
class ServedForecasts:
    """A batch of forecasts exactly as the service has them after running the model.

    ``quantiles_kw`` is the ONNX output (n, steps, levels); ``valid_time`` the interval beginnings
    [s since epoch, UTC] (n, steps), as ``pvcast.pv.features.ModelInputs.valid_time``.
    """

    park_id: Sequence[str]  # (n,)
    issued_at: NDArray[np.int64]  # (n,) [s since epoch, UTC]
    valid_time: NDArray[np.int64]  # (n, steps)
    quantiles_kw: NDArray[np.floating]  # (n, steps, levels)
    quantile_levels: Sequence[float]
    capacity_ac_kw: NDArray[np.floating]  # (n,) or (n, 1)
    model_version: str


def log_dir(config: StoreConfig) -> Path:
    return config.data_dir / FORECAST_LOG_DIR


def check_shapes(batch: ServedForecasts) -> tuple[int, int, int]:
    """(n, steps, levels) of a consistent batch; ValueError otherwise."""
    n, steps, levels = np.shape(batch.quantiles_kw)
    if np.shape(batch.valid_time) != (n, steps) or len(batch.park_id) != n or len(batch.quantile_levels) != levels:
        raise ValueError("forecast batch shapes disagree: park_id (n,), valid_time (n, steps), quantiles (n, steps, q)")
    return n, steps, levels


def to_table(batch: ServedForecasts, logged_at: pd.Timestamp | None = None) -> pa.Table:
    """One row per (forecast, valid time) in the log's schema."""
    n, steps, levels = check_shapes(batch)
    stamp = require_utc(logged_at if logged_at is not None else utc_now(), "logged_at")
    issued = np.repeat(np.asarray(batch.issued_at, dtype=np.int64), steps) * 1_000_000
    values = np.asarray(batch.quantiles_kw, dtype=np.float32).reshape(n * steps, levels)
    columns = {
        ENTITY_KEY: pa.array(np.repeat(np.asarray(batch.park_id, dtype=object), steps), pa.string()),
        ISSUED_AT: pa.array(issued, pa.timestamp("us", tz="UTC")),
        "model_version": pa.array([batch.model_version] * (n * steps), pa.string()),
        "valid_time": pa.array(
            np.asarray(batch.valid_time, dtype=np.int64).ravel() * 1_000_000, pa.timestamp("us", tz="UTC")
        ),
        "quantile_levels": pa.FixedSizeListArray.from_arrays(
            pa.array(np.tile(np.asarray(batch.quantile_levels, dtype=np.float64), n * steps)), levels
        ).cast(pa.list_(pa.float64())),
        "quantiles_kw": pa.FixedSizeListArray.from_arrays(pa.array(values.ravel(), pa.float32()), levels).cast(
            pa.list_(pa.float32())
        ),
        "capacity_ac_kw": pa.array(np.repeat(np.asarray(batch.capacity_ac_kw, dtype=np.float64).ravel(), steps)),
        "logged_at": pa.array(np.full(n * steps, stamp.value // 1000, dtype=np.int64), pa.timestamp("us", tz="UTC")),
    }
    return pa.table(columns, schema=SCHEMA)


def merged_table(batches: Sequence[ServedForecasts]) -> pa.Table:
    """Many batches as one table: arrays concatenated per (model version, levels), then converted once (a
    per-batch conversion would hold the GIL for milliseconds per hundred requests)."""
    groups: dict[tuple[str, tuple[float, ...]], list[ServedForecasts]] = {}
    for batch in batches:
        groups.setdefault((batch.model_version, tuple(batch.quantile_levels)), []).append(batch)
    tables = []
    for (version, levels), members in groups.items():
        merged = ServedForecasts(
            park_id=[p for b in members for p in b.park_id],
            issued_at=np.concatenate([np.asarray(b.issued_at, dtype=np.int64) for b in members]),
            valid_time=np.concatenate([np.asarray(b.valid_time, dtype=np.int64) for b in members]),
            quantiles_kw=np.concatenate([np.asarray(b.quantiles_kw, dtype=np.float32) for b in members]),
            quantile_levels=levels,
            capacity_ac_kw=np.concatenate([np.asarray(b.capacity_ac_kw, dtype=np.float64).ravel() for b in members]),
            model_version=version,
        )
        tables.append(to_table(merged))
    return pa.concat_tables(tables)


def sampled(park_id: str, issued_at: int, rate: float) -> bool:
    """Deterministic sampling by (park, issue time): the same forecast is always in or always out."""
    if rate >= 1.0:
        return True
    return zlib.crc32(f"{park_id}|{issued_at}".encode()) / 2**32 < rate


def log_forecasts(config: StoreConfig, batch: ServedForecasts, sample_rate: float = 1.0) -> Path | None:
    """Append ``batch`` (or its sampled part) to the log as one part file; returns it (None if nothing kept)."""
    keep = np.array([sampled(p, int(t), sample_rate) for p, t in zip(batch.park_id, batch.issued_at, strict=True)])
    if not keep.any():
        return None
    if not keep.all():
        batch = _subset(batch, keep)
    return write_part(config, to_table(batch))


def _subset(batch: ServedForecasts, keep: NDArray[np.bool_]) -> ServedForecasts:
    return ServedForecasts(
        park_id=[p for p, k in zip(batch.park_id, keep, strict=True) if k],
        issued_at=np.asarray(batch.issued_at)[keep],
        valid_time=np.asarray(batch.valid_time)[keep],
        quantiles_kw=np.asarray(batch.quantiles_kw)[keep],
        quantile_levels=batch.quantile_levels,
        capacity_ac_kw=np.asarray(batch.capacity_ac_kw)[keep],
        model_version=batch.model_version,
    )


def write_part(config: StoreConfig, table: pa.Table) -> Path:
    """Write ``table`` as new part files, one per issue date (atomic rename); returns the last one."""
    dates = pc.strftime(table[ISSUED_AT], format="%Y-%m-%d").to_numpy(zero_copy_only=False)
    path = log_dir(config)
    for date in sorted(set(dates)):
        folder = log_dir(config) / f"date={date}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"part-{time.time_ns()}-{uuid.uuid4().hex[:8]}.parquet"
        tmp = folder / f".{path.name}.tmp"
        pq.write_table(table.filter(pa.array(dates == date)), tmp)
        tmp.replace(path)
    logger.debug("logged %d forecast rows to %s", table.num_rows, path.parent)
    return path


def read_forecast_log(
    config: StoreConfig, start: pd.Timestamp | None = None, end: pd.Timestamp | None = None, by: str = "valid_time"
) -> pd.DataFrame:
    """Logged rows with ``by`` (valid_time or issued_at) in [start, end), first row per KEY, sorted."""
    folder = log_dir(config)
    parts = sorted(folder.glob("date=*/part-*.parquet")) if folder.exists() else []
    parts = [p for p in parts if _may_hold(p.parent.name.removeprefix("date="), start, end, by)]
    if not parts:
        return SCHEMA.empty_table().to_pandas()
    frame = pa.concat_tables([pq.read_table(p, schema=SCHEMA) for p in parts]).to_pandas()
    if start is not None:
        frame = frame[frame[by] >= require_utc(start, "start")]
    if end is not None:
        frame = frame[frame[by] < require_utc(end, "end")]
    frame = frame.drop_duplicates(list(KEY), keep="first")
    return frame.sort_values([ENTITY_KEY, ISSUED_AT, "valid_time"]).reset_index(drop=True)


MAX_LEAD: Final = pd.Timedelta(days=7)
"""No forecast reaches further than this past its issue time (partition pruning by valid time relies on it)."""


def _may_hold(date: str, start: pd.Timestamp | None, end: pd.Timestamp | None, by: str) -> bool:
    """Whether the partition of issue date ``date`` can hold rows with ``by`` in [start, end)."""
    first = pd.Timestamp(date, tz="UTC")
    last = first + pd.Timedelta(days=1) + (MAX_LEAD if by == "valid_time" else pd.Timedelta(0))
    return (start is None or last > require_utc(start, "start")) and (end is None or first < require_utc(end, "end"))


_MAX_TRACKED: Final = 1_000_000


class ForecastLogBuffer:
    """Buffered, thread-safe logging for the service: ``add`` only keeps the arrays; a part file per flush.

    Due for a flush when ``max_rows`` forecast steps are buffered or the oldest buffered batch is older than
    ``max_seconds``. With ``flush_on_add`` (the default) ``add`` flushes when due; the service turns it off and
    calls ``flush_if_due`` from its housekeeping thread, so no request writes parquet. With ``slot_seconds``
    only the first forecast of each (park, model version) per issue slot is kept: the later ones of the slot
    come from the same weather run and labels, and logging them would only cost. ``close`` flushes the
    rest. A failed write is logged and the batch dropped from the buffer (the service must keep serving); the
    count is in ``dropped``.
    """

    def __init__(
        self,
        config: StoreConfig,
        sample_rate: float = 1.0,
        max_rows: int = 50_000,
        max_seconds: float = 60.0,
        flush_on_add: bool = True,
        slot_seconds: int = 0,
    ) -> None:
        self.config, self.sample_rate = config, sample_rate
        self.max_rows, self.max_seconds, self.flush_on_add = max_rows, max_seconds, flush_on_add
        self.slot_seconds = slot_seconds
        self._logged: dict[tuple[str, str], int] = {}  # (park, model version) → last logged issue slot
        self._batches: list[ServedForecasts] = []
        self._rows, self._since = 0, time.monotonic()
        self._lock = threading.Lock()
        self.dropped = 0

    def add(self, batch: ServedForecasts) -> None:
        keep = np.array(
            [sampled(p, int(t), self.sample_rate) for p, t in zip(batch.park_id, batch.issued_at, strict=True)]
        )
        if self.slot_seconds:
            keep &= self._first_in_slot(batch, keep)
        if not keep.any():
            return
        kept = batch if keep.all() else _subset(batch, keep)
        n, steps, _ = check_shapes(kept)
        with self._lock:
            if not self._batches:
                self._since = time.monotonic()
            self._batches.append(kept)
            self._rows += n * steps
            due = self._due()
        if due and self.flush_on_add:
            self.flush()

    def _first_in_slot(self, batch: ServedForecasts, sampled_in: NDArray[np.bool_]) -> NDArray[np.bool_]:
        """Which sampled forecasts are the first of their (park, model version) logged in their issue slot;
        records them (a forecast the sampling left out does not take its slot)."""
        slots = np.asarray(batch.issued_at, dtype=np.int64) // self.slot_seconds
        first = np.zeros(len(slots), dtype=bool)
        with self._lock:
            if len(self._logged) > _MAX_TRACKED:
                self._logged.clear()
            for i in np.flatnonzero(sampled_in).tolist():
                park, slot = batch.park_id[i], int(slots[i])
                key = (park, batch.model_version)
                if self._logged.get(key) != slot:
                    self._logged[key] = slot
                    first[i] = True
        return first

    def _due(self) -> bool:
        return bool(self._batches) and (
            self._rows >= self.max_rows or time.monotonic() - self._since >= self.max_seconds
        )

    def flush_if_due(self) -> Path | None:
        with self._lock:
            due = self._due()
        return self.flush() if due else None

    def flush(self) -> Path | None:
        with self._lock:
            batches, self._batches, self._rows = self._batches, [], 0
        if not batches:
            return None
        rows = sum(int(np.size(b.valid_time)) for b in batches)
        try:
            return write_part(self.config, merged_table(batches))
        except OSError:
            self.dropped += rows
            logger.exception("could not write %d forecast-log rows", rows)
            return None

    def close(self) -> None:
        self.flush()
