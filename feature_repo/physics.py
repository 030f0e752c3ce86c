"""Physics of a PV park as small, pure, vectorised functions over pvlib.

Every derived feature that training and serving share is computed here and only here: solar position,
clear-sky irradiance, plane-of-array irradiance, cell temperature, a physics AC power estimate and time
encodings. Functions take and return numpy arrays that broadcast (e.g. times of shape ``(n_parks, n_steps)``
against park constants of shape ``(n_parks, 1)``); they do no I/O, logging or configuration.

Time is passed as ``unixtime``: seconds since 1970-01-01 UTC (float64), so there is no timezone to get wrong.
Angles are in degrees, irradiance in [W m⁻²], temperature in [°C], power in [kW].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pvlib import atmosphere, clearsky, inverter, irradiance, pvsystem, spa, temperature

FloatArray = NDArray[np.float64]

SOLAR_CONSTANT = 1366.1
"""[W m⁻²], pvlib's default, so our extraterrestrial irradiance matches pvlib's own functions."""
DELTA_T = 69.0
"""TT − UT1 [s]; within ±2 s of the measured value for 2015–2030, well below SPA's 0.0003° budget."""
INVERTER_EFFICIENCY = 0.96
"""PVWatts nominal inverter efficiency [-]: the inverter's DC limit is capacity_ac_kw / 0.96."""


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
    dc_losses: float = 0.14,
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
