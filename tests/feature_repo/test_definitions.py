"""The Feast definitions: one feature service, only definitions.py imported by `feast apply`, the CLI works."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from feast.repo_operations import get_repo_files
from feast.types import Float64

from feature_repo.views import FEAST_TYPES, build_definitions
from pvcast.pv.plant import PARK_FEATURES, ParkSpec
from pvcast.schema import FEATURE_SERVICE_NAME, WEATHER_VARIABLES

REPO = Path(__file__).resolve().parents[2] / "feature_repo"


def test_feast_apply_imports_only_definitions() -> None:
    """Every module except definitions.py is listed in .feastignore (a new module must be added there)."""
    assert get_repo_files(REPO) == [(REPO / "definitions.py").resolve()]


def test_feature_service_contains_every_view_and_feature(tmp_path: Path) -> None:
    d = build_definitions(tmp_path)
    assert d.feature_service.name == FEATURE_SERVICE_NAME
    served = {p.name: [f.name for f in p.features] for p in d.feature_service.feature_view_projections}
    assert served["park"] == list(PARK_FEATURES)
    assert served["weather_forecast"] == [*WEATHER_VARIABLES, "valid_from_epoch_s", "step_seconds"]
    assert served["generation"] == ["power_kw", "valid_time_epoch_s"]


def test_sources_are_absolute_paths_in_the_data_folder(tmp_path: Path) -> None:
    """The DuckDB offline store opens paths as given: relative paths would depend on the working directory."""
    d = build_definitions(tmp_path / "data")
    for source in (d.park_source, d.weather_source, d.generation_source):
        assert Path(source.path).is_absolute()
        assert (tmp_path / "data").resolve() in Path(source.path).parents  # a table folder's part files


def test_feast_cli_applies_the_repo(tmp_path: Path) -> None:
    """`feast -c <repo> apply` registers pvcast's objects from a copy of feature_repo/."""
    repo = tmp_path / "repo"
    repo.mkdir()
    for name in ("definitions.py", "feature_store.yaml", ".feastignore"):
        shutil.copy(REPO / name, repo / name)
    feast = Path(sys.executable).parent / "feast"
    env = {"PVCAST_OFFLINE_DIR": str(tmp_path / "offline"), "PATH": str(feast.parent)}
    subprocess.run(
        [str(feast), "-c", str(repo), "apply"],
        check=True,
        capture_output=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    listed = subprocess.run(
        [str(feast), "-c", str(repo), "feature-services", "list"],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert FEATURE_SERVICE_NAME in listed.stdout


def test_park_view_schema_is_the_plant_model(tmp_path: Path) -> None:
    """The Feast ``park`` view is derived from the plant model: its features are ParkSpec's fields, in order,
    each with the Feast type of the field's Python type."""
    view = build_definitions(tmp_path).park_view
    assert [f.name for f in view.features] == list(ParkSpec.model_fields)
    assert [f.dtype for f in view.features] == [FEAST_TYPES[f.annotation] for f in ParkSpec.model_fields.values()]
    assert {f.dtype for f in view.features} == {Float64}
