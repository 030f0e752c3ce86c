"""GEFCom2014 probabilistic solar track → pvcast's data contract (REAL data: ECMWF forecasts, measured power).

The competition's CSV (Hong et al. 2016, IJF 32(3)) holds one row per zone and hour: the normalised power of
three Australian PV farms and the ECMWF 00 UTC run's forecast for that hour. This module renames the vendor
fields once (``VARIABLE_MAP``), converts their units and time stamps and produces the three store tables:

* zones become parks (published altitude, tilt, azimuth and nominal power; the estimated location near
  37.5° S, 145° E; ``capacity_dc_kwp = capacity_ac_kw = nominal``, so ``POWER × nominal = power_kw``);
* ECMWF variables become pvlib-named weather forecasts, one row per zone and daily run, keyed by the run's
  issue time (00 UTC), arrays over 24 hourly valid times starting at 00:00: accumulated fields are
  de-accumulated within each run and divided by 3600 s (mean flux over the hour [W m⁻²]), Kelvin → °C,
  U/V wind → speed, cloud cover 0..1 → %;
* the stamps are hour-ENDING in the file and become interval-BEGINNING here (``01:00`` → ``00:00``).

GEFCom gives GHI only. DNI and DHI come from the Erbs decomposition (Erbs, Klein & Duffie 1982): it was
fitted on hourly data — the resolution of these means — and needs nothing but GHI and the sun's position,
which is all an NWP forecast provides (DIRINT/DISC refinements use measured temporal variability or dew
point that a smooth NWP field does not carry). The demo data use the same split.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from pvcast.errors import DataNotFoundError
from pvcast.pv import physics
from pvcast.pv.plant import Park, parks_frame
from pvcast.schema import ENTITY_KEY, EVENT_TIMESTAMP, ISSUED_AT, WEATHER_VARIABLES

FloatArray = NDArray[np.float64]
EPOCH: Final = pd.Timestamp("1970-01-01", tz="UTC")

CSV_NAME: Final = "gefcom2014_solar.csv"
STEP_SECONDS: Final = 3600
HORIZON_STEPS: Final = 24
RUN_HOUR_UTC: Final = 0
TIMESTAMP_FORMAT: Final = "%Y%m%d %H:%M"
FIRST_TASK_MONTH: Final = pd.Timestamp("2013-04-01", tz="UTC")
"""Task k forecasts the month FIRST_TASK_MONTH + (k − 1) months (task 1 = April 2013)."""
MAX_TASK: Final = 15
LATITUDE: Final = -37.5
LONGITUDE: Final = 145.0
"""[°] The farms' location was never published; the organisers' description places them near here."""

VARIABLE_MAP: Final = {
    "ZONEID": "zone",
    "TIMESTAMP": "timestamp_ending",
    "TASK": "task",
    "POWER": "power",  # mean power over the hour / nominal power [-]
    "VAR78": "cloud_liquid_water",  # total column liquid water [kg m⁻²]
    "VAR79": "cloud_ice_water",  # total column ice water [kg m⁻²]
    "VAR134": "pressure",  # surface pressure [Pa]
    "VAR157": "relative_humidity",  # at 1000 hPa [%]
    "VAR164": "cloud_cover",  # total cloud cover [0..1] → [%]
    "VAR165": "wind_u",  # 10 m U wind [m s⁻¹]
    "VAR166": "wind_v",  # 10 m V wind [m s⁻¹]
    "VAR167": "temp_air",  # 2 m temperature [K] → [°C]
    "VAR169": "ghi",  # surface solar radiation downwards [J m⁻², accumulated] → [W m⁻²]
    "VAR175": "longwave_down",  # surface thermal radiation downwards [J m⁻², accumulated] → [W m⁻²]
    "VAR178": "toa_net_solar",  # top-of-atmosphere net solar radiation [J m⁻², accumulated] → [W m⁻²]
    "VAR228": "precipitation",  # total precipitation [m, accumulated] → [mm h⁻¹]
}
"""GEFCom column → pvcast name (pvlib nomenclature where pvlib has one)."""
ACCUMULATED: Final = ("ghi", "longwave_down", "toa_net_solar", "precipitation")
"""Fields accumulated since the run start (they restart with each daily run)."""
WEATHER_COLUMNS: Final = (
    "ghi", "dni", "dhi", "temp_air", "wind_speed", "cloud_cover", "relative_humidity",
    "cloud_liquid_water", "cloud_ice_water", "pressure", "longwave_down", "toa_net_solar", "precipitation",
)  # fmt: skip
"""Every converted weather variable of the hourly frame (the store keeps ``schema.WEATHER_VARIABLES``)."""


@dataclass(frozen=True)
class Zone:
    """A GEFCom farm as published: altitude [m], nominal power [Wp], panel azimuth [° from north] and tilt [°]."""

    zone: int
    altitude: float
    nominal_wp: float
    surface_azimuth: float
    surface_tilt: float

    @property
    def park_id(self) -> str:
        return park_id(self.zone)

    @property
    def nominal_kw(self) -> float:
        return self.nominal_wp / 1000.0


ZONES: Final = (
    Zone(1, 595.0, 1560.0, 38.0, 36.0),
    Zone(2, 602.0, 4940.0, 327.0, 35.0),
    Zone(3, 951.0, 4000.0, 31.0, 21.0),
)
"""The competition's farm table. Azimuths are clockwise from north (pvlib's convention): the panels of these
southern-hemisphere farms face roughly north, towards the equator."""


def park_id(zone: int) -> str:
    return f"gefcom-zone{zone}"


def zone_parks() -> list[Park]:
    """The three farms as pvcast parks (capacities in kW: ``capacity_dc_kwp = capacity_ac_kw = nominal``)."""
    return [
        Park(
            park_id=z.park_id,
            latitude=LATITUDE,
            longitude=LONGITUDE,
            altitude=z.altitude,
            capacity_dc_kwp=z.nominal_kw,
            capacity_ac_kw=z.nominal_kw,
            surface_tilt=z.surface_tilt,
            surface_azimuth=z.surface_azimuth,
        )
        for z in ZONES
    ]


def task_month(task: int) -> tuple[pd.Timestamp, pd.Timestamp]:
    """[start, end) of the month forecast by ``task`` (interval-beginning UTC times)."""
    if not 1 <= task <= MAX_TASK:
        raise ValueError(f"GEFCom2014 tasks are 1..{MAX_TASK}, got {task}")
    start = FIRST_TASK_MONTH + pd.DateOffset(months=task - 1)
    return start, start + pd.DateOffset(months=1)


# --- reading and parsing -------------------------------------------------------------------------------


def csv_path(data_dir: Path) -> Path:
    """The CSV inside ``data_dir`` (the folder itself or its ``gefcom2014_solar/`` subfolder)."""
    for candidate in (Path(data_dir) / CSV_NAME, Path(data_dir) / "gefcom2014_solar" / CSV_NAME):
        if candidate.is_file():
            return candidate
    raise DataNotFoundError(
        f"no {CSV_NAME} in {data_dir} (nor in its gefcom2014_solar/ folder): pass the folder holding the "
        "GEFCom2014 solar CSV with --data"
    )


def read_gefcom(path: Path) -> pd.DataFrame:
    """Read the competition CSV and parse it (see :func:`parse_gefcom`)."""
    raw = pd.read_csv(path, dtype={"TIMESTAMP": str})
    return parse_gefcom(raw)


def parse_gefcom(raw: pd.DataFrame) -> pd.DataFrame:
    """Raw GEFCom rows → one row per (park, hour) with pvlib-named, SI-converted variables.

    Columns: ``park_id``, ``valid_time`` (interval beginning, UTC), ``issued_at`` (the 00 UTC run that
    forecast it), ``task``, ``power`` [-], ``power_kw``, ``solar_zenith`` [°, at the interval midpoint] and
    :data:`WEATHER_COLUMNS`.
    """
    missing = sorted(set(VARIABLE_MAP) - set(raw.columns))
    if missing:
        raise DataNotFoundError(f"the GEFCom CSV lacks columns {missing}: is it the solar track's file?")
    frame = raw.loc[:, list(VARIABLE_MAP)].rename(columns=VARIABLE_MAP)
    ending = pd.to_datetime(frame.pop("timestamp_ending"), format=TIMESTAMP_FORMAT, utc=True)
    frame.insert(0, "valid_time", ending - pd.Timedelta(seconds=STEP_SECONDS))
    frame = frame.sort_values(["zone", "valid_time"], kind="stable").reset_index(drop=True)
    frame.insert(1, ISSUED_AT, run_issue_time(frame["valid_time"]))
    zones = {z.zone: z for z in ZONES}
    unknown = sorted(set(frame["zone"]) - set(zones))
    if unknown:
        raise DataNotFoundError(f"the GEFCom CSV holds unknown zones {unknown}: only 1, 2 and 3 are described")
    frame.insert(0, ENTITY_KEY, [park_id(z) for z in frame["zone"]])
    frame["power_kw"] = frame["power"] * frame["zone"].map({k: z.nominal_kw for k, z in zones.items()})
    runs, seconds = run_keys(frame), epoch_seconds(frame["valid_time"])
    for name in ACCUMULATED:
        frame[name] = deaccumulate(frame[name].to_numpy(np.float64), runs, seconds, STEP_SECONDS)
    for name in ("ghi", "longwave_down", "toa_net_solar"):
        frame[name] = joules_to_watts(frame[name].to_numpy(), STEP_SECONDS)
    frame["precipitation"] = metres_to_millimetres(frame["precipitation"].to_numpy())
    for name in ACCUMULATED:  # GRIB packing leaves tiny negative amounts (−0.2 W m⁻² at night)
        frame[name] = frame[name].clip(lower=0.0)
    frame["temp_air"] = kelvin_to_celsius(frame["temp_air"].to_numpy(np.float64))
    frame["wind_speed"] = wind_speed(frame.pop("wind_u").to_numpy(np.float64), frame.pop("wind_v").to_numpy(np.float64))
    frame["cloud_cover"] = fraction_to_percent(frame["cloud_cover"].to_numpy(np.float64))
    frame["solar_zenith"] = midpoint_zenith(
        frame["valid_time"], frame["zone"].map({k: z.altitude for k, z in zones.items()})
    )
    frame["dni"], frame["dhi"] = decompose(
        frame["ghi"].to_numpy(), frame["solar_zenith"].to_numpy(), frame["valid_time"]
    )
    return frame[
        [ENTITY_KEY, "zone", "valid_time", ISSUED_AT, "task", "power", "power_kw", "solar_zenith", *WEATHER_COLUMNS]
    ]


def run_issue_time(valid_time: pd.Series) -> pd.Series:
    """The 00 UTC run that forecast each interval: lead times 1..24 h end at 01:00 .. 24:00 of the run's day."""
    return (valid_time - pd.Timedelta(hours=RUN_HOUR_UTC)).dt.floor("D") + pd.Timedelta(hours=RUN_HOUR_UTC)


def run_keys(frame: pd.DataFrame) -> NDArray[np.int64]:
    """An integer per (zone, run): accumulations restart with each key."""
    return pd.MultiIndex.from_arrays([frame["zone"], frame[ISSUED_AT]]).factorize()[0].astype(np.int64)


def epoch_seconds(times: pd.Series) -> NDArray[np.int64]:
    """UTC times → whole seconds since 1970-01-01."""
    return np.asarray((times - EPOCH) // pd.Timedelta(seconds=1), dtype=np.int64)


def deaccumulate(
    accumulated: FloatArray, run: NDArray[np.int64], seconds: NDArray[np.int64], step_seconds: int
) -> FloatArray:
    """Amount per interval of a field accumulated since its run start: the difference to the previous interval
    of the same run; the run's first interval stands alone.

    Rows must be sorted by run and time (``seconds``: interval beginnings). A missing hour inside a run would
    merge two hours into one difference, so such an interval becomes NaN instead.
    """
    previous = np.concatenate([[np.nan], accumulated[:-1]])
    same_run = np.concatenate([[False], run[1:] == run[:-1]])
    adjacent = np.concatenate([[False], np.diff(seconds) == step_seconds])
    run_start = ~same_run & (seconds % 86400 == RUN_HOUR_UTC * 3600)
    return np.where(run_start, accumulated, np.where(same_run & adjacent, accumulated - previous, np.nan))


def joules_to_watts(energy: FloatArray, step_seconds: int) -> FloatArray:
    """Energy per interval [J m⁻²] → mean flux over the interval [W m⁻²]."""
    return energy / step_seconds


def metres_to_millimetres(depth: FloatArray) -> FloatArray:
    """Precipitation per hour [m] → [mm h⁻¹]."""
    return depth * 1000.0


def kelvin_to_celsius(temp_k: FloatArray) -> FloatArray:
    return temp_k - 273.15


def wind_speed(u: FloatArray, v: FloatArray) -> FloatArray:
    """Speed [m s⁻¹] of the wind vector (u, v) [m s⁻¹]."""
    return np.hypot(u, v)


def fraction_to_percent(fraction: FloatArray) -> FloatArray:
    """Cloud cover 0..1 → 0..100 %, clipped (ECMWF's packing gives values like 1.000008)."""
    return np.clip(fraction, 0.0, 1.0) * 100.0


def midpoint_zenith(valid_time: pd.Series, altitude: pd.Series) -> FloatArray:
    """Apparent solar zenith [°] at the middle of each hourly interval (SPA via ``pvcast.pv.physics``)."""
    mid = epoch_seconds(valid_time).astype(np.float64) + STEP_SECONDS / 2
    eph = physics.sun_ephemeris(mid)
    position = physics.solar_position(eph, LATITUDE, LONGITUDE, altitude.to_numpy(np.float64))
    return position.apparent_zenith


def decompose(ghi: FloatArray, zenith: FloatArray, valid_time: pd.Series) -> tuple[FloatArray, FloatArray]:
    """DNI and DHI [W m⁻²] from hourly-mean GHI [W m⁻²] with Erbs; DHI = GHI where the split is undefined."""
    ghi = np.clip(np.nan_to_num(ghi), 0.0, None)
    doy = (valid_time + pd.Timedelta(seconds=STEP_SECONDS / 2)).dt.dayofyear.to_numpy()
    dni, dhi = physics.decompose(ghi, zenith, doy)
    return dni, np.where(dni > 0, dhi, ghi)


# --- the store tables ----------------------------------------------------------------------------------


def parks_table(registered_at: pd.Timestamp) -> pd.DataFrame:
    return parks_frame(zone_parks(), registered_at)


def weather_forecast_table(hourly: pd.DataFrame) -> pd.DataFrame:
    """One row per (park, daily run): each weather variable a float32 array over the run's 24 hours.

    Only complete runs (24 consecutive hours starting at the run's issue time) are kept.
    """
    groups = hourly.sort_values([ENTITY_KEY, "valid_time"]).groupby([ENTITY_KEY, ISSUED_AT], sort=True)
    rows = []
    for (park, issued), run in groups:
        if not _complete_run(run["valid_time"], issued):
            continue
        row: dict[str, object] = {
            ENTITY_KEY: park,
            ISSUED_AT: issued,
            "valid_from_epoch_s": int(issued.timestamp()),
            "step_seconds": STEP_SECONDS,
        }
        for name in WEATHER_VARIABLES:
            row[name] = np.nan_to_num(run[name].to_numpy(np.float32))
        rows.append(row)
    frame = pd.DataFrame(
        rows, columns=[ENTITY_KEY, ISSUED_AT, "valid_from_epoch_s", "step_seconds", *WEATHER_VARIABLES]
    )
    frame[ISSUED_AT] = pd.to_datetime(frame[ISSUED_AT], utc=True).astype("datetime64[us, UTC]")
    return frame


def _complete_run(valid_time: pd.Series, issued: pd.Timestamp) -> bool:
    expected = pd.date_range(issued, periods=HORIZON_STEPS, freq=pd.Timedelta(seconds=STEP_SECONDS))
    return len(valid_time) == HORIZON_STEPS and bool((pd.DatetimeIndex(valid_time) == expected).all())


def generation_table(hourly: pd.DataFrame) -> pd.DataFrame:
    """Measured power per (park, hour); known at the END of its interval (``event_timestamp``)."""
    valid = hourly["valid_time"].reset_index(drop=True)
    return pd.DataFrame(
        {
            ENTITY_KEY: hourly[ENTITY_KEY].to_numpy(),
            "power_kw": hourly["power_kw"].to_numpy(np.float32),
            "valid_time_epoch_s": epoch_seconds(valid),
            EVENT_TIMESTAMP: (valid + pd.Timedelta(seconds=STEP_SECONDS)).astype("datetime64[us, UTC]"),
        }
    )
