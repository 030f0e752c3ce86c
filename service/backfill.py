"""The backfill job: forecasts of many parks at every issue time of a date range, as of each issue time.

Each (park, issue time) is read point-in-time from the offline store (nothing known later), computed through
the same path as ``POST /forecast`` with ``issued_at`` (model, or physics when degraded) and written as
parquet under ``<store>/data/backfills/<job_id>/``: one row per (park, issue time, valid time) with a column
per quantile [kW] and the degraded reason.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from feature_repo.store import registered_parks
from pvcast.errors import InvalidJobError
from pvcast.settings import StoreConfig
from service.forecaster import Computed, Forecaster, ServedModel
from service.jobs import Progress

CHUNK_ROWS = 2048
MAX_FORECASTS = 2_000_000


@dataclass(frozen=True)
class BackfillPlan:
    park_ids: list[str]
    issue_times: pd.DatetimeIndex
    steps: int

    @property
    def forecasts(self) -> int:
        return len(self.park_ids) * len(self.issue_times)


def plan(
    config: StoreConfig,
    model: ServedModel,
    park_ids: list[str] | None,
    start: pd.Timestamp,
    end: pd.Timestamp,
    every_hours: float,
    horizon_hours: int,
) -> BackfillPlan:
    """Validate a backfill request (raises :class:`InvalidJobError` naming the field)."""
    now = pd.Timestamp.now(tz="UTC")
    if end > now:
        raise InvalidJobError("end", "is in the future: a backfill can only use information that exists")
    if start > end:
        raise InvalidJobError("start", "is after end")
    Forecaster.steps_for(model, horizon_hours)
    parks = park_ids if park_ids is not None else [p.park_id for p in registered_parks(config)]
    times = pd.date_range(start, end, freq=pd.Timedelta(hours=every_hours))
    result = BackfillPlan(list(dict.fromkeys(parks)), times, int(horizon_hours * 3600 // model.spec.step_seconds))
    if result.forecasts > MAX_FORECASTS:
        raise InvalidJobError(
            "end", f"{result.forecasts:,} forecasts exceed the {MAX_FORECASTS:,} of one job: split the range"
        )
    return result


def run(forecaster: Forecaster, out: Path, job: BackfillPlan, progress: Progress) -> dict[str, Any]:
    model = forecaster.handle.current
    pairs = pd.MultiIndex.from_product([job.park_ids, job.issue_times]).to_frame(index=False, name=["park", "at"])
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    counts = {"forecasts": 0, "degraded": 0, "unknown_park": 0}
    for start in range(0, len(pairs), CHUNK_ROWS):
        chunk = pairs.iloc[start : start + CHUNK_ROWS]
        issued = chunk["at"].astype("int64").to_numpy() // 10**9
        rows = forecaster.read_offline(chunk["park"].tolist(), list(chunk["at"]))
        computed = forecaster.compute_rows(model, chunk["park"].tolist(), issued, rows)
        table, known, degraded = _table(model, computed, job.steps)
        pq.write_table(table, out / f"part-{start // CHUNK_ROWS:06d}.parquet")
        counts["forecasts"] += known
        counts["degraded"] += degraded
        counts["unknown_park"] += len(chunk) - known
        progress(min(1.0, (start + len(chunk)) / len(pairs)))
    return {
        "path": str(out),
        "parks": len(job.park_ids),
        "issue_times": len(job.issue_times),
        "model_version": model.version,
        **counts,
    }


def _table(model: ServedModel, computed: Computed, steps: int) -> tuple[pa.Table, int, int]:
    keep = np.flatnonzero(computed.inputs.park_known)
    n = len(keep)
    valid = computed.inputs.valid_time[keep, :steps].ravel()
    columns: dict[str, Any] = {
        "park_id": np.repeat(np.asarray(computed.park_ids, dtype=object)[keep], steps),
        "issued_at": pd.to_datetime(np.repeat(computed.issued_at[keep], steps), unit="s", utc=True),
        "valid_time": pd.to_datetime(valid, unit="s", utc=True),
    }
    for j, label in enumerate(model.labels):
        columns[f"{label}_kw"] = computed.quantiles_kw[keep, :steps, j].ravel()
    reasons = [computed.degraded_reason[i] for i in keep]
    columns["degraded_reason"] = np.repeat(np.asarray(reasons, dtype=object), steps)
    return pa.Table.from_pandas(pd.DataFrame(columns), preserve_index=False), n, sum(r is not None for r in reasons)
