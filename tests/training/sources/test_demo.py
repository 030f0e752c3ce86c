"""The synthetic demo data set: layout, time rules, physics sanity, forecast skill and reproducibility."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pvlib
import pytest

from pvcast import schema
from pvcast.pv.plant import PARK_FEATURES
from training.sources import demo, demo_weather

END = pd.Timestamp("2026-06-20 13:07", tz="UTC")
END_FLOOR = pd.Timestamp("2026-06-20 13:00", tz="UTC")
DAYS = 30
STEPS = 192
UTC_US = pd.DatetimeTZDtype(unit="us", tz="UTC")


@pytest.fixture(scope="module")
def dataset() -> demo.DemoDataset:
    return demo.build_demo_dataset(END, days=DAYS)


@pytest.fixture(scope="module")
def small() -> demo.DemoDataset:
    return demo.build_demo_dataset(END, days=3)


def _stack(frame: pd.DataFrame, column: str) -> np.ndarray:
    return np.stack(frame[column].to_numpy())


def _assert_same(a: demo.DemoDataset, b: demo.DemoDataset) -> None:
    pd.testing.assert_frame_equal(a.parks, b.parks)
    pd.testing.assert_frame_equal(a.generation, b.generation)
    scalars = [c for c in a.weather_forecasts.columns if c not in schema.WEATHER_VARIABLES]
    pd.testing.assert_frame_equal(a.weather_forecasts[scalars], b.weather_forecasts[scalars])
    for name in schema.WEATHER_VARIABLES:
        np.testing.assert_array_equal(_stack(a.weather_forecasts, name), _stack(b.weather_forecasts, name))


# --- layout -------------------------------------------------------------------------------------------


def test_parks_columns_and_dtypes(dataset: demo.DemoDataset) -> None:
    parks = dataset.parks
    assert list(parks.columns) == ["park_id", *PARK_FEATURES, "event_timestamp"]  # the plant model's park table
    assert parks["event_timestamp"].dtype == UTC_US
    assert (parks["event_timestamp"] == END_FLOOR - pd.Timedelta(days=DAYS)).all()
    assert all(parks[c].dtype == np.float64 for c in PARK_FEATURES)
    assert parks["park_id"].tolist() == ["synthetic-greensboro", "synthetic-miami", "synthetic-sandpoint"]


def test_generation_columns_and_dtypes(dataset: demo.DemoDataset) -> None:
    gen = dataset.generation
    assert list(gen.columns) == ["park_id", "valid_time_epoch_s", "power_kw", "event_timestamp"]
    assert gen["park_id"].map(type).eq(str).all()
    assert gen["valid_time_epoch_s"].dtype == np.int64
    assert gen["power_kw"].dtype == np.float32
    assert gen["event_timestamp"].dtype == UTC_US


def test_forecast_columns_and_dtypes(dataset: demo.DemoDataset) -> None:
    fc = dataset.weather_forecasts
    expected = ["park_id", "issued_at", "valid_from_epoch_s", "step_seconds", *schema.WEATHER_VARIABLES]
    assert list(fc.columns) == expected
    assert fc["issued_at"].dtype == UTC_US
    assert fc["valid_from_epoch_s"].dtype == np.int64
    assert fc["step_seconds"].dtype == np.int64


def test_naive_end_is_rejected() -> None:
    with pytest.raises(ValueError, match="naive"):
        demo.build_demo_dataset(pd.Timestamp("2026-06-20 13:00"), days=1)


def test_non_utc_end_is_converted(small: demo.DemoDataset) -> None:
    other = demo.build_demo_dataset(END.tz_convert("Europe/Berlin"), days=3)
    _assert_same(small, other)


# --- time rules ---------------------------------------------------------------------------------------


def test_generation_covers_the_window_and_ends_at_end(dataset: demo.DemoDataset) -> None:
    gen = dataset.generation
    valid = pd.to_datetime(gen["valid_time_epoch_s"], unit="s", utc=True)
    for _, times in valid.groupby(gen["park_id"]):
        assert times.max() == END_FLOOR - pd.Timedelta(minutes=15)
        assert times.min() >= END_FLOOR - pd.Timedelta(days=DAYS)
    assert gen["event_timestamp"].max() <= END
    assert (gen["event_timestamp"] == valid + pd.Timedelta(minutes=15)).all()
    assert (gen["valid_time_epoch_s"] % 900 == 0).all()


def test_generation_is_sorted_and_unique(dataset: demo.DemoDataset) -> None:
    gen = dataset.generation
    ordered = gen.sort_values(["park_id", "valid_time_epoch_s"], ignore_index=True)
    pd.testing.assert_frame_equal(gen, ordered)
    assert not gen.duplicated(["park_id", "valid_time_epoch_s"]).any()


def test_about_half_a_percent_of_intervals_are_missing(dataset: demo.DemoDataset) -> None:
    expected = len(demo_weather.DEMO_PARKS) * DAYS * 96
    missing = 1.0 - len(dataset.generation) / expected
    assert 0.002 < missing < 0.009


def test_forecast_runs_are_issued_every_six_hours_up_to_end(dataset: demo.DemoDataset) -> None:
    fc = dataset.weather_forecasts
    issued = pd.DatetimeIndex(fc["issued_at"])
    assert issued.max() <= END
    assert issued.min() >= END_FLOOR - pd.Timedelta(days=DAYS)
    assert set(issued.hour) == {0, 6, 12, 18}
    assert (issued.minute == 0).all()
    assert fc.groupby("park_id").size().tolist() == [DAYS * 4] * 3
    assert (fc["valid_from_epoch_s"].to_numpy() == issued.as_unit("s").asi8).all()
    assert (fc["step_seconds"] == 900).all()


def test_forecast_arrays_are_float32_finite_and_in_range(dataset: demo.DemoDataset) -> None:
    fc = dataset.weather_forecasts
    for name in schema.WEATHER_VARIABLES:
        cells = fc[name].to_numpy()
        assert all(c.shape == (STEPS,) and c.dtype == np.float32 for c in cells), name
        assert np.isfinite(np.stack(cells)).all(), name
    for name in ("ghi", "dni", "dhi", "wind_speed", "cloud_cover", "relative_humidity"):
        assert (_stack(fc, name) >= 0).all(), name
    assert (_stack(fc, "cloud_cover") <= 100).all()
    assert (_stack(fc, "relative_humidity") <= 100).all()
    assert (_stack(fc, "dhi") <= _stack(fc, "ghi") + 1e-3).all()


# --- physics and forecast skill ---------------------------------------------------------------------


def _park(park_id: str) -> demo_weather.DemoPark:
    return next(p for p in demo_weather.DEMO_PARKS if p.park_id == park_id)


def test_forecast_error_grows_with_lead_time(dataset: demo.DemoDataset) -> None:
    fc = dataset.weather_forecasts
    for park_id, runs in fc.groupby("park_id"):
        issued = pd.DatetimeIndex(runs["issued_at"]).as_unit("ns")
        times = pd.date_range(issued.min(), issued.max() + pd.Timedelta(hours=48), freq="15min")
        actual = demo_weather.actual_weather(_park(str(park_id)), times)["ghi"].to_numpy()
        index = ((issued - times[0]) // pd.Timedelta("15min")).to_numpy()[:, None] + np.arange(STEPS)
        squared = (_stack(runs, "ghi") - actual[index]) ** 2
        early, late = np.sqrt(squared[:, :24].mean()), np.sqrt(squared[:, 144:].mean())
        assert late > 1.5 * early, (park_id, early, late)
        assert early < 80.0, (park_id, early)


def test_power_is_zero_at_night(dataset: demo.DemoDataset) -> None:
    gen = dataset.generation
    for park in demo_weather.DEMO_PARKS:
        rows = gen[gen["park_id"] == park.park_id]
        mid = pd.to_datetime(rows["valid_time_epoch_s"] + 450, unit="s", utc=True)
        sun = pvlib.solarposition.get_solarposition(mid, park.latitude, park.longitude, park.altitude)
        night = sun["elevation"].to_numpy() < -1.0
        assert night.sum() > 100, park.park_id
        assert (rows["power_kw"].to_numpy()[night] == 0.0).all(), park.park_id
        assert (rows["power_kw"].to_numpy()[~night] > 0).mean() > 0.9, park.park_id


def test_power_stays_within_capacity_and_clips(dataset: demo.DemoDataset) -> None:
    gen = dataset.generation.merge(dataset.parks[["park_id", "capacity_ac_kw", "capacity_dc_kwp"]])
    assert (gen["power_kw"] >= 0).all()
    assert (gen["power_kw"] <= gen["capacity_ac_kw"]).all()
    clipped = gen["power_kw"] == gen["capacity_ac_kw"].astype(np.float32)
    assert clipped.groupby(gen["park_id"]).sum().max() >= 4
    capacity_factor = gen.groupby("park_id")["power_kw"].mean() / dataset.parks.set_index("park_id")["capacity_dc_kwp"]
    assert capacity_factor.between(0.05, 0.35).all(), capacity_factor


def test_parks_are_in_clearly_different_climates(dataset: demo.DemoDataset) -> None:
    latitudes = np.sort(dataset.parks["latitude"].to_numpy())
    assert np.diff(latitudes).min() > 8.0
    assert (dataset.parks["capacity_dc_kwp"] / dataset.parks["capacity_ac_kw"]).between(1.2, 1.35).all()


@pytest.mark.parametrize("park", demo_weather.DEMO_PARKS, ids=lambda p: p.park_id)
def test_park_location_is_the_tmy_files(park: demo_weather.DemoPark) -> None:
    path = demo_weather.TMY_DIR / park.tmy_file
    reader = pvlib.iotools.read_tmy2 if path.suffix == ".tm2" else pvlib.iotools.read_tmy3
    _, meta = reader(path)
    assert park.park_id.startswith("synthetic-")
    assert (park.latitude, park.longitude, park.altitude) == pytest.approx(
        (meta["latitude"], meta["longitude"], meta["altitude"])
    )


@pytest.mark.parametrize("park", demo_weather.DEMO_PARKS, ids=lambda p: p.park_id)
def test_tmy_replay_lines_up_with_the_sun(park: demo_weather.DemoPark) -> None:
    """Hour-ending local standard time → UTC interval beginning: a 1-hour slip would lower the correlation."""
    tmy = demo_weather.read_typical_year(park.tmy_file)
    grid = pd.date_range("2025-01-01", "2026-01-01", freq="15min", tz="UTC", inclusive="left")
    clearsky = demo_weather.clearsky_ghi(park, demo_weather.sun_at_midpoints(park, grid)).reshape(-1, 4).mean(axis=1)
    rows = demo_weather.tmy_rows(grid[::4], tmy.utc_offset_hours)
    ghi = tmy.hourly["ghi"].to_numpy()
    corr = {s: np.corrcoef(ghi[(rows + s) % demo_weather.TMY_HOURS], clearsky)[0, 1] for s in (-1, 0, 1)}
    assert corr[0] > max(corr[-1], corr[1]) + 0.02, corr
    assert ghi[rows][clearsky == 0].sum() < 1e-3 * ghi.sum()


def test_tmy_rows_map_year_start_to_local_midnight() -> None:
    hours = pd.DatetimeIndex(["2026-01-01 05:00", "2026-01-01 04:00", "2026-12-31 23:00"], tz="UTC")
    assert demo_weather.tmy_rows(hours, -5).tolist() == [0, 8759, 8754]


def test_actual_weather_is_a_pure_function_of_time() -> None:
    park = demo_weather.DEMO_PARKS[0]
    long = pd.date_range("2026-03-01", periods=96 * 4, freq="15min", tz="UTC")
    short = long[150:230]
    a = demo_weather.actual_weather(park, long).loc[short]
    b = demo_weather.actual_weather(park, short)
    pd.testing.assert_frame_equal(a, b)
    assert (b["ghi"] >= 0).all()
    assert np.isfinite(b[["ghi", "dni", "dhi", "temp_air", "wind_speed", "relative_humidity"]]).all().all()


def test_actual_weather_rejects_naive_times() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        demo_weather.actual_weather(demo_weather.DEMO_PARKS[0], pd.date_range("2026-03-01", periods=4, freq="15min"))


def test_cloud_cover_inverts_kasten_czeplak() -> None:
    cover = np.array([0.0, 20.0, 50.0, 80.0, 100.0])
    kt = 1.0 - 0.75 * (cover / 100.0) ** 3.4
    np.testing.assert_allclose(demo.cloud_cover_from_kt(kt), cover, atol=1e-9)
    assert demo.cloud_cover_from_kt(np.array([1.2, 0.0])).tolist() == [0.0, 100.0]


# --- reproducibility and speed ------------------------------------------------------------------------


def test_same_seed_gives_identical_output(small: demo.DemoDataset) -> None:
    _assert_same(small, demo.build_demo_dataset(END, days=3, seed=7))


def test_different_seed_gives_different_output(small: demo.DemoDataset) -> None:
    other = demo.build_demo_dataset(END, days=3, seed=8)
    assert not np.array_equal(_stack(small.weather_forecasts, "ghi"), _stack(other.weather_forecasts, "ghi"))
    merged = small.generation.merge(other.generation, on=["park_id", "valid_time_epoch_s"])
    assert (merged["power_kw_x"] != merged["power_kw_y"]).any()


def test_overlapping_windows_agree(dataset: demo.DemoDataset, small: demo.DemoDataset) -> None:
    """Draws are keyed to absolute time, so a shorter window is a subset of a longer one."""
    keys = ["park_id", "valid_time_epoch_s"]
    merged = small.generation.merge(dataset.generation, on=keys)
    assert len(merged) > 0.95 * len(small.generation)
    np.testing.assert_array_equal(merged["power_kw_x"], merged["power_kw_y"])
    runs = small.weather_forecasts.merge(dataset.weather_forecasts, on=["park_id", "issued_at"])
    # equal up to the rounding of the moving average's running sum, which starts at a different time
    np.testing.assert_allclose(
        np.stack(runs["ghi_x"].to_numpy()), np.stack(runs["ghi_y"].to_numpy()), rtol=1e-5, atol=1e-3
    )


def test_a_full_year_builds_in_under_30_seconds() -> None:
    tic = time.perf_counter()
    ds = demo.build_demo_dataset(END, days=365)
    assert time.perf_counter() - tic < 30.0
    assert len(ds.weather_forecasts) == 3 * 365 * 4
