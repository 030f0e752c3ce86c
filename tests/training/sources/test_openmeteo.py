"""Open-Meteo ingestion: ``parse_*`` on the fixture responses, then the real client (openmeteo-requests with
requests-cache and retry-requests) against a local server replaying them (tests/fixtures/openmeteo).

The fixtures are GENERATED (``tests/fixtures/openmeteo/make_fixtures.py``, no network here) and encoded by our
own flatbuffers encoder (``encode.py``) from Open-Meteo's documented schema: these tests prove our parsing and
ingestion against that schema as we encode it, not against bytes the real API sent."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from feature_repo.store import open_store, read_online, read_table
from pvcast.schema import WEATHER_VARIABLES, WEATHER_VIEW
from pvcast.settings import StoreConfig
from tests.fixtures.openmeteo.encode import encode_body
from tests.fixtures.openmeteo.replay import Replay, replay_server
from training.cli import main
from training.sources.openmeteo import (
    VARIABLE_MAP,
    OpenMeteoError,
    decode_messages,
    forecast_rows,
    parse_forecast,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "openmeteo"
PARKS = ["synthetic-greensboro", "synthetic-miami"]
ISSUED = "2026-06-01T12:00Z"
PARK_OPTIONS = {
    "synthetic-greensboro": ["36.1", "-79.95", "273", "5000", "4000", "25", "180"],
    "synthetic-miami": ["25.8", "-80.26666666666667", "2", "3000", "2300", "15", "195"],
}
FIELDS = ["latitude", "longitude", "altitude", "capacity-dc-kwp", "capacity-ac-kw", "surface-tilt", "surface-azimuth"]


def fixture_body(name: str) -> bytes:
    return (FIXTURES / f"{name}.fb").read_bytes()


def fixture_json(name: str) -> list[dict]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


# --- parse_* on the fixture responses ---------------------------------------------------------------------


def test_fixture_flatbuffers_equal_their_json_twins() -> None:
    """Each .fb fixture is exactly the flatbuffers encoding of its readable .json twin."""
    for path in FIXTURES.glob("*.fb"):
        assert encode_body(fixture_json(path.stem)) == path.read_bytes(), path.name


def test_parse_renames_once_and_labels_intervals_by_their_beginning() -> None:
    """Radiation (mean of the PRECEDING 15 min) stamped t + 15 min describes [t, t + 15 min); instantaneous
    variables get the mean of their values at both ends."""
    frame = parse_forecast(fixture_body("forecast_greensboro_miami"), PARKS)
    raw = fixture_json("forecast_greensboro_miami")
    assert list(frame.columns) == ["park_id", "valid_time", *VARIABLE_MAP.values()]
    assert set(VARIABLE_MAP.values()) == set(WEATHER_VARIABLES)
    assert len(frame) == 2 * 192 and frame["park_id"].tolist() == [PARKS[0]] * 192 + [PARKS[1]] * 192
    first = frame[frame["park_id"] == PARKS[1]].reset_index(drop=True)
    block = raw[1]["minutely_15"]
    assert first["valid_time"].iloc[0] == pd.Timestamp("2026-06-01T12:00Z")
    assert first["valid_time"].iloc[-1] == pd.Timestamp("2026-06-03T11:45Z")
    k = 80  # an afternoon interval in Miami
    np.testing.assert_allclose(first["ghi"].iloc[k], block["shortwave_radiation"][k + 1], rtol=1e-6)
    np.testing.assert_allclose(first["dni"].iloc[k], block["direct_normal_irradiance"][k + 1], rtol=1e-6)
    np.testing.assert_allclose(first["dhi"].iloc[k], block["diffuse_radiation"][k + 1], rtol=1e-6)
    expected_temp = (block["temperature_2m"][k] + block["temperature_2m"][k + 1]) / 2
    np.testing.assert_allclose(first["temp_air"].iloc[k], expected_temp, rtol=1e-6)
    np.testing.assert_allclose(first["wind_speed"].iloc[k], np.mean(block["wind_speed_10m"][k : k + 2]), rtol=1e-6)
    assert first["ghi"].max() > 500 and first["ghi"].min() == 0  # a day and a night


def test_a_response_in_another_unit_is_refused() -> None:
    raw = fixture_json("forecast_greensboro")
    raw[0]["minutely_15_units"]["wind_speed_10m"] = "km/h"
    with pytest.raises(OpenMeteoError, match="wind_speed_10m comes in unit"):
        parse_forecast(encode_body(raw), PARKS[:1])


def test_partial_and_short_responses_are_refused() -> None:
    body = fixture_body("forecast_greensboro_miami")
    with pytest.raises(OpenMeteoError, match="partial response"):
        decode_messages(body[: len(body) - 100])
    with pytest.raises(OpenMeteoError, match="1 locations for 2 parks"):
        parse_forecast(fixture_body("forecast_greensboro"), PARKS)
    raw = fixture_json("forecast_greensboro")
    del raw[0]["minutely_15"]["cloud_cover"]
    with pytest.raises(OpenMeteoError, match="lacks cloud_cover"):
        parse_forecast(encode_body(raw), PARKS[:1])


def test_runs_start_at_their_issue_time_and_skip_issue_times_outside_the_response() -> None:
    frame = parse_forecast(fixture_body("forecast_greensboro"), PARKS[:1])
    issued = [pd.Timestamp("2026-06-01T12:00Z"), pd.Timestamp("2026-06-02T12:00Z"), pd.Timestamp("2026-06-09T00:00Z")]
    rows = forecast_rows(frame, issued, hours=48)
    assert rows["issued_at"].tolist() == issued[:2]
    assert [len(a) for a in rows["ghi"]] == [192, 96]  # the second run ends with the response
    assert rows["valid_from_epoch_s"].tolist() == [int(t.timestamp()) for t in issued[:2]]
    np.testing.assert_allclose(rows["ghi"].iloc[1][:4], frame["ghi"].iloc[96:100], rtol=1e-6)


# --- the real client against the replay server ----------------------------------------------------------


@pytest.fixture
def replay(monkeypatch: pytest.MonkeyPatch) -> Iterator[Replay]:
    with replay_server() as server:
        monkeypatch.setenv("PVCAST_OPENMETEO_URL", server.forecast_url)
        monkeypatch.setenv("PVCAST_OPENMETEO_HISTORICAL_URL", server.historical_url)
        monkeypatch.setenv("PVCAST_OPENMETEO_BACKOFF", "0.01")
        yield server


@pytest.fixture
def park_store(tmp_path: Path) -> StoreConfig:
    """A fresh store with the two demo parks registered through `pvcast ingest park`."""
    config = StoreConfig(repo_path=tmp_path / "store")
    for park_id, values in PARK_OPTIONS.items():
        options = [arg for name, value in zip(FIELDS, values, strict=True) for arg in (f"--{name}", value)]
        args = ["--repo", str(config.repo_path), "ingest", "park", "--park-id", park_id, *options]
        assert main([*args, "--effective-from", "2026-01-01T00:00Z"]) == 0
    return config


def ingest(config: StoreConfig, tmp_path: Path, *extra: str) -> int:
    cache = ["--cache", str(tmp_path / "cache.sqlite")]
    return main(["--repo", str(config.repo_path), "ingest", "weather", *cache, *extra])


@pytest.mark.integration
def test_ingestion_stores_renamed_runs_offline_and_online_and_a_rerun_adds_nothing(
    park_store: StoreConfig, replay: Replay, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert ingest(park_store, tmp_path, "--issued-at", ISSUED) == 0
    assert "2 runs fetched, 2 new" in capsys.readouterr().out
    table = read_table(park_store, WEATHER_VIEW)
    assert sorted(table["park_id"]) == PARKS and len(replay.hits) == 1
    assert (table["issued_at"] == pd.Timestamp(ISSUED)).all() and [len(a) for a in table["ghi"]] == [192, 192]
    expected = parse_forecast(fixture_body("forecast_greensboro_miami"), PARKS)
    np.testing.assert_allclose(np.concatenate(table.sort_values("park_id")["temp_air"].tolist()), expected["temp_air"])
    online = read_online(open_store(park_store), PARKS)
    assert [len(a) for a in online["ghi"]] == [192, 192]
    assert online["valid_from_epoch_s"] == [int(pd.Timestamp(ISSUED).timestamp())] * 2

    assert ingest(park_store, tmp_path, "--issued-at", "2026-06-01T11:50Z") == 0  # same 15-min slot, cached
    assert "0 new, 2 already stored" in capsys.readouterr().out
    assert len(replay.hits) == 1  # answered by the HTTP cache
    assert ingest(park_store, tmp_path, "--issued-at", ISSUED, "--no-cache") == 0
    assert "0 new, 2 already stored" in capsys.readouterr().out
    assert len(replay.hits) == 2 and len(read_table(park_store, WEATHER_VIEW)) == 2


@pytest.mark.integration
def test_a_failing_then_malformed_response_is_retried_and_stored(
    park_store: StoreConfig, replay: Replay, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An HTTP 500 is retried by retry-requests; a truncated body and a garbage body by pvcast, bypassing
    the cache (which never stored them)."""
    replay.fail("forecast_greensboro_miami.fb", "500", "partial", "garbage")
    assert ingest(park_store, tmp_path, "--issued-at", ISSUED) == 0
    assert "2 runs fetched, 2 new" in capsys.readouterr().out
    assert len(replay.hits) == 4
    assert len(read_table(park_store, WEATHER_VIEW)) == 2


@pytest.mark.integration
def test_a_persistently_partial_response_is_reported_without_losing_what_was_stored(
    park_store: StoreConfig, replay: Replay, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    replay.fail("forecast_miami.fb", "partial", "partial", "partial")
    assert ingest(park_store, tmp_path, "--issued-at", ISSUED, "--batch-size", "1") == 1
    out = capsys.readouterr().out
    assert "FAILED: Open-Meteo failed for synthetic-miami after 3 attempts" in out and "partial response" in out
    assert read_table(park_store, WEATHER_VIEW)["park_id"].tolist() == ["synthetic-greensboro"]

    assert ingest(park_store, tmp_path, "--issued-at", ISSUED, "--batch-size", "1") == 0  # the feed recovered
    assert "1 new, 1 already stored" in capsys.readouterr().out
    assert sorted(read_table(park_store, WEATHER_VIEW)["park_id"]) == PARKS


@pytest.mark.integration
def test_backfill_cuts_historical_forecasts_into_daily_runs_idempotently(
    park_store: StoreConfig, replay: Replay, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    backfill = ["--backfill", "2026-05-01T00:00Z", "2026-05-02T00:00Z", "--no-cache"]
    assert ingest(park_store, tmp_path, *backfill) == 0
    assert "4 runs fetched, 4 new" in capsys.readouterr().out
    assert replay.hits[0][0] == "/historical/v1/forecast"
    assert (replay.hits[0][1]["start_date"], replay.hits[0][1]["end_date"]) == ("2026-05-01", "2026-05-04")
    table = read_table(park_store, WEATHER_VIEW).sort_values(["park_id", "issued_at"])
    assert table["issued_at"].dt.strftime("%m-%dT%H").tolist() == ["05-01T00", "05-02T00"] * 2
    assert all(len(a) == 192 for a in table["ghi"])
    assert ingest(park_store, tmp_path, *backfill) == 0
    assert "4 runs fetched, 0 new, 4 already stored" in capsys.readouterr().out
    assert len(read_table(park_store, WEATHER_VIEW)) == 4


@pytest.mark.integration
def test_an_unregistered_park_is_a_one_line_user_error(
    park_store: StoreConfig, replay: Replay, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert ingest(park_store, tmp_path, "--park", "nowhere") == 2
    assert "unknown park_id 'nowhere'" in caplog.text
    assert replay.hits == []
