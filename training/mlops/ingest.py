"""Ingestion jobs: park registration, Open-Meteo weather (live and backfill), SCADA telemetry, store validation.

Every job validates before it writes, quarantines what fails, and writes through ``store.append_rows`` — the
idempotent path (offline by key, online only forward) — so a re-run adds nothing and a failed batch never
loses the batches stored before it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import openmeteo_requests
import pandas as pd
from feast import FeatureStore

from feature_repo.store import (
    AppendResult,
    StoreConfig,
    append_rows,
    init_store,
    open_store,
    read_table,
    registered_parks,
)
from pvcast.errors import DataNotFoundError, UnknownParkError
from pvcast.pv.plant import Park, parks_frame
from pvcast.schema import ENTITY_KEY, GENERATION_VIEW, ISSUED_AT, PARK_VIEW, STEP_SECONDS, WEATHER_VIEW
from pvcast.timeutils import require_utc, utc_now
from training.quarantine import read_quarantine, write_quarantine
from training.sources import openmeteo
from training.sources.scada import read_telemetry
from training.validation import (
    QualityReport,
    QualityThresholds,
    Validated,
    validate_telemetry,
    validate_weather,
)

logger = logging.getLogger(__name__)

STEP = pd.Timedelta(seconds=STEP_SECONDS)


@dataclass
class WeatherIngestReport:
    parks: int
    rows: int = 0  # forecast runs built from the responses
    appended: int = 0
    duplicates: int = 0
    quarantined: int = 0
    failures: list[str] = field(default_factory=list)

    def summary(self) -> str:
        head = (
            f"weather: {self.parks} parks, {self.rows} runs fetched, {self.appended} new, "
            f"{self.duplicates} already stored, {self.quarantined} quarantined"
        )
        return "\n".join([head, *(f"FAILED: {f}" for f in self.failures)])


@dataclass(frozen=True)
class TelemetryIngestReport:
    validated: Validated
    appended: AppendResult
    quarantined: int

    def summary(self) -> str:
        r = self.appended
        return f"telemetry: {r.received} rows accepted by validation, {r.appended} new, {r.duplicates} already stored"


def store_for_writing(config: StoreConfig) -> FeatureStore:
    """The store, initialised from the templates on first use."""
    return open_store(config) if (config.repo_path / "feature_store.yaml").exists() else init_store(config)


def register_park(config: StoreConfig, park: Park, effective_from: pd.Timestamp) -> AppendResult:
    """Add (or update, from ``effective_from``) a park's metadata."""
    store = store_for_writing(config)
    return append_rows(store, config, PARK_VIEW, parks_frame([park], require_utc(effective_from, "effective_from")))


def find_park(config: StoreConfig, park_id: str) -> Park:
    try:
        parks = {p.park_id: p for p in registered_parks(config)}
    except DataNotFoundError:
        parks = {}
    if park_id not in parks:
        raise UnknownParkError(park_id)
    return parks[park_id]


def select_parks(config: StoreConfig, park_ids: Sequence[str] | None) -> list[Park]:
    if park_ids:
        return [find_park(config, p) for p in park_ids]
    parks = registered_parks(config)
    if not parks:
        raise DataNotFoundError(f"no parks registered in {config.repo_path}: `pvcast ingest park ...` first")
    return parks


def _batches(parks: Sequence[Park], size: int) -> Iterator[list[Park]]:
    for i in range(0, len(parks), max(size, 1)):
        yield list(parks[i : i + size])


# --- weather --------------------------------------------------------------------------------------------


def ingest_weather(
    config: StoreConfig,
    om: openmeteo.OpenMeteoConfig,
    issued_at: pd.Timestamp,
    park_ids: Sequence[str] | None = None,
    thresholds: QualityThresholds | None = None,
) -> WeatherIngestReport:
    """Fetch the current forecast for every park, stamp it ``issued_at`` (ceiled to 15 min: the fetch time is
    the latest information it may use), validate, store. One request per batch of parks."""
    issued = require_utc(issued_at, ISSUED_AT).ceil(STEP)
    parks = select_parks(config, park_ids)
    client = openmeteo.open_client(om)
    report = WeatherIngestReport(parks=len(parks))
    for batch in _batches(parks, om.batch_size):
        params = openmeteo.forecast_params(batch, issued, om.forecast_hours)
        _fetch_and_store(config, om, client, om.forecast_url, params, batch, [issued], report, thresholds)
    return report


def backfill_weather(
    config: StoreConfig,
    om: openmeteo.OpenMeteoConfig,
    start: pd.Timestamp,
    end: pd.Timestamp,
    every_hours: int = 24,
    park_ids: Sequence[str] | None = None,
    thresholds: QualityThresholds | None = None,
) -> WeatherIngestReport:
    """Runs issued every ``every_hours`` from ``start`` to ``end`` (UTC dates) from the historical-forecast API."""
    first, last = require_utc(start, "start").floor("D"), require_utc(end, "end").floor("D")
    if last < first:
        raise ValueError(f"--backfill end {last.date()} is before its start {first.date()}")
    issue_times = list(pd.date_range(first, last, freq=pd.Timedelta(hours=every_hours)))
    days_after = int(np.ceil(om.forecast_hours / 24))
    parks = select_parks(config, park_ids)
    client = openmeteo.open_client(om)
    report = WeatherIngestReport(parks=len(parks))
    for batch in _batches(parks, om.batch_size):
        params = openmeteo.historical_params(batch, first, last + pd.Timedelta(days=days_after))
        _fetch_and_store(config, om, client, om.historical_url, params, batch, issue_times, report, thresholds)
    return report


def _fetch_and_store(
    config: StoreConfig,
    om: openmeteo.OpenMeteoConfig,
    client: openmeteo_requests.Client,
    url: str,
    params: dict[str, str],
    batch: list[Park],
    issue_times: list[pd.Timestamp],
    report: WeatherIngestReport,
    thresholds: QualityThresholds | None,
) -> None:
    try:
        intervals = openmeteo.get_weather(client, om, url, params, batch)
    except openmeteo.OpenMeteoError as exc:
        logger.error("%s", exc)
        report.failures.append(str(exc))
        return
    rows = openmeteo.forecast_rows(intervals, issue_times, om.forecast_hours)
    validated = validate_weather(rows, thresholds or QualityThresholds())
    report.quarantined += write_quarantine(config, validated.quarantine)
    result = append_rows(open_store(config), config, WEATHER_VIEW, validated.accepted)
    report.rows += len(rows)
    report.appended += result.appended
    report.duplicates += result.duplicates
    logger.info("stored weather of %s: %d new runs", [p.park_id for p in batch], result.appended)


# --- telemetry ------------------------------------------------------------------------------------------


def ingest_telemetry(
    config: StoreConfig, path: Path, fmt: str, park_id: str, thresholds: QualityThresholds, dry_run: bool = False
) -> TelemetryIngestReport:
    """Import a SCADA export for a REGISTERED park: parse, validate, quarantine failures, store the rest."""
    park = find_park(config, park_id)
    validated = validate_telemetry(read_telemetry(path, fmt, park_id), park, thresholds)
    if dry_run:
        accepted = len(validated.accepted)
        return TelemetryIngestReport(validated, AppendResult(accepted, 0, 0, 0), 0)
    quarantined = write_quarantine(config, validated.quarantine)
    result = append_rows(open_store(config), config, GENERATION_VIEW, validated.accepted)
    return TelemetryIngestReport(validated, result, quarantined)


# --- validating what is stored ------------------------------------------------------------------------------


def validate_store(
    config: StoreConfig, thresholds: QualityThresholds, park_ids: Sequence[str] | None = None
) -> list[QualityReport]:
    """Quality of the stored telemetry and weather of each park, with what was quarantined at import."""
    parks = select_parks(config, park_ids)
    generation = _optional_table(config, GENERATION_VIEW)
    weather = _optional_table(config, WEATHER_VIEW)
    quarantine = read_quarantine(config)
    reports = []
    for park in parks:
        reports.append(_stored_telemetry_report(park, generation, quarantine, thresholds))
        reports.append(_stored_weather_report(park, weather, quarantine, thresholds))
    return reports


def _optional_table(config: StoreConfig, view: str) -> pd.DataFrame:
    try:
        return read_table(config, view)
    except DataNotFoundError:
        return pd.DataFrame(columns=[ENTITY_KEY])


def _stored_telemetry_report(
    park: Park, generation: pd.DataFrame, quarantine: pd.DataFrame, thresholds: QualityThresholds
) -> QualityReport:
    rows = generation[generation[ENTITY_KEY] == park.park_id]
    frame = pd.DataFrame(
        {
            ENTITY_KEY: park.park_id,
            "valid_time": pd.to_datetime(rows["valid_time_epoch_s"].to_numpy(dtype=np.int64), unit="s", utc=True),
            "power_kw": rows["power_kw"].to_numpy(dtype=float),
        }
    )
    report = validate_telemetry(frame, park, thresholds).report
    _add_quarantine_finding(report, quarantine, GENERATION_VIEW)
    if not len(rows):
        report.findings.append("no telemetry stored")
    return report


def _stored_weather_report(
    park: Park, weather: pd.DataFrame, quarantine: pd.DataFrame, thresholds: QualityThresholds
) -> QualityReport:
    rows = weather[weather[ENTITY_KEY] == park.park_id]
    report = (
        validate_weather(rows, thresholds).report
        if len(rows)
        else QualityReport(park.park_id, WEATHER_VIEW, None, None, 0, 0, 0, 0, findings=["no weather forecasts stored"])
    )
    report.park_id = park.park_id
    if len(rows):
        issued = pd.to_datetime(rows[ISSUED_AT], utc=True)
        report.first, report.last = issued.min().isoformat(), issued.max().isoformat()
        age_hours = (utc_now() - issued.max()) / pd.Timedelta(hours=1)
        report.findings.append(f"latest run issued {age_hours:.1f} h ago")
    _add_quarantine_finding(report, quarantine, WEATHER_VIEW)
    return report


def _add_quarantine_finding(report: QualityReport, quarantine: pd.DataFrame, source: str) -> None:
    mine = quarantine[(quarantine["source"] == source) & (quarantine[ENTITY_KEY] == report.park_id)]
    if len(mine):
        reasons = mine["reasons"].str.split(",").explode().value_counts().sort_index()
        detail = ", ".join(f"{n} {reason}" for reason, n in reasons.items())
        report.findings.append(f"{len(mine)} rows quarantined at import ({detail})")
