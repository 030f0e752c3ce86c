"""The embedded demo data set: three parks, a year of telemetry and of weather forecasts, all SYNTHETIC.

Nothing here is measured or downloaded; the module needs no network. It is built in three steps:

1. **Replayed typical-year weather ("actual")**: ``training/sources/demo_weather.py``.
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

import logging
import time
from dataclasses import dataclass
from statistics import NormalDist
from typing import Final

import numpy as np
import pandas as pd
import pvlib
from numpy.typing import NDArray

from pvcast import schema
from pvcast.pv import physics
from pvcast.pv.plant import parks_frame
from training.sources.demo_weather import (
    DEMO_PARKS,
    KT_MAX,
    STEP,
    STEPS_PER_HOUR,
    DemoPark,
    actual_weather,
    ar1,
    day_of_year,
    noise_at,
    park_key,
)

logger = logging.getLogger(__name__)

FloatArray = NDArray[np.float64]

DC_LOSSES: Final = 0.10
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

_GENERATION, _FORECAST = 2, 3
"""Tags that give telemetry and forecasts their own random streams (the actual weather's is 1)."""


@dataclass(frozen=True)
class DemoDataset:
    """The demo tables, in the column layout of ``pvcast.schema``."""

    parks: pd.DataFrame  # one row per park
    weather_forecasts: pd.DataFrame  # one row per (park, issued_at)
    generation: pd.DataFrame  # one row per (park, 15-min interval)


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
    """Noise-free AC power [kW]: Perez POA, SAPM cell temperature, then the PVWatts DC and inverter model of
    ``pvcast.pv.physics`` (with the demo's own DC losses), clipped at the AC capacity."""
    poa = plane_of_array(park, weather)
    temp_cell = pvlib.temperature.sapm_cell(
        poa, weather["temp_air"].to_numpy(), weather["wind_speed"].to_numpy(), **SAPM_PARAMETERS
    )
    pac = physics.ac_power_kw(poa, temp_cell, park.capacity_dc_kwp, park.capacity_ac_kw, dc_losses=DC_LOSSES)
    return np.minimum(pac, park.capacity_ac_kw)


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
    dni, dhi = physics.decompose(ghi.ravel(), actual["zenith"].to_numpy()[index].ravel(), doy.ravel())
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
