"""Park metadata validation and the UTC time helpers it relies on."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from pvcast.errors import InvalidParkError, NaiveTimestampError
from pvcast.pv.plant import PARK_FEATURES, Park, parks_frame, parks_from_frame, validate_park
from pvcast.schema import ENTITY_KEY, EVENT_TIMESTAMP
from pvcast.timeutils import ceil_epoch, floor_epoch, require_utc

VALID: dict[str, Any] = {
    "park_id": "golden-co_1.a",
    "latitude": 39.742476,
    "longitude": -105.1786,
    "altitude": 1830.14,
    "capacity_dc_kwp": 1200.0,
    "capacity_ac_kw": 1000.0,
    "surface_tilt": 25.0,
    "surface_azimuth": 180.0,
}


def with_(**changes: Any) -> dict[str, Any]:
    return VALID | changes


# --- validate_park / Park ----------------------------------------------------------------------------
def test_valid_park_passes_unchanged() -> None:
    park = validate_park(VALID)
    assert isinstance(park, Park)
    assert park.model_dump() == VALID


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("latitude", 90.0),
        ("latitude", -90.0),
        ("longitude", 180.0),
        ("longitude", -180.0),
        ("altitude", -500.0),
        ("altitude", 9000.0),
        ("surface_tilt", 0.0),
        ("surface_tilt", 90.0),
        ("surface_azimuth", 0.0),
        ("surface_azimuth", 359.9),
        ("park_id", "x" * 64),
        ("park_id", "7"),
    ],
)
def test_boundary_values_are_accepted(field: str, value: Any) -> None:
    assert getattr(validate_park(with_(**{field: value})), field) == value


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("latitude", 91.0),
        ("latitude", -90.5),
        ("latitude", float("nan")),
        ("longitude", -181.0),
        ("longitude", 180.5),
        ("altitude", 10_000.0),
        ("altitude", -600.0),
        ("capacity_dc_kwp", 0.0),
        ("capacity_dc_kwp", float("inf")),
        ("capacity_ac_kw", -1.0),
        ("capacity_ac_kw", 0.0),
        ("surface_tilt", 95.0),
        ("surface_tilt", -1.0),
        ("surface_azimuth", 360.0),
        ("surface_azimuth", -0.1),
        ("park_id", "a b"),
        ("park_id", ""),
        ("park_id", "x" * 65),
        ("park_id", "-leading-dash"),
        ("park_id", "trailing-newline\n"),
        ("park_id", "ümlaut"),
    ],
)
def test_out_of_range_field_is_named(field: str, value: Any) -> None:
    with pytest.raises(InvalidParkError) as caught:
        validate_park(with_(**{field: value}))
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")


@pytest.mark.parametrize("field", [ENTITY_KEY, *PARK_FEATURES])
def test_missing_required_field_is_named(field: str) -> None:
    data = {k: v for k, v in VALID.items() if k != field}
    with pytest.raises(InvalidParkError, match="required") as caught:
        validate_park(data)
    assert caught.value.field == field


def test_unknown_field_is_rejected() -> None:
    with pytest.raises(InvalidParkError, match=r"[Ee]xtra") as caught:
        validate_park(with_(module_type="mono-PERC"))
    assert caught.value.field == "module_type"


@pytest.mark.parametrize(("dc", "ac"), [(5000.0, 1000.0), (1000.0, 5000.0)])
def test_implausible_dc_ac_ratio_points_at_units(dc: float, ac: float) -> None:
    """A ratio of 5 (or 1/5) is almost always W vs kW or kWp vs MWp: the message says to check the units."""
    with pytest.raises(InvalidParkError, match="units") as caught:
        validate_park(with_(capacity_dc_kwp=dc, capacity_ac_kw=ac))
    assert caught.value.field == "park"
    assert "kWp" in caught.value.reason


@pytest.mark.parametrize(("dc", "ac"), [(3000.0, 1000.0), (1000.0, 3000.0)])
def test_dc_ac_ratio_limits_are_inclusive(dc: float, ac: float) -> None:
    assert validate_park(with_(capacity_dc_kwp=dc, capacity_ac_kw=ac)).capacity_dc_kwp == dc


def test_park_is_frozen() -> None:
    park = validate_park(VALID)
    with pytest.raises(ValueError, match="frozen"):
        park.latitude = 0.0  # type: ignore[misc]


# --- park tables -------------------------------------------------------------------------------------
def test_parks_from_frame_names_the_row_and_field() -> None:
    frame = pd.DataFrame([VALID, with_(park_id="bad-row", surface_tilt=95.0)])
    with pytest.raises(InvalidParkError) as caught:
        parks_from_frame(frame)
    assert caught.value.field == "bad-row.surface_tilt"


def test_parks_from_frame_round_trips_parks_frame() -> None:
    parks = [validate_park(VALID), validate_park(with_(park_id="second", latitude=-33.87, longitude=151.21))]
    frame = parks_frame(parks, pd.Timestamp("2026-01-01", tz="UTC"))
    assert parks_from_frame(frame) == parks


def test_parks_frame_stamps_utc_event_timestamp() -> None:
    registered = pd.Timestamp("2026-01-01 02:00", tz="Europe/Berlin")  # 01:00 UTC
    frame = parks_frame([validate_park(VALID)], registered)
    assert list(frame.columns) == [ENTITY_KEY, *PARK_FEATURES, EVENT_TIMESTAMP]
    assert str(frame[EVENT_TIMESTAMP].dtype) == "datetime64[us, UTC]"
    assert frame[EVENT_TIMESTAMP].iloc[0] == pd.Timestamp("2026-01-01 01:00", tz="UTC")
    assert frame.iloc[0][list(PARK_FEATURES)].to_dict() == {k: VALID[k] for k in PARK_FEATURES}


def test_parks_frame_rejects_naive_timestamp() -> None:
    with pytest.raises(NaiveTimestampError, match="no timezone"):
        parks_frame([validate_park(VALID)], pd.Timestamp("2026-01-01 00:00"))


def test_parks_frame_of_no_parks_is_an_empty_table() -> None:
    frame = parks_frame([], pd.Timestamp("2026-01-01", tz="UTC"))
    assert len(frame) == 0
    assert str(frame[EVENT_TIMESTAMP].dtype) == "datetime64[us, UTC]"


# --- timeutils ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["2026-01-01T00:00", pd.Timestamp("2026-01-01"), datetime(2026, 1, 1)])
def test_require_utc_rejects_naive(value: Any) -> None:
    with pytest.raises(NaiveTimestampError, match="issued_at"):
        require_utc(value, name="issued_at")


@pytest.mark.parametrize(
    "value",
    [
        "2026-01-01T02:00+02:00",
        pd.Timestamp("2026-01-01 01:00", tz="Europe/Berlin"),
        datetime(2025, 12, 31, 19, tzinfo=ZoneInfo("America/New_York")),
        "2026-01-01T00:00Z",
    ],
)
def test_require_utc_converts_other_zones(value: Any) -> None:
    ts = require_utc(value)
    assert str(ts.tz) == "UTC"
    assert ts == pd.Timestamp("2026-01-01 00:00", tz="UTC")
    assert ts.hour == 0  # the wall clock is UTC's, not the input zone's


@pytest.mark.parametrize(
    ("seconds", "ceil", "floor"),
    [
        (0, 0, 0),
        (900, 900, 900),
        (1, 900, 0),
        (899, 900, 0),
        (901, 1800, 900),
        (1799, 1800, 900),
        (-1, 0, -900),
        (-900, -900, -900),
        (1_767_225_600, 1_767_225_600, 1_767_225_600),  # 2026-01-01T00:00Z, a boundary
        (1_767_225_601, 1_767_226_500, 1_767_225_600),
    ],
)
def test_ceil_and_floor_epoch(seconds: int, ceil: int, floor: int) -> None:
    assert int(ceil_epoch(seconds, 900)) == ceil
    assert int(floor_epoch(seconds, 900)) == floor


def test_ceil_and_floor_epoch_on_arrays() -> None:
    seconds = np.array([0, 1, 3599, 3600, 3601])
    np.testing.assert_array_equal(ceil_epoch(seconds, 3600), [0, 3600, 3600, 3600, 7200])
    np.testing.assert_array_equal(floor_epoch(seconds, 3600), [0, 0, 0, 3600, 3600])
    assert ceil_epoch(seconds, 3600).dtype == np.int64
