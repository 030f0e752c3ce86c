"""Telemetry import on the real Kaggle plant (22 inverters, UTC+05:30) and on the canonical CSV.

The Kaggle plant's location and capacity were never published. The tests register it with ASSUMED metadata,
stated here and in docs/operations.md: latitude 15.0° N (southern India; assumed), longitude 78.3° E (where the
data's power-weighted solar noon, 06:47 UTC, puts it), 300 m, 33,000 kWp DC / 30,000 kW AC (the plant's
largest 15-minute AC sum is 29,150 kW), fixed tilt 15° facing south.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from feature_repo.store import read_table
from pvcast.errors import NaiveTimestampError
from pvcast.schema import GENERATION_VIEW
from pvcast.settings import StoreConfig
from training.cli import main
from training.quarantine import read_quarantine
from training.sources.scada import TelemetryFormatError, parse_pvcast_csv, read_telemetry

KAGGLE_PARK = {
    "park-id": "kaggle-plant-1",
    "latitude": "15.0",
    "longitude": "78.3",
    "altitude": "300",
    "capacity-dc-kwp": "33000",
    "capacity-ac-kw": "30000",
    "surface-tilt": "15",
    "surface-azimuth": "180",
}
SLOTS_EXPECTED = 3264  # 34 days × 96
SLOTS_PRESENT = 3158
SLOTS_PARTIAL = 101  # fewer than 22 inverters reported


@pytest.fixture(scope="module")
def kaggle_csv(shared_data: Path) -> Path:
    return shared_data / "kaggle_plant" / "Plant_1_Generation_Data.csv"


@pytest.mark.data
def test_kaggle_inverters_are_summed_per_slot_in_utc_with_gaps_kept(kaggle_csv: Path) -> None:
    frame = read_telemetry(kaggle_csv, "kaggle", "kaggle-plant-1")
    raw = pd.read_csv(kaggle_csv)
    assert len(raw) == 68778 and raw["SOURCE_KEY"].nunique() == 22
    assert len(frame) == SLOTS_PRESENT  # one row per reported slot; the 106 empty slots stay absent
    assert frame["valid_time"].iloc[0] == pd.Timestamp("2020-05-14T18:30Z")  # 15-05-2020 00:00 IST
    assert frame["valid_time"].iloc[-1] == pd.Timestamp("2020-06-17T18:15Z")  # 17-06-2020 23:45 IST
    assert str(frame["valid_time"].dt.tz) == "UTC"
    noon = raw[raw["DATE_TIME"] == "15-05-2020 12:00"]
    row = frame[frame["valid_time"] == pd.Timestamp("2020-05-15T06:30Z")].iloc[0]
    np.testing.assert_allclose(row["power_kw"], noon["AC_POWER"].sum())
    np.testing.assert_allclose(row["dc_power_kw"], noon["DC_POWER"].sum())
    assert row["n_sources"] == 22 and (frame["expected_sources"] == 22).all()
    assert (frame["n_sources"] < 22).sum() == SLOTS_PARTIAL
    expected = pd.date_range(frame["valid_time"].iloc[0], frame["valid_time"].iloc[-1], freq="15min")
    assert len(expected) == SLOTS_EXPECTED


@pytest.mark.data
@pytest.mark.integration
def test_kaggle_import_quarantines_its_quirks_and_validate_flags_them(
    kaggle_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = StoreConfig(repo_path=tmp_path / "store")
    repo = ["--repo", str(config.repo_path)]
    park = [arg for k, v in KAGGLE_PARK.items() for arg in (f"--{k}", v)]
    assert main([*repo, "ingest", "park", *park, "--effective-from", "2020-01-01T00:00Z"]) == 0
    assert "registered" in capsys.readouterr().out
    telemetry = [*repo, "ingest", "telemetry", "--csv", str(kaggle_csv), "--format", "kaggle"]
    assert main([*telemetry, "--park-id", "kaggle-plant-1", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    stored = read_table(config, GENERATION_VIEW)
    quarantine = read_quarantine(config)
    assert len(stored) + len(quarantine) == SLOTS_PRESENT  # nothing silently dropped
    assert (quarantine["reasons"].str.contains("incomplete_sources")).sum() == SLOTS_PARTIAL
    assert len(quarantine) < SLOTS_PARTIAL + 0.02 * SLOTS_PRESENT  # the rest: above the assumed clear sky
    assert not stored["valid_time_epoch_s"].isin(pd.to_datetime(quarantine["key"]).astype("int64") // 10**9).any()
    start = pd.to_datetime(stored["valid_time_epoch_s"], unit="s", utc=True)
    assert (stored["event_timestamp"] - start == pd.Timedelta(minutes=15)).all()  # known at interval end
    assert report["appended"] == len(stored) and report["quarantined"] == len(quarantine)
    assert report["quality"]["missing_slots"] == SLOTS_EXPECTED - SLOTS_PRESENT

    assert main([*telemetry, "--park-id", "kaggle-plant-1"]) == 0  # idempotent
    assert "0 new" in capsys.readouterr().out
    assert len(read_table(config, GENERATION_VIEW)) == len(stored)

    assert main([*repo, "validate", "--csv", str(kaggle_csv), "--format", "kaggle", "--park-id", "kaggle-plant-1"]) == 0
    text = capsys.readouterr().out
    assert "106 of 3264 15-minute slots missing (3.2 %)" in text
    assert "DC ≈ 10.2" in text and f"quarantined {SLOTS_PARTIAL:>6}  incomplete_sources" in text

    assert main([*repo, "validate", "--json", "--park", "kaggle-plant-1"]) == 0
    reports = json.loads(capsys.readouterr().out)
    generation = next(r for r in reports if r["source"] == "generation")
    span = (stored["valid_time_epoch_s"].max() - stored["valid_time_epoch_s"].min()) // 900 + 1
    assert generation["expected_slots"] == span and generation["present_slots"] == len(stored)
    assert 85 < generation["score"] < 95
    assert any("rows quarantined at import" in f and "incomplete_sources" in f for f in generation["findings"])
    assert main([*repo, "validate", "--park", "kaggle-plant-1", "--min-score", "99"]) == 1


@pytest.mark.data
def test_a_telemetry_file_for_an_unregistered_park_is_a_one_line_error(
    kaggle_csv: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    args = ["--repo", str(tmp_path), "ingest", "telemetry", "--csv", str(kaggle_csv), "--format", "kaggle"]
    assert main([*args, "--park-id", "kaggle-plant-1"]) == 2
    assert "unknown park_id 'kaggle-plant-1'" in caplog.text


def test_the_canonical_csv_needs_explicit_offsets(tmp_path: Path) -> None:
    good = b"valid_time,power_kw\n2026-06-01T12:00:00+02:00,10.5\n2026-06-01T10:15:00Z,11\n"
    frame = parse_pvcast_csv(good, "p1")
    assert frame["valid_time"].tolist() == [pd.Timestamp("2026-06-01T10:00Z"), pd.Timestamp("2026-06-01T10:15Z")]
    with pytest.raises(NaiveTimestampError, match="no UTC offset"):
        parse_pvcast_csv(b"valid_time,power_kw\n2026-06-01T12:00:00,1\n", "p1")
    with pytest.raises(TelemetryFormatError, match="valid_time and power_kw"):
        parse_pvcast_csv(b"time,power\n", "p1")
    (tmp_path / "x.csv").write_bytes(good)
    with pytest.raises(TelemetryFormatError, match="not a Kaggle generation export"):
        read_telemetry(tmp_path / "x.csv", "kaggle", "p1")
