"""A SYNTHETIC park population for the serving benchmark: N parks with a fresh weather run and recent telemetry.

Values only need to be plausible (clear-sky-shaped irradiance, power within capacity); what the benchmark
measures is the cost of serving them, which does not depend on the weather.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pvcast.pv import physics
from pvcast.pv.plant import Park, parks_frame
from pvcast.schema import STEP_SECONDS, WEATHER_VARIABLES

RUN_STEPS = 192  # 48 h of 15-minute values per weather run


def synthetic_parks(n: int, seed: int = 11) -> list[Park]:
    """``n`` parks spread over the contiguous US, 0.5–5 MW AC, DC/AC 1.1–1.3, facing roughly south."""
    rng = np.random.default_rng(seed)
    ac = rng.uniform(500, 5000, n).round(1)
    return [
        Park(
            park_id=f"bench-{i:05d}",
            latitude=float(rng.uniform(26, 48)),
            longitude=float(rng.uniform(-122, -70)),
            altitude=float(rng.uniform(0, 1500)),
            capacity_dc_kwp=float((ac[i] * rng.uniform(1.1, 1.3)).round(1)),
            capacity_ac_kw=float(ac[i]),
            surface_tilt=float(rng.uniform(15, 35)),
            surface_azimuth=float(rng.uniform(160, 200)),
        )
        for i in range(n)
    ]


def _clearsky_ghi(parks: list[Park], unixtime: np.ndarray) -> np.ndarray:
    """Clear-sky GHI [W m⁻²] of each park (rows) at each time (columns), Linke turbidity 3."""
    lat, lon, alt = (np.array([getattr(p, k) for p in parks])[:, None] for k in ("latitude", "longitude", "altitude"))
    eph = physics.sun_ephemeris(np.broadcast_to(unixtime, (len(parks), unixtime.size)))
    position = physics.solar_position(eph, lat, lon, alt)
    airmass = physics.absolute_airmass(position.apparent_zenith, alt)
    dni_extra = physics.extraterrestrial_irradiance(eph.earth_sun_distance)
    return physics.clearsky_irradiance(position.apparent_zenith, airmass, 3.0, alt, dni_extra).ghi


def weather_runs(parks: list[Park], issued_at: pd.Timestamp, seed: int = 11) -> pd.DataFrame:
    """One 48 h weather run per park issued at ``issued_at``: clear-sky irradiance scaled by a random index."""
    rng = np.random.default_rng(seed)
    start = int(issued_at.floor("15min").timestamp())
    times = start + STEP_SECONDS * np.arange(RUN_STEPS) + STEP_SECONDS / 2
    ghi = _clearsky_ghi(parks, times) * rng.uniform(0.3, 1.0, (len(parks), 1))
    values = {
        "ghi": ghi,
        "dni": ghi * 0.8,
        "dhi": ghi * 0.2,
        "temp_air": np.full_like(ghi, 18.0),
        "wind_speed": np.full_like(ghi, 3.0),
        "cloud_cover": np.full_like(ghi, 30.0),
        "relative_humidity": np.full_like(ghi, 60.0),
    }
    frame = pd.DataFrame({"park_id": [p.park_id for p in parks]})
    frame["issued_at"] = issued_at
    frame["valid_from_epoch_s"] = start
    frame["step_seconds"] = STEP_SECONDS
    for name in WEATHER_VARIABLES:
        frame[name] = list(values[name].astype(np.float32))
    return frame


def telemetry(parks: list[Park], end: pd.Timestamp, intervals: int = 4, seed: int = 11) -> pd.DataFrame:
    """The last ``intervals`` 15-minute measurements of each park ending at ``end`` (generation table rows)."""
    rng = np.random.default_rng(seed)
    starts = pd.date_range(end.floor("15min") - intervals * pd.Timedelta(minutes=15), periods=intervals, freq="15min")
    epoch = (starts.astype("int64") // 10**9).to_numpy()
    ghi = _clearsky_ghi(parks, epoch.astype(np.float64) + STEP_SECONDS / 2)
    capacity = np.array([p.capacity_ac_kw for p in parks])[:, None]
    power = np.clip(ghi / 1000 * capacity * rng.uniform(0.3, 0.9, ghi.shape), 0, capacity)
    return pd.DataFrame({
        "park_id": np.repeat([p.park_id for p in parks], intervals),
        "power_kw": power.ravel().astype(np.float32),
        "valid_time_epoch_s": np.tile(epoch, len(parks)),
        "event_timestamp": np.tile(starts + pd.Timedelta(minutes=15), len(parks)),
    })  # fmt: skip


def park_table(parks: list[Park], registered_at: pd.Timestamp) -> pd.DataFrame:
    return parks_frame(parks, registered_at)
