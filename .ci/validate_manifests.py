"""Schema-validate rendered Kubernetes manifests (one multi-document YAML file per argument).

Built-in kinds: kubernetes-validate's bundled OpenAPI schemas for Kubernetes 1.32, strict (unknown fields
are errors, as `kubectl apply --validate=strict` would say). Custom resources (Gateway API, prometheus-operator,
cert-manager): the upstream CRD schemas through node (validate-crs.mjs), strict as well. Every object must be
checked by one of the two; an object of an unknown kind is a failure, not a warning.

Run with the infra venv: .venv-infra/bin/python .ci/validate_manifests.py --node-dir DIR build/infra/*.yaml
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import yaml

KUBERNETES_VERSION = "1.32.0"
CUSTOM_GROUPS = ("gateway.networking.k8s.io", "monitoring.coreos.com", "cert-manager.io")


def emit(line: str) -> None:
    sys.stdout.write(line + "\n")


def is_custom(obj: dict) -> bool:
    return obj["apiVersion"].split("/")[0] in CUSTOM_GROUPS


def validate_builtin(obj: dict) -> str | None:
    try:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        path = "/".join(str(p) for p in exc.absolute_path) or "(root)"
        return f"{path}: {exc.message}"
    except kubernetes_validate.SchemaNotFoundError as exc:
        return f"no Kubernetes {KUBERNETES_VERSION} schema: {exc.message}"
    return None


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--node-dir", type=Path, required=True, help="folder with validate-crs.mjs and node_modules")
    parser.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args()
    failures = 0
    for path in args.files:
        objects = [o for o in yaml.safe_load_all(path.read_text()) if o]
        custom = [o for o in objects if is_custom(o)]
        for obj in objects:
            if is_custom(obj):
                continue
            error = validate_builtin(obj)
            failures += error is not None
            status = f"FAIL {error}" if error else "ok"
            emit(f"{path.name}: {obj['kind']}/{obj['metadata']['name']}: k8s {KUBERNETES_VERSION} strict: {status}")
        node = subprocess.run(
            ["node", "validate-crs.mjs"], cwd=args.node_dir, input=json.dumps(custom), text=True, capture_output=True
        )
        for line in node.stdout.splitlines():
            emit(f"{path.name}: CRD schema: {line}")
        if node.returncode:
            failures += 1
            sys.stderr.write(node.stderr)
        emit(f"{path.name}: {len(objects)} objects ({len(objects) - len(custom)} built-in, {len(custom)} custom)")
    emit(f"schema validation: {'FAILED' if failures else 'passed'} ({failures} failure(s))")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
