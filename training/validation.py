"""Data validation: a pandera schema per source, quality checks, quarantine and a per-park quality report.

Every row that enters the store passes a schema (types, UTC times, grid) and quality checks first. A row that
fails is QUARANTINED with its reasons (``training/quarantine.py``) and never reaches the feature store, so it is
never trained on and never silently dropped. Missing telemetry slots
are not rows: they stay gaps and count against completeness.

Telemetry checks (reason names as stored):

* ``missing_value`` — power is NaN; ``negative`` — power below −tolerance;
* ``above_capacity`` — power above ``capacity_ac_kw × capacity_margin``;
* ``above_clearsky`` — power above the clear-sky physical maximum × ``clearsky_margin`` + tolerance (clear-sky
  irradiance on the module plane at 25 °C cells, no losses; at night the maximum is 0, so night generation —
  typically a time-zone error — fails here);
* ``flat_line`` — the same value for ``flat_line_steps`` or more daylight intervals in a row (a stuck meter);
* ``duplicate`` — a second row for the same (park, interval); ``off_grid`` — not on the 15-minute grid;
* ``incomplete_sources`` — fewer inverters reported than the park has, so the sum understates the plant;
* ``dc_ac_inconsistent`` — the row's DC/AC ratio departs from the park's median ratio by more than
  ``dc_ac_deviation`` (an inverter fault signature). A median DC/AC ratio outside ``dc_ac_band`` is reported as
  a park-level finding (e.g. the Kaggle plant's DC ≈ 10 × AC, a unit quirk), not as a row failure.

Weather rows (one forecast run each) fail with ``incomplete`` (fewer than ``min_weather_hours`` of finite
values), ``out_of_range`` (a value outside ``WEATHER_RANGES``) or ``duplicate``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Final

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from pvcast.pv import physics
from pvcast.pv.plant import Park
from pvcast.schema import ENTITY_KEY, EVENT_TIMESTAMP, GENERATION_VIEW, ISSUED_AT, STEP_SECONDS, WEATHER_VIEW
from training.quarantine import quarantine_frame

MISSING_VALUE, NEGATIVE, ABOVE_CAPACITY, ABOVE_CLEARSKY = (
    "missing_value",
    "negative",
    "above_capacity",
    "above_clearsky",
)
FLAT_LINE, DUPLICATE, OFF_GRID = "flat_line", "duplicate", "off_grid"
INCOMPLETE_SOURCES, DC_AC_INCONSISTENT = "incomplete_sources", "dc_ac_inconsistent"
INCOMPLETE, OUT_OF_RANGE = "incomplete", "out_of_range"

WEATHER_RANGES: Final = {
    "ghi": (0.0, 1500.0),  # [W m⁻²]
    "dni": (0.0, 1400.0),
    "dhi": (0.0, 900.0),
    "temp_air": (-70.0, 60.0),  # [°C]
    "wind_speed": (0.0, 80.0),  # [m s⁻¹]
    "cloud_cover": (0.0, 100.0),  # [%]
    "relative_humidity": (0.0, 100.0),
}
"""Physically possible values; anything outside is a unit or decoding error."""


@dataclass(frozen=True)
class QualityThresholds:
    """Every threshold of the quality checks (documented in docs/operations.md)."""

    clearsky_margin: float = 1.25  # cloud enhancement lets 15-min power exceed clear sky by up to ~25 %
    tolerance_fraction: float = 0.02  # of capacity_ac_kw: meter noise and night-time offsets
    capacity_margin: float = 1.05
    flat_line_steps: int = 8  # 2 h of identical daylight values
    daylight_fraction: float = 0.05  # clear-sky power above this share of capacity counts as daylight
    dc_ac_band: tuple[float, float] = (1.0, 1.3)  # plausible median DC/AC power ratio (inverter losses)
    dc_ac_deviation: float = 0.2  # a row's DC/AC ratio may depart this much from the park's median
    min_weather_hours: float = 24.0
    min_score: float = 80.0  # `pvcast validate` exits 1 below this quality score [%]


@dataclass
class QualityReport:
    """Quality of one park's telemetry (or one source's rows) over a window."""

    park_id: str
    source: str
    first: str | None
    last: str | None
    expected_slots: int
    present_slots: int
    rows: int
    accepted_rows: int
    quarantined: dict[str, int] = field(default_factory=dict)  # reason → rows
    findings: list[str] = field(default_factory=list)

    @property
    def missing_slots(self) -> int:
        return max(self.expected_slots - self.present_slots, 0)

    @property
    def completeness_pct(self) -> float:
        return 100.0 * self.present_slots / self.expected_slots if self.expected_slots else 0.0

    @property
    def score(self) -> float:
        """Share of the expected intervals (or rows) that are present AND passed every check [%]."""
        return 100.0 * self.accepted_rows / self.expected_slots if self.expected_slots else 0.0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out |= {
            "missing_slots": self.missing_slots,
            "completeness_pct": round(self.completeness_pct, 2),
            "score": round(self.score, 2),
        }
        return out


@dataclass(frozen=True)
class Validated:
    accepted: pd.DataFrame
    quarantine: pd.DataFrame  # QUARANTINE_COLUMNS
    report: QualityReport


# --- schemas --------------------------------------------------------------------------------------------


def _check(name: str, test: Any) -> pa.Check:
    """A named frame-level check; NaN inputs PASS (they are judged by their own check)."""
    return pa.Check(test, name=name)


def telemetry_schema(thresholds: QualityThresholds) -> pa.DataFrameSchema:
    """Schema of SCADA telemetry after parsing: one row per (park, 15-minute interval beginning, UTC)."""
    return pa.DataFrameSchema(
        {
            ENTITY_KEY: pa.Column(str),
            "valid_time": pa.Column(pd.DatetimeTZDtype("ns", "UTC")),
            "power_kw": pa.Column(float, nullable=False),
        },
        checks=[
            _check(NEGATIVE, lambda d: ~(d["power_kw"] < -d["tolerance_kw"])),
            _check(ABOVE_CAPACITY, lambda d: ~(d["power_kw"] > d["capacity_limit_kw"])),
            _check(ABOVE_CLEARSKY, lambda d: ~(d["power_kw"] > d["clearsky_limit_kw"])),
            _check(FLAT_LINE, lambda d: d["flat_run"] < thresholds.flat_line_steps),
            _check(DUPLICATE, lambda d: ~d["repeated"]),
            _check(OFF_GRID, lambda d: d["valid_time"].dt.floor(f"{STEP_SECONDS}s") == d["valid_time"]),
            _check(INCOMPLETE_SOURCES, lambda d: ~(d["n_sources"] < d["expected_sources"])),
            _check(DC_AC_INCONSISTENT, lambda d: ~(d["dc_ac_departure"] > thresholds.dc_ac_deviation)),
        ],
    )


def weather_schema() -> pa.DataFrameSchema:
    """Schema of weather-forecast rows (one run per row, pvlib-named arrays) before they are stored."""
    return pa.DataFrameSchema(
        {ENTITY_KEY: pa.Column(str), ISSUED_AT: pa.Column(pd.DatetimeTZDtype("ns", "UTC"))},
        checks=[
            _check(INCOMPLETE, lambda d: d["finite_steps"] >= d["min_steps"]),
            _check(OUT_OF_RANGE, lambda d: d["in_range"]),
            _check(DUPLICATE, lambda d: ~d["repeated"]),
        ],
    )


def failure_reasons(schema: pa.DataFrameSchema, frame: pd.DataFrame) -> pd.Series:
    """Comma-separated reasons per row ('' when the row passed), from a lazy pandera validation."""
    reasons = pd.Series("", index=frame.index, dtype=object)
    try:
        schema.validate(frame, lazy=True)
    except SchemaErrors as exc:
        cases = exc.failure_cases.dropna(subset=["index"])
        cases = cases.assign(reason=cases["check"].map(lambda c: MISSING_VALUE if c == "not_nullable" else str(c)))
        for index, group in cases.drop_duplicates(["index", "reason"]).groupby("index"):
            reasons.loc[index] = ",".join(sorted(group["reason"]))
    return reasons


# --- telemetry ------------------------------------------------------------------------------------------


def clearsky_power_kw(park: Park, valid_time: pd.DatetimeIndex, step_seconds: int = STEP_SECONDS) -> np.ndarray:
    """Physical maximum of AC power [kW] per interval: clear-sky plane-of-array irradiance at the interval
    midpoint, 25 °C cells, no DC losses, clipped at the inverter. 0 while the sun is down."""
    mid = (valid_time.asi8 // 10**9 + step_seconds // 2).astype(np.float64)
    return physics.clearsky_ac_power_kw(mid, **park.model_dump(exclude={"park_id"}), temp_cell=25.0, dc_losses=0.0)


def validate_telemetry(frame: pd.DataFrame, park: Park, thresholds: QualityThresholds) -> Validated:
    """Check one park's parsed telemetry (park_id, valid_time, power_kw [, dc_power_kw, n_sources,
    expected_sources]); accepted rows come back in the ``generation`` table layout."""
    frame = frame.sort_values("valid_time", kind="stable").reset_index(drop=True)
    context, findings = _telemetry_context(frame, park, thresholds)
    reasons = failure_reasons(telemetry_schema(thresholds), context)
    failed = reasons != ""
    report = _telemetry_report(frame, park.park_id, reasons, findings)
    quarantine = quarantine_frame(GENERATION_VIEW, frame[failed], frame.loc[failed, "valid_time"], reasons[failed])
    return Validated(generation_rows(frame[~failed]), quarantine, report)


def _telemetry_context(
    frame: pd.DataFrame, park: Park, thresholds: QualityThresholds
) -> tuple[pd.DataFrame, list[str]]:
    times = pd.DatetimeIndex(frame["valid_time"])
    clear = clearsky_power_kw(park, times)
    tolerance = thresholds.tolerance_fraction * park.capacity_ac_kw
    context = frame[[ENTITY_KEY, "valid_time", "power_kw"]].copy()
    context["valid_time"] = context["valid_time"].astype("datetime64[ns, UTC]")
    context["power_kw"] = context["power_kw"].astype(float)
    context["tolerance_kw"] = tolerance
    context["capacity_limit_kw"] = park.capacity_ac_kw * thresholds.capacity_margin
    context["clearsky_limit_kw"] = clear * thresholds.clearsky_margin + tolerance
    daylight = clear > thresholds.daylight_fraction * park.capacity_ac_kw
    context["flat_run"] = flat_runs(context["power_kw"].to_numpy(), daylight, times)
    context["repeated"] = frame.duplicated([ENTITY_KEY, "valid_time"], keep="first").to_numpy()
    context["n_sources"] = frame.get("n_sources", pd.Series(np.nan, index=frame.index)).astype(float)
    context["expected_sources"] = frame.get("expected_sources", pd.Series(np.nan, index=frame.index)).astype(float)
    departure, findings = _dc_ac(frame, tolerance, thresholds)
    context["dc_ac_departure"] = departure
    return context, findings


def flat_runs(power: np.ndarray, daylight: np.ndarray, times: pd.DatetimeIndex) -> np.ndarray:
    """For each row, the length of the run of identical consecutive daylight values it belongs to (0 at night).

    Consecutive means adjacent 15-minute intervals; a gap ends a run.
    """
    seconds = times.asi8 // 10**9
    same = np.zeros(len(power), dtype=bool)
    same[1:] = (power[1:] == power[:-1]) & (np.diff(seconds) == STEP_SECONDS) & daylight[1:] & daylight[:-1]
    run_id = np.cumsum(~same)
    lengths = np.bincount(run_id)[run_id]
    return np.where(daylight, lengths, 0)


def _dc_ac(frame: pd.DataFrame, tolerance: float, thresholds: QualityThresholds) -> tuple[np.ndarray, list[str]]:
    """Departure of each row's DC/AC ratio from the park's median, and a finding if the median is implausible."""
    if "dc_power_kw" not in frame:
        return np.zeros(len(frame)), []
    ac, dc = frame["power_kw"].to_numpy(float), frame["dc_power_kw"].to_numpy(float)
    producing = (ac > tolerance) & (dc > tolerance)
    if not producing.any():
        return np.zeros(len(frame)), []
    ratio = np.where(producing, dc / np.where(producing, ac, 1.0), np.nan)
    median = float(np.nanmedian(ratio))
    findings = []
    low, high = thresholds.dc_ac_band
    if not low <= median <= high:
        findings.append(
            f"DC ≈ {median:.2f} × AC (median DC/AC power ratio; {low:g}–{high:g} expected): the DC readings are in "
            "another unit or scale; DC is only used for this consistency check"
        )
    return np.nan_to_num(np.abs(ratio / median - 1.0)), findings


def _telemetry_report(frame: pd.DataFrame, park_id: str, reasons: pd.Series, findings: list[str]) -> QualityReport:
    times = pd.DatetimeIndex(frame["valid_time"])
    expected = int((times.max() - times.min()) / pd.Timedelta(seconds=STEP_SECONDS)) + 1 if len(times) else 0
    counts = _reason_counts(reasons)
    report = QualityReport(
        park_id=park_id,
        source=GENERATION_VIEW,
        first=times.min().isoformat() if len(times) else None,
        last=times.max().isoformat() if len(times) else None,
        expected_slots=expected,
        present_slots=int(times.floor(f"{STEP_SECONDS}s").nunique()),
        rows=len(frame),
        accepted_rows=int((reasons == "").sum()),
        quarantined=counts,
        findings=findings,
    )
    if report.missing_slots:
        report.findings.insert(
            0,
            f"{report.missing_slots} of {expected} 15-minute slots missing ({100 - report.completeness_pct:.1f} %): "
            "kept as gaps",
        )
    return report


def _reason_counts(reasons: pd.Series) -> dict[str, int]:
    exploded = reasons[reasons != ""].str.split(",").explode()
    return {str(k): int(v) for k, v in exploded.value_counts().sort_index().items()}


def generation_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Accepted telemetry in the ``generation`` table layout (event time = end of the interval)."""
    times = pd.DatetimeIndex(frame["valid_time"]).tz_convert("UTC")
    return pd.DataFrame(
        {
            ENTITY_KEY: frame[ENTITY_KEY].astype(str).to_numpy(),
            "valid_time_epoch_s": (times.asi8 // 10**9).astype(np.int64),
            "power_kw": frame["power_kw"].to_numpy(dtype=np.float32),
            EVENT_TIMESTAMP: (times + pd.Timedelta(seconds=STEP_SECONDS)).as_unit("us"),
        }
    )


# --- weather --------------------------------------------------------------------------------------------


def validate_weather(rows: pd.DataFrame, thresholds: QualityThresholds) -> Validated:
    """Check weather-forecast rows (the ``weather_forecast`` layout) before they are stored."""
    rows = rows.reset_index(drop=True)
    context = rows[[ENTITY_KEY, ISSUED_AT]].copy()
    context[ISSUED_AT] = pd.to_datetime(context[ISSUED_AT], utc=True).astype("datetime64[ns, UTC]")
    arrays = {n: [np.asarray(a, dtype=np.float64) for a in rows[n]] for n in WEATHER_RANGES}
    context["finite_steps"] = [min(_leading_finite(arrays[n][i]) for n in arrays) for i in range(len(rows))]
    context["min_steps"] = int(thresholds.min_weather_hours * 3600 // STEP_SECONDS)
    context["in_range"] = [all(_in_range(arrays[n][i], *WEATHER_RANGES[n]) for n in arrays) for i in range(len(rows))]
    context["repeated"] = rows.duplicated([ENTITY_KEY, ISSUED_AT]).to_numpy()
    reasons = failure_reasons(weather_schema(), context)
    failed = reasons != ""
    report = QualityReport(
        park_id="*",
        source=WEATHER_VIEW,
        first=None,
        last=None,
        expected_slots=len(rows),
        present_slots=len(rows),
        rows=len(rows),
        accepted_rows=int((~failed).sum()),
        quarantined=_reason_counts(reasons),
    )
    quarantine = quarantine_frame(WEATHER_VIEW, rows[failed], context.loc[failed, ISSUED_AT], reasons[failed])
    return Validated(rows[~failed].reset_index(drop=True), quarantine, report)


def _leading_finite(values: np.ndarray) -> int:
    bad = np.flatnonzero(~np.isfinite(values))
    return int(bad[0]) if bad.size else len(values)


def _in_range(values: np.ndarray, low: float, high: float) -> bool:
    finite = values[np.isfinite(values)]
    return bool(((finite >= low) & (finite <= high)).all())


# --- the report -----------------------------------------------------------------------------------------


def format_reports(reports: Sequence[QualityReport]) -> str:
    """The per-park quality report as text, one block per park."""
    lines = []
    for r in reports:
        lines.append(
            f"{r.park_id} [{r.source}] score {r.score:.1f} %  completeness {r.completeness_pct:.1f} %  "
            f"rows {r.rows} accepted {r.accepted_rows}  {r.first or ''} .. {r.last or ''}"
        )
        lines += [f"  quarantined {n:>6}  {reason}" for reason, n in r.quarantined.items()]
        lines += [f"  ! {finding}" for finding in r.findings]
    return "\n".join(lines)
