"""The quarantine: rows that failed validation, kept with their reasons beside the offline tables.

A failed row is written to ``data/quarantine.parquet`` (one record per source, park and key, the row itself as
JSON) and never reaches the feature store, so it is never trained on and never silently dropped.
``pvcast validate`` reports what was quarantined at import.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pvcast.schema import ENTITY_KEY
from pvcast.settings import StoreConfig
from pvcast.timeutils import utc_now

logger = logging.getLogger(__name__)

QUARANTINE_FILE: Final = "quarantine.parquet"
QUARANTINE_COLUMNS: Final = ("source", ENTITY_KEY, "key", "reasons", "payload", "quarantined_at")


def quarantine_frame(source: str, rows: pd.DataFrame, keys: pd.Series, reasons: pd.Series) -> pd.DataFrame:
    """Failed rows as quarantine records: the row itself as JSON, keyed by source, park and time."""
    payload = [json.dumps(r, default=_json_default) for r in rows.to_dict("records")]
    return pd.DataFrame(
        {
            "source": source,
            ENTITY_KEY: rows[ENTITY_KEY].astype(str).to_numpy() if len(rows) else np.array([], dtype=object),
            "key": [pd.Timestamp(k).isoformat() for k in keys],
            "reasons": reasons.to_numpy(dtype=object),
            "payload": payload,
            "quarantined_at": pd.Series([utc_now()] * len(rows), dtype="datetime64[us, UTC]").to_numpy(),
        },
        columns=list(QUARANTINE_COLUMNS),
    )


def _json_default(value: Any) -> Any:
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, np.ndarray):
        return [None if not np.isfinite(v) else float(v) for v in value.astype(float)]
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def quarantine_path(config: StoreConfig) -> Path:
    return config.data_dir / QUARANTINE_FILE


def write_quarantine(config: StoreConfig, records: pd.DataFrame) -> int:
    """Append quarantine records; a (source, park, key) already quarantined is not added again. Returns the
    number of new records."""
    if records.empty:
        return 0
    path = quarantine_path(config)
    existing = read_quarantine(config)
    keys = ["source", ENTITY_KEY, "key"]
    known = set(map(tuple, existing[keys].to_numpy())) if len(existing) else set()
    new = records[[tuple(k) not in known for k in records[keys].to_numpy()]].drop_duplicates(keys)
    if len(new):
        table = pd.concat([existing, new], ignore_index=True) if len(existing) else new
        table = table.astype({"quarantined_at": "datetime64[us, UTC]"})
        tmp = path.with_suffix(".tmp.parquet")
        pq.write_table(pa.Table.from_pandas(table, preserve_index=False), tmp)
        tmp.replace(path)
        logger.warning("quarantined %d %s rows (see %s)", len(new), new["source"].iloc[0], path)
    return len(new)


def read_quarantine(config: StoreConfig) -> pd.DataFrame:
    path = quarantine_path(config)
    return pd.read_parquet(path) if path.exists() else pd.DataFrame(columns=list(QUARANTINE_COLUMNS))
