"""The one place that turns feature-store rows into the model's input tensor.

Training (Feast historical retrieval) and serving (Feast online read) both call :func:`build_inputs` with the
raw values of feature service ``pv_forecast_v1`` — a mapping from feature name to one value per row — and the
issue time of each row. Everything derived (solar position, clear-sky irradiance, plane-of-array irradiance,
the physics power estimate, time encodings, the clear-sky index of the latest measurement) is computed here
through :mod:`feature_repo.physics`, so the two paths cannot drift apart.

The forecast of a row starts at the first step boundary at or after ``issued_at`` and covers
``horizon_steps`` intervals labelled by their beginning; physics is evaluated at interval midpoints.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from pvlib.clearsky import lookup_linke_turbidity

from feature_repo import physics
from feature_repo.schema import STEP_SECONDS, WEATHER_VARIABLES
from feature_repo.timeutils import ceil_epoch

FEATURE_NAMES: Final = (
    "ghi", "dni", "dhi", "temp_air", "wind_speed", "cloud_cover", "relative_humidity",
    "cos_zenith", "solar_elevation", "ghi_clearsky", "clearsky_index",
    "poa_global", "poa_clearsky", "physics_power", "physics_power_clearsky",
    "hour_sin", "hour_cos", "doy_sin", "doy_cos", "weather_lead", "horizon",
    "measured_csi", "measured_available", "measured_age", "dc_ac_ratio",
)  # fmt: skip
"""Channels of the input tensor, in order. Travels with the model and is checked at service start-up."""

SCALE: Final = {
    "ghi": 1000.0, "dni": 1000.0, "dhi": 1000.0, "temp_air": 50.0, "wind_speed": 20.0,
    "cloud_cover": 100.0, "relative_humidity": 100.0, "solar_elevation": 90.0, "ghi_clearsky": 1000.0,
    "poa_global": 1000.0, "poa_clearsky": 1000.0, "weather_lead": 48 * 3600.0, "measured_age": 6 * 3600.0,
    "dc_ac_ratio": 2.0,
}  # fmt: skip
"""Fixed divisors bringing each channel to order one (no fitted normaliser to ship or drift)."""

ELEVATION_CHANNEL: Final = FEATURE_NAMES.index("solar_elevation")
PHYSICS_CHANNEL: Final = FEATURE_NAMES.index("physics_power")
CSI_MAX: Final = 1.5
NOMINAL_TEMP_AIR: Final = 20.0  # [°C] for the clear-sky power of a past measurement
NOMINAL_WIND_SPEED: Final = 1.0  # [m s⁻¹]

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class FeatureSpec:
    """Shape of a forecast: step length [s] and number of steps; whether live telemetry informs it.

    ``use_telemetry=False`` blanks the ``measured_*`` channels (as if no measurement were known) for models
    whose forecasts are issued without telemetry (e.g. day-ahead benchmarks where power is only known up to
    the start of the forecast month), so training sees what serving will see.
    """

    step_seconds: int = STEP_SECONDS
    horizon_steps: int = 96
    use_telemetry: bool = True

    @property
    def horizon_hours(self) -> float:
        return self.horizon_steps * self.step_seconds / 3600.0


@dataclass(frozen=True)
class ModelInputs:
    """What the ONNX graph eats plus what the caller needs to label and judge the output."""

    features: NDArray[np.float32]  # (n, steps, len(FEATURE_NAMES))
    capacity_ac_kw: NDArray[np.float32]  # (n, 1)
    valid_time: NDArray[np.int64]  # (n, steps) interval beginnings [s since epoch, UTC]
    park_known: NDArray[np.bool_]  # metadata found
    weather_ok: NDArray[np.bool_]  # a forecast covering every step was found
    measured_ok: NDArray[np.bool_]  # recent daytime telemetry informs the forecast


@dataclass(frozen=True)
class _Park:
    latitude: FloatArray
    longitude: FloatArray
    altitude: FloatArray
    capacity_dc_kwp: FloatArray
    capacity_ac_kw: FloatArray
    surface_tilt: FloatArray
    surface_azimuth: FloatArray
    known: NDArray[np.bool_]


def build_inputs(rows: Mapping[str, Sequence[Any]], issued_at: NDArray[np.int64], spec: FeatureSpec) -> ModelInputs:
    """Model inputs for each row of feature-service values, issued at ``issued_at`` [s since epoch, UTC]."""
    park = _park_constants(rows)
    t0 = ceil_epoch(issued_at, spec.step_seconds)
    valid = t0[:, None] + spec.step_seconds * np.arange(spec.horizon_steps, dtype=np.int64)[None, :]
    weather, weather_ok, lead = _weather_slices(rows, t0, spec)
    mid = (valid + spec.step_seconds // 2).astype(np.float64)
    sky = _sky(mid, park, weather)
    measured = _measured(rows, issued_at, park, spec) if spec.use_telemetry else _no_telemetry(len(issued_at))
    channels = {k: weather[k] / SCALE[k] for k in WEATHER_VARIABLES}
    channels |= {k: v / SCALE.get(k, 1.0) for k, v in sky.items()}
    channels |= physics.time_encodings(mid, park.longitude)
    channels["weather_lead"] = lead / SCALE["weather_lead"]
    channels["horizon"] = np.broadcast_to(np.arange(spec.horizon_steps) / spec.horizon_steps, valid.shape)
    channels |= {k: np.broadcast_to(v[:, None], valid.shape) for k, v in measured.items()}
    channels["dc_ac_ratio"] = np.broadcast_to(
        park.capacity_dc_kwp / park.capacity_ac_kw / SCALE["dc_ac_ratio"], valid.shape
    )
    features = np.stack([np.asarray(channels[n], dtype=np.float32) for n in FEATURE_NAMES], axis=-1)
    return ModelInputs(
        features=features,
        capacity_ac_kw=park.capacity_ac_kw.astype(np.float32),
        valid_time=valid,
        park_known=park.known,
        weather_ok=weather_ok,
        measured_ok=measured["measured_available"] > 0,
    )


def _column(rows: Mapping[str, Sequence[Any]], name: str, fill: float) -> FloatArray:
    values = np.array([fill if v is None else v for v in rows[name]], dtype=np.float64)
    return np.where(np.isfinite(values), values, fill)


def _park_constants(rows: Mapping[str, Sequence[Any]]) -> _Park:
    """Park metadata as (n, 1) arrays; unknown parks get harmless placeholders and ``known = False``."""
    raw = {
        k: np.array([np.nan if v is None else v for v in rows[k]], dtype=np.float64)
        for k in _Park.__annotations__
        if k != "known"
    }
    known = np.all([np.isfinite(v) for v in raw.values()], axis=0) & (raw["capacity_ac_kw"] > 0)
    placeholder = {"capacity_dc_kwp": 1.0, "capacity_ac_kw": 1.0}
    filled = {k: np.where(known, v, placeholder.get(k, 0.0))[:, None] for k, v in raw.items()}
    return _Park(**filled, known=known)


def _weather_slices(
    rows: Mapping[str, Sequence[Any]], t0: NDArray[np.int64], spec: FeatureSpec
) -> tuple[dict[str, FloatArray], NDArray[np.bool_], FloatArray]:
    """Each weather array cut to the forecast's valid times; rows without full coverage are zero-filled."""
    valid_from = _column(rows, "valid_from_epoch_s", 0).astype(np.int64)
    step = _column(rows, "step_seconds", 0).astype(np.int64)
    length = np.array([0 if a is None else len(a) for a in rows["ghi"]], dtype=np.int64)
    offset = np.where(step == spec.step_seconds, (t0 - valid_from) // spec.step_seconds, -1)
    aligned = (t0 - valid_from) % spec.step_seconds == 0
    ok = aligned & (offset >= 0) & (offset + spec.horizon_steps <= length) & (step == spec.step_seconds)
    index = np.where(ok, offset, 0)[:, None] + np.arange(spec.horizon_steps)[None, :]
    weather = {k: _gather(rows[k], index, ok, length) for k in WEATHER_VARIABLES}
    lead = np.where(ok[:, None], index * spec.step_seconds, 0).astype(np.float64)
    return weather, ok, lead


def _gather(
    arrays: Sequence[Any], index: NDArray[np.int64], ok: NDArray[np.bool_], length: NDArray[np.int64]
) -> FloatArray:
    width = max(int(length.max(initial=0)), int(index.max(initial=0)) + 1)
    matrix = np.zeros((len(arrays), width), dtype=np.float32)
    for i, a in enumerate(arrays):
        if ok[i]:
            matrix[i, : len(a)] = np.asarray(a, dtype=np.float32)
    picked = np.take_along_axis(matrix, index, axis=1).astype(np.float64)
    return np.nan_to_num(np.where(ok[:, None], picked, 0.0))


def _sky(mid: FloatArray, park: _Park, weather: Mapping[str, FloatArray]) -> dict[str, FloatArray]:
    """Sun, clear-sky and forecast-driven physics channels at interval midpoints."""
    position, dni_extra = _sun(mid, park)
    clear = _clearsky(mid, park, position, dni_extra)
    sky = physics.Irradiance(weather["ghi"], weather["dni"], weather["dhi"])
    poa = physics.plane_of_array(park.surface_tilt, park.surface_azimuth, position, sky, dni_extra)
    poa_clear = physics.plane_of_array(park.surface_tilt, park.surface_azimuth, position, clear, dni_extra)
    power = _power_fraction(poa, weather["temp_air"], weather["wind_speed"], park)
    power_clear = _power_fraction(poa_clear, weather["temp_air"], weather["wind_speed"], park)
    sun_up = position.apparent_elevation > 0
    return {
        "cos_zenith": np.cos(np.radians(position.apparent_zenith)),
        "solar_elevation": position.apparent_elevation,
        "ghi_clearsky": clear.ghi,
        "clearsky_index": np.where(
            sun_up & (clear.ghi > 10), np.clip(sky.ghi / np.maximum(clear.ghi, 1e-9), 0, CSI_MAX), 0.0
        ),
        "poa_global": poa,
        "poa_clearsky": poa_clear,
        "physics_power": np.where(sun_up, power, 0.0),
        "physics_power_clearsky": np.where(sun_up, power_clear, 0.0),
    }


def _power_fraction(poa: FloatArray, temp_air: FloatArray, wind_speed: FloatArray, park: _Park) -> FloatArray:
    """Physics AC power as a fraction of the inverter limit."""
    temp_cell = physics.cell_temperature(poa, temp_air, wind_speed)
    return physics.ac_power_kw(poa, temp_cell, park.capacity_dc_kwp, park.capacity_ac_kw) / park.capacity_ac_kw


def _sun(mid: FloatArray, park: _Park) -> tuple[physics.SolarPosition, FloatArray]:
    eph = _ephemeris(mid)
    position = physics.solar_position(eph, park.latitude, park.longitude, park.altitude)
    return position, physics.extraterrestrial_irradiance(eph.earth_sun_distance)


def _clearsky(
    mid: FloatArray, park: _Park, position: physics.SolarPosition, dni_extra: FloatArray
) -> physics.Irradiance:
    airmass = physics.absolute_airmass(position.apparent_zenith, park.altitude)
    turbidity = _linke_turbidity(mid, park)
    return physics.clearsky_irradiance(position.apparent_zenith, airmass, turbidity, park.altitude, dni_extra)


def _ephemeris(times: FloatArray) -> physics.SunEphemeris:
    """Time-only solar terms, computed once per distinct time and shared by every park (cached)."""
    unique, inverse = np.unique(times, return_inverse=True)
    eph = _ephemeris_cached(tuple(unique.tolist())) if unique.size <= 4096 else physics.sun_ephemeris(unique)
    inv = inverse.reshape(times.shape)
    return physics.SunEphemeris(*(np.asarray(getattr(eph, f))[inv] for f in physics.SunEphemeris.__dataclass_fields__))


@lru_cache(maxsize=256)
def _ephemeris_cached(unique_times: tuple[float, ...]) -> physics.SunEphemeris:
    return physics.sun_ephemeris(np.array(unique_times))


def _linke_turbidity(mid: FloatArray, park: _Park) -> FloatArray:
    """Climatological Linke turbidity [-] of each park for the month of each valid time."""
    months = month_index(mid)
    tables = np.stack(
        [
            monthly_linke_turbidity(float(la), float(lo))
            for la, lo in zip(park.latitude[:, 0], park.longitude[:, 0], strict=True)
        ]
    )
    return np.take_along_axis(tables, months, axis=1)


def month_index(unixtime: FloatArray) -> NDArray[np.int64]:
    """Calendar month (0 = January, UTC) of each time [s since epoch], in numpy: the same as pandas'
    ``to_datetime(..., unit="s").month - 1`` at a tenth of the cost (it runs on every request)."""
    seconds = np.floor(np.asarray(unixtime, dtype=np.float64)).astype("datetime64[s]")
    return seconds.astype("datetime64[M]").astype(np.int64) % 12


@lru_cache(maxsize=100_000)
def monthly_linke_turbidity(latitude: float, longitude: float) -> FloatArray:
    """Twelve monthly Linke turbidity values from pvlib's climatology (Remund et al. 2003), read once per site."""
    mid_months = pd.date_range("2021-01-15", periods=12, freq="MS", tz="UTC") + pd.Timedelta(days=14)
    series = lookup_linke_turbidity(mid_months, latitude, longitude, interp_turbidity=False)
    table = np.asarray(series, dtype=np.float64)
    table.setflags(write=False)
    return table


def _measured(
    rows: Mapping[str, Sequence[Any]], issued_at: NDArray[np.int64], park: _Park, spec: FeatureSpec
) -> dict[str, FloatArray]:
    """Clear-sky index of the latest measurement known at issue time, its availability and its age."""
    power = _column(rows, "power_kw", np.nan)
    start = _column(rows, "valid_time_epoch_s", np.nan)
    has = np.isfinite(power) & np.isfinite(start)
    start = np.where(has, start, issued_at - spec.step_seconds)
    clear_kw = _clearsky_power_kw((start + spec.step_seconds / 2)[:, None], park)[:, 0]
    usable = has & (clear_kw > 0.02 * park.capacity_ac_kw[:, 0])
    csi = np.where(usable, np.clip(power / np.maximum(clear_kw, 1e-9), 0, CSI_MAX), 0.0)
    age = np.where(
        usable,
        np.clip(issued_at - (start + spec.step_seconds), 0, SCALE["measured_age"]),
        SCALE["measured_age"],
    )
    return {
        "measured_csi": csi,
        "measured_available": usable.astype(np.float64),
        "measured_age": age / SCALE["measured_age"],
    }


def _no_telemetry(n: int) -> dict[str, FloatArray]:
    """The ``measured_*`` channels of a forecast that no measurement informs."""
    return {
        "measured_csi": np.zeros(n),
        "measured_available": np.zeros(n),
        "measured_age": np.ones(n),
    }


def _clearsky_power_kw(mid: FloatArray, park: _Park) -> FloatArray:
    """Physics AC power [kW] under clear sky at nominal temperature and wind."""
    position, dni_extra = _sun(mid, park)
    clear = _clearsky(mid, park, position, dni_extra)
    poa = physics.plane_of_array(park.surface_tilt, park.surface_azimuth, position, clear, dni_extra)
    temp_cell = physics.cell_temperature(poa, NOMINAL_TEMP_AIR, NOMINAL_WIND_SPEED)
    power = physics.ac_power_kw(poa, temp_cell, park.capacity_dc_kwp, park.capacity_ac_kw)
    return np.where(position.apparent_elevation > 0, power, 0.0)
