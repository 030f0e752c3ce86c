"""terraform/ as reviewed code: typed, described variables; exactly pinned providers and charts; no secrets.

`terraform validate` needs the providers, which cannot be downloaded here (docs/deploy.md says where to run it);
these checks read the HCL as text, so they run everywhere.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import REPO_ROOT

TERRAFORM = REPO_ROOT / "terraform"
FILES = sorted(TERRAFORM.rglob("*.tf"))


def blocks(text: str, kind: str) -> dict[str, str]:
    """Top-level `kind "name" { ... }` blocks by name (brace matching; HCL strings here hold no braces)."""
    found = {}
    for match in re.finditer(rf'(?m)^{kind} "([^"]+)" \{{', text):
        depth, i = 1, match.end()
        while depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        found[match.group(1)] = text[match.end() : i - 1]
    return found


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(TERRAFORM)))
def test_variables_are_typed_and_described(path: Path) -> None:
    for name, body in blocks(path.read_text(), "variable").items():
        assert re.search(r"(?m)^\s*type\s*=", body), f"{name}: no type"
        assert re.search(r'(?m)^\s*description\s*=\s*"[^"]{10,}', body), f"{name}: no description"
        assert not re.search(r"password|token|secret_key", name), f"{name}: secrets never go through variables"


def test_providers_and_charts_are_pinned_exactly() -> None:
    text = "\n".join(p.read_text() for p in FILES)
    versions = re.findall(r'(?m)^\s*version\s*=\s*"([^"]+)"', text)
    assert versions, "no provider versions found"
    assert all(re.fullmatch(r"v?\d+\.\d+\.\d+", v) for v in versions), versions
    charts = re.findall(r'(?m)^\s*(\w+)\s*=\s*"(v?\d[^"]*)"\s*$', blocks(text, "variable")["chart_versions"])
    assert {name for name, _ in charts} >= {"kube_prometheus_stack", "envoy_gateway", "cert_manager"}


def test_no_secret_values_in_terraform() -> None:
    for path in FILES:
        text = path.read_text()
        assert not re.search(r"(?i)(password|token)\s*=\s*\"[^\"$]", text), f"{path}: a literal secret"
        assert "kubernetes_secret" not in text, f"{path}: Secrets are created with kubectl, never in state"
