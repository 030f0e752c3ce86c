"""GEFCom's hourly forecasts through the shared tensor builder, and the telemetry flag of the feature spec."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pvcast.contract import FeatureSpec
from pvcast.pv.features import FEATURE_NAMES, build_inputs
from pvcast.pv.plant import PARK_FEATURES
from pvcast.schema import WEATHER_VARIABLES
from training.sources import gef2014 as gefcom

RUN = pd.Timestamp("2013-07-10", tz="UTC")
HOURLY = FeatureSpec(step_seconds=3600, horizon_steps=24)
MEASURED = ("measured_csi", "measured_available", "measured_age")


def rows() -> dict[str, list[object]]:
    """One zone-1 run at 00 UTC with a clear-ish day, and the measurement of 23:00–24:00 the day before."""
    park = gefcom.zone_parks()[0]
    out: dict[str, list[object]] = {"park_id": [park.park_id]}
    out |= {k: [getattr(park, k)] for k in PARK_FEATURES}
    hours = np.arange(24)
    daylight = np.clip(np.sin((hours + 3.5) / 12 * np.pi), 0, None)  # 20:30–08:30 UTC is day at 145° E
    weather = {
        "ghi": 500 * daylight, "dni": 600 * daylight, "dhi": 100 * daylight, "temp_air": np.full(24, 10.0),
        "wind_speed": np.full(24, 3.0), "cloud_cover": np.full(24, 20.0), "relative_humidity": np.full(24, 70.0),
    }  # fmt: skip
    out |= {k: [np.asarray(weather[k], np.float32)] for k in WEATHER_VARIABLES}
    out["valid_from_epoch_s"] = [int(RUN.timestamp())]
    out["step_seconds"] = [3600]
    out["power_kw"] = [0.8]
    out["valid_time_epoch_s"] = [int(RUN.timestamp()) - 3600]
    return out


def test_the_00utc_run_gives_24_hourly_steps_starting_at_the_issue_time() -> None:
    x = build_inputs(rows(), np.array([int(RUN.timestamp())]), HOURLY)
    assert x.weather_ok[0] and x.park_known[0]
    assert x.valid_time[0, 0] == int(RUN.timestamp())
    assert np.all(np.diff(x.valid_time[0]) == 3600)
    up = x.features[0, :, FEATURE_NAMES.index("solar_elevation")] > 0
    assert up[:7].all() and not up[10:18].any()  # Australian winter day in UTC: morning of the run, night after


def test_use_telemetry_false_blanks_only_the_measured_channels() -> None:
    issued = np.array([int(RUN.timestamp())])
    live = build_inputs(rows(), issued, HOURLY)
    blank = build_inputs(rows(), issued, FeatureSpec(step_seconds=3600, horizon_steps=24, use_telemetry=False))
    index = [FEATURE_NAMES.index(n) for n in MEASURED]
    assert live.measured_ok[0] and not blank.measured_ok[0]
    np.testing.assert_array_equal(blank.features[0, :, index].T, np.tile([0.0, 0.0, 1.0], (24, 1)))
    others = [i for i in range(len(FEATURE_NAMES)) if i not in index]
    np.testing.assert_array_equal(live.features[..., others], blank.features[..., others])
    nothing = rows() | {"power_kw": [None], "valid_time_epoch_s": [None]}
    no_data = build_inputs(nothing, issued, HOURLY)
    np.testing.assert_array_equal(no_data.features, blank.features)  # blanked = no measurement known
