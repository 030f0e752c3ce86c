"""Packaging: the service image's dependencies equal the project's runtime dependencies, carry no torch, every
module the image holds imports only what the image installs, and `bentoml build` produces a bento holding the
core, the service and the feature code but not the training code."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pathspec
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO_ROOT = Path(__file__).resolve().parents[1]
FIRST_PARTY = {"pvcast", "service", "feature_repo"}
TRAINING_ONLY = {"torch", "onnxscript", "matplotlib", "lightgbm", "onnxmltools", "onnxconverter-common", "skl2onnx"}
"""Packages of the `train` extra that the service image must not contain (tqdm is also a feast dependency)."""


def normalised(spec: str) -> tuple[str, frozenset[str], str, str]:
    """(canonical name, extras, version specifier, marker) — so `feast[redis,duckdb]` equals `feast[duckdb,redis]`."""
    req = Requirement(spec)
    return canonicalize_name(req.name), frozenset(req.extras), str(req.specifier), str(req.marker or "")


def project_dependencies() -> list[str]:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]


def bento_packages() -> list[str]:
    return yaml.safe_load((REPO_ROOT / "bentofile.yaml").read_text())["python"]["packages"]


def test_bentofile_packages_equal_project_dependencies() -> None:
    """bentofile.yaml python.packages is the same set as pyproject [project.dependencies], pin for pin."""
    bento, project = bento_packages(), project_dependencies()
    assert len(bento) == len(set(bento))
    assert {normalised(s) for s in bento} == {normalised(s) for s in project}


@pytest.mark.parametrize("spec", project_dependencies())
def test_runtime_dependencies_are_exact_pins(spec: str) -> None:
    """Every runtime dependency is pinned with == to one version (reproducible images)."""
    specifiers = list(Requirement(spec).specifier)
    assert len(specifiers) == 1 and specifiers[0].operator == "==", spec


def test_the_jobs_image_copies_every_package() -> None:
    """The jobs image (k8s/images/jobs) installs the project from the packages it copies: every package that
    setuptools installs ([tool.setuptools.packages.find] include) is copied and let through its .dockerignore."""
    include = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    packages = {pattern.rstrip("*") for pattern in include["include"]}
    assert packages == FIRST_PARTY | {"training"}
    folder = REPO_ROOT / "k8s" / "images" / "jobs"
    dockerfile, ignore = (folder / "Dockerfile").read_text(), (folder / "Dockerfile.dockerignore").read_text()
    for package in packages:
        assert f"COPY {package}/ {package}/" in dockerfile, package
        assert f"!{package}/" in ignore.splitlines(), package


def test_service_dependencies_have_no_training_stack() -> None:
    """torch (and the other training-only packages) are neither runtime nor bento dependencies; they live in the
    `train` extra."""
    runtime = {normalised(s)[0] for s in project_dependencies() + bento_packages()}
    assert runtime.isdisjoint(TRAINING_ONLY)
    extras = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert "torch" in {normalised(s)[0] for s in extras["train"]}


def imported_modules(path: Path) -> set[str]:
    """Top-level names of every module imported anywhere in ``path`` (including inside functions)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
            "import_module",
            "__import__",
        ):
            names |= {
                a.value.split(".")[0] for a in node.args[:1] if isinstance(a, ast.Constant) and isinstance(a.value, str)
            }
    return names


def bento_modules() -> list[Path]:
    """The Python files the bento (the service image) holds: bentofile.yaml's include minus its exclude."""
    bentofile = yaml.safe_load((REPO_ROOT / "bentofile.yaml").read_text())
    include = pathspec.PathSpec.from_lines("gitwildmatch", bentofile["include"])
    exclude = pathspec.PathSpec.from_lines("gitwildmatch", bentofile.get("exclude", []))
    files = [p.relative_to(REPO_ROOT).as_posix() for p in REPO_ROOT.rglob("*.py") if ".venv" not in p.parts]
    return sorted(REPO_ROOT / f for f in files if include.match_file(f) and not exclude.match_file(f))


def installed_closure(specs: list[str]) -> set[str]:
    """Canonical names of the distributions ``specs`` install, with everything they require (extras included)."""
    seen: set[str] = set()
    todo = [(Requirement(s), frozenset(Requirement(s).extras)) for s in specs]
    while todo:
        req, extras = todo.pop()
        name = canonicalize_name(req.name)
        if name in seen:
            continue
        seen.add(name)
        for line in metadata.distribution(name).requires or []:
            child = Requirement(line)
            environments = [{"extra": e} for e in extras] or [{"extra": ""}]
            if child.marker is None or any(child.marker.evaluate(env) for env in environments):
                todo.append((child, frozenset(child.extras)))
    return seen


def providers() -> dict[str, set[str]]:
    """Import name → canonical names of the installed distributions that provide it."""
    return {k: {canonicalize_name(d) for d in v} for k, v in metadata.packages_distributions().items()}


def test_imports_scan_sees_imports() -> None:
    """The scanner finds plain, dotted, from- and dynamic imports (guards the next test against a blind scan)."""
    assert "onnxruntime" in imported_modules(REPO_ROOT / "pvcast" / "contract.py")
    assert "pvlib" in imported_modules(REPO_ROOT / "pvcast" / "pv" / "physics.py")
    assert "torch" in imported_modules(REPO_ROOT / "training" / "model.py")


def test_bento_holds_the_core_the_service_and_the_feature_code_only() -> None:
    """The image's modules: pvcast/ (core and plant kinds), service/, feature_repo/*.py; no training code, no
    data sources, no demo launcher."""
    files = {p.relative_to(REPO_ROOT).as_posix() for p in bento_modules()}
    assert {"pvcast/contract.py", "pvcast/pv/features.py", "service/service.py", "feature_repo/store.py"} <= files
    assert not any(f.startswith(("training/", "tests/", "service/bench/")) for f in files)
    assert "service/launch.py" not in files


def test_bento_modules_import_only_declared_dependencies() -> None:
    """Every module of the image imports only the standard library, first-party packages and distributions the
    image installs ([project.dependencies] and what they require) — no pandera, no Open-Meteo client."""
    allowed = installed_closure(project_dependencies())
    owners = providers()
    undeclared = {}
    for path in bento_modules():
        names = imported_modules(path) - set(sys.stdlib_module_names) - FIRST_PARTY
        missing = sorted(n for n in names if not owners.get(n, set()) & allowed)
        if missing:
            undeclared[path.relative_to(REPO_ROOT).as_posix()] = missing
    assert undeclared == {}
    assert {"pandera", "openmeteo-requests", "torch"}.isdisjoint(allowed)  # the scan would catch them


def test_no_service_or_feature_module_imports_torch_or_training() -> None:
    """No module of the image imports torch (or another training-only package, or the training package
    itself), at top level or inside a function: the service image runs without them."""
    modules = bento_modules()
    assert len(modules) >= 10
    offenders = {
        str(p.relative_to(REPO_ROOT)): sorted(imported_modules(p) & (TRAINING_ONLY | {"training"})) for p in modules
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_service_imports_with_torch_unavailable() -> None:
    """With torch made unimportable (as in the service image), the service module still imports, and it loads
    no module of the training package. (Feast itself imports torch opportunistically when it is installed.)"""
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import service.service\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] == 'training')\n"
        "print(bad); sys.exit(bool(bad))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.integration
def test_bentoml_build(tmp_path: Path) -> None:
    """`bentoml build` succeeds into an empty BENTOML_HOME (~20 s); the bento holds service/service.py, the core
    and the feature code but no training/ (nor the demo launcher), and its locked requirements contain no torch."""
    bentoml = Path(sys.executable).with_name("bentoml")
    env = os.environ | {"BENTOML_HOME": str(tmp_path / "home"), "BENTOML_DO_NOT_TRACK": "True"}
    result = subprocess.run(
        [str(bentoml), "build"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    bentos = [p for p in (tmp_path / "home" / "bentos" / "pvcast").iterdir() if p.is_dir()]
    assert len(bentos) == 1
    src = bentos[0] / "src"
    files = {p.relative_to(src).as_posix() for p in src.rglob("*") if p.is_file()}
    assert "service/service.py" in files
    assert {"pvcast/pv/features.py", "pvcast/pv/physics.py", "feature_repo/feature_store.yaml"} <= files
    assert not any(f.startswith(("training/", "feature_repo/sources/")) for f in files)
    assert "service/launch.py" not in files
    assert not any(f.startswith("feature_repo/data/") for f in files)
    locked = (bentos[0] / "env" / "python" / "requirements.txt").read_text()
    names = {
        canonicalize_name(Requirement(line).name)
        for line in locked.splitlines()
        if line and not line.startswith(("#", "-"))
    }
    assert "bentoml" in names and "onnxruntime" in names
    assert names.isdisjoint(TRAINING_ONLY)
