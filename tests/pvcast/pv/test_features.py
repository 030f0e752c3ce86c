"""The shared tensor builder: alignment of forecast arrays, missing data, derived physics channels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pvcast.contract import FeatureSpec
from pvcast.pv.features import ELEVATION_CHANNEL, FEATURE_NAMES, build_inputs
from pvcast.schema import WEATHER_VARIABLES

SPEC = FeatureSpec(step_seconds=900, horizon_steps=96)
RUN = int(pd.Timestamp("2026-06-21 00:00", tz="UTC").timestamp())
PARK = {
    "latitude": 36.1,
    "longitude": -79.9,
    "altitude": 270.0,
    "capacity_dc_kwp": 5000.0,
    "capacity_ac_kw": 4000.0,
    "surface_tilt": 25.0,
    "surface_azimuth": 180.0,
}


REALISTIC = {
    "ghi": 500,
    "dni": 600,
    "dhi": 100,
    "temp_air": 25,
    "wind_speed": 3,
    "cloud_cover": 40,
    "relative_humidity": 60,
}


def rows(
    n: int = 1,
    *,
    weather: bool = True,
    park: bool = True,
    power: float | None = None,
    measured_at: int | None = None,
    realistic: bool = False,
) -> dict[str, list[object]]:
    """Feature-service rows; weather variable v at step k holds 1000*i_v + k so slices are identifiable
    (or constant physical values with ``realistic``)."""
    out: dict[str, list[object]] = {"park_id": [f"p{i}" for i in range(n)]}
    for key, value in PARK.items():
        out[key] = [value if park else None] * n
    for i, name in enumerate(WEATHER_VARIABLES):
        values = (
            np.full(192, REALISTIC[name], np.float32)
            if realistic
            else np.arange(192, dtype=np.float32) + 1000 * (i + 1)
        )
        out[name] = [values if weather else None] * n
    out["valid_from_epoch_s"] = [RUN if weather else None] * n
    out["step_seconds"] = [900 if weather else None] * n
    out["power_kw"] = [power] * n
    out["valid_time_epoch_s"] = [measured_at] * n
    return out


def channel(inputs, name: str) -> np.ndarray:  # type: ignore[no-untyped-def]
    return inputs.features[..., FEATURE_NAMES.index(name)]


def test_forecast_starts_at_first_step_at_or_after_issue_time_and_slices_the_run() -> None:
    issued = RUN + 2 * 3600 + 7 * 60  # 02:07 → first interval 02:15 = step 9 of the run
    x = build_inputs(rows(), np.array([issued]), SPEC)
    assert x.valid_time[0, 0] == RUN + 9 * 900
    assert np.all(np.diff(x.valid_time[0]) == 900)
    np.testing.assert_allclose(channel(x, "ghi")[0] * 1000, 1000 + np.arange(9, 105))
    np.testing.assert_allclose(channel(x, "weather_lead")[0] * 48 * 3600, np.arange(9, 105) * 900)
    assert x.weather_ok[0] and x.park_known[0]


def test_issue_time_on_a_boundary_starts_there() -> None:
    x = build_inputs(rows(), np.array([RUN + 3600]), SPEC)
    assert x.valid_time[0, 0] == RUN + 3600


def test_forecast_too_short_for_the_horizon_is_flagged() -> None:
    x = build_inputs(rows(), np.array([RUN + 40 * 3600]), SPEC)  # 40 h into a 48 h run: 8 h left < 24 h
    assert not x.weather_ok[0]
    assert np.all(channel(x, "ghi") == 0)


def test_forecast_issued_after_the_request_is_not_usable() -> None:
    x = build_inputs(rows(), np.array([RUN - 900]), SPEC)
    assert not x.weather_ok[0]


def test_missing_weather_and_unknown_park_are_flagged_not_raised() -> None:
    x = build_inputs(rows(2, weather=False, park=False), np.array([RUN, RUN]), SPEC)
    assert not x.weather_ok.any() and not x.park_known.any()
    assert np.isfinite(x.features).all()


def test_capacity_and_dc_ac_ratio() -> None:
    x = build_inputs(rows(), np.array([RUN]), SPEC)
    assert x.capacity_ac_kw[0, 0] == 4000.0
    np.testing.assert_allclose(channel(x, "dc_ac_ratio"), 5000 / 4000 / 2)


def test_physics_power_is_zero_at_night_and_positive_by_day() -> None:
    x = build_inputs(rows(realistic=True), np.array([RUN]), SPEC)  # 00 UTC = 20:00 local in NC: night, then day
    night = x.features[0, :, ELEVATION_CHANNEL] <= 0
    assert night.any() and (~night).any()
    assert np.all(channel(x, "physics_power")[0, night] == 0)
    assert np.all(channel(x, "physics_power_clearsky")[0, ~night & (channel(x, "solar_elevation")[0] > 10 / 90)] > 0)


def test_latest_daytime_measurement_sets_the_clear_sky_index() -> None:
    noon = int(pd.Timestamp("2026-06-21 16:00", tz="UTC").timestamp())  # ≈ solar noon in NC
    x = build_inputs(rows(power=2000.0, measured_at=noon), np.array([noon + 900 + 600]), SPEC)
    assert x.measured_ok[0]
    assert 0.4 < channel(x, "measured_csi")[0, 0] < 0.8  # half the inverter limit ≈ half of clear-sky power
    np.testing.assert_allclose(channel(x, "measured_age")[0, 0], 600 / (6 * 3600))


def test_night_measurement_is_not_used() -> None:
    night = int(pd.Timestamp("2026-06-21 05:00", tz="UTC").timestamp())
    x = build_inputs(rows(power=0.0, measured_at=night), np.array([night + 900]), SPEC)
    assert not x.measured_ok[0]
    assert channel(x, "measured_csi")[0, 0] == 0


@pytest.mark.parametrize("name", FEATURE_NAMES)
def test_every_channel_is_finite_and_order_one(name: str) -> None:
    x = build_inputs(rows(power=1500.0, measured_at=RUN + 18 * 3600, realistic=True), np.array([RUN + 20 * 3600]), SPEC)
    values = channel(x, name)
    assert np.isfinite(values).all()
    assert np.abs(values).max() <= 5.0, f"{name} is not scaled to order one"


def test_month_index_equals_pandas() -> None:
    """The numpy month lookup (hot path of every request) equals pandas' calendar month, at month edges too."""

    from pvcast.pv.physics import month_index

    t = np.random.default_rng(0).uniform(0, 4e9, 100_000).round()
    edges = [pd.Timestamp(f"2026-{m:02d}-01", tz="UTC").timestamp() for m in range(1, 13)]
    t = np.concatenate([t, t + 0.5, np.array(edges), np.array(edges) - 0.5])
    expected = pd.DatetimeIndex(pd.to_datetime(t, unit="s", utc=True)).month.to_numpy() - 1
    np.testing.assert_array_equal(month_index(t), expected)


def test_the_builders_park_constants_are_the_plant_models_fields() -> None:
    """The tensor builder reads exactly the plant model's fields (PARK_FEATURES) from the feature rows: the
    same names, in order, each an (n, 1) column; a row missing any of them is an unknown park."""
    from pvcast.pv.features import _park_constants
    from pvcast.pv.plant import PARK_FEATURES, ParkSpec

    rows = {name: [1.0, None] for name in PARK_FEATURES}
    constants, known = _park_constants(rows)
    assert list(constants) == list(PARK_FEATURES) == list(ParkSpec.model_fields)
    assert all(v.shape == (2, 1) for v in constants.values())
    assert known.tolist() == [True, False]
