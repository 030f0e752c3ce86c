"""The `pvcast` command line (training/cli): in process through ``training.cli.main`` and as the installed
console script in a real subprocess (what a Kubernetes Job runs).

Output contract: results on stdout, logs and errors on stderr; a user error is ONE line on stderr, no
traceback, exit code 2.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from feature_repo.store import registered_parks
from pvcast.pv.plant import PARK_FEATURES
from pvcast.schema import ENTITY_KEY
from training.cli import main

pytestmark = [
    pytest.mark.integration,
]

PVCAST = Path(sys.executable).with_name("pvcast")
DEMO_PARKS = ["synthetic-greensboro", "synthetic-miami", "synthetic-sandpoint"]
EVALUATE_ROWS = (
    "mae_kw",
    "nmae_pct",
    "rmse_kw",
    "pinball_q0.1_pct",
    "pinball_q0.5_pct",
    "pinball_q0.9_pct",
    "pinball_mean_pct",
    "coverage_p10_p90_day_pct",
)


def run_pvcast(*args: str) -> subprocess.CompletedProcess[str]:
    """The installed console script, with the test session's environment (its BentoML store)."""
    assert PVCAST.exists(), f"{PVCAST} missing: install the package (`make install`)"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PVCAST_")}
    return subprocess.run([str(PVCAST), *args], capture_output=True, text=True, env=env, timeout=300, check=False)


def error_lines(stderr: str) -> list[str]:
    """stderr lines that report an error (argparse's usage line is not one)."""
    return [
        line
        for line in stderr.splitlines()
        if line.strip() and not line.startswith("usage:") and not line.startswith(" ")
    ]


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    lines = error_lines(result.stderr)
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


# --- parks ----------------------------------------------------------------------------------------------


def check_parks_json(text: str, demo_store: Any) -> None:
    parks = json.loads(text)
    assert isinstance(parks, list)
    assert [p[ENTITY_KEY] for p in parks] == DEMO_PARKS
    expected = {p.park_id: p.model_dump() for p in registered_parks(demo_store.config)}
    for park in parks:
        assert set(park) == {ENTITY_KEY, *PARK_FEATURES}
        assert park == expected[park[ENTITY_KEY]]
    greensboro = parks[0]
    assert greensboro["capacity_ac_kw"] == 4000.0
    assert greensboro["surface_azimuth"] == 180.0


def test_parks_json_in_process(demo_store: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """`pvcast --repo DEMO parks --json` prints a JSON list of the 3 demo parks with every metadata field."""
    assert main(["--repo", str(demo_store.config.repo_path), "parks", "--json"]) == 0
    check_parks_json(capsys.readouterr().out, demo_store)


def test_parks_json_subprocess(demo_store: Any) -> None:
    """The same through the installed `pvcast` script: stdout is pure JSON (logs stay on stderr), exit 0."""
    result = run_pvcast("--repo", str(demo_store.config.repo_path), "parks", "--json")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    check_parks_json(result.stdout, demo_store)


def test_parks_table(demo_store: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """Without --json: one line per park with its AC capacity."""
    assert main(["--repo", str(demo_store.config.repo_path), "parks"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == DEMO_PARKS
    assert "4000.0 kW AC" in lines[0]


# --- evaluate -------------------------------------------------------------------------------------------


def test_evaluate_prints_table_and_writes_fan_chart(
    trained: Any, demo_store: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`evaluate --model production --out DIR` prints metrics as rows, model/physics/smart_persistence as
    columns (the model's numbers equal the training report's), and writes a non-empty PNG fan chart."""
    code = main(
        ["--repo", str(demo_store.config.repo_path), "evaluate", "--model", "production", "--out", str(tmp_path)]
    )
    assert code == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("metric"))
    assert header.split() == ["metric", "model", "physics", "smart_persistence"]
    rows = {
        line.split()[0]: line.split()[1:]
        for line in lines[lines.index(header) + 1 :]
        if line.split() and line.split()[0] in EVALUATE_ROWS
    }
    assert set(rows) == set(EVALUATE_ROWS)
    for metric in ("pinball_mean_pct", "mae_kw"):
        assert float(rows[metric][0].rstrip("*")) == pytest.approx(trained.scores["model"][metric], abs=1e-3)
        assert float(rows[metric][1].rstrip("*")) == pytest.approx(trained.scores["physics"][metric], abs=1e-3)
    assert rows["pinball_mean_pct"][0].endswith("*"), "the best method per row is starred"
    pngs = list(tmp_path.glob("*.png"))
    assert len(pngs) == 1
    assert pngs[0].stat().st_size > 1000
    assert pngs[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert str(pngs[0]) in out


def test_evaluate_json_reproduces_training_scores(
    trained: Any, demo_store: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`evaluate --json` on the default window (the model's test window) scores the stored ONNX graph exactly as
    training did: every number of every method matches the training report."""
    assert main(["--repo", str(demo_store.config.repo_path), "evaluate", "--json", "--out", str(tmp_path)]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert set(scores) == set(trained.scores)
    for method, table in trained.scores.items():
        assert scores[method] == pytest.approx(table, rel=1e-6)


# --- apikey ---------------------------------------------------------------------------------------------


def test_apikey_create_prints_key_matching_entry(capsys: pytest.CaptureFixture[str]) -> None:
    """`apikey create` prints a fresh key and the entry to store; sha256(key) == entry.sha256; scopes kept."""
    assert main(["apikey", "create", "--name", "x", "--scopes", "read,write"]) == 0
    printed = json.loads(capsys.readouterr().out)
    key, entry = printed["key"], printed["entry"]
    assert key.startswith("pvc_")
    assert entry == {"name": "x", "sha256": hashlib.sha256(key.encode()).hexdigest(), "scopes": ["read", "write"]}
    assert main(["apikey", "create", "--name", "x", "--scopes", "read,write"]) == 0
    assert json.loads(capsys.readouterr().out)["key"] != key


# --- bad input: exit code 2, one line, no traceback ---------------------------------------------------------

BAD_INPUTS = {
    "missing-repo": (["--repo", "/nonexistent", "parks"], ("/nonexistent",)),
    "naive-time": (["materialize", "--end", "2026-01-01T00:00"], ("--end",)),
    "unknown-version": (["promote", "--to", "nosuchversion"], ("nosuchversion",)),
    "quantiles-unsorted": (["train", "--quantiles", "0.9,0.1"], ("quantiles",)),
}


@pytest.mark.parametrize("case", [c for c in BAD_INPUTS if c != "naive-time"])
def test_bad_input_in_process_exits_2(
    case: str, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """Through main(): a user error returns 2 after exactly one single-line ERROR log record without exception
    info, and prints nothing on stdout."""
    argv, fragments = BAD_INPUTS[case]
    assert main(argv) == 2
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1
    assert errors[0].exc_info is None
    assert "\n" not in errors[0].getMessage()
    assert all(f in errors[0].getMessage() for f in fragments)
    assert capsys.readouterr().out == ""


def test_naive_time_in_process_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    """Through main(): a naive --end is refused by argument parsing (SystemExit 2) naming the argument."""
    with pytest.raises(SystemExit) as exit_info:
        main(BAD_INPUTS["naive-time"][0])
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert "error: argument --end" in captured.err
    assert captured.out == ""


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_subprocess_one_line_no_traceback(case: str) -> None:
    """As a real process: exit code 2, exactly one error line on stderr naming the problem, no traceback,
    nothing on stdout."""
    argv, fragments = BAD_INPUTS[case]
    assert_one_line_error(run_pvcast(*argv), *fragments)


def test_promote_malformed_reference_is_a_one_line_error() -> None:
    """`promote --to 'bad name!'` is a user error like an unknown version (one line, exit 2)."""
    assert_one_line_error(run_pvcast("promote", "--to", "bad name!"), "bad name!")


def test_apikey_unknown_scope_is_a_one_line_error() -> None:
    """`apikey create --scopes read,bogus` names the bad scope on ONE line (exit 2)."""
    assert_one_line_error(run_pvcast("apikey", "create", "--name", "x", "--scopes", "read,bogus"), "bogus")


def test_naive_time_error_says_what_is_wrong() -> None:
    """The naive-timestamp error tells the user to add a timezone (the domain error's actionable message)."""
    line = assert_one_line_error(run_pvcast("materialize", "--end", "2026-01-01T00:00"))
    assert "timezone" in line


def test_ingest_park_options_are_the_plant_model() -> None:
    """`pvcast ingest park` has one required option per ParkSpec field, in order, flag and type derived from the
    field and help from its description; a park registered with them validates like the API's."""
    import argparse

    from pvcast.pv.plant import ParkSpec
    from training.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices["ingest"]
    park = next(a for a in sub._actions if isinstance(a, argparse._SubParsersAction)).choices["park"]
    options = {a.dest: a for a in park._actions if a.dest in ParkSpec.model_fields}
    assert list(options) == list(PARK_FEATURES) == list(ParkSpec.model_fields)
    for name, field in ParkSpec.model_fields.items():
        assert options[name].option_strings == ["--" + name.replace("_", "-")]
        assert options[name].type is field.annotation and options[name].required
        assert options[name].help == field.description
