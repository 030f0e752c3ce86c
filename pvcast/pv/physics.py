"""Physics of a PV park as small, pure, vectorised functions over pvlib.

Every derived quantity that training, serving, validation and the degraded mode share is computed here and
only here: solar position, clear-sky irradiance, plane-of-array irradiance, cell temperature, the AC power of
a plant and time encodings. Functions take and return numpy arrays that broadcast (e.g. times of shape
``(n_parks, n_steps)`` against park constants of shape ``(n_parks, 1)``); they do no logging or configuration.
The one piece of I/O is pvlib's Linke-turbidity climatology, read once per site and cached.

Like pvlib's ``Location`` → ``PVSystem`` → ``ModelChain``, the chain has two layers: :func:`sky_at` is what the
sun and a clear sky do at a site and times (computed once per call), :func:`plant_power` turns irradiance at
that site into a plant's plane-of-array irradiance and AC power (PVWatts), and :func:`clearsky_ac_power_kw`
composes them for the clear-sky power of a plant.

Time is passed as ``unixtime``: seconds since 1970-01-01 UTC (float64), so there is no timezone to get wrong.
Angles are in degrees, irradiance in [W m⁻²], temperature in [°C], power in [kW].
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from pvlib import atmosphere, clearsky, inverter, irradiance, pvsystem, spa, temperature

FloatArray = NDArray[np.float64]

SOLAR_CONSTANT = 1366.1
"""[W m⁻²], pvlib's default, so our extraterrestrial irradiance matches pvlib's own functions."""
DELTA_T = 69.0
"""TT − UT1 [s]; within ±2 s of the measured value for 2015–2030, well below SPA's 0.0003° budget."""
INVERTER_EFFICIENCY = 0.96
"""PVWatts nominal inverter efficiency [-]: the inverter's DC limit is capacity_ac_kw / 0.96."""
DC_LOSSES = 0.14
"""PVWatts' default DC losses [-] (soiling, wiring, mismatch, availability)."""
NOMINAL_TEMP_AIR = 20.0
"""[°C] the air temperature of a "nominal" clear sky (no forecast at hand)."""
NOMINAL_WIND_SPEED = 1.0
"""[m s⁻¹] the wind speed of a "nominal" clear sky."""


@dataclass(frozen=True)
class SunEphemeris:
    """The time-only part of NREL's SPA: identical for every site, so computed once per set of times."""

    earth_sun_distance: FloatArray  # R [AU]
    sidereal_time: FloatArray  # ν, apparent sidereal time at Greenwich [°]
    right_ascension: FloatArray  # α, geocentric [°]
    declination: FloatArray  # δ, geocentric [°]


@dataclass(frozen=True)
class SolarPosition:
    """Topocentric sun position for one site (or sites broadcast against times)."""

    apparent_zenith: FloatArray  # [°], with refraction
    zenith: FloatArray  # [°], geometric
    azimuth: FloatArray  # [°] clockwise from north
    apparent_elevation: FloatArray  # [°] = 90 − apparent_zenith


@dataclass(frozen=True)
class Irradiance:
    ghi: FloatArray  # [W m⁻²]
    dni: FloatArray  # [W m⁻²]
    dhi: FloatArray  # [W m⁻²]


def sun_ephemeris(unixtime: ArrayLike, delta_t: float = DELTA_T) -> SunEphemeris:
    """Geocentric sun coordinates at ``unixtime`` [s since epoch, UTC] (Reda & Andreas 2004, steps 1–3.8)."""
    t = np.asarray(unixtime, dtype=np.float64)
    jd = spa.julian_day(t.ravel())
    jc = spa.julian_century(jd)
    jce = spa.julian_ephemeris_century(spa.julian_ephemeris_day(jd, delta_t))
    jme = spa.julian_ephemeris_millennium(jce)
    radius = spa.heliocentric_radius_vector(jme)
    theta = spa.geocentric_longitude(spa.heliocentric_longitude(jme))
    beta = spa.geocentric_latitude(spa.heliocentric_latitude(jme))
    dpsi, epsilon = _nutation(jce, jme)
    lamd = spa.apparent_sun_longitude(theta, dpsi, spa.aberration_correction(radius))
    return SunEphemeris(
        earth_sun_distance=radius.reshape(t.shape),
        sidereal_time=spa.apparent_sidereal_time(spa.mean_sidereal_time(jd, jc), dpsi, epsilon).reshape(t.shape),
        right_ascension=spa.geocentric_sun_right_ascension(lamd, epsilon, beta).reshape(t.shape),
        declination=spa.geocentric_sun_declination(lamd, epsilon, beta).reshape(t.shape),
    )


def _nutation(jce: FloatArray, jme: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Nutation in longitude Δψ and the true obliquity of the ecliptic ε [°] (1-D inputs)."""
    x = (
        spa.mean_elongation(jce),
        spa.mean_anomaly_sun(jce),
        spa.mean_anomaly_moon(jce),
        spa.moon_argument_latitude(jce),
        spa.moon_ascending_longitude(jce),
    )
    nutation = np.empty((2, jce.size))
    spa.longitude_obliquity_nutation(jce, *x, nutation)
    dpsi, depsilon = nutation
    return dpsi, spa.true_ecliptic_obliquity(spa.mean_ecliptic_obliquity(jme), depsilon)


def solar_position(
    ephemeris: SunEphemeris,
    latitude: ArrayLike,
    longitude: ArrayLike,
    altitude: ArrayLike,
    pressure: ArrayLike | None = None,
    temp_air: ArrayLike = 12.0,
) -> SolarPosition:
    """Topocentric position of the sun seen from a site (SPA steps 3.9–3.15).

    ``pressure`` [Pa] defaults to the standard atmosphere at ``altitude`` [m]; it and ``temp_air`` [°C] only
    enter the refraction correction.
    """
    lat, lon, alt = (np.asarray(v, dtype=np.float64) for v in (latitude, longitude, altitude))
    pressure_hpa = np.asarray(atmosphere.alt2pres(alt) if pressure is None else pressure) / 100.0
    hour_angle = spa.local_hour_angle(ephemeris.sidereal_time, lon, ephemeris.right_ascension)
    xi = spa.equatorial_horizontal_parallax(ephemeris.earth_sun_distance)
    u = spa.uterm(lat)
    x, y = spa.xterm(u, lat, alt), spa.yterm(u, lat, alt)
    delta_alpha = spa.parallax_sun_right_ascension(x, xi, hour_angle, ephemeris.declination)
    dec = spa.topocentric_sun_declination(ephemeris.declination, x, y, xi, delta_alpha, hour_angle)
    hour_angle_topo = spa.topocentric_local_hour_angle(hour_angle, delta_alpha)
    e0 = spa.topocentric_elevation_angle_without_atmosphere(lat, dec, hour_angle_topo)
    refraction = spa.atmospheric_refraction_correction(pressure_hpa, np.asarray(temp_air), e0, 0.5667)
    elevation = spa.topocentric_elevation_angle(e0, refraction)
    gamma = spa.topocentric_astronomers_azimuth(hour_angle_topo, dec, lat)
    return SolarPosition(
        apparent_zenith=90.0 - elevation,
        zenith=90.0 - e0,
        azimuth=spa.topocentric_azimuth_angle(gamma),
        apparent_elevation=elevation,
    )


def extraterrestrial_irradiance(earth_sun_distance: ArrayLike) -> FloatArray:
    """Normal irradiance at the top of the atmosphere [W m⁻²] from the earth–sun distance [AU]."""
    return SOLAR_CONSTANT / np.square(np.asarray(earth_sun_distance, dtype=np.float64))


def absolute_airmass(apparent_zenith: ArrayLike, altitude: ArrayLike) -> FloatArray:
    """Pressure-corrected air mass [-] (Kasten & Young 1989); NaN when the sun is down."""
    relative = atmosphere.get_relative_airmass(np.asarray(apparent_zenith, dtype=np.float64))
    return np.asarray(atmosphere.get_absolute_airmass(relative, atmosphere.alt2pres(altitude)))


def clearsky_irradiance(
    apparent_zenith: ArrayLike,
    airmass_absolute: ArrayLike,
    linke_turbidity: ArrayLike,
    altitude: ArrayLike,
    dni_extra: ArrayLike,
) -> Irradiance:
    """Ineichen–Perez clear-sky irradiance; zero when the sun is down."""
    with np.errstate(divide="ignore", invalid="ignore"):  # pvlib divides by cos(zenith) = 0 at night
        cs = clearsky.ineichen(apparent_zenith, airmass_absolute, linke_turbidity, altitude, dni_extra)
    return Irradiance(*(np.nan_to_num(np.asarray(cs[k], dtype=np.float64)) for k in ("ghi", "dni", "dhi")))


def plane_of_array(
    surface_tilt: ArrayLike,
    surface_azimuth: ArrayLike,
    position: SolarPosition,
    sky: Irradiance,
    dni_extra: ArrayLike,
    albedo: float = 0.2,
) -> FloatArray:
    """Global irradiance on the module plane [W m⁻²] (Hay–Davies sky diffuse, isotropic ground)."""
    poa = irradiance.get_total_irradiance(
        surface_tilt,
        surface_azimuth,
        position.apparent_zenith,
        position.azimuth,
        sky.dni,
        sky.ghi,
        sky.dhi,
        dni_extra=dni_extra,
        albedo=albedo,
        model="haydavies",
    )
    return np.clip(np.nan_to_num(np.asarray(poa["poa_global"], dtype=np.float64)), 0.0, None)


def cell_temperature(poa_global: ArrayLike, temp_air: ArrayLike, wind_speed: ArrayLike) -> FloatArray:
    """Module temperature [°C] (Faiman 2008, IEC 61853-2 default coefficients u0 = 25, u1 = 6.84)."""
    return np.asarray(temperature.faiman(poa_global, temp_air, np.clip(wind_speed, 0.0, None)))


def ac_power_kw(
    poa_global: ArrayLike,
    temp_cell: ArrayLike,
    capacity_dc_kwp: ArrayLike,
    capacity_ac_kw: ArrayLike,
    gamma_pdc: float = -0.0037,
    dc_losses: float = DC_LOSSES,
) -> FloatArray:
    """PVWatts AC power [kW]: DC power of the array after losses through an inverter clipped at capacity_ac_kw.

    ``gamma_pdc`` [1/°C] is the power temperature coefficient; ``dc_losses`` [-] lumps soiling, wiring,
    mismatch and availability (PVWatts' default 14 %).
    """
    pdc = pvsystem.pvwatts_dc(poa_global, temp_cell, capacity_dc_kwp, gamma_pdc) * (1.0 - dc_losses)
    pdc0_inverter = np.asarray(capacity_ac_kw, dtype=np.float64) / INVERTER_EFFICIENCY
    pac = inverter.pvwatts(np.clip(pdc, 0.0, None), pdc0_inverter, eta_inv_nom=INVERTER_EFFICIENCY)
    return np.clip(np.nan_to_num(np.asarray(pac, dtype=np.float64)), 0.0, None)


def time_encodings(unixtime: ArrayLike, longitude: ArrayLike) -> dict[str, FloatArray]:
    """Cyclic encodings of local mean solar time and of the day of the year, each in [-1, 1]."""
    t = np.asarray(unixtime, dtype=np.float64)
    solar_hours = (t / 3600.0 + np.asarray(longitude, dtype=np.float64) / 15.0) % 24.0
    year_fraction = (t / 86400.0 % 365.2425) / 365.2425
    return {
        "hour_sin": np.sin(2 * np.pi * solar_hours / 24.0),
        "hour_cos": np.cos(2 * np.pi * solar_hours / 24.0),
        "doy_sin": np.sin(2 * np.pi * year_fraction),
        "doy_cos": np.cos(2 * np.pi * year_fraction),
    }


def decompose(ghi: ArrayLike, zenith: ArrayLike, day_of_year: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """DNI and DHI [W m⁻²] from GHI [W m⁻²] with Erbs (1982), both within their physical limits: DNI ≥ 0 and
    0 ≤ DHI ≤ GHI (0 where the split is undefined: the sun is down)."""
    parts = irradiance.erbs(ghi, zenith, day_of_year)
    dni = np.nan_to_num(np.asarray(parts["dni"], dtype=np.float64))
    dhi = np.nan_to_num(np.asarray(parts["dhi"], dtype=np.float64))
    return np.clip(dni, 0.0, None), np.clip(dhi, 0.0, ghi)


# --- the sun and a clear sky at a site -------------------------------------------------------------------


@dataclass(frozen=True)
class Sky:
    """The sun and a clear sky at a site and times: what every power estimate there starts from."""

    position: SolarPosition
    dni_extra: FloatArray  # [W m⁻²]
    clear: Irradiance  # Ineichen–Perez with the site's climatological Linke turbidity

    @property
    def sun_up(self) -> NDArray[np.bool_]:
        return self.position.apparent_elevation > 0


def sky_at(unixtime: ArrayLike, latitude: ArrayLike, longitude: ArrayLike, altitude: ArrayLike) -> Sky:
    """Sun position, extraterrestrial and clear-sky irradiance at ``unixtime`` [s since epoch, UTC].

    Sites are scalars or ``(n_sites, 1)`` columns against times ``(n_sites, n_times)``; the time-only solar
    terms are computed once per distinct time (:func:`ephemeris`)."""
    t = np.asarray(unixtime, dtype=np.float64)
    eph = ephemeris(t)
    position = solar_position(eph, latitude, longitude, altitude)
    dni_extra = extraterrestrial_irradiance(eph.earth_sun_distance)
    airmass = absolute_airmass(position.apparent_zenith, altitude)
    turbidity = linke_turbidity(t, latitude, longitude)
    clear = clearsky_irradiance(position.apparent_zenith, airmass, turbidity, altitude, dni_extra)
    return Sky(position, dni_extra, clear)


def ephemeris(unixtime: FloatArray) -> SunEphemeris:
    """:func:`sun_ephemeris` of each time, computed once per distinct time and cached for recent sets of times
    (the issue times of a service repeat; every park shares them)."""
    unique, inverse = np.unique(unixtime, return_inverse=True)
    eph = _ephemeris_cached(tuple(unique.tolist())) if unique.size <= 4096 else sun_ephemeris(unique)
    inv = inverse.reshape(unixtime.shape)
    return SunEphemeris(*(np.asarray(getattr(eph, f))[inv] for f in SunEphemeris.__dataclass_fields__))


@lru_cache(maxsize=256)
def _ephemeris_cached(unique_times: tuple[float, ...]) -> SunEphemeris:
    return sun_ephemeris(np.array(unique_times))


def linke_turbidity(unixtime: FloatArray, latitude: ArrayLike, longitude: ArrayLike) -> FloatArray:
    """Climatological Linke turbidity [-] of each site for the month of each time: one site (scalars, times of
    any shape) or a column of sites ``(n_sites, 1)`` against times ``(n_sites, n_times)``."""
    months = month_index(unixtime)
    lat, lon = np.asarray(latitude, dtype=np.float64), np.asarray(longitude, dtype=np.float64)
    if lat.ndim == 0:
        return monthly_linke_turbidity(float(lat), float(lon))[months]
    tables = np.stack([monthly_linke_turbidity(float(a), float(o)) for a, o in zip(lat[:, 0], lon[:, 0], strict=True)])
    return np.take_along_axis(tables, months, axis=1)


def month_index(unixtime: ArrayLike) -> NDArray[np.int64]:
    """Calendar month (0 = January, UTC) of each time [s since epoch], in numpy: the same as pandas'
    ``to_datetime(..., unit="s").month - 1`` at a tenth of the cost (it runs on every request)."""
    seconds = np.floor(np.asarray(unixtime, dtype=np.float64)).astype("datetime64[s]")
    return seconds.astype("datetime64[M]").astype(np.int64) % 12


@lru_cache(maxsize=100_000)
def monthly_linke_turbidity(latitude: float, longitude: float) -> FloatArray:
    """Twelve monthly Linke turbidity values from pvlib's climatology (Remund et al. 2003), read once per site
    (pvlib reads an HDF5 file on every call)."""
    mid_months = pd.date_range("2021-01-15", periods=12, freq="MS", tz="UTC") + pd.Timedelta(days=14)
    series = clearsky.lookup_linke_turbidity(mid_months, latitude, longitude, interp_turbidity=False)
    table = np.asarray(series, dtype=np.float64)
    table.setflags(write=False)
    return table


# --- a plant under that sky ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlantPower:
    poa_global: FloatArray  # [W m⁻²] on the module plane
    ac_power_kw: FloatArray  # [kW], 0 while the sun is down


def plant_power(
    sky: Sky,
    irradiance_at_site: Irradiance,
    surface_tilt: ArrayLike,
    surface_azimuth: ArrayLike,
    capacity_dc_kwp: ArrayLike,
    capacity_ac_kw: ArrayLike,
    temp_air: ArrayLike = NOMINAL_TEMP_AIR,
    wind_speed: ArrayLike = NOMINAL_WIND_SPEED,
    temp_cell: ArrayLike | None = None,
    dc_losses: float = DC_LOSSES,
) -> PlantPower:
    """A plant under ``irradiance_at_site``: plane of array → cell temperature (Faiman, from ``temp_air`` and
    ``wind_speed``, unless ``temp_cell`` is given) → PVWatts DC after ``dc_losses`` → inverter clipped at
    ``capacity_ac_kw``; AC power is 0 while the sun is down."""
    poa = plane_of_array(surface_tilt, surface_azimuth, sky.position, irradiance_at_site, sky.dni_extra)
    cell = cell_temperature(poa, temp_air, wind_speed) if temp_cell is None else temp_cell
    power = ac_power_kw(poa, cell, capacity_dc_kwp, capacity_ac_kw, dc_losses=dc_losses)
    return PlantPower(poa, np.where(sky.sun_up, power, 0.0))


def clearsky_ac_power_kw(
    unixtime: ArrayLike,
    latitude: ArrayLike,
    longitude: ArrayLike,
    altitude: ArrayLike,
    surface_tilt: ArrayLike,
    surface_azimuth: ArrayLike,
    capacity_dc_kwp: ArrayLike,
    capacity_ac_kw: ArrayLike,
    temp_cell: ArrayLike | None = None,
    dc_losses: float = DC_LOSSES,
) -> FloatArray:
    """AC power [kW] of a plant under a clear sky at ``unixtime``: at nominal air temperature and wind, or at
    ``temp_cell`` (e.g. 25 °C cells and no DC losses for a physical upper bound); 0 while the sun is down."""
    sky = sky_at(unixtime, latitude, longitude, altitude)
    return plant_power(
        sky,
        sky.clear,
        surface_tilt,
        surface_azimuth,
        capacity_dc_kwp,
        capacity_ac_kw,
        temp_cell=temp_cell,
        dc_losses=dc_losses,
    ).ac_power_kw
