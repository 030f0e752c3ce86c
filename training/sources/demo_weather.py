"""The demo's SYNTHETIC "actual" weather: typical meteorological years replayed to end at any time.

Three typical meteorological years that ship with pvlib (Greensboro NC and Sand Point AK as TMY3, Miami FL as
TMY2) are replayed so that the data end at any requested ``end``: a UTC time is mapped to the TMY hour at the
same position in its own calendar year (modulo 8760 h), after converting the files' local-standard-time,
hour-ending stamps to UTC interval beginning. Hourly irradiance becomes 15-minute irradiance through the
clear-sky index ``kt = ghi / ghi_clearsky`` (Ineichen, climatological Linke turbidity), which is interpolated,
given a little seeded AR(1) sub-hourly variability, multiplied by the 15-minute clear-sky GHI and split into
DNI and DHI with Erbs. Temperature, wind speed and humidity are interpolated in time.

This is the "truth" the demo's telemetry and forecasts are simulated from (``training/sources/demo.py``). It
deliberately uses its own pvlib chain (pvlib's solar position, daily turbidity) rather than the forecaster's
physics, so the model is not judged against its own assumptions. Every random draw is seeded and keyed to
absolute time, so the same ``seed`` gives the same values for the same times whatever the window.
"""

from __future__ import annotations

import functools
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd
import pvlib
from numpy.typing import NDArray
from scipy import signal

from pvcast import schema
from pvcast.pv import physics
from pvcast.pv.plant import Park

FloatArray = NDArray[np.float64]

STEP: Final = pd.Timedelta(seconds=schema.STEP_SECONDS)
STEPS_PER_HOUR: Final = 3600 // schema.STEP_SECONDS
TMY_DIR: Final = Path(pvlib.__file__).parent / "data"
TMY_HOURS: Final = 8760
TMY2_VARIABLE_MAP: Final = {
    "GHI": "ghi",
    "DryBulb": "temp_air",
    "RHum": "relative_humidity",
    "Wspd": "wind_speed",
}
HOURLY_COLUMNS: Final = ("ghi", "temp_air", "relative_humidity", "wind_speed")
TMY2_SCALE: Final = {"ghi": 1.0, "temp_air": 0.1, "relative_humidity": 1.0, "wind_speed": 0.1}
"""TMY2 stores temperature [0.1 °C] and wind speed [0.1 m s⁻¹] in tenths."""
METEO_COLUMNS: Final = ("temp_air", "wind_speed", "relative_humidity")
DELTA_T: Final = 69.0
"""TT − UT1 [s]; a constant is accurate to a few seconds for 2015–2030 and keeps SPA fast."""

KT_MAX: Final = 1.2
MIN_HOURLY_CLEARSKY_GHI: Final = 25.0
"""[W m⁻²]: below this hourly clear-sky mean (sunrise, sunset) the TMY clear-sky index is not trusted."""
SUBHOURLY_RHO: Final = 0.7
SUBHOURLY_SIGMA: Final = 0.08
"""Std of the sub-hourly clear-sky-index noise at kt = 0.5; it vanishes towards clear and overcast skies."""

ACTUAL: Final = 1
"""Tag of the actual weather's random stream (telemetry and forecasts have their own, ``demo.py``)."""


class DemoPark(Park):
    """A synthetic park at the site of one of pvlib's typical meteorological years (location from its header)."""

    tmy_file: str  # file name in pvlib/data


def _demo_park(park_id: str, tmy_file: str, site: tuple[float, float, float], plant: tuple[float, ...]) -> DemoPark:
    latitude, longitude, altitude = site
    capacity_dc_kwp, capacity_ac_kw, surface_tilt, surface_azimuth = plant
    return DemoPark(
        park_id=park_id,
        tmy_file=tmy_file,
        latitude=latitude,
        longitude=longitude,
        altitude=altitude,
        capacity_dc_kwp=capacity_dc_kwp,
        capacity_ac_kw=capacity_ac_kw,
        surface_tilt=surface_tilt,
        surface_azimuth=surface_azimuth,
    )


DEMO_PARKS: Final[tuple[DemoPark, ...]] = (
    _demo_park("synthetic-greensboro", "723170TYA.CSV", (36.1, -79.95, 273.0), (5000.0, 4000.0, 25.0, 180.0)),
    _demo_park("synthetic-miami", "12839.tm2", (25.8, -80.26666666666667, 2.0), (3000.0, 2300.0, 15.0, 195.0)),
    _demo_park("synthetic-sandpoint", "703165TY.csv", (55.317, -160.517, 7.0), (1200.0, 1000.0, 40.0, 165.0)),
)
"""Sorted by park_id, so the tables built from them are sorted by park."""


@dataclass(frozen=True)
class TypicalYear:
    """8760 hourly rows in file order; row i is the hour ending i + 1 h after Jan 1 00:00 LST."""

    utc_offset_hours: int  # local standard time − UTC [h]
    hourly: pd.DataFrame  # ghi [W m⁻²], temp_air [°C], wind_speed [m s⁻¹], relative_humidity [%]


# --- reading the typical years -------------------------------------------------------------------------


@functools.cache
def read_typical_year(tmy_file: str) -> TypicalYear:
    """Read a TMY3 (``.csv``) or TMY2 (``.tm2``) file from pvlib's data directory (pvlib names, SI units)."""
    path = TMY_DIR / tmy_file
    if path.suffix.lower() == ".tm2":
        raw, meta = pvlib.iotools.read_tmy2(path)
        hourly = raw[list(TMY2_VARIABLE_MAP)].rename(columns=TMY2_VARIABLE_MAP) * pd.Series(TMY2_SCALE)
    else:
        raw, meta = pvlib.iotools.read_tmy3(path, map_variables=True)
        hourly = raw[list(HOURLY_COLUMNS)]
    if len(hourly) != TMY_HOURS:
        raise ValueError(f"{path} has {len(hourly)} rows, expected {TMY_HOURS}")
    return TypicalYear(int(meta["TZ"]), hourly.astype(np.float64).reset_index(drop=True))


def year_start(times: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """Jan 1 00:00 UTC of each time's UTC calendar year."""
    years = np.asarray(times.year, dtype=np.int64) - 1970
    return pd.DatetimeIndex(years.astype("datetime64[Y]").astype("datetime64[ns]")).tz_localize("UTC")


def tmy_rows(hour_beginnings: pd.DatetimeIndex, utc_offset_hours: int) -> NDArray[np.int64]:
    """TMY row replayed for each UTC hour: same position in its calendar year, modulo 8760 h.

    Row i covers [i, i + 1) h after Jan 1 00:00 local standard time, i.e. UTC hour i − utc_offset_hours.
    """
    hour_of_year = (hour_beginnings - year_start(hour_beginnings)) // pd.Timedelta(hours=1)
    return np.asarray((hour_of_year + utc_offset_hours) % TMY_HOURS, dtype=np.int64)


# --- sun and clear sky ----------------------------------------------------------------------------------


def sun_at_midpoints(park: DemoPark, times: pd.DatetimeIndex) -> pd.DataFrame:
    """Solar geometry at the middle of each 15-min interval: zenith, apparent_zenith, azimuth [°],
    dni_extra [W m⁻²], airmass_relative and airmass_absolute [-] (NaN when the sun is down)."""
    mid = times + STEP / 2
    sun = pvlib.solarposition.get_solarposition(
        mid, park.latitude, park.longitude, park.altitude, method="nrel_numpy", delta_t=DELTA_T
    )
    am = pvlib.atmosphere.get_relative_airmass(sun["apparent_zenith"].to_numpy())
    return pd.DataFrame(
        {
            "zenith": sun["zenith"].to_numpy(),
            "apparent_zenith": sun["apparent_zenith"].to_numpy(),
            "azimuth": sun["azimuth"].to_numpy(),
            "dni_extra": np.asarray(pvlib.irradiance.get_extra_radiation(mid.dayofyear)),
            "airmass_relative": am,
            "airmass_absolute": pvlib.atmosphere.get_absolute_airmass(am, pvlib.atmosphere.alt2pres(park.altitude)),
        },
        index=times,
    )


@functools.cache
def linke_turbidity_by_day(latitude: float, longitude: float) -> FloatArray:
    """Climatological Linke turbidity [-] for day of year 1..366 (index 0 unused); one file read per site."""
    days = pd.date_range("2024-01-01", periods=366, freq="D", tz="UTC")
    lt = pvlib.clearsky.lookup_linke_turbidity(days, latitude, longitude)
    return np.concatenate([[np.nan], lt.to_numpy(dtype=np.float64)])


def clearsky_ghi(park: DemoPark, sun: pd.DataFrame) -> FloatArray:
    """Ineichen clear-sky GHI [W m⁻²] at the interval midpoints; 0 when the sun is down."""
    index = pd.DatetimeIndex(sun.index)
    lt = linke_turbidity_by_day(park.latitude, park.longitude)[(index + STEP / 2).dayofyear]
    ghi = np.zeros(len(sun))
    up = sun["apparent_zenith"].to_numpy() < 90.0
    cs = pvlib.clearsky.ineichen(
        sun["apparent_zenith"].to_numpy()[up],
        sun["airmass_absolute"].to_numpy()[up],
        lt[up],
        park.altitude,
        sun["dni_extra"].to_numpy()[up],
    )
    ghi[up] = np.nan_to_num(np.asarray(cs["ghi"], dtype=np.float64))
    return ghi


def clearsky_index(ghi: FloatArray, ghi_clearsky: FloatArray) -> FloatArray:
    """Clear-sky index [-] clipped to [0, 1.2]; where the clear sky is too dim, the nearest valid value."""
    kt = pd.Series(np.where(ghi_clearsky >= MIN_HOURLY_CLEARSKY_GHI, ghi / np.maximum(ghi_clearsky, 1.0), np.nan))
    kt = kt.ffill().bfill().fillna(1.0)
    return np.clip(kt.to_numpy(), 0.0, KT_MAX)


def day_of_year(times: pd.DatetimeIndex) -> NDArray[np.int64]:
    """Day of year (1..366) of each interval midpoint."""
    return np.asarray((times + STEP / 2).dayofyear, dtype=np.int64)


# --- seeded noise keyed to absolute time --------------------------------------------------------------


def park_key(park_id: str) -> int:
    """A stable integer for a park id (``hash`` is salted per process)."""
    return zlib.crc32(park_id.encode())


def ar1(innovations: FloatArray, rho: float) -> FloatArray:
    """Unit-variance AR(1) series along the last axis from standard-normal innovations (stationary start)."""
    scale = np.sqrt(1.0 - rho**2)
    zi = (1.0 - scale) * innovations[..., :1]
    out, _ = signal.lfilter([scale], [1.0, -rho], innovations, axis=-1, zi=zi)
    return np.asarray(out, dtype=np.float64)


def noise_at(times: pd.DatetimeIndex, entropy: tuple[int, ...], rows: int, rho: float = 0.0) -> FloatArray:
    """Standard-normal draws of shape (rows, len(times)), AR(1) with ``rho`` per 15 min, keyed to each time's
    slot in its UTC year: the same (entropy, time) always gets the same value."""
    out = np.empty((rows, len(times)))
    years = np.asarray(times.year, dtype=np.int64)
    slot = np.asarray((times - year_start(times)) // STEP)
    for year in np.unique(years):
        n_slots = (pd.Timestamp(int(year) + 1, 1, 1) - pd.Timestamp(int(year), 1, 1)) // STEP
        draws = np.random.default_rng([*entropy, int(year)]).standard_normal((rows, n_slots))
        draws = ar1(draws, rho) if rho else draws
        in_year = years == year
        out[:, in_year] = draws[:, slot[in_year]]
    return out


# --- actual weather -------------------------------------------------------------------------------------


def _hour_aligned_grid(times: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """15-min grid of whole hours covering ``times`` with one hour to spare on each side."""
    start = times.min().floor("h") - pd.Timedelta(hours=1)
    stop = times.max().ceil("h") + pd.Timedelta(hours=2)
    return pd.date_range(start, stop, freq=STEP, inclusive="left")


def _interpolate_hourly(grid: pd.DatetimeIndex, hourly: FloatArray) -> FloatArray:
    """Interpolate hourly interval means (placed at hour midpoints) to 15-min interval midpoints."""
    seconds = (grid - grid[0]) / pd.Timedelta(seconds=1)
    hour_mid = seconds[::STEPS_PER_HOUR] + 1800.0
    return np.interp(seconds + schema.STEP_SECONDS / 2, hour_mid, hourly)


def _subhourly_kt(kt: FloatArray, noise: FloatArray) -> FloatArray:
    """Clear-sky index with sub-hourly variability, strongest under broken clouds (kt ≈ 0.5)."""
    kt_unit = np.clip(kt, 0.0, 1.0)
    return np.clip(kt + SUBHOURLY_SIGMA * 4.0 * kt_unit * (1.0 - kt_unit) * noise, 0.0, KT_MAX)


def _simulate_actual(park: DemoPark, grid: pd.DatetimeIndex, seed: int) -> pd.DataFrame:
    """Actual weather on an hour-aligned 15-min grid (see :func:`actual_weather`)."""
    tmy = read_typical_year(park.tmy_file)
    hourly = tmy.hourly.iloc[tmy_rows(grid[::STEPS_PER_HOUR], tmy.utc_offset_hours)]
    sun = sun_at_midpoints(park, grid)
    cs = clearsky_ghi(park, sun)
    kt_hourly = clearsky_index(hourly["ghi"].to_numpy(), cs.reshape(-1, STEPS_PER_HOUR).mean(axis=1))
    noise = noise_at(grid, (seed, park_key(park.park_id), ACTUAL), 1, SUBHOURLY_RHO)[0]
    kt = _subhourly_kt(_interpolate_hourly(grid, kt_hourly), noise)
    out = sun.assign(ghi_clearsky=cs, kt=kt, ghi=kt * cs)
    out["dni"], out["dhi"] = physics.decompose(kt * cs, sun["zenith"].to_numpy(), day_of_year(grid))
    for name in METEO_COLUMNS:
        out[name] = _interpolate_hourly(grid, hourly[name].to_numpy())
    return out


def actual_weather(park: DemoPark, times: pd.DatetimeIndex, seed: int = 7) -> pd.DataFrame:
    """The synthetic "actual" weather of ``park`` for 15-min interval beginnings ``times`` (tz-aware).

    Columns: ghi, dni, dhi, ghi_clearsky [W m⁻²], kt [-], temp_air [°C], wind_speed [m s⁻¹],
    relative_humidity [%], and the sun at the interval midpoints: zenith, apparent_zenith, azimuth [°],
    dni_extra [W m⁻²], airmass_relative, airmass_absolute [-]. A pure function of (park, time, seed).
    """
    times = pd.DatetimeIndex(times)
    if times.tz is None:
        raise ValueError("actual_weather needs timezone-aware times; naive timestamps are ambiguous")
    times = times.tz_convert("UTC")
    if len(times) == 0 or not (times == times.floor(STEP)).all():
        raise ValueError("actual_weather needs a non-empty set of times on the 15-minute grid")
    grid = _hour_aligned_grid(times)
    return _simulate_actual(park, grid, seed).loc[times]
