"""The one place that turns feature-store rows into the model's input tensor.

Training (Feast historical retrieval) and serving (Feast online read) both call :func:`build_inputs` with the
raw values of feature service ``pv_forecast_v1`` — a mapping from feature name to one value per row — and the
issue time of each row. Everything derived (solar position, clear-sky irradiance, plane-of-array irradiance,
the physics power estimate, time encodings, the clear-sky index of the latest measurement) is computed here
through :mod:`pvcast.pv.physics`, so the two paths cannot drift apart.

The forecast of a row starts at the first step boundary at or after ``issued_at`` and covers
``horizon_steps`` intervals labelled by their beginning; physics is evaluated at interval midpoints.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from pvcast.contract import FeatureSpec
from pvcast.pv import physics
from pvcast.pv.plant import PARK_FEATURES
from pvcast.schema import WEATHER_VARIABLES
from pvcast.timeutils import ceil_epoch

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
FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class ModelInputs:
    """What the ONNX graph eats plus what the caller needs to label and judge the output."""

    features: NDArray[np.float32]  # (n, steps, len(FEATURE_NAMES))
    capacity_ac_kw: NDArray[np.float32]  # (n, 1)
    valid_time: NDArray[np.int64]  # (n, steps) interval beginnings [s since epoch, UTC]
    park_known: NDArray[np.bool_]  # metadata found
    weather_ok: NDArray[np.bool_]  # a forecast covering every step was found
    measured_ok: NDArray[np.bool_]  # recent daytime telemetry informs the forecast


ParkConstants = dict[str, FloatArray]
"""Park metadata as ``(n, 1)`` arrays keyed by :data:`PARK_FEATURES` (the plant model's fields)."""
CLEAR_CHANNEL: Final = FEATURE_NAMES.index("physics_power_clearsky")
CSI_CHANNEL: Final = FEATURE_NAMES.index("measured_csi")
HAS_CSI_CHANNEL: Final = FEATURE_NAMES.index("measured_available")


def sun_up(features: NDArray[np.floating]) -> NDArray[np.bool_]:
    """Cells of a tensor (..., channels) where the sun is above the horizon."""
    return features[..., ELEVATION_CHANNEL] > 0


def build_inputs(rows: Mapping[str, Sequence[Any]], issued_at: NDArray[np.int64], spec: FeatureSpec) -> ModelInputs:
    """Model inputs for each row of feature-service values, issued at ``issued_at`` [s since epoch, UTC]."""
    park, known = _park_constants(rows)
    t0 = ceil_epoch(issued_at, spec.step_seconds)
    valid = t0[:, None] + spec.step_seconds * np.arange(spec.horizon_steps, dtype=np.int64)[None, :]
    weather, weather_ok, lead = _weather_slices(rows, t0, spec)
    mid = (valid + spec.step_seconds // 2).astype(np.float64)
    sky = _sky(mid, park, weather)
    measured = _measured(rows, issued_at, park, spec) if spec.use_telemetry else _no_telemetry(len(issued_at))
    channels = {k: weather[k] / SCALE[k] for k in WEATHER_VARIABLES}
    channels |= {k: v / SCALE.get(k, 1.0) for k, v in sky.items()}
    channels |= physics.time_encodings(mid, park["longitude"])
    channels["weather_lead"] = lead / SCALE["weather_lead"]
    channels["horizon"] = np.broadcast_to(np.arange(spec.horizon_steps) / spec.horizon_steps, valid.shape)
    channels |= {k: np.broadcast_to(v[:, None], valid.shape) for k, v in measured.items()}
    channels["dc_ac_ratio"] = np.broadcast_to(
        park["capacity_dc_kwp"] / park["capacity_ac_kw"] / SCALE["dc_ac_ratio"], valid.shape
    )
    features = np.stack([np.asarray(channels[n], dtype=np.float32) for n in FEATURE_NAMES], axis=-1)
    return ModelInputs(
        features=features,
        capacity_ac_kw=park["capacity_ac_kw"].astype(np.float32),
        valid_time=valid,
        park_known=known,
        weather_ok=weather_ok,
        measured_ok=measured["measured_available"] > 0,
    )


def _column(rows: Mapping[str, Sequence[Any]], name: str, fill: float) -> FloatArray:
    values = np.array([fill if v is None else v for v in rows[name]], dtype=np.float64)
    return np.where(np.isfinite(values), values, fill)


def _park_constants(rows: Mapping[str, Sequence[Any]]) -> tuple[ParkConstants, NDArray[np.bool_]]:
    """Park metadata as (n, 1) arrays; unknown parks get harmless placeholders and ``known = False``."""
    raw = {k: np.array([np.nan if v is None else v for v in rows[k]], dtype=np.float64) for k in PARK_FEATURES}
    known = np.all([np.isfinite(v) for v in raw.values()], axis=0) & (raw["capacity_ac_kw"] > 0)
    placeholder = {"capacity_dc_kwp": 1.0, "capacity_ac_kw": 1.0}
    return {k: np.where(known, v, placeholder.get(k, 0.0))[:, None] for k, v in raw.items()}, known


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


def _plant(park: ParkConstants) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """The plant-side arguments of :func:`physics.plant_power`, in its order."""
    return park["surface_tilt"], park["surface_azimuth"], park["capacity_dc_kwp"], park["capacity_ac_kw"]


def _sky(mid: FloatArray, park: ParkConstants, weather: Mapping[str, FloatArray]) -> dict[str, FloatArray]:
    """Sun, clear-sky and forecast-driven physics channels at interval midpoints (the sun once for all)."""
    sky = physics.sky_at(mid, park["latitude"], park["longitude"], park["altitude"])
    forecast = physics.Irradiance(weather["ghi"], weather["dni"], weather["dhi"])
    temp_air, wind_speed = weather["temp_air"], weather["wind_speed"]
    power = physics.plant_power(sky, forecast, *_plant(park), temp_air, wind_speed)
    power_clear = physics.plant_power(sky, sky.clear, *_plant(park), temp_air, wind_speed)
    capacity = park["capacity_ac_kw"]
    return {
        "cos_zenith": np.cos(np.radians(sky.position.apparent_zenith)),
        "solar_elevation": sky.position.apparent_elevation,
        "ghi_clearsky": sky.clear.ghi,
        "clearsky_index": np.where(
            sky.sun_up & (sky.clear.ghi > 10), np.clip(forecast.ghi / np.maximum(sky.clear.ghi, 1e-9), 0, CSI_MAX), 0.0
        ),
        "poa_global": power.poa_global,
        "poa_clearsky": power_clear.poa_global,
        "physics_power": power.ac_power_kw / capacity,
        "physics_power_clearsky": power_clear.ac_power_kw / capacity,
    }


def _measured(
    rows: Mapping[str, Sequence[Any]], issued_at: NDArray[np.int64], park: ParkConstants, spec: FeatureSpec
) -> dict[str, FloatArray]:
    """Clear-sky index of the latest measurement known at issue time, its availability and its age."""
    power = _column(rows, "power_kw", np.nan)
    start = _column(rows, "valid_time_epoch_s", np.nan)
    has = np.isfinite(power) & np.isfinite(start)
    start = np.where(has, start, issued_at - spec.step_seconds)
    mid = (start + spec.step_seconds / 2)[:, None]
    site = (park["latitude"], park["longitude"], park["altitude"])
    clear_kw = physics.clearsky_ac_power_kw(mid, *site, *_plant(park))[:, 0]
    usable = has & (clear_kw > 0.02 * park["capacity_ac_kw"][:, 0])
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


def without_weather(
    rows: Mapping[str, Sequence[Any]], index: NDArray[np.int64], issued: NDArray[np.int64], spec: FeatureSpec
) -> dict[str, list[Any]]:
    """The rows ``index`` with their weather replaced by a run of no irradiance at nominal temperature and wind
    starting at the forecast's first step, so the clear-sky channels of a forecast that has no weather (the
    degraded mode) are computed exactly as for any forecast."""
    subset = {k: [v[i] for i in index] for k, v in rows.items()}
    t0 = ceil_epoch(issued[index], spec.step_seconds)
    constant = {"temp_air": physics.NOMINAL_TEMP_AIR, "wind_speed": physics.NOMINAL_WIND_SPEED}
    for name in WEATHER_VARIABLES:
        subset[name] = [np.full(spec.horizon_steps, constant.get(name, 0.0), dtype=np.float32) for _ in index]
    subset["valid_from_epoch_s"] = [int(t) for t in t0]
    subset["step_seconds"] = [spec.step_seconds] * len(index)
    return subset
