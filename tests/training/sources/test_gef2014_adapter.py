"""The GEFCom2014 solar adapter: every conversion, on hand-made rows and on recorded rows of the real file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from feature_repo.store import normalise_table
from pvcast.errors import DataNotFoundError
from pvcast.pv.plant import parks_from_frame
from pvcast.schema import ENTITY_KEY, EVENT_TIMESTAMP, ISSUED_AT, WEATHER_VARIABLES
from training.sources import gef2014 as gefcom

RAW_COLUMNS = list(gefcom.VARIABLE_MAP)


def raw_rows(zone: int = 1, hours: int = 3, start: str = "20130401 01:00", **overrides: list[float]) -> pd.DataFrame:
    """Hand-made rows in the file's layout: hour-ending stamps, accumulated fields growing by a known amount."""
    ending = pd.date_range(pd.Timestamp(start), periods=hours, freq="h")
    n = len(ending)
    frame = pd.DataFrame(
        {
            "ZONEID": zone,
            "TIMESTAMP": ending.strftime("%Y%m%d %H:%M"),
            "TASK": 1,
            "POWER": np.linspace(0.1, 0.3, n),
            "VAR78": 0.01,
            "VAR79": 0.002,
            "VAR134": 94000.0,
            "VAR157": 60.0,
            "VAR164": 0.25,
            "VAR165": 3.0,
            "VAR166": -4.0,
            "VAR167": 293.15,
            "VAR169": 3600.0 * 100.0 * np.arange(1, n + 1),  # +100 W m⁻² every hour
            "VAR175": 3600.0 * 300.0 * np.arange(1, n + 1),
            "VAR178": 3600.0 * 150.0 * np.arange(1, n + 1),
            "VAR228": 0.001 * np.arange(1, n + 1),  # 1 mm every hour
        }
    )
    for column, values in overrides.items():
        frame[column] = values
    return frame


def test_hour_ending_stamps_become_interval_beginning_and_the_run_is_the_00utc_issue() -> None:
    hourly = gefcom.parse_gefcom(raw_rows(hours=24, start="20130401 01:00"))
    assert hourly["valid_time"].iloc[0] == pd.Timestamp("2013-04-01 00:00", tz="UTC")
    assert hourly["valid_time"].iloc[-1] == pd.Timestamp("2013-04-01 23:00", tz="UTC")  # stamped 04-02 00:00
    assert (hourly[ISSUED_AT] == pd.Timestamp("2013-04-01 00:00", tz="UTC")).all()
    assert str(hourly["valid_time"].dt.tz) == "UTC"


def test_accumulated_fields_are_deaccumulated_within_each_run_and_turned_into_watts() -> None:
    # two runs: the accumulation restarts at the second run's first hour (ending 01:00 of the next day)
    first, second = raw_rows(hours=24), raw_rows(hours=3, start="20130402 01:00")
    hourly = gefcom.parse_gefcom(pd.concat([first, second], ignore_index=True))
    np.testing.assert_allclose(hourly["ghi"], 100.0)  # [W m⁻²] in every hour, including each run's first
    np.testing.assert_allclose(hourly["longwave_down"], 300.0)
    np.testing.assert_allclose(hourly["toa_net_solar"], 150.0)
    np.testing.assert_allclose(hourly["precipitation"], 1.0)  # [mm h⁻¹]


def test_a_missing_hour_inside_a_run_is_not_merged_into_one_difference() -> None:
    rows = raw_rows(hours=4).drop(index=2)  # hour ending 03:00 missing
    hourly = gefcom.parse_gefcom(rows)
    assert np.isnan(hourly["toa_net_solar"].iloc[2])
    np.testing.assert_allclose(hourly["toa_net_solar"].iloc[:2], 150.0)


def test_deaccumulate_is_a_pure_function_of_run_and_time() -> None:
    seconds = np.array([0, 3600, 7200, 86400, 90000], dtype=np.int64)
    run = np.array([0, 0, 0, 1, 1])
    got = gefcom.deaccumulate(np.array([10.0, 30.0, 60.0, 5.0, 7.0]), run, seconds, 3600)
    np.testing.assert_allclose(got, [10.0, 20.0, 30.0, 5.0, 2.0])


def test_kelvin_wind_cloud_and_humidity_conversions() -> None:
    hourly = gefcom.parse_gefcom(raw_rows(VAR164=[0.25, 1.000008, -0.00001], VAR167=[273.15, 293.15, 300.0]))
    np.testing.assert_allclose(hourly["temp_air"], [0.0, 20.0, 26.85])
    np.testing.assert_allclose(hourly["wind_speed"], 5.0)  # |(3, −4)|
    np.testing.assert_allclose(hourly["cloud_cover"], [25.0, 100.0, 0.0])  # [%], packing noise clipped
    np.testing.assert_allclose(hourly["relative_humidity"], 60.0)
    np.testing.assert_allclose(hourly["pressure"], 94000.0)


def test_power_is_scaled_to_kw_by_the_zone_nominal_power() -> None:
    hourly = gefcom.parse_gefcom(raw_rows(zone=2, POWER=[0.0, 0.5, 1.0]))
    np.testing.assert_allclose(hourly["power_kw"], [0.0, 2.47, 4.94])
    assert (hourly[ENTITY_KEY] == "gefcom-zone2").all()


def test_erbs_split_closes_the_irradiance_budget() -> None:
    """GHI = DNI cos(zenith) + DHI wherever the sun is up; DNI = 0 and DHI = GHI when the split is undefined."""
    ghi = np.array([0.0, 50.0, 400.0, 900.0, 20.0])
    zenith = np.array([100.0, 80.0, 50.0, 25.0, 89.0])
    times = pd.Series(pd.date_range("2013-01-10", periods=5, freq="h", tz="UTC"))
    dni, dhi = gefcom.decompose(ghi, zenith, times)
    up = zenith < 87
    np.testing.assert_allclose((dni * np.cos(np.radians(zenith)) + dhi)[up], ghi[up], rtol=1e-9)
    assert dni[0] == 0 and dhi[0] == 0
    assert dni[-1] == 0 and dhi[-1] == ghi[-1]
    assert dni[3] > dhi[3]  # a bright hour is mostly beam


def test_parks_carry_the_published_farm_table() -> None:
    parks = {p.park_id: p for p in gefcom.zone_parks()}
    zone2 = parks["gefcom-zone2"]
    assert (zone2.altitude, zone2.surface_azimuth, zone2.surface_tilt) == (602.0, 327.0, 35.0)
    assert zone2.capacity_dc_kwp == zone2.capacity_ac_kw == pytest.approx(4.94)
    assert all(p.latitude == -37.5 and p.longitude == 145.0 for p in parks.values())
    parks_from_frame(gefcom.parks_table(pd.Timestamp("2012-01-01", tz="UTC")))  # valid store rows


def test_weather_table_holds_one_24h_run_per_park_and_day_in_the_store_layout() -> None:
    hourly = gefcom.parse_gefcom(pd.concat([raw_rows(hours=24), raw_rows(hours=23, start="20130402 01:00")]))
    table = gefcom.weather_forecast_table(hourly)
    assert len(table) == 1  # the incomplete second run is dropped
    row = table.iloc[0]
    assert row[ISSUED_AT] == pd.Timestamp("2013-04-01", tz="UTC")
    assert row["valid_from_epoch_s"] == int(pd.Timestamp("2013-04-01", tz="UTC").timestamp())
    assert row["step_seconds"] == 3600
    assert all(len(row[v]) == 24 for v in WEATHER_VARIABLES)
    normalise_table("weather_forecast", table)  # accepted by the store


def test_generation_rows_become_known_at_the_end_of_their_hour() -> None:
    table = gefcom.generation_table(gefcom.parse_gefcom(raw_rows()))
    start = int(pd.Timestamp("2013-04-01 00:00", tz="UTC").timestamp())
    assert table["valid_time_epoch_s"].tolist() == [start, start + 3600, start + 7200]
    assert table[EVENT_TIMESTAMP].iloc[0] == pd.Timestamp("2013-04-01 01:00", tz="UTC")
    normalise_table("generation", table)


def test_task_months() -> None:
    assert gefcom.task_month(1) == (pd.Timestamp("2013-04-01", tz="UTC"), pd.Timestamp("2013-05-01", tz="UTC"))
    assert gefcom.task_month(10)[0] == pd.Timestamp("2014-01-01", tz="UTC")
    assert gefcom.task_month(15)[1] == pd.Timestamp("2014-07-01", tz="UTC")
    with pytest.raises(ValueError, match=r"1\.\.15"):
        gefcom.task_month(16)


def test_a_folder_without_the_csv_is_a_domain_error(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError, match="--data"):
        gefcom.csv_path(tmp_path)


def test_a_file_without_the_solar_columns_is_a_domain_error() -> None:
    with pytest.raises(DataNotFoundError, match="VAR169"):
        gefcom.parse_gefcom(raw_rows().drop(columns="VAR169"))


# --- recorded rows of the real file -------------------------------------------------------------------


@pytest.fixture(scope="module")
def recorded(shared_data: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Zone 1's first two days as recorded, raw and parsed."""
    raw = pd.read_csv(gefcom.csv_path(shared_data), nrows=48, dtype={"TIMESTAMP": str})
    return raw, gefcom.parse_gefcom(raw)


@pytest.mark.data
def test_recorded_rows_convert_as_the_formulas_say(recorded: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    raw, hourly = recorded
    assert raw["TIMESTAMP"].iloc[0] == "20120401 01:00" and raw["ZONEID"].iloc[0] == 1
    assert hourly["valid_time"].iloc[0] == pd.Timestamp("2012-04-01 00:00", tz="UTC")
    # first hour of a run stands alone; the next ones are differences; all divided by 3600 s
    assert hourly["ghi"].iloc[0] == pytest.approx(raw["VAR169"].iloc[0] / 3600)
    assert hourly["ghi"].iloc[1] == pytest.approx((raw["VAR169"].iloc[1] - raw["VAR169"].iloc[0]) / 3600)
    assert hourly["ghi"].iloc[24] == pytest.approx(raw["VAR169"].iloc[24] / 3600)  # 2012-04-02 01:00: new run
    assert hourly["temp_air"].iloc[0] == pytest.approx(raw["VAR167"].iloc[0] - 273.15)
    assert hourly["wind_speed"].iloc[0] == pytest.approx(np.hypot(raw["VAR165"].iloc[0], raw["VAR166"].iloc[0]))
    assert hourly["cloud_cover"].iloc[0] == pytest.approx(100 * raw["VAR164"].iloc[0])
    assert hourly["power_kw"].iloc[0] == pytest.approx(raw["POWER"].iloc[0] * 1.56)
    # physical sanity of the recorded first day: irradiance by day only, and mostly below clear sky
    day = hourly["solar_zenith"] < 85
    assert (hourly.loc[~day & (hourly["solar_zenith"] > 95), "ghi"] < 1).all()
    assert hourly.loc[day, "ghi"].between(0, 1200).all()


@pytest.mark.data
def test_the_real_file_parses_completely(shared_data: Path) -> None:
    hourly = gefcom.read_gefcom(gefcom.csv_path(shared_data))
    assert set(hourly[ENTITY_KEY]) == {"gefcom-zone1", "gefcom-zone2", "gefcom-zone3"}
    assert hourly[[*WEATHER_VARIABLES, "power"]].notna().all().all()
    assert (hourly["ghi"] >= 0).all() and (hourly["cloud_cover"].between(0, 100)).all()
    table = gefcom.weather_forecast_table(hourly)
    assert len(table) == len(hourly) // 24  # every run is complete
