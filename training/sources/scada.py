"""SCADA telemetry exports → one row per (park, 15-minute interval) of plant AC power.

Formats (``pvcast ingest telemetry --format``):

* ``kaggle`` — the inverter export of the public Kaggle "Solar Power Generation Data" set: one row per
  inverter and 15 minutes, local time UTC+05:30 (``DD-MM-YYYY HH:MM``), interval beginning, AC and DC power
  in kW. Inverters are summed to plant power per slot; how many reported is kept (``n_sources``) against how
  many the export holds (``expected_sources``) so validation can quarantine partial sums. Slots in which no
  inverter reported stay absent: gaps are kept as gaps.
* ``pvcast`` — the canonical CSV: ``valid_time`` (ISO 8601 WITH an offset, interval beginning),
  ``power_kw`` and optionally ``dc_power_kw``; naive times are refused.

Vendor names are renamed once, here (``*_VARIABLE_MAP``). ``read_*`` reads a file, ``parse_*`` bytes.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Final

import pandas as pd

from pvcast.errors import NaiveTimestampError, TelemetryFormatError
from pvcast.schema import ENTITY_KEY

KAGGLE_VARIABLE_MAP: Final = {
    "DATE_TIME": "valid_time",
    "SOURCE_KEY": "source_id",
    "AC_POWER": "power_kw",
    "DC_POWER": "dc_power_kw",
}
KAGGLE_UTC_OFFSET: Final = pd.Timedelta(hours=5, minutes=30)
"""The Kaggle plant's clocks run on Indian Standard Time (UTC+05:30, no daylight saving)."""
KAGGLE_TIME_FORMAT: Final = "%d-%m-%Y %H:%M"

TELEMETRY_COLUMNS: Final = (ENTITY_KEY, "valid_time", "power_kw", "dc_power_kw", "n_sources", "expected_sources")


def parse_kaggle_generation(content: bytes, park_id: str) -> pd.DataFrame:
    """The Kaggle inverter export → plant power per 15-minute slot (UTC, interval beginning)."""
    raw = pd.read_csv(io.BytesIO(content))
    missing = sorted(set(KAGGLE_VARIABLE_MAP) - set(raw.columns))
    if missing:
        raise TelemetryFormatError(f"not a Kaggle generation export: columns {missing} are missing")
    raw = raw[list(KAGGLE_VARIABLE_MAP)].rename(columns=KAGGLE_VARIABLE_MAP)
    try:
        local = pd.to_datetime(raw["valid_time"], format=KAGGLE_TIME_FORMAT)
    except ValueError as exc:
        raise TelemetryFormatError(f"Kaggle DATE_TIME must look like DD-MM-YYYY HH:MM: {exc}") from None
    raw["valid_time"] = (local - KAGGLE_UTC_OFFSET).dt.tz_localize("UTC")
    plant = raw.groupby("valid_time", sort=True).agg(
        power_kw=("power_kw", "sum"), dc_power_kw=("dc_power_kw", "sum"), n_sources=("source_id", "nunique")
    )
    plant = plant.reset_index()
    plant.insert(0, ENTITY_KEY, park_id)
    plant["expected_sources"] = raw["source_id"].nunique()
    return plant.loc[:, list(TELEMETRY_COLUMNS)]


def parse_pvcast_csv(content: bytes, park_id: str) -> pd.DataFrame:
    """The canonical CSV (valid_time with offset, power_kw [, dc_power_kw]) → telemetry rows."""
    raw = pd.read_csv(io.BytesIO(content))
    if not {"valid_time", "power_kw"} <= set(raw.columns):
        raise TelemetryFormatError("a pvcast telemetry CSV needs the columns valid_time and power_kw")
    text = raw["valid_time"].astype(str).str.strip()
    naive = ~text.str.contains(r"(?:Z|[+-]\d{2}:?\d{2})$", regex=True)
    if naive.any():
        raise NaiveTimestampError(f"valid_time {text[naive].iloc[0]!r} has no UTC offset: write e.g. 2026-06-01T10:15Z")
    times = pd.to_datetime(text, format="ISO8601", utc=True)
    frame = pd.DataFrame({ENTITY_KEY: park_id, "valid_time": times})
    frame["power_kw"] = pd.to_numeric(raw["power_kw"], errors="coerce")
    frame["dc_power_kw"] = pd.to_numeric(raw["dc_power_kw"], errors="coerce") if "dc_power_kw" in raw else float("nan")
    frame["n_sources"] = float("nan")
    frame["expected_sources"] = float("nan")
    return frame.loc[:, list(TELEMETRY_COLUMNS)]


PARSERS: Final[dict[str, Callable[[bytes, str], pd.DataFrame]]] = {
    "kaggle": parse_kaggle_generation,
    "pvcast": parse_pvcast_csv,
}


def read_telemetry(path: Path, fmt: str, park_id: str) -> pd.DataFrame:
    """Read a telemetry export of format ``fmt`` (a key of ``PARSERS``) for ``park_id``."""
    if fmt not in PARSERS:
        raise TelemetryFormatError(f"unknown telemetry format {fmt!r}: use one of {', '.join(PARSERS)}")
    if not path.is_file():
        raise TelemetryFormatError(f"telemetry file {path} does not exist")
    return PARSERS[fmt](path.read_bytes(), park_id)
