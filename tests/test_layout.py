"""The layout of the source tree: who may import whom, how long a module may be, who may read the environment.

* ``pvcast`` (the core) imports nothing from ``feature_repo``, ``training`` or ``service``, and none of the
  heavy or job-only libraries (torch, Feast, pandera, the Open-Meteo client, BentoML's internals);
* ``feature_repo`` imports the core only (no ``training``, no ``service``);
* ``training`` and ``service`` never import each other;
* every source module (a ``.py`` file outside ``tests/``) is shorter than 400 lines;
* only ``pvcast/settings.py`` reads ``os.environ`` / ``os.getenv``.

Imports are read from the syntax tree of every module, including those inside functions and
``importlib.import_module("...")`` calls with a literal name.
"""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("pvcast", "feature_repo", "training", "service")
MAX_LINES = 400

TREE_TRAINING = ("lightgbm", "onnxmltools", "onnxconverter_common", "skl2onnx")
"""Fitting and converting quantile trees is training's business: the service runs their ONNX graph only."""
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "pvcast": (
        "feature_repo",
        "training",
        "service",
        "torch",
        "feast",
        "pandera",
        "openmeteo_requests",
        "openmeteo_sdk",
        "requests_cache",
        "retry_requests",
        "bentoml._internal",
        "_bentoml_impl",
        "_bentoml_sdk",
        *TREE_TRAINING,
    ),
    "feature_repo": ("training", "service", *TREE_TRAINING),
    "training": ("service",),
    "service": ("training", *TREE_TRAINING),
}
"""Package → modules (and their submodules) it must not import."""
ENV_NAMES = frozenset({"environ", "getenv", "environb", "getenvb"})


def source_files() -> list[Path]:
    """Every tracked or new Python file of the repository outside tests/ (what git would commit)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.py"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return sorted(REPO_ROOT / f for f in listed if not f.startswith("tests/") and (REPO_ROOT / f).exists())


def package_modules(package: str) -> list[Path]:
    return sorted((REPO_ROOT / package).rglob("*.py"))


def imports(path: Path) -> set[str]:
    """Full dotted names of every module ``path`` imports, anywhere in the file."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
            "import_module",
            "__import__",
        ):
            names |= {a.value for a in node.args[:1] if isinstance(a, ast.Constant) and isinstance(a.value, str)}
    return names


def violations(package: str) -> dict[str, list[str]]:
    found = {}
    for path in package_modules(package):
        bad = sorted(
            name for name in imports(path) for ban in FORBIDDEN[package] if name == ban or name.startswith(ban + ".")
        )
        if bad:
            found[path.relative_to(REPO_ROOT).as_posix()] = bad
    return found


def reads_environment(path: Path) -> list[int]:
    """Lines where ``path`` reads the environment: ``os.environ``, ``os.getenv``, or importing either."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Attribute) and node.attr in ENV_NAMES:
            if isinstance(node.value, ast.Name) and node.value.id == "os":
                lines.append(node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.module == "os" and {a.name for a in node.names} & ENV_NAMES:
            lines.append(node.lineno)
    return lines


# --- the scanners see what they must (so the rules below cannot pass blind) --------------------------------


def test_the_import_scanner_sees_top_level_function_level_and_dynamic_imports(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "import torch.nn\nfrom feast import FeatureStore\n"
        "def f():\n    from service.auth import authenticate\n    import importlib\n"
        "    importlib.import_module('training.jobs')\n"
    )
    assert {"torch.nn", "feast.FeatureStore", "service.auth.authenticate", "training.jobs"} <= imports(module)


def test_the_environment_scanner_sees_every_form(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("import os\nfrom os import getenv\nA = os.environ.get('X')\nB = os.getenv('Y')\nC = 1\n")
    assert sorted(reads_environment(module)) == [2, 3, 4]


def test_every_package_is_scanned() -> None:
    """The rules below look at real modules (a renamed package would otherwise pass with nothing to scan)."""
    for package in PACKAGES:
        assert len(package_modules(package)) >= 5, package
    assert REPO_ROOT / "pvcast" / "settings.py" in source_files()


# --- the rules -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("package", PACKAGES)
def test_import_direction(package: str) -> None:
    """pvcast ← feature_repo ← {training, service}; training and service never import each other; the core
    imports no torch, Feast, pandera, Open-Meteo client or BentoML internals."""
    assert violations(package) == {}


def test_every_source_module_is_shorter_than_400_lines() -> None:
    long = {}
    for path in source_files():
        lines = len(path.read_text().splitlines())
        if lines >= MAX_LINES:
            long[path.relative_to(REPO_ROOT).as_posix()] = lines
    assert long == {}


def test_only_the_settings_read_the_environment() -> None:
    readers = {
        path.relative_to(REPO_ROOT).as_posix(): reads_environment(path)
        for path in source_files()
        if reads_environment(path)
    }
    assert set(readers) == {"pvcast/settings.py"}, readers
