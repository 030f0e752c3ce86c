"""Data validation: each quality check catches its defect and passes clean data; quarantine is idempotent."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pvcast.pv.plant import Park
from pvcast.schema import WEATHER_VARIABLES
from pvcast.settings import StoreConfig
from training.quarantine import read_quarantine, write_quarantine
from training.validation import (
    QualityThresholds,
    clearsky_power_kw,
    validate_telemetry,
    validate_weather,
)

PARK = Park(
    park_id="p1",
    latitude=45.0,
    longitude=8.0,
    altitude=200,
    capacity_dc_kwp=1200,
    capacity_ac_kw=1000,
    surface_tilt=30,
    surface_azimuth=180,
)
DAY = pd.date_range("2026-06-21T00:00Z", periods=96, freq="15min")  # midsummer, sun up ~04–19 UTC
THRESHOLDS = QualityThresholds()


def clean_day() -> pd.DataFrame:
    """Plausible telemetry: 70 % of the clear-sky maximum with a little noise, zero at night."""
    clear = clearsky_power_kw(PARK, DAY)
    power = 0.7 * clear * (1 + 0.03 * np.sin(np.arange(96)))
    return pd.DataFrame(
        {"park_id": "p1", "valid_time": DAY, "power_kw": power, "dc_power_kw": power * 1.05, "n_sources": 4.0}
    ).assign(expected_sources=4.0)


def reasons_of(frame: pd.DataFrame) -> dict[str, str]:
    result = validate_telemetry(frame, PARK, THRESHOLDS)
    return dict(zip(result.quarantine["key"], result.quarantine["reasons"], strict=True))


def at(hour: float) -> int:
    return int(hour * 4)


def test_clean_data_passes_every_check() -> None:
    result = validate_telemetry(clean_day(), PARK, THRESHOLDS)
    assert result.quarantine.empty and len(result.accepted) == 96
    assert result.report.score == 100.0 and result.report.findings == []


def test_clearsky_maximum_is_zero_at_night_and_bounded_by_the_inverter() -> None:
    clear = clearsky_power_kw(PARK, DAY)
    assert clear[at(0)] == 0 and clear[at(23)] == 0
    assert 0.8 * PARK.capacity_ac_kw < clear.max() <= PARK.capacity_ac_kw


def spoil(column: str, value: object) -> object:
    """A defect: ``column`` of the noon row replaced by ``value`` (a callable gets the column)."""

    def apply(frame: pd.DataFrame) -> pd.DataFrame:
        new = value(frame[column]) if callable(value) else value
        return frame.assign(**{column: frame[column].where(frame.index != at(12), new)})

    return apply


DEFECTS = {
    "negative": spoil("power_kw", -80.0),
    "above_capacity": spoil("power_kw", 1100.0),
    "missing_value": spoil("power_kw", np.nan),
    "incomplete_sources": spoil("n_sources", 3.0),
    "dc_ac_inconsistent": spoil("dc_power_kw", lambda dc: dc * 1.6),
    "off_grid": spoil("valid_time", lambda t: t + pd.Timedelta(minutes=7)),
}


@pytest.mark.parametrize("reason", sorted(DEFECTS))
def test_each_row_check_quarantines_its_defect(reason: str) -> None:
    found = reasons_of(DEFECTS[reason](clean_day()))  # type: ignore[operator]
    assert len(found) == 1 and reason in next(iter(found.values())), found


def test_power_at_night_is_above_the_clearsky_maximum() -> None:
    """Night generation (typically a time-zone error) fails the clear-sky check."""
    frame = clean_day()
    frame.loc[at(1), "power_kw"] = 300.0
    assert list(reasons_of(frame).values()) == ["above_clearsky"]


def test_a_stuck_meter_in_daylight_is_a_flat_line_but_a_night_of_zeros_is_not() -> None:
    frame = clean_day()
    stuck = (frame.index >= at(10)) & (frame.index < at(12.5))  # 10 identical values
    frame.loc[stuck, ["power_kw", "dc_power_kw"]] = [500.0, 525.0]
    found = reasons_of(frame)
    assert len(found) == 10 and set(found.values()) == {"flat_line"}
    shorter = clean_day()
    shorter.loc[(shorter.index >= at(10)) & (shorter.index < at(11.5)), ["power_kw", "dc_power_kw"]] = [500.0, 525.0]
    assert reasons_of(shorter) == {}  # 6 steps < 8


def test_duplicates_keep_the_first_row_and_gaps_stay_gaps() -> None:
    frame = clean_day()
    frame = pd.concat([frame, frame.iloc[[at(12)]].assign(power_kw=1.0)]).drop(index=[at(13), at(14)])
    result = validate_telemetry(frame, PARK, THRESHOLDS)
    assert result.quarantine["reasons"].tolist() == ["duplicate"]
    assert result.report.missing_slots == 2 and result.report.present_slots == 94
    assert "2 of 96 15-minute slots missing" in result.report.findings[0]
    assert len(result.accepted) == 94 and result.report.score == pytest.approx(100 * 94 / 96)


def test_a_systematic_dc_ac_ratio_is_a_park_finding_not_a_row_failure() -> None:
    frame = clean_day().assign(dc_power_kw=lambda f: f.power_kw * 10.2)
    result = validate_telemetry(frame, PARK, THRESHOLDS)
    assert result.quarantine.empty
    assert any(f.startswith("DC ≈ 10.20 × AC") for f in result.report.findings)


def weather_rows(n: int = 2) -> pd.DataFrame:
    rows = []
    for i in range(n):
        row = {"park_id": "p1", "issued_at": pd.Timestamp("2026-06-01T00:00Z") + pd.Timedelta(hours=6 * i)}
        row |= {"valid_from_epoch_s": 0, "step_seconds": 900}
        row |= {name: np.full(192, 50.0, dtype=np.float32) for name in WEATHER_VARIABLES}
        rows.append(row)
    return pd.DataFrame(rows)


def test_weather_rows_out_of_range_or_incomplete_are_quarantined() -> None:
    rows = weather_rows(4)
    rows.at[1, "ghi"] = np.full(192, 5000.0, dtype=np.float32)  # W instead of W/m², or kW·1000
    short = np.full(192, 50.0, dtype=np.float32)
    short[60:] = np.nan  # only 15 h of data
    rows.at[2, "temp_air"] = short
    rows = pd.concat([rows, rows.iloc[[0]]], ignore_index=True)
    result = validate_weather(rows, THRESHOLDS)
    assert result.quarantine["reasons"].tolist() == ["out_of_range", "incomplete", "duplicate"]
    assert len(result.accepted) == 2


def test_quarantine_is_append_only_and_idempotent(tmp_path: Path) -> None:
    config = StoreConfig(repo_path=tmp_path)
    config.data_dir.mkdir(parents=True)
    frame = clean_day()
    frame.loc[at(12), "power_kw"] = -80.0
    records = validate_telemetry(frame, PARK, THRESHOLDS).quarantine
    assert write_quarantine(config, records) == 1
    assert write_quarantine(config, records) == 0
    stored = read_quarantine(config)
    assert stored["reasons"].tolist() == ["negative"] and stored["source"].tolist() == ["generation"]
    assert '"power_kw": -80.0' in stored["payload"].iloc[0]
