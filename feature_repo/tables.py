"""Offline tables as folders of parquet files: atomic part files, a lock, an index of known keys, compaction.

A view's offline table is the folder ``data/<view>/``; every ``*.parquet`` file in it is part of the table and
the Feast FileSource reads the glob, so DuckDB sees appended rows at once. Writers hold an exclusive
``flock`` on ``data/<view>/.lock`` (shared storage in Kubernetes: an RWX volume whose locks work across pods,
e.g. NFSv4), so appends from threads, workers and replicas are serialised and the key check is exact.

* A file is written under a name that does not match the glob and renamed into place (readers never see
  half a file). Names sort in write order: ``<kind>-<ns since epoch>-<random>.parquet``.
* :class:`KeyIndex` keeps, per process, the keys already stored (per park: sorted time values) and each
  park's newest timestamp. It reads only files it has not seen; a compacted file lists the files it replaces
  in its parquet metadata, so a process that has seen them all does not reread it. A rewrite of the whole
  table (``replace``) changes ``.epoch`` and every process rebuilds its index.
* :func:`compact` merges the parts when there are many (few files keep DuckDB scans fast); into the base when
  the parts have grown to a quarter of it, so each row is rewritten O(log n) times in total.
"""

from __future__ import annotations

import fcntl
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

logger = logging.getLogger(__name__)

LOCK_FILE = ".lock"
EPOCH_FILE = ".epoch"
REPLACES_KEY = b"pvcast.replaces"
COMPACT_MIN_PARTS = 32
"""Merge the parts once there are this many part files."""
BASE_GROWTH = 0.25
"""Fold the parts into the base once they hold this fraction of the base's rows."""
_RECENT_LIMIT = 4096


def data_files(directory: Path) -> list[Path]:
    """The table's files in write order."""
    return sorted(directory.glob("*.parquet"), key=lambda p: p.name.split("-")[1] if "-" in p.name else "")


def _new_name(kind: str) -> str:
    return f"{kind}-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.parquet"


def write_file(directory: Path, table: pa.Table, kind: str, replaces: list[str] | None = None) -> Path:
    """Write ``table`` as one new file of the folder, atomically (temporary name, then rename)."""
    directory.mkdir(parents=True, exist_ok=True)
    if replaces is not None:
        meta = dict(table.schema.metadata or {}) | {REPLACES_KEY: json.dumps(replaces).encode()}
        table = table.replace_schema_metadata(meta)
    path = directory / _new_name(kind)
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp)
    tmp.replace(path)
    return path


def read_files(files: list[Path], columns: list[str] | None = None) -> pa.Table | None:
    tables = [pq.read_table(f, columns=columns) for f in files]
    if not tables:
        return None
    return pa.concat_tables([t.replace_schema_metadata(None) for t in tables], promote_options="default")


def replaced_by(path: Path) -> list[str] | None:
    meta = pq.read_schema(path).metadata or {}
    return json.loads(meta[REPLACES_KEY]) if REPLACES_KEY in meta else None


@contextmanager
def locked(directory: Path) -> Iterator[None]:
    """Exclusive lock of a table folder, across threads, processes and (on shared storage) pods."""
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / LOCK_FILE).open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def epoch_of(directory: Path) -> str:
    path = directory / EPOCH_FILE
    return path.read_text() if path.exists() else ""


def new_epoch(directory: Path) -> None:
    (directory / EPOCH_FILE).write_text(uuid.uuid4().hex)


@dataclass
class _Times:
    """The stored time values of one park: a sorted array plus a set of recent additions."""

    stored: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    recent: set[int] = field(default_factory=set)

    def contains(self, values: np.ndarray) -> np.ndarray:
        found = np.isin(values, self.stored)
        if self.recent:
            found |= np.fromiter((int(v) in self.recent for v in values), dtype=bool, count=len(values))
        return found

    def add(self, values: np.ndarray) -> None:
        self.recent.update(values.tolist())
        if len(self.recent) > _RECENT_LIMIT:
            self.merge()

    def merge(self) -> None:
        self.stored = np.union1d(self.stored, np.fromiter(self.recent, dtype=np.int64, count=len(self.recent)))
        self.recent.clear()


@dataclass
class KeyIndex:
    """Keys (park, time value) stored in one table folder and each park's newest timestamp [µs]."""

    key_column: str
    time_column: str
    epoch: str = ""
    seen: set[str] = field(default_factory=set)
    times: dict[str, _Times] = field(default_factory=dict)
    newest: dict[str, int] = field(default_factory=dict)

    def refresh(self, directory: Path, entity: str) -> None:
        """Catch up with files written by anyone since the last call (call under :func:`locked`)."""
        epoch = epoch_of(directory)
        if epoch != self.epoch:
            self.seen.clear()
            self.times.clear()
            self.newest.clear()
            self.epoch = epoch
        files = data_files(directory)
        names = {f.name for f in files}
        unseen = [f for f in files if f.name not in self.seen]
        self.seen &= names
        for path in unseen:
            replaces = replaced_by(path)
            if replaces is None or not set(replaces) <= self.seen | {path.name}:
                columns = list(dict.fromkeys([entity, self.key_column, self.time_column]))  # key may be the time
                self._load(pq.read_table(path, columns=columns), entity)
            self.seen.add(path.name)

    def _load(self, table: pa.Table, entity: str) -> None:
        if table.num_rows == 0:
            return
        parks = table[entity].to_numpy(zero_copy_only=False)
        keys = key_values(table, self.key_column)
        stamps = key_values(table, self.time_column)
        order = np.argsort(parks, kind="stable")
        parks, keys, stamps = parks[order], keys[order], stamps[order]
        bounds = np.flatnonzero(parks[1:] != parks[:-1]) + 1
        for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, len(parks)], strict=True):
            park = str(parks[lo])
            entry = self.times.setdefault(park, _Times())
            entry.stored = np.union1d(entry.stored, keys[lo:hi])
            self.newest[park] = max(self.newest.get(park, np.iinfo(np.int64).min), int(stamps[lo:hi].max()))

    def contains(self, parks: np.ndarray, keys: np.ndarray) -> np.ndarray:
        found = np.zeros(len(parks), dtype=bool)
        for park, rows in _group(parks).items():
            entry = self.times.get(park)
            if entry is not None:
                found[rows] = entry.contains(keys[rows])
        return found

    def add(self, parks: np.ndarray, keys: np.ndarray, stamps: np.ndarray, path: Path) -> None:
        for park, rows in _group(parks).items():
            self.times.setdefault(park, _Times()).add(keys[rows])
            self.newest[park] = max(self.newest.get(park, np.iinfo(np.int64).min), int(stamps[rows].max()))
        self.seen.add(path.name)

    def newest_of(self, park: str) -> int | None:
        return self.newest.get(park)


def _group(parks: np.ndarray) -> dict[str, np.ndarray]:
    """Row indices of each distinct park, in first-seen order."""
    unique, inverse = np.unique(parks.astype(str), return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    bounds = np.cumsum(np.bincount(inverse, minlength=len(unique)))[:-1]
    return dict(zip(unique.tolist(), np.split(order, bounds), strict=True))


def key_values(table: pa.Table, column: str) -> np.ndarray:
    """A key or time column as int64 (timestamps in µs since the epoch)."""
    array = table[column]
    if pa.types.is_timestamp(array.type):
        array = array.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64())
    return np.asarray(array.to_numpy(zero_copy_only=False), dtype=np.int64)


_INDEXES: dict[tuple[Path, str], KeyIndex] = {}
_INDEXES_LOCK = threading.Lock()


def index_for(directory: Path, key_column: str, time_column: str) -> KeyIndex:
    """The process-wide index of a table folder (refresh it under the folder's lock before use)."""
    with _INDEXES_LOCK:
        return _INDEXES.setdefault((directory, key_column), KeyIndex(key_column, time_column))


def compact(directory: Path, dedupe: list[str], min_parts: int = COMPACT_MIN_PARTS) -> Path | None:
    """Merge part files (call under :func:`locked`); returns the new file, or None when there was nothing to do.

    Rows are deduplicated on ``dedupe`` keeping the first written, so a compaction never changes what the
    table holds.
    """
    files = data_files(directory)
    bases = [f for f in files if f.name.startswith("base-")]
    parts = [f for f in files if not f.name.startswith("base-")]
    if len(parts) < min_parts:
        return None
    base_rows = sum(pq.read_metadata(f).num_rows for f in bases)
    part_rows = sum(pq.read_metadata(f).num_rows for f in parts)
    merged = bases + parts if part_rows >= BASE_GROWTH * base_rows else parts
    table = read_files(merged)
    assert table is not None
    table = _first_per_key(table, dedupe)
    kind = "base" if merged[0] in bases or not bases else "part"
    path = write_file(directory, table, kind, replaces=[f.name for f in merged])
    for old in merged:
        old.unlink(missing_ok=True)
    logger.info("compacted %d files (%d rows) of %s into %s", len(merged), table.num_rows, directory.name, path.name)
    return path


def _first_per_key(table: pa.Table, keys: list[str]) -> pa.Table:
    frame = table.select(keys).to_pandas()
    keep = ~frame.duplicated(keys, keep="first").to_numpy()
    return table if keep.all() else table.filter(pa.array(keep))


def remove_all_but(directory: Path, keep: Path) -> None:
    for path in data_files(directory):
        if path != keep:
            path.unlink(missing_ok=True)
