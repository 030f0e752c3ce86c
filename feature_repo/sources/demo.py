"""The embedded demo data set: three parks, a year of telemetry and of weather forecasts, all SYNTHETIC.

Nothing here is measured or downloaded; the module needs no network. It is built in three steps:

1. **Replayed typical-year weather ("actual").** Three typical meteorological years that ship with pvlib
   (Greensboro NC and Sand Point AK as TMY3, Miami FL as TMY2) are replayed so that the data end at any
   requested ``end``: a UTC time is mapped to the TMY hour at the same position in its own calendar year
   (modulo 8760 h), after converting the files' local-standard-time, hour-ending stamps to UTC interval
   beginning. Hourly irradiance becomes 15-minute irradiance through the clear-sky index
   ``kt = ghi / ghi_clearsky`` (Ineichen, climatological Linke turbidity), which is interpolated, given a
   little seeded AR(1) sub-hourly variability, multiplied by the 15-minute clear-sky GHI and split into DNI
   and DHI with Erbs. Temperature, wind speed and humidity are interpolated in time.
2. **Simulated generation ("measured" AC power).** pvlib turns the actual weather into AC power (Perez
   transposition, SAPM cell temperature, PVWatts DC and inverter, so clear days clip at ``capacity_ac_kw``);
   seeded multiplicative and additive noise is added, and about 0.5 % of intervals are dropped at random as
   telemetry gaps (those rows are absent, not NaN).
3. **Simulated forecasts (synthetic NWP).** A run every ``run_every_hours`` blurs the actual clear-sky index
   with a centred moving average and adds an AR(1) error, both growing with lead time, so forecast skill
   decays with lead like a real NWP; the other variables get errors that grow with lead as well.

Every random draw is seeded and keyed to absolute time (actual weather, telemetry) or to the absolute run
number (forecasts), so the same ``seed`` gives the same values for the same times whatever the window.
"""

from __future__ import annotations

import functools
import logging
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist
from typing import Final

import numpy as np
import pandas as pd
import pvlib
from numpy.typing import NDArray
from scipy import signal

from pvcast import schema
from pvcast.pv.plant import PARK_FEATURES

logger = logging.getLogger(__name__)

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

GAMMA_PDC: Final = -0.0037
DC_LOSSES: Final = 0.10
INVERTER_EFFICIENCY: Final = 0.96
SAPM_PARAMETERS: Final = pvlib.temperature.TEMPERATURE_MODEL_PARAMETERS["sapm"]["open_rack_glass_glass"]
NOISE_RELATIVE: Final = 0.02
NOISE_ABSOLUTE_FRACTION: Final = 0.002
"""Additive telemetry noise as a fraction of capacity_ac_kw."""
GAP_FRACTION: Final = 0.005
GAP_THRESHOLD: Final = NormalDist().inv_cdf(1.0 - GAP_FRACTION)

REFERENCE_LEAD_HOURS: Final = 48.0
FORECAST_RHO: Final = 0.97
"""AR(1) coefficient of forecast errors per 15-minute step along a run."""
SMOOTHING_HOURS: Final = (1.0, 5.0)
"""Centred moving-average window [h] = a + b · lead / 48 h: 1 h at lead 0, 6 h at 48 h."""
KT_ERROR_STD: Final = (0.04, 0.16)
"""Std of the clear-sky-index error = a + b · sqrt(lead / 48 h)."""
TEMP_ERROR_STD: Final = (0.5, 2.0)
"""[K] = a + b · lead / 48 h."""
WIND_LOG_STD: Final = (0.10, 0.25)
"""Std of the log of the wind-speed factor = a + b · lead / 48 h."""
RH_ERROR_STD: Final = (3.0, 5.0)
"""[%] = a + b · lead / 48 h."""

_ACTUAL, _GENERATION, _FORECAST = 1, 2, 3
"""Tags that give each kind of random draw its own stream."""

GENERATION_COLUMNS: Final = ("park_id", "valid_time_epoch_s", "power_kw", schema.EVENT_TIMESTAMP)
FORECAST_COLUMNS: Final = (
    schema.ENTITY_KEY,
    schema.ISSUED_AT,
    *schema.WEATHER_META,
    *schema.WEATHER_VARIABLES,
)
PARK_COLUMNS: Final = (schema.ENTITY_KEY, schema.EVENT_TIMESTAMP, *PARK_FEATURES)


@dataclass(frozen=True)
class DemoPark:
    """A synthetic park at the site of one of pvlib's typical meteorological years."""

    park_id: str
    tmy_file: str  # file name in pvlib/data
    latitude: float  # [°], from the TMY header
    longitude: float  # [°], from the TMY header
    altitude: float  # [m], from the TMY header
    capacity_dc_kwp: float  # [kWp]
    capacity_ac_kw: float  # [kW]
    surface_tilt: float  # [°]
    surface_azimuth: float  # [°], 180 = south


DEMO_PARKS: Final[tuple[DemoPark, ...]] = (
    DemoPark("synthetic-greensboro", "723170TYA.CSV", 36.1, -79.95, 273.0, 5000.0, 4000.0, 25.0, 180.0),
    DemoPark("synthetic-miami", "12839.tm2", 25.8, -80.26666666666667, 2.0, 3000.0, 2300.0, 15.0, 195.0),
    DemoPark("synthetic-sandpoint", "703165TY.csv", 55.317, -160.517, 7.0, 1200.0, 1000.0, 40.0, 165.0),
)
"""Sorted by park_id, so the tables built from them are sorted by park."""


@dataclass(frozen=True)
class DemoDataset:
    """The demo tables, in the column layout of ``pvcast.schema``."""

    parks: pd.DataFrame  # one row per park
    weather_forecasts: pd.DataFrame  # one row per (park, issued_at)
    generation: pd.DataFrame  # one row per (park, 15-min interval)


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


def erbs_split(ghi: FloatArray, zenith: FloatArray, day_of_year: NDArray[np.int64]) -> tuple[FloatArray, FloatArray]:
    """DNI and DHI [W m⁻²] from GHI [W m⁻²] with Erbs; both 0 when GHI is 0 (the sun is down)."""
    parts = pvlib.irradiance.erbs(ghi, zenith, day_of_year)
    dni = np.nan_to_num(np.asarray(parts["dni"], dtype=np.float64))
    dhi = np.nan_to_num(np.asarray(parts["dhi"], dtype=np.float64))
    return np.clip(dni, 0.0, None), np.clip(dhi, 0.0, ghi)


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
    noise = noise_at(grid, (seed, park_key(park.park_id), _ACTUAL), 1, SUBHOURLY_RHO)[0]
    kt = _subhourly_kt(_interpolate_hourly(grid, kt_hourly), noise)
    out = sun.assign(ghi_clearsky=cs, kt=kt, ghi=kt * cs)
    out["dni"], out["dhi"] = erbs_split(kt * cs, sun["zenith"].to_numpy(), day_of_year(grid))
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


# --- generation -----------------------------------------------------------------------------------------


def plane_of_array(park: DemoPark, weather: pd.DataFrame) -> FloatArray:
    """Global plane-of-array irradiance [W m⁻²] with the Perez sky model; 0 when GHI is 0."""
    poa = np.zeros(len(weather))
    up = weather["ghi"].to_numpy() > 0.0
    day = weather[up]
    total = pvlib.irradiance.get_total_irradiance(
        park.surface_tilt,
        park.surface_azimuth,
        day["apparent_zenith"].to_numpy(),
        day["azimuth"].to_numpy(),
        day["dni"].to_numpy(),
        day["ghi"].to_numpy(),
        day["dhi"].to_numpy(),
        dni_extra=day["dni_extra"].to_numpy(),
        airmass=day["airmass_relative"].to_numpy(),
        model="perez",
    )
    poa[up] = np.clip(np.nan_to_num(np.asarray(total["poa_global"], dtype=np.float64)), 0.0, None)
    return poa


def model_power_kw(park: DemoPark, weather: pd.DataFrame) -> FloatArray:
    """Noise-free AC power [kW]: Perez POA, SAPM cell temperature, PVWatts DC and inverter (clips at AC)."""
    poa = plane_of_array(park, weather)
    temp_cell = pvlib.temperature.sapm_cell(
        poa, weather["temp_air"].to_numpy(), weather["wind_speed"].to_numpy(), **SAPM_PARAMETERS
    )
    pdc = pvlib.pvsystem.pvwatts_dc(poa, temp_cell, park.capacity_dc_kwp, GAMMA_PDC) * (1.0 - DC_LOSSES)
    pac = pvlib.inverter.pvwatts(
        np.clip(pdc, 0.0, None), park.capacity_ac_kw / INVERTER_EFFICIENCY, eta_inv_nom=INVERTER_EFFICIENCY
    )
    return np.clip(np.nan_to_num(np.asarray(pac, dtype=np.float64)), 0.0, park.capacity_ac_kw)


def measured_power_kw(power_kw: FloatArray, noise: FloatArray, capacity_ac_kw: float) -> FloatArray:
    """Telemetry [kW]: model power with multiplicative and additive noise (two rows of ``noise``), exactly
    0 when the model gives 0 (night), clipped to [0, capacity_ac_kw]."""
    noisy = power_kw * (1.0 + NOISE_RELATIVE * noise[0]) + NOISE_ABSOLUTE_FRACTION * capacity_ac_kw * noise[1]
    return np.clip(np.where(power_kw > 0.0, noisy, 0.0), 0.0, capacity_ac_kw)


def epoch_seconds(times: pd.DatetimeIndex) -> NDArray[np.int64]:
    """Seconds since 1970-01-01 UTC [s]."""
    return np.asarray(times.as_unit("s").asi8, dtype=np.int64)


def generation_frame(park: DemoPark, weather: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Telemetry rows for every interval of ``weather`` except the seeded ~0.5 % gaps."""
    times = pd.DatetimeIndex(weather.index)
    noise = noise_at(times, (seed, park_key(park.park_id), _GENERATION), 3)
    power = measured_power_kw(model_power_kw(park, weather), noise, park.capacity_ac_kw)
    keep = noise[2] <= GAP_THRESHOLD
    return pd.DataFrame(
        {
            "park_id": park.park_id,
            "valid_time_epoch_s": epoch_seconds(times[keep]),
            "power_kw": power[keep].astype(np.float32),
            schema.EVENT_TIMESTAMP: (times[keep] + STEP).as_unit("us"),
        }
    ).reset_index(drop=True)


# --- forecasts ------------------------------------------------------------------------------------------


def run_times(start: pd.Timestamp, end: pd.Timestamp, every_hours: int) -> pd.DatetimeIndex:
    """Issue times in [start, end] on multiples of ``every_hours`` after 00 UTC (epoch-aligned)."""
    every = pd.Timedelta(hours=every_hours)
    return pd.date_range(start.ceil(every), end.floor(every), freq=every)


def lead_fraction(n_steps: int) -> FloatArray:
    """Lead time of each forecast step divided by the 48 h reference lead [-]."""
    hours = np.arange(n_steps, dtype=np.float64) * (schema.STEP_SECONDS / 3600.0)
    return np.asarray(hours / REFERENCE_LEAD_HOURS, dtype=np.float64)


def smoothed_at(values: FloatArray, index: NDArray[np.int64], half_width: NDArray[np.int64]) -> FloatArray:
    """Centred moving average of ``values`` over 2·half_width + 1 steps, at ``index`` (broadcast shapes)."""
    cumulative = np.concatenate([[0.0], np.cumsum(values)])
    return (cumulative[index + half_width + 1] - cumulative[index - half_width]) / (2 * half_width + 1)


def run_errors(entropy: tuple[int, ...], run_numbers: NDArray[np.int64], n_steps: int) -> FloatArray:
    """Unit-variance AR(1) errors of shape (runs, 4, steps): kt, temp_air, wind_speed, relative_humidity.

    Each run has its own random stream derived from ``entropy`` and its absolute run number.
    """
    draws = np.stack([np.random.default_rng([*entropy, int(r)]).standard_normal((4, n_steps)) for r in run_numbers])
    return ar1(draws, FORECAST_RHO)


def cloud_cover_from_kt(kt: FloatArray) -> FloatArray:
    """Total cloud cover [%] by inverting Kasten & Czeplak (1980): kt = 1 − 0.75 · (c / 100)^3.4."""
    fraction = ((1.0 - np.clip(kt, 0.0, 1.0)) / 0.75) ** (1.0 / 3.4)
    return 100.0 * np.clip(fraction, 0.0, 1.0)


def _growing(coefficients: tuple[float, float], lead: FloatArray) -> FloatArray:
    """a + b · lead (``lead`` as a fraction of 48 h)."""
    return coefficients[0] + coefficients[1] * lead


def forecast_kt(kt: FloatArray, index: NDArray[np.int64], error: FloatArray, lead: FloatArray) -> FloatArray:
    """Forecast clear-sky index [-]: actual kt blurred over a window growing with lead, plus an error whose
    std grows as sqrt(lead)."""
    half_width = np.rint(_growing(SMOOTHING_HOURS, lead) * STEPS_PER_HOUR / 2).astype(np.int64)
    sigma = KT_ERROR_STD[0] + KT_ERROR_STD[1] * np.sqrt(lead)
    return np.clip(smoothed_at(kt, index, half_width) + sigma * error, 0.0, KT_MAX)


def forecast_arrays(actual: pd.DataFrame, index: NDArray[np.int64], errors: FloatArray) -> dict[str, FloatArray]:
    """Forecast variables, each (runs, steps), at grid positions ``index`` of the ``actual`` weather."""
    lead = lead_fraction(index.shape[1])
    kt = forecast_kt(actual["kt"].to_numpy(), index, errors[:, 0], lead)
    ghi = kt * actual["ghi_clearsky"].to_numpy()[index]
    doy = day_of_year(pd.DatetimeIndex(actual.index))[index]
    dni, dhi = erbs_split(ghi.ravel(), actual["zenith"].to_numpy()[index].ravel(), doy.ravel())
    wind_sigma = _growing(WIND_LOG_STD, lead)
    wind_factor = np.exp(wind_sigma * errors[:, 2] - wind_sigma**2 / 2)
    rh = actual["relative_humidity"].to_numpy()[index] + _growing(RH_ERROR_STD, lead) * errors[:, 3]
    return {
        "ghi": ghi,
        "dni": dni.reshape(ghi.shape),
        "dhi": dhi.reshape(ghi.shape),
        "temp_air": actual["temp_air"].to_numpy()[index] + _growing(TEMP_ERROR_STD, lead) * errors[:, 1],
        "wind_speed": np.clip(actual["wind_speed"].to_numpy()[index] * wind_factor, 0.0, None),
        "cloud_cover": cloud_cover_from_kt(kt),
        "relative_humidity": np.clip(rh, 0.0, 100.0),
    }


def forecast_frame(
    park: DemoPark, actual: pd.DataFrame, issued: pd.DatetimeIndex, n_steps: int, seed: int, every_hours: int
) -> pd.DataFrame:
    """One row per run issued at ``issued``, each variable a float32 array of ``n_steps`` 15-min values."""
    grid = pd.DatetimeIndex(actual.index)
    index = ((issued - grid[0]) // STEP).to_numpy(dtype=np.int64)[:, None] + np.arange(n_steps)
    run_numbers = epoch_seconds(issued) // (every_hours * 3600)
    errors = run_errors((seed, park_key(park.park_id), _FORECAST), run_numbers, n_steps)
    arrays = forecast_arrays(actual, index, errors)
    frame = pd.DataFrame(
        {
            schema.ENTITY_KEY: park.park_id,
            schema.ISSUED_AT: issued.as_unit("us"),
            "valid_from_epoch_s": epoch_seconds(issued),
            "step_seconds": np.full(len(issued), schema.STEP_SECONDS, dtype=np.int64),
        }
    )
    for name in schema.WEATHER_VARIABLES:
        frame[name] = list(np.ascontiguousarray(arrays[name], dtype=np.float32))
    return frame


# --- the data set ---------------------------------------------------------------------------------------


def demo_end(end: pd.Timestamp) -> pd.Timestamp:
    """``end`` in UTC floored to 15 min; naive timestamps are rejected."""
    end = pd.Timestamp(end)
    if end.tzinfo is None:
        raise ValueError(f"end={end} is naive: pass a timezone-aware timestamp, e.g. pd.Timestamp('{end}', tz='UTC')")
    return end.tz_convert("UTC").floor(STEP)


def parks_frame(parks: tuple[DemoPark, ...], start: pd.Timestamp) -> pd.DataFrame:
    """Park metadata, valid from ``start``."""
    rows = [{"park_id": p.park_id, **{f: float(getattr(p, f)) for f in PARK_FEATURES}} for p in parks]
    frame = pd.DataFrame(rows)
    frame.insert(1, schema.EVENT_TIMESTAMP, pd.DatetimeIndex([start] * len(rows)).as_unit("us"))
    return frame


def _build_park(
    park: DemoPark, start: pd.Timestamp, end: pd.Timestamp, seed: int, forecast_hours: int, every_hours: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Generation and forecast rows of one park."""
    margin = pd.Timedelta(days=1)
    grid = pd.date_range(start - margin, end + pd.Timedelta(hours=forecast_hours) + margin, freq=STEP)
    actual = actual_weather(park, grid, seed)
    generation = generation_frame(park, actual.loc[start : end - STEP], seed)
    issued = run_times(start, end, every_hours)
    forecasts = forecast_frame(park, actual, issued, forecast_hours * STEPS_PER_HOUR, seed, every_hours)
    return generation, forecasts


def build_demo_dataset(
    end: pd.Timestamp, days: int = 365, seed: int = 7, forecast_hours: int = 48, run_every_hours: int = 6
) -> DemoDataset:
    """Build the SYNTHETIC demo data set for [end − days, end) (``end`` tz-aware, floored to 15 min).

    Generation has one row per park and 15-min interval except ~0.5 % seeded telemetry gaps (rows absent);
    forecasts have one row per park and run, runs issued every ``run_every_hours`` in [end − days, end].
    """
    if days < 1 or forecast_hours < 1 or run_every_hours < 1:
        raise ValueError("days, forecast_hours and run_every_hours must be positive")
    end = demo_end(end)
    start = end - pd.Timedelta(days=days)
    generation, forecasts = [], []
    for park in DEMO_PARKS:
        tic = time.perf_counter()
        gen, fc = _build_park(park, start, end, seed, forecast_hours, run_every_hours)
        generation.append(gen)
        forecasts.append(fc)
        logger.info(
            "demo %s: %d generation rows, %d runs in %.1f s",
            park.park_id,
            len(gen),
            len(fc),
            time.perf_counter() - tic,
        )
    return DemoDataset(
        parks=parks_frame(DEMO_PARKS, start),
        weather_forecasts=pd.concat(forecasts, ignore_index=True),
        generation=pd.concat(generation, ignore_index=True),
    )
