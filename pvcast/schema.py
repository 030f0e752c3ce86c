"""Names, units and time conventions shared by every source, feature view, job and the service.

This module holds constants only; the park metadata fields are the plant model's (``pvcast.pv.plant``). Every
table that enters the feature store follows these column names (pvlib nomenclature for weather and
irradiance, unit suffixes on power and capacity) and these time rules:

* all timestamps are timezone-aware UTC, stored as ``timestamp[us, tz=UTC]`` in parquet;
* a value stamped ``t`` is the mean over ``[t, t + step)`` (interval beginning);
* ``issued_at`` is the latest information a weather forecast may use; ``event_timestamp`` is the moment a
  row becomes known (for telemetry: the END of its interval, so nothing measured after ``issued_at`` can
  leak into a forecast).
"""

from __future__ import annotations

from typing import Final

FEATURE_SERVICE_NAME: Final = "pv_forecast_v1"
"""The train/serve contract: training sets and online reads both go through this feature service."""

PROJECT: Final = "pvcast"
ENTITY_NAME: Final = "park"
ENTITY_KEY: Final = "park_id"

STEP_SECONDS: Final = 900
"""Default step of weather arrays, telemetry and forecasts [s] (PT15M)."""

# --- park metadata (feature view ``park``) -------------------------------------------------------------
# The park's fields are declared once, by the plant model: ``pvcast.pv.plant.PARK_FEATURES``.

# --- weather forecasts (feature view ``weather_forecast``) ---------------------------------------------
# One row per (park, issued_at): each variable is an array over valid times
# valid_from_epoch_s + k * step_seconds, k = 0..n-1.
WEATHER_VARIABLES: Final = (
    "ghi",  # global horizontal irradiance [W m⁻²]
    "dni",  # direct normal irradiance [W m⁻²]
    "dhi",  # diffuse horizontal irradiance [W m⁻²]
    "temp_air",  # air temperature at 2 m [°C]
    "wind_speed",  # wind speed at 10 m [m s⁻¹]
    "cloud_cover",  # total cloud cover [%]
    "relative_humidity",  # [%]
)
WEATHER_META: Final = (
    "valid_from_epoch_s",  # first valid time of the arrays [s since 1970-01-01 UTC]
    "step_seconds",  # spacing of the arrays [s]
)
ISSUED_AT: Final = "issued_at"

# --- measured generation (feature view ``generation``) -------------------------------------------------
# One row per (park, 15-minute interval). event_timestamp = valid_time + step (the moment it is known).
GENERATION_FEATURES: Final = (
    "power_kw",  # mean AC power over the interval [kW]
    "valid_time_epoch_s",  # interval beginning [s since 1970-01-01 UTC]
)
EVENT_TIMESTAMP: Final = "event_timestamp"
VALID_TIME: Final = "valid_time"

# --- feature view and source names ---------------------------------------------------------------------
PARK_VIEW: Final = "park"
WEATHER_VIEW: Final = "weather_forecast"
GENERATION_VIEW: Final = "generation"
GENERATION_PUSH_SOURCE: Final = "generation_push"
WEATHER_PUSH_SOURCE: Final = "weather_forecast_push"
PARK_PUSH_SOURCE: Final = "park_push"
