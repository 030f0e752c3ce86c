"""Opening, filling and reading pvcast's Feast feature store.

A *store folder* holds a ``feature_store.yaml`` and a ``data/`` folder with the offline parquet files, the
registry and (embedded default) the SQLite online store. ``feature_repo/`` itself is the default store
folder; tests and the GEFCom benchmark create their own from the same templates and definitions.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import unquote, urlparse

import numpy as np
import pandas as pd
import pyarrow as pa
import yaml
from feast import FeatureStore, RepoConfig
from feast.data_source import PushMode

from feature_repo import tables
from feature_repo.online import OnlineReader
from feature_repo.views import Definitions, build_definitions, source_dir, source_path
from pvcast.errors import DataNotFoundError
from pvcast.pv.plant import PARK_FEATURES, PARK_FIELD_TYPES, Park, parks_from_frame
from pvcast.schema import (
    ENTITY_KEY,
    EVENT_TIMESTAMP,
    FEATURE_SERVICE_NAME,
    GENERATION_FEATURES,
    GENERATION_PUSH_SOURCE,
    GENERATION_VIEW,
    ISSUED_AT,
    PARK_PUSH_SOURCE,
    PARK_VIEW,
    WEATHER_META,
    WEATHER_PUSH_SOURCE,
    WEATHER_VARIABLES,
    WEATHER_VIEW,
)
from pvcast.settings import StoreConfig
from pvcast.timeutils import require_utc, utc_series

logger = logging.getLogger(__name__)

TEMPLATES = Path(__file__).resolve().parent
ARROW_TYPES: Final[dict[type, pa.DataType]] = {float: pa.float64(), int: pa.int64(), str: pa.string()}
"""Arrow type of each Python type of the plant model's fields."""

# Column order of each offline table (Feast's offline write checks it exactly).
TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    PARK_VIEW: (ENTITY_KEY, *PARK_FEATURES, EVENT_TIMESTAMP),
    WEATHER_VIEW: (ENTITY_KEY, ISSUED_AT, *WEATHER_META, *WEATHER_VARIABLES),
    GENERATION_VIEW: (ENTITY_KEY, *GENERATION_FEATURES, EVENT_TIMESTAMP),
}
TIMESTAMP_COLUMN = {PARK_VIEW: EVENT_TIMESTAMP, WEATHER_VIEW: ISSUED_AT, GENERATION_VIEW: EVENT_TIMESTAMP}
KEY_COLUMNS: dict[str, tuple[str, ...]] = {
    PARK_VIEW: (ENTITY_KEY, EVENT_TIMESTAMP),
    WEATHER_VIEW: (ENTITY_KEY, ISSUED_AT),
    GENERATION_VIEW: (ENTITY_KEY, "valid_time_epoch_s"),
}
"""What identifies a row: appending a row whose key is already stored is a no-op (idempotent ingestion)."""
PUSH_SOURCES = {PARK_VIEW: PARK_PUSH_SOURCE, WEATHER_VIEW: WEATHER_PUSH_SOURCE, GENERATION_VIEW: GENERATION_PUSH_SOURCE}


def redis_connection_string(url: str) -> str:
    """``redis://[:password@]host:port/db`` → Feast's ``host:port,db=N,password=...``."""
    parsed = urlparse(url)
    if parsed.scheme not in ("redis", "rediss") or not parsed.hostname:
        raise ValueError(f"REDIS_URL must look like redis://[:password@]host:port/db, got {url!r}")
    parts = [f"{parsed.hostname}:{parsed.port or 6379}", f"db={int(parsed.path.strip('/') or 0)}"]
    if parsed.password:
        parts.append(f"password={unquote(parsed.password)}")
    if parsed.scheme == "rediss":
        parts.append("ssl=true")
    return ",".join(parts)


def repo_config(config: StoreConfig) -> RepoConfig:
    """Feast configuration for ``config``: the store folder's YAML if present, else the template."""
    name = "feature_store.redis.yaml" if config.online == "redis" else "feature_store.yaml"
    path = config.repo_path / name if (config.repo_path / name).exists() else TEMPLATES / name
    raw: dict[str, Any] = yaml.safe_load(os.path.expandvars(path.read_text()))
    if config.online == "redis":
        if not config.redis_url:
            raise ValueError("the Redis online store needs REDIS_URL (e.g. redis://127.0.0.1:6379/0)")
        raw["online_store"]["connection_string"] = redis_connection_string(config.redis_url)
    repo = RepoConfig(**raw)
    repo.repo_path = config.repo_path
    return repo


def open_store(config: StoreConfig) -> FeatureStore:
    config.data_dir.mkdir(parents=True, exist_ok=True)
    _migrate_single_file_tables(config)
    # repo_path too: with config alone Feast resolves the registry path against the working directory.
    store = FeatureStore(repo_path=str(config.repo_path), config=repo_config(config))
    if _registry_is_stale(store, config):
        store.apply(definitions(config).objects())  # registered before tables became folders
    return store


def _registry_is_stale(store: FeatureStore, config: StoreConfig) -> bool:
    """True when the registry's generation source names another path than this code's (an older layout)."""
    if not (config.data_dir / "registry.db").exists():
        return False
    try:
        registered = store.get_data_source("generation_source")
    except Exception:  # nothing registered yet (a store being created)
        return False
    return str(getattr(registered, "path", "")) != str(source_path(config.data_dir, GENERATION_VIEW))


LEGACY_FILES = {
    PARK_VIEW: "parks.parquet",
    WEATHER_VIEW: "weather_forecasts.parquet",
    GENERATION_VIEW: "generation.parquet",
}


def _migrate_single_file_tables(config: StoreConfig) -> bool:  # also run by read_table: `pvcast parks` first
    """Stores written before tables became folders: move each ``<table>.parquet`` into its folder as the base."""
    moved = False
    for view, name in LEGACY_FILES.items():
        legacy = config.data_dir / name
        folder = source_dir(config.data_dir, view)
        if legacy.is_file() and not tables.data_files(folder):
            folder.mkdir(parents=True, exist_ok=True)
            legacy.replace(folder / f"base-{time.time_ns():020d}-legacy.parquet")
            logger.info("moved %s into %s/", legacy, folder)
            moved = True
    return moved


def init_store(config: StoreConfig) -> FeatureStore:
    """Create the folder from the templates (if new) and register pvcast's definitions."""
    config.repo_path.mkdir(parents=True, exist_ok=True)
    for name in ("feature_store.yaml", "feature_store.redis.yaml"):
        if not (config.repo_path / name).exists():
            shutil.copy(TEMPLATES / name, config.repo_path / name)
    store = open_store(config)
    store.apply(definitions(config).objects())
    return store


def definitions(config: StoreConfig) -> Definitions:
    return build_definitions(config.data_dir)


def normalise_table(view: str, frame: pd.DataFrame) -> pa.Table:
    """Columns in the contract's order, UTC microsecond timestamps, float32 weather arrays."""
    missing = [c for c in TABLE_COLUMNS[view] if c not in frame.columns]
    if missing:
        raise ValueError(f"{view} table lacks columns {missing}")
    out = frame.loc[:, list(TABLE_COLUMNS[view])].copy()
    out[TIMESTAMP_COLUMN[view]] = utc_series(out[TIMESTAMP_COLUMN[view]], TIMESTAMP_COLUMN[view])
    out[ENTITY_KEY] = out[ENTITY_KEY].astype(str)
    return pa.Table.from_pandas(out, schema=_arrow_schema(view), preserve_index=False)


def _arrow_schema(view: str) -> pa.Schema:
    types: dict[str, pa.DataType] = {
        ENTITY_KEY: pa.string(),
        TIMESTAMP_COLUMN[view]: pa.timestamp("us", tz="UTC"),
    }
    types |= {n: ARROW_TYPES[t] for n, t in PARK_FIELD_TYPES.items()}
    types |= {n: pa.list_(pa.float32()) for n in WEATHER_VARIABLES}
    types |= {n: pa.int64() for n in (*WEATHER_META, "valid_time_epoch_s")}
    types["power_kw"] = pa.float32()
    return pa.schema([(c, types[c]) for c in TABLE_COLUMNS[view]])


def write_table(config: StoreConfig, view: str, frame: pd.DataFrame) -> Path:
    """Replace the offline table of ``view`` with ``frame`` (a new base file; the others are removed)."""
    folder = source_dir(config.data_dir, view)
    table = normalise_table(view, frame)
    with tables.locked(folder):
        path = tables.write_file(folder, table, "base")
        tables.remove_all_but(folder, path)
        tables.new_epoch(folder)
    logger.info("wrote %d rows to %s", len(frame), path)
    return path


def read_table(config: StoreConfig, view: str) -> pd.DataFrame:
    """Every row of the offline table of ``view`` (base and appended parts, in write order)."""
    _migrate_single_file_tables(config)
    folder = source_dir(config.data_dir, view)
    for attempt in range(3):  # a compaction may remove a listed file between listing and reading
        try:
            table = tables.read_files(tables.data_files(folder))
            break
        except FileNotFoundError:
            if attempt == 2:
                raise
    if table is None:
        raise DataNotFoundError(f"no {view} data in {config.data_dir}: run `pvcast demo` or an ingest job first")
    return table.cast(_arrow_schema(view)).to_pandas()


EPOCH = pd.Timestamp("1970-01-01", tz="UTC")


@dataclass(frozen=True)
class AppendResult:
    received: int
    appended: int  # new keys written to the offline store
    duplicates: int  # keys already stored, or repeated within the batch
    pushed_online: int  # parks whose online value moved forward


def append_rows(store: FeatureStore, config: StoreConfig, view: str, frame: pd.DataFrame) -> AppendResult:
    """Add rows to ``view``: new keys go to the offline table, and each park's newest row to the online store.

    Idempotent on the view's key (``KEY_COLUMNS``): the first write of a key wins and re-sending it changes
    nothing, so a retried ingestion or a repeated telemetry push never duplicates data. The online store only
    moves forward in time (SQLite would otherwise overwrite a newer value with a late-arriving older one).

    Cost is proportional to the batch, not to the table: new rows become one part file of the table's folder
    (read by DuckDB through the source's glob), known keys come from a per-process index that reads only
    files it has not seen, and many parts are compacted now and then (``feature_repo/tables.py``). Writers
    are serialised by a lock on the folder, across threads, processes and pods sharing the folder.
    """
    table = normalise_table(view, frame)
    entity, key, stamp = ENTITY_KEY, KEY_COLUMNS[view][1], TIMESTAMP_COLUMN[view]
    parks = table[entity].to_numpy(zero_copy_only=False).astype(str)
    keys, stamps = tables.key_values(table, key), tables.key_values(table, stamp)
    first = _first_occurrences(parks, keys)
    folder = source_dir(config.data_dir, view)
    with tables.locked(folder):
        index = tables.index_for(folder, key, stamp)
        index.refresh(folder, entity)
        new = first[~index.contains(parks[first], keys[first])]
        forward = _forward_rows(index, parks[new], stamps[new], new)
        if len(new):
            path = tables.write_file(folder, table.take(pa.array(new)), "part")
            index.add(parks[new], keys[new], stamps[new], path)
            tables.compact(folder, [entity, key])
        if len(forward):
            online = table.take(pa.array(forward)).to_pandas()
            store.push(PUSH_SOURCES[view], online, to=PushMode.ONLINE)
    return AppendResult(len(frame), len(new), len(frame) - len(new), len(forward))


def _first_occurrences(parks: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Row numbers of the first occurrence of each (park, key) in a batch, in batch order."""
    frame = pd.DataFrame({"p": parks, "k": keys})
    return np.flatnonzero(~frame.duplicated(keep="first").to_numpy())


def _forward_rows(index: tables.KeyIndex, parks: np.ndarray, stamps: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Of the new rows, each park's newest one if it is newer than anything stored before."""
    newest: dict[str, tuple[int, int]] = {}
    for park, stamp, row in zip(parks.tolist(), stamps.tolist(), rows.tolist(), strict=True):
        if park not in newest or stamp > newest[park][0]:
            newest[park] = (stamp, row)
    forward = []
    for park, (stamp, row) in newest.items():
        before = index.newest_of(park)
        if before is None or stamp > before:
            forward.append(row)
    return np.array(sorted(forward), dtype=np.int64)


def compact_table(config: StoreConfig, view: str, min_parts: int = 2) -> Path | None:
    """Merge the appended part files of ``view`` now (``append_rows`` also does it once there are many)."""
    folder = source_dir(config.data_dir, view)
    with tables.locked(folder):
        return tables.compact(folder, list(KEY_COLUMNS[view]), min_parts=min_parts)


def materialize(store: FeatureStore, end: pd.Timestamp, start: pd.Timestamp | None = None) -> None:
    """Copy the latest values with event time in [start, end] into the online store.

    Park metadata never expires, so the park view is always materialized from the beginning of time: a park
    registered a year ago must still be served.
    """
    end = require_utc(end, "end")
    start = require_utc(start, "start") if start is not None else end - pd.Timedelta(days=7)
    store.materialize(start_date=EPOCH.to_pydatetime(), end_date=end.to_pydatetime(), feature_views=[PARK_VIEW])
    store.materialize(
        start_date=start.to_pydatetime(),
        end_date=end.to_pydatetime(),
        feature_views=[WEATHER_VIEW, GENERATION_VIEW],
    )


def read_online(store: FeatureStore, park_ids: Sequence[str]) -> dict[str, list[Any]]:
    """Latest features of each park from the online store, columns keyed by feature name.

    The same read the service makes (``feature_repo/online.py``), without a TTL reference time.
    """
    return OnlineReader(store).read(park_ids, now=None).rows


def read_offline(store: FeatureStore, park_ids: Sequence[str], issued_at: Sequence[pd.Timestamp]) -> pd.DataFrame:
    """Point-in-time features for each (park, issued_at): only rows known at issued_at are joined.

    The result keeps the input order.
    """
    entities = pd.DataFrame({ENTITY_KEY: list(park_ids), EVENT_TIMESTAMP: list(issued_at)})
    entities[EVENT_TIMESTAMP] = utc_series(entities[EVENT_TIMESTAMP], EVENT_TIMESTAMP)
    entities["_row"] = np.arange(len(entities))
    service = store.get_feature_service(FEATURE_SERVICE_NAME)
    frame = store.get_historical_features(entity_df=entities, features=service).to_df()
    return frame.sort_values("_row").drop(columns="_row").reset_index(drop=True)


def frame_rows(frame: pd.DataFrame) -> dict[str, list[Any]]:
    """A retrieval frame (:func:`read_offline`) as feature-name → values with missing values as None: the shape
    of an online read, which the tensor builder takes."""

    def missing(v: object) -> bool:
        return v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v))

    return {c: [None if missing(v) else v for v in frame[c].tolist()] for c in frame.columns}


def registered_parks(config: StoreConfig) -> list[Park]:
    """The latest metadata of every park in the offline park table, sorted by park_id; deleted parks are absent."""
    table = read_table(config, PARK_VIEW).sort_values(EVENT_TIMESTAMP, kind="stable")
    latest = table.drop_duplicates(ENTITY_KEY, keep="last").sort_values(ENTITY_KEY)
    return parks_from_frame(drop_tombstones(latest))


TOMBSTONE_COLUMN: Final = "capacity_ac_kw"


def tombstone(park_id: str, deleted_at: pd.Timestamp) -> pd.DataFrame:
    """The park-table row that deletes a park, stamped when it takes effect: ``capacity_ac_kw`` 0 (no real park
    has it: validation requires > 0) and every other metadata value missing. (Feast refuses to push a row whose
    features are all missing, hence the one value.)

    Online, a park whose metadata is missing or has no capacity is unknown (404); offline, point-in-time reads
    before ``deleted_at`` still see the park, so backtests of its past are unchanged.
    """
    row = {
        ENTITY_KEY: park_id,
        **dict.fromkeys(PARK_FEATURES, np.nan),
        TOMBSTONE_COLUMN: 0.0,
        EVENT_TIMESTAMP: require_utc(deleted_at),
    }
    return pd.DataFrame([row]).astype({EVENT_TIMESTAMP: "datetime64[us, UTC]"})


def drop_tombstones(table: pd.DataFrame) -> pd.DataFrame:
    """Park-table rows that describe a park (not a deletion)."""
    return table[~(table[TOMBSTONE_COLUMN].fillna(0.0) <= 0.0)]
