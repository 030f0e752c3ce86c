"""The feature store layer: point-in-time retrieval, table contracts, park registry, Redis configuration."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from feature_repo.store import (
    StoreConfig,
    init_store,
    read_offline,
    read_table,
    redis_connection_string,
    registered_parks,
    write_table,
)
from pvcast.errors import DataNotFoundError, NaiveTimestampError
from pvcast.pv.plant import Park, parks_frame
from pvcast.schema import GENERATION_VIEW, PARK_VIEW, WEATHER_VARIABLES, WEATHER_VIEW

T0 = pd.Timestamp("2026-03-01 00:00", tz="UTC")
PARK = Park(
    park_id="p1",
    latitude=45.0,
    longitude=8.0,
    altitude=200,
    capacity_dc_kwp=120,
    capacity_ac_kw=100,
    surface_tilt=30,
    surface_azimuth=180,
)


def weather_run(issued: pd.Timestamp, marker: float) -> dict[str, object]:
    row: dict[str, object] = {
        "park_id": "p1",
        "issued_at": issued,
        "valid_from_epoch_s": int(issued.timestamp()),
        "step_seconds": 900,
    }
    row |= {v: np.full(192, marker, dtype=np.float32) for v in WEATHER_VARIABLES}
    return row


@pytest.fixture
def tiny_store(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Two weather runs (00:00 marked 1, 06:00 marked 2) and telemetry for 04:00–08:00."""
    config = StoreConfig(repo_path=tmp_path / "store")
    store = init_store(config)
    write_table(config, PARK_VIEW, parks_frame([PARK], T0 - pd.Timedelta(days=1)))
    write_table(
        config,
        WEATHER_VIEW,
        pd.DataFrame([weather_run(T0, 1.0), weather_run(T0 + pd.Timedelta(hours=6), 2.0)]),
    )
    valid = pd.date_range(T0 + pd.Timedelta(hours=4), periods=16, freq="15min")
    gen = pd.DataFrame(
        {
            "park_id": "p1",
            "valid_time_epoch_s": valid.astype("int64") // 10**9,
            "power_kw": np.arange(16, dtype=np.float32),
            "event_timestamp": valid + pd.Timedelta(minutes=15),
        }
    )
    write_table(config, GENERATION_VIEW, gen)
    return store, config


def offline_at(store, when: pd.Timestamp) -> pd.Series:  # type: ignore[no-untyped-def]
    return read_offline(store, ["p1"], [when]).iloc[0]


def test_weather_issued_after_the_request_is_never_joined(tiny_store) -> None:  # type: ignore[no-untyped-def]
    store, _ = tiny_store
    before = offline_at(store, T0 + pd.Timedelta(hours=6) - pd.Timedelta(seconds=1))
    at = offline_at(store, T0 + pd.Timedelta(hours=6))
    assert before["ghi"][0] == 1.0 and before["valid_from_epoch_s"] == int(T0.timestamp())
    assert at["ghi"][0] == 2.0


def test_telemetry_is_known_only_once_its_interval_has_ended(tiny_store) -> None:  # type: ignore[no-untyped-def]
    """The interval 05:00–05:15 (power 4) is known at 05:15, not at 05:14."""
    store, _ = tiny_store
    early = offline_at(store, T0 + pd.Timedelta(hours=5, minutes=14))
    known = offline_at(store, T0 + pd.Timedelta(hours=5, minutes=15))
    assert early["power_kw"] == 3.0
    assert known["power_kw"] == 4.0 and known["valid_time_epoch_s"] == int((T0 + pd.Timedelta(hours=5)).timestamp())


def test_read_offline_keeps_the_request_order(tiny_store) -> None:  # type: ignore[no-untyped-def]
    store, _ = tiny_store
    times = [T0 + pd.Timedelta(hours=h) for h in (7, 5, 6)]
    frame = read_offline(store, ["p1"] * 3, times)
    assert [f[0] for f in frame["ghi"]] == [2.0, 1.0, 2.0]


def test_tables_reject_naive_timestamps_and_missing_columns(tmp_path: Path) -> None:
    config = StoreConfig(repo_path=tmp_path)
    naive = pd.DataFrame([weather_run(T0, 1.0)]).assign(issued_at=pd.Timestamp("2026-03-01 00:00"))
    with pytest.raises(NaiveTimestampError):
        write_table(config, WEATHER_VIEW, naive)
    with pytest.raises(ValueError, match="lacks columns"):
        write_table(config, WEATHER_VIEW, naive.drop(columns="ghi"))


def test_registered_parks_are_the_latest_version_of_each(tiny_store) -> None:  # type: ignore[no-untyped-def]
    _, config = tiny_store
    updated = PARK.model_copy(update={"capacity_ac_kw": 110.0})
    table = pd.concat([read_table(config, PARK_VIEW), parks_frame([updated], T0)])
    write_table(config, PARK_VIEW, table)
    assert registered_parks(config) == [updated]


def test_each_store_keeps_its_registry_in_its_own_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: Feast resolved the registry against the working directory, so stores shared one."""
    monkeypatch.chdir(tmp_path)
    for name in ("a", "b"):
        init_store(StoreConfig(repo_path=tmp_path / name))
        assert (tmp_path / name / "data" / "registry.db").exists()
    assert not (tmp_path / "data").exists()


def test_reading_an_empty_store_says_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError, match="pvcast demo"):
        read_table(StoreConfig(repo_path=tmp_path), GENERATION_VIEW)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://127.0.0.1:6379/15", "127.0.0.1:6379,db=15"),
        ("redis://:s%40cret@redis.pvcast:6380/0", "redis.pvcast:6380,db=0,password=s@cret"),
        ("rediss://cache.example", "cache.example:6379,db=0,ssl=true"),
    ],
)
def test_redis_url_becomes_feast_connection_string(url: str, expected: str) -> None:
    assert redis_connection_string(url) == expected


def test_malformed_redis_url_is_rejected() -> None:
    with pytest.raises(ValueError, match="REDIS_URL"):
        redis_connection_string("localhost:6379")


def test_append_is_idempotent_and_only_moves_online_forward(tiny_store) -> None:  # type: ignore[no-untyped-def]
    """Re-sending rows adds nothing; a late, older row is stored offline but does not replace the online value."""
    from feature_repo.store import append_rows, read_online

    store, config = tiny_store
    t = T0 + pd.Timedelta(hours=9)
    start = int(t.timestamp())
    batch = pd.DataFrame(
        {
            "park_id": ["p1", "p1", "p1"],
            "valid_time_epoch_s": [start, start, start + 900],
            "power_kw": np.float32([50, 51, 60]),
            "event_timestamp": [t + pd.Timedelta(minutes=m) for m in (15, 15, 30)],
        }
    )
    before = len(read_table(config, GENERATION_VIEW))
    first = append_rows(store, config, GENERATION_VIEW, batch)
    again = append_rows(store, config, GENERATION_VIEW, batch)
    assert (first.appended, first.duplicates, first.pushed_online) == (2, 1, 1)
    assert (again.appended, again.duplicates, again.pushed_online) == (0, 3, 0)
    assert len(read_table(config, GENERATION_VIEW)) == before + 2
    assert read_online(store, ["p1"])["power_kw"] == [60.0]
    late = batch.iloc[:1].assign(
        valid_time_epoch_s=int((T0 + pd.Timedelta(hours=8)).timestamp()),
        event_timestamp=T0 + pd.Timedelta(hours=8, minutes=15),
    )
    result = append_rows(store, config, GENERATION_VIEW, late)
    assert (result.appended, result.pushed_online) == (1, 0)
    assert read_online(store, ["p1"])["power_kw"] == [60.0]
