"""Open-Meteo weather forecasts through the official client (``openmeteo-requests``), cached and retried.

Open-Meteo's 15-minutely variables are renamed ONCE here to pvlib names (``VARIABLE_MAP``) and converted to
pvcast's time convention (a value stamped t is the mean over [t, t + 15 min)):

* radiation (``shortwave_radiation``, ``direct_normal_irradiance``, ``diffuse_radiation``) is documented as the
  mean of the PRECEDING 15 minutes, so the value stamped t + 15 min describes the interval starting at t;
* the other variables are instantaneous, so the interval [t, t + 15 min) gets the mean of the values at t and
  t + 15 min.

A response of n time stamps thus gives n − 1 intervals. Verbs follow STYLE.md: ``get_*`` talks to the network,
``parse_*`` turns bytes or decoded messages into a DataFrame (tested on generated responses in Open-Meteo's
documented flatbuffers schema, ``tests/fixtures/openmeteo``).

Two endpoints: the forecast API for the live run (``get_forecasts``, one row per park stamped with the time the
forecast was fetched, ``issued_at``) and the historical-forecast API for ``--backfill`` (``get_historical``),
which Open-Meteo builds by stitching the first hours of successive model runs: backfilled "runs" are therefore
more accurate at long lead times than a real run was (see docs/operations.md).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import openmeteo_requests
import pandas as pd
import requests
import requests_cache
from openmeteo_requests.Client import OpenMeteoRequestsError
from openmeteo_sdk.Unit import Unit
from openmeteo_sdk.Variable import Variable
from openmeteo_sdk.WeatherApiResponse import WeatherApiResponse
from retry_requests import retry

from pvcast.errors import OpenMeteoError
from pvcast.pv.plant import Park
from pvcast.schema import ENTITY_KEY, ISSUED_AT, STEP_SECONDS, WEATHER_VARIABLES
from pvcast.timeutils import require_utc

logger = logging.getLogger(__name__)

FORECAST_URL: Final = "https://api.open-meteo.com/v1/forecast"
HISTORICAL_FORECAST_URL: Final = "https://historical-forecast-api.open-meteo.com/v1/forecast"

VARIABLE_MAP: Final = {
    "shortwave_radiation": "ghi",
    "direct_normal_irradiance": "dni",
    "diffuse_radiation": "dhi",
    "temperature_2m": "temp_air",
    "wind_speed_10m": "wind_speed",
    "cloud_cover": "cloud_cover",
    "relative_humidity_2m": "relative_humidity",
}
"""Open-Meteo 15-minutely variable → pvlib name. Every other module sees only the pvlib names."""

PRECEDING_MEAN: Final = frozenset({"shortwave_radiation", "direct_normal_irradiance", "diffuse_radiation"})
"""Variables documented as the mean over the preceding 15 minutes; the others are instantaneous."""

SDK_KEYS: Final = {
    "shortwave_radiation": (Variable.shortwave_radiation, 0),
    "direct_normal_irradiance": (Variable.direct_normal_irradiance, 0),
    "diffuse_radiation": (Variable.diffuse_radiation, 0),
    "temperature_2m": (Variable.temperature, 2),
    "wind_speed_10m": (Variable.wind_speed, 10),
    "cloud_cover": (Variable.cloud_cover, 0),
    "relative_humidity_2m": (Variable.relative_humidity, 2),
}
"""How the flatbuffers format names each variable: (Variable enum, altitude [m])."""

UNITS: Final = {
    "shortwave_radiation": Unit.watt_per_square_metre,
    "direct_normal_irradiance": Unit.watt_per_square_metre,
    "diffuse_radiation": Unit.watt_per_square_metre,
    "temperature_2m": Unit.celsius,
    "wind_speed_10m": Unit.metre_per_second,
    "cloud_cover": Unit.percentage,
    "relative_humidity_2m": Unit.percentage,
}
"""The units pvcast requests (``wind_speed_unit=ms``); a response in any other unit is refused."""


@dataclass(frozen=True)
class OpenMeteoConfig:
    """Where and how to call Open-Meteo. Built by the CLI from options and the environment."""

    forecast_url: str = FORECAST_URL
    historical_url: str = HISTORICAL_FORECAST_URL
    cache_path: Path | None = Path(".pvcast/openmeteo_cache")  # None: no HTTP cache
    cache_expire_seconds: int = 900
    http_retries: int = 3  # connection errors and 500/502/504, with exponential backoff (retry-requests)
    backoff_factor: float = 0.5
    attempts: int = 3  # whole-request attempts when the body is malformed or partial
    timeout_seconds: float = 30.0
    batch_size: int = 50  # parks per request (Open-Meteo takes comma-separated coordinates)
    forecast_hours: int = 48


def open_client(config: OpenMeteoConfig) -> openmeteo_requests.Client:
    """The official client over a cached session that retries transient HTTP failures.

    Only complete bodies are cached (``filter_fn``), so a truncated response is never replayed from the cache.
    """
    session: requests.Session
    if config.cache_path is None:
        session = requests.Session()
    else:
        config.cache_path.parent.mkdir(parents=True, exist_ok=True)
        session = requests_cache.CachedSession(
            str(config.cache_path), expire_after=config.cache_expire_seconds, filter_fn=_complete_body
        )
    return openmeteo_requests.Client(
        session=retry(session, retries=config.http_retries, backoff_factor=config.backoff_factor)
    )


def _complete_body(response: requests.Response) -> bool:
    try:
        frame_lengths(response.content)
    except OpenMeteoError:
        return False
    return True


def frame_lengths(content: bytes) -> list[int]:
    """Lengths of the length-prefixed flatbuffers messages in a body; raise if the framing is broken."""
    lengths, pos = [], 0
    while pos < len(content):
        if pos + 4 > len(content):
            raise OpenMeteoError(f"partial response: {len(content) - pos} stray bytes at the end")
        length = int.from_bytes(content[pos : pos + 4], "little")
        if length == 0 or pos + 4 + length > len(content):
            raise OpenMeteoError(f"partial response: a message of {length} bytes with {len(content) - pos - 4} left")
        lengths.append(length)
        pos += 4 + length
    return lengths


def decode_messages(content: bytes) -> list[WeatherApiResponse]:
    """Split a flatbuffers body into one message per location, as the official client does (checked framing)."""
    messages, pos = [], 0
    for length in frame_lengths(content):
        messages.append(WeatherApiResponse.GetRootAs(content, pos + 4))
        pos += 4 + length
    return messages


# --- parsing ------------------------------------------------------------------------------------------


def parse_responses(responses: Sequence[WeatherApiResponse], park_ids: Sequence[str]) -> pd.DataFrame:
    """Decoded messages (one per park, in request order) → one row per (park, 15-minute interval).

    Columns: park_id, valid_time (interval beginning, UTC) and the pvlib-named variables.
    Raises ``OpenMeteoError`` on anything partial: a missing location, variable or value, a wrong unit.
    """
    if len(responses) != len(park_ids):
        raise OpenMeteoError(f"partial response: {len(responses)} locations for {len(park_ids)} parks requested")
    return pd.concat([_parse_location(r, p) for r, p in zip(responses, park_ids, strict=True)], ignore_index=True)


def parse_forecast(content: bytes, park_ids: Sequence[str]) -> pd.DataFrame:
    """A flatbuffers body as the API sends it → the frame of :func:`parse_responses`."""
    return parse_responses(decode_messages(content), park_ids)


def _parse_location(response: WeatherApiResponse, park_id: str) -> pd.DataFrame:
    block = response.Minutely15()
    if block is None:
        raise OpenMeteoError(f"{park_id}: the response has no 15-minutely block")
    start, end, step = int(block.Time()), int(block.TimeEnd()), int(block.Interval())
    if step != STEP_SECONDS or end - start < 2 * step:
        raise OpenMeteoError(f"{park_id}: 15-minutely block with interval {step} s over {end - start} s")
    n = (end - start) // step
    raw = _variables(block, park_id, n)
    stamps = start + step * np.arange(n, dtype=np.int64)
    frame = pd.DataFrame({ENTITY_KEY: park_id, "valid_time": pd.to_datetime(stamps[:-1], unit="s", utc=True)})
    for api_name, values in raw.items():
        interval = values[1:] if api_name in PRECEDING_MEAN else (values[:-1] + values[1:]) / 2.0
        frame[VARIABLE_MAP[api_name]] = interval
    return frame


def _variables(block: Any, park_id: str, n: int) -> dict[str, np.ndarray]:
    by_key = {}
    for j in range(block.VariablesLength()):
        variable = block.Variables(j)
        by_key[(variable.Variable(), variable.Altitude())] = variable
    out = {}
    for api_name, key in SDK_KEYS.items():
        variable = by_key.get(key)
        if variable is None:
            raise OpenMeteoError(f"{park_id}: the response lacks {api_name}")
        if variable.Unit() != UNITS[api_name]:
            raise OpenMeteoError(f"{park_id}: {api_name} comes in unit #{variable.Unit()}, expected #{UNITS[api_name]}")
        values = np.asarray(variable.ValuesAsNumpy(), dtype=np.float64)
        if values.shape != (n,):
            raise OpenMeteoError(f"{park_id}: {api_name} has {values.size} values for {n} time stamps")
        out[api_name] = values
    return out


# --- requests ------------------------------------------------------------------------------------------


def forecast_params(parks: Sequence[Park], issued_at: pd.Timestamp, hours: int) -> dict[str, str]:
    """Query of the forecast API: 15-minutely stamps from ``issued_at`` to ``issued_at + hours`` (UTC)."""
    first = require_utc(issued_at, ISSUED_AT)
    return _location_params(parks) | {
        "start_minutely_15": _minute(first),
        "end_minutely_15": _minute(first + pd.Timedelta(hours=hours)),
    }


def historical_params(parks: Sequence[Park], start: pd.Timestamp, end: pd.Timestamp) -> dict[str, str]:
    """Query of the historical-forecast API: whole UTC days ``start`` .. ``end`` (dates, inclusive)."""
    return _location_params(parks) | {
        "start_date": require_utc(start, "start").strftime("%Y-%m-%d"),
        "end_date": require_utc(end, "end").strftime("%Y-%m-%d"),
    }


def _location_params(parks: Sequence[Park]) -> dict[str, str]:
    return {
        "latitude": ",".join(f"{p.latitude:g}" for p in parks),
        "longitude": ",".join(f"{p.longitude:g}" for p in parks),
        "minutely_15": ",".join(VARIABLE_MAP),
        "wind_speed_unit": "ms",
        "timezone": "GMT",
    }


def _minute(ts: pd.Timestamp) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M")


def get_weather(
    client: openmeteo_requests.Client, config: OpenMeteoConfig, url: str, params: dict[str, str], parks: Sequence[Park]
) -> pd.DataFrame:
    """One request for ``parks``, parsed; a malformed or partial body is fetched again (bypassing the cache)
    up to ``config.attempts`` times, then reported as ``OpenMeteoError``."""
    ids = [p.park_id for p in parks]
    last: Exception | None = None
    for attempt in range(1, config.attempts + 1):
        extra = {"force_refresh": True} if attempt > 1 and config.cache_path is not None else {}
        try:
            responses = client.weather_api(url, params=dict(params), timeout=config.timeout_seconds, **extra)
            return parse_responses(responses, ids)
        except (OpenMeteoError, requests.RequestException, OpenMeteoRequestsError) as exc:
            last = exc
        except Exception as exc:  # a corrupt flatbuffer raises anything from struct.error to IndexError
            last = OpenMeteoError(f"malformed or partial response: {type(exc).__name__}: {exc}")
        logger.warning("Open-Meteo attempt %d/%d for %s failed: %s", attempt, config.attempts, ids, last)
        time.sleep(config.backoff_factor * 2 ** (attempt - 1) if attempt < config.attempts else 0)
    raise OpenMeteoError(f"Open-Meteo failed for {', '.join(ids)} after {config.attempts} attempts: {last}")


# --- rows for the weather_forecast table ----------------------------------------------------------------


def forecast_rows(intervals: pd.DataFrame, issue_times: Sequence[pd.Timestamp], hours: int) -> pd.DataFrame:
    """Cut each park's intervals into runs: one ``weather_forecast`` row per (park, issue time), whose arrays
    start at the issue time and cover ``hours`` (fewer if the response ends sooner; none if it starts later)."""
    rows = []
    steps = int(hours * 3600 // STEP_SECONDS)
    for park_id, frame in intervals.groupby(ENTITY_KEY, sort=False):
        frame = frame.set_index("valid_time").sort_index()
        for issued in issue_times:
            run = frame.loc[issued:].iloc[:steps]
            if len(run) == 0 or run.index[0] != issued:
                continue
            rows.append(_row(str(park_id), issued, run))
    return pd.DataFrame(rows, columns=[ENTITY_KEY, ISSUED_AT, "valid_from_epoch_s", "step_seconds", *WEATHER_VARIABLES])


def _row(park_id: str, issued: pd.Timestamp, run: pd.DataFrame) -> dict[str, Any]:
    row: dict[str, Any] = {
        ENTITY_KEY: park_id,
        ISSUED_AT: issued,
        "valid_from_epoch_s": int(issued.value // 10**9),
        "step_seconds": STEP_SECONDS,
    }
    for name in WEATHER_VARIABLES:
        row[name] = run[name].to_numpy(dtype=np.float32)
    return row
