"""Training sets through Feast historical retrieval (point in time) plus measured labels.

For every (park, issued_at) the feature service returns the latest weather forecast issued at or before
``issued_at`` and the latest telemetry whose interval ENDED at or before it, so nothing observed after
``issued_at`` reaches the inputs. Labels are the measured power over the forecast's valid times.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd
from feast import FeatureStore
from numpy.typing import NDArray

from feature_repo.store import frame_rows, read_offline, read_table
from pvcast.contract import FeatureSpec
from pvcast.errors import DataNotFoundError
from pvcast.pv.features import ModelInputs, build_inputs
from pvcast.schema import ENTITY_KEY, GENERATION_VIEW
from pvcast.settings import StoreConfig
from pvcast.timeutils import require_utc

logger = logging.getLogger(__name__)

CHUNK_ROWS = 4096


@dataclass(frozen=True)
class Dataset:
    """Aligned arrays, one row per (park, issued_at)."""

    park_id: NDArray[np.object_]  # (n,)
    issued_at: NDArray[np.int64]  # (n,) [s since epoch, UTC]
    features: NDArray[np.float32]  # (n, steps, n_features)
    capacity_ac_kw: NDArray[np.float32]  # (n, 1)
    valid_time: NDArray[np.int64]  # (n, steps)
    target_kw: NDArray[np.float32]  # (n, steps), NaN where no measurement

    def __len__(self) -> int:
        return len(self.park_id)

    def subset(self, mask: NDArray[np.bool_]) -> Dataset:
        return Dataset(**{f.name: getattr(self, f.name)[mask] for f in fields(self)})

    @property
    def target_fraction(self) -> NDArray[np.float32]:
        """Measured power as a fraction of the AC capacity [-]."""
        return self.target_kw / self.capacity_ac_kw


def issue_times(start: pd.Timestamp, end: pd.Timestamp, every_hours: float) -> pd.DatetimeIndex:
    """Regular issue times in [start, end], aligned to whole multiples of the period."""
    freq = pd.Timedelta(hours=every_hours)
    first = require_utc(start, "start").ceil(freq)
    return pd.date_range(first, require_utc(end, "end"), freq=freq)


def build_dataset(
    store: FeatureStore, config: StoreConfig, park_ids: list[str], times: pd.DatetimeIndex, spec: FeatureSpec
) -> Dataset:
    """Features for every park at every issue time, with labels; rows without a usable forecast are dropped."""
    pairs = pd.MultiIndex.from_product([park_ids, times], names=[ENTITY_KEY, "issued_at"]).to_frame(index=False)
    labels = _LabelTable(read_table(config, GENERATION_VIEW), spec.step_seconds)
    parts = [_chunk(store, pairs.iloc[i : i + CHUNK_ROWS], labels, spec) for i in range(0, len(pairs), CHUNK_ROWS)]
    data = concat(parts)
    if len(data) == 0:
        raise DataNotFoundError("no (park, issue time) pair has a weather forecast covering the horizon")
    logger.info("data set: %d samples of %d parks", len(data), len(set(data.park_id)))
    return data


def _chunk(store: FeatureStore, pairs: pd.DataFrame, labels: _LabelTable, spec: FeatureSpec) -> Dataset:
    rows = read_offline(store, pairs[ENTITY_KEY].tolist(), pairs["issued_at"].tolist())
    issued = pairs["issued_at"].astype("int64").to_numpy() // 10**9
    inputs = build_inputs(frame_rows(rows), issued, spec)
    keep = inputs.park_known & inputs.weather_ok
    logger.info("retrieved %d samples (%d usable) up to %s", len(pairs), keep.sum(), pairs["issued_at"].iloc[-1])
    return _assemble(pairs[ENTITY_KEY].to_numpy(dtype=object), issued, inputs, labels).subset(keep)


def _assemble(
    park_id: NDArray[np.object_], issued: NDArray[np.int64], inputs: ModelInputs, labels: _LabelTable
) -> Dataset:
    return Dataset(
        park_id=park_id,
        issued_at=issued,
        features=inputs.features,
        capacity_ac_kw=inputs.capacity_ac_kw,
        valid_time=inputs.valid_time,
        target_kw=labels.lookup(park_id, inputs.valid_time),
    )


def concat(parts: list[Dataset]) -> Dataset:
    return Dataset(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(Dataset)})


class _LabelTable:
    """Measured power on a dense time grid per park, for vectorised label look-ups."""

    def __init__(self, generation: pd.DataFrame, step_seconds: int) -> None:
        self.step = step_seconds
        self.start = int(generation["valid_time_epoch_s"].min()) if len(generation) else 0
        size = (int(generation["valid_time_epoch_s"].max()) - self.start) // step_seconds + 1 if len(generation) else 0
        self.parks = {p: i for i, p in enumerate(sorted(generation[ENTITY_KEY].unique()))}
        self.grid = np.full((len(self.parks), size), np.nan, dtype=np.float32)
        rows = generation[ENTITY_KEY].map(self.parks).to_numpy()
        cols = (generation["valid_time_epoch_s"].to_numpy() - self.start) // step_seconds
        self.grid[rows, cols] = generation["power_kw"].to_numpy(dtype=np.float32)

    def lookup(self, park_id: NDArray[np.object_], valid_time: NDArray[np.int64]) -> NDArray[np.float32]:
        row = np.array([self.parks.get(p, -1) for p in park_id])[:, None]
        col = (valid_time - self.start) // self.step
        inside = (row >= 0) & (col >= 0) & (col < self.grid.shape[1])
        picked = (
            self.grid[np.where(inside, row, 0), np.where(inside, col, 0)] if self.grid.size else np.zeros(col.shape)
        )
        return np.where(inside, picked, np.nan).astype(np.float32)


def split_by_time(
    data: Dataset, validation_days: int, test_days: int, horizon_seconds: int
) -> tuple[Dataset, Dataset, Dataset]:
    """Train / validation / held-out test windows by issue time, separated by one horizon so labels never overlap."""
    end = int(data.issued_at.max())
    test_start = end - test_days * 86400
    val_start = test_start - horizon_seconds - validation_days * 86400
    train = data.subset(data.issued_at < val_start - horizon_seconds)
    val = data.subset((data.issued_at >= val_start) & (data.issued_at < test_start - horizon_seconds))
    test = data.subset(data.issued_at >= test_start)
    for name, part in (("train", train), ("validation", val), ("test", test)):
        if len(part) == 0:
            raise DataNotFoundError(f"the {name} window is empty: the data cover too few days for the split")
    return train, val, test
