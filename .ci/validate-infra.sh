#!/usr/bin/env bash
# Offline validation of the infrastructure code (`make validate-infra`, part of `make test`):
#   1. kubectl kustomize of every overlay in k8s/overlays/ (rendered to build/infra/<overlay>.yaml)
#   2. schema validation of every rendered object: Kubernetes 1.32 strict for built-in kinds
#      (kubernetes-validate), the upstream CRD schemas for Gateway API / prometheus-operator / cert-manager
#   3. checkov on the rendered manifests, on terraform/ and on the jobs Dockerfile: zero failed checks
#      (skips only in .ci/checkov.yaml, each with its reason)
#   4. terraform fmt -check -recursive terraform/ (providers cannot be downloaded here, so no `validate`)
# Tools: .venv-infra/ (pinned in .ci/requirements-infra.txt), node packages (.ci/infra-node), kubectl, terraform.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
VENV=.venv-infra
OUT=build/infra
NODE_DIR=$VENV/node

need() { command -v "$1" >/dev/null || { echo "validate-infra: '$1' is required ($2)" >&2; exit 1; }; }
need kubectl "kubectl >= 1.32 with its built-in kustomize"
need terraform "terraform >= 1.11 for 'terraform fmt'"
need node "Node.js >= 20 for the custom resource schemas"
need npm "npm for the custom resource schemas"

if [[ ! -f $VENV/.installed || .ci/requirements-infra.txt -nt $VENV/.installed ]]; then
  echo "== installing the validation tools into $VENV"
  $PYTHON -m venv $VENV
  $VENV/bin/pip install --quiet --disable-pip-version-check -r .ci/requirements-infra.txt 2>&1 | grep -v "^WARNING: Location" || true
  $VENV/bin/python -c "import checkov, kubernetes_validate" && touch $VENV/.installed
fi
if [[ ! -f $NODE_DIR/.installed || .ci/infra-node/package-lock.json -nt $NODE_DIR/.installed ]]; then
  echo "== installing the custom resource schemas into $NODE_DIR"
  rm -rf $NODE_DIR && mkdir -p $NODE_DIR && cp .ci/infra-node/package.json .ci/infra-node/package-lock.json $NODE_DIR/
  (cd $NODE_DIR && npm ci --no-audit --no-fund --loglevel=error 2>&1 | grep -v "EBADENGINE\|^npm warn" || true)
  [[ -d $NODE_DIR/node_modules/@kubernetes-models/gateway-api ]] && touch $NODE_DIR/.installed
fi
cp .ci/infra-node/validate-crs.mjs $NODE_DIR/

echo "== 1. kustomize build"
rm -rf $OUT && mkdir -p $OUT
for overlay in k8s/overlays/*/; do
  name=$(basename "$overlay")
  kubectl kustomize "$overlay" > "$OUT/$name.yaml"
  echo "$name: $(grep -c '^kind:' "$OUT/$name.yaml") objects -> $OUT/$name.yaml"
done

echo "== 2. schema validation (Kubernetes 1.32, strict)"
$VENV/bin/python .ci/validate_manifests.py --node-dir $NODE_DIR $OUT/*.yaml | grep -v ": ok$\|CRD schema: ok "

echo "== 3. checkov (skips with reasons: .ci/checkov.yaml)"
sed -n '/^skip-check:/,$p' .ci/checkov.yaml
export BC_SKIP_MAPPING=TRUE CHECKOV_NO_OUTPUT_COLOR=1 LOG_LEVEL=ERROR
checkov() {
  local rc=0
  $VENV/bin/checkov --config-file .ci/checkov.yaml "$@" > $OUT/checkov.log 2>&1 || rc=$?
  grep -E "scan results|Passed checks|Check:|FAILED|File:|Error|error" $OUT/checkov.log || true
  if [[ $rc -ne 0 ]]; then echo "checkov $* failed (exit $rc); full output: $OUT/checkov.log"; fi
  return $rc
}
checkov -d $OUT --framework kubernetes
checkov -d terraform --framework terraform
checkov -f k8s/images/jobs/Dockerfile --framework dockerfile

echo "== 4. terraform fmt"
env -u TF_CLI_CONFIG_FILE terraform fmt -check -recursive -diff terraform
echo "terraform fmt: clean"
echo "validate-infra: all checks passed"
