"""Train/serve parity: the tensor built through the offline path (Feast historical retrieval) equals, on
every feature, the tensor built through the online path after materialization — SQLite and real Redis.

The comparison is made at a past daytime instant (20:00 UTC: afternoon in Miami and Greensboro, late
morning in Sand Point) so that the telemetry channels are live, not zeros. Materializing a past instant
would rewind the shared demo store's online state, so the SQLite side uses a copy of the store folder.
"""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from feature_repo.store import (
    StoreConfig,
    frame_rows,
    materialize,
    open_store,
    read_offline,
    read_online,
    registered_parks,
)
from pvcast.pv.features import FEATURE_NAMES, ModelInputs, build_inputs

pytestmark = pytest.mark.integration


def offline_and_online(
    config: StoreConfig, end, online_config: StoreConfig
) -> tuple[ModelInputs, ModelInputs, dict, dict]:  # type: ignore[no-untyped-def]
    parks = [p.park_id for p in registered_parks(config)]
    issued = np.full(len(parks), end.value // 10**9)
    offline_rows = frame_rows(read_offline(open_store(config), parks, [end] * len(parks)))
    online_rows = read_online(open_store(online_config), parks)
    spec_inputs = [build_inputs(r, issued, _spec()) for r in (offline_rows, online_rows)]
    return spec_inputs[0], spec_inputs[1], offline_rows, online_rows


def _spec():  # type: ignore[no-untyped-def]
    from training.config import TrainConfig

    return TrainConfig().spec


@pytest.fixture(scope="module")
def daytime(demo_store) -> pd.Timestamp:  # type: ignore[no-untyped-def]
    """The last 20:00 UTC at least two days before the end of the data."""
    return (demo_store.end - pd.Timedelta(days=2)).floor("D") + pd.Timedelta(hours=20)


@pytest.fixture(scope="module")
def sqlite_pair(demo_store, daytime, tmp_path_factory):  # type: ignore[no-untyped-def]
    copy = tmp_path_factory.mktemp("parity") / "store"
    shutil.copytree(demo_store.config.repo_path, copy)
    online = StoreConfig(repo_path=copy)
    materialize(open_store(online), daytime)
    return offline_and_online(demo_store.config, daytime, online)


@pytest.fixture(scope="module")
def redis_pair(demo_store, daytime, redis_url):  # type: ignore[no-untyped-def]
    redis_config = StoreConfig(repo_path=demo_store.config.repo_path, online="redis", redis_url=redis_url)
    materialize(open_store(redis_config), daytime)
    return offline_and_online(demo_store.config, daytime, redis_config)


@pytest.mark.parametrize("pair", ["sqlite_pair", "redis_pair"])
def test_every_park_has_full_inputs_on_both_paths(request: pytest.FixtureRequest, pair: str) -> None:
    offline, online, _, _ = request.getfixturevalue(pair)
    for inputs in (offline, online):
        assert inputs.park_known.all() and inputs.weather_ok.all()
        assert inputs.measured_ok.all(), "telemetry should be live at 20:00 UTC for every demo park"


@pytest.mark.parametrize("name", FEATURE_NAMES)
def test_feature_parity_sqlite(sqlite_pair, name: str) -> None:  # type: ignore[no-untyped-def]
    offline, online, _, _ = sqlite_pair
    i = FEATURE_NAMES.index(name)
    np.testing.assert_array_equal(offline.features[..., i], online.features[..., i])


@pytest.mark.parametrize("name", FEATURE_NAMES)
def test_feature_parity_redis(redis_pair, name: str) -> None:  # type: ignore[no-untyped-def]
    offline, online, _, _ = redis_pair
    i = FEATURE_NAMES.index(name)
    np.testing.assert_array_equal(offline.features[..., i], online.features[..., i])


def test_raw_values_identical_through_redis(redis_pair) -> None:  # type: ignore[no-untyped-def]
    """Not only the tensors: every raw feature value (arrays as float32) round-trips Redis unchanged."""
    _, _, offline_rows, online_rows = redis_pair
    for name, values in online_rows.items():
        for a, b in zip(offline_rows[name], values, strict=True):
            np.testing.assert_array_equal(
                np.asarray(a, dtype=object if isinstance(a, str) else np.float64),
                np.asarray(b, dtype=object if isinstance(b, str) else np.float64),
            )
    np.testing.assert_array_equal(offline_rows["park_id"], online_rows["park_id"])


def test_capacity_and_valid_times_match(sqlite_pair) -> None:  # type: ignore[no-untyped-def]
    offline, online, _, _ = sqlite_pair
    np.testing.assert_array_equal(offline.capacity_ac_kw, online.capacity_ac_kw)
    np.testing.assert_array_equal(offline.valid_time, online.valid_time)
