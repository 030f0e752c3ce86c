"""The rendered Kubernetes manifests against what the code expects of them (beyond `make validate-infra`).

Schema and policy checks live in .ci/validate-infra.sh; these tests tie the manifests to pvcast itself: the
ConfigMap parses with the service's own settings class, the jobs run real `pvcast` sub-commands, the alert and
dashboard queries name metrics the service really exposes, and every workload is hardened and probed.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from conftest import REPO_ROOT

K8S = REPO_ROOT / "k8s"
OVERLAYS = sorted(p.name for p in (K8S / "overlays").iterdir() if p.is_dir())
WORKLOADS = ("Deployment", "StatefulSet", "Job", "CronJob")

# Metrics the alerts and dashboard use, by producer. The service's are checked on a running service's /metrics
# (test_queries_name_real_metrics); the jobs' in the job code that publishes them (to the Pushgateway).
JOB_METRICS = {  # metric -> (file, snippets that must all appear in it)
    "pvcast_drift_psi": ("training/mlops/monitor.py", ('"pvcast_drift_psi"', '"feature"')),
    "pvcast_accuracy_nmae_pct": ("training/mlops/monitor.py", ('f"pvcast_accuracy_{name}"', '("nmae_pct"')),
}
EXTERNAL_METRICS = {"kube_cronjob_status_last_successful_time"}  # kube-state-metrics, in the Prometheus stack


def render(overlay: str) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail("kubectl is required (make validate-infra needs it too)")
    out = subprocess.run([kubectl, "kustomize", str(K8S / "overlays" / overlay)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


@pytest.fixture(scope="module", params=OVERLAYS)
def objects(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return render(request.param)


def pod_specs(objects: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    specs = []
    for o in objects:
        if o["kind"] == "CronJob":
            specs.append((o["metadata"]["name"], o["spec"]["jobTemplate"]["spec"]["template"]["spec"]))
        elif o["kind"] in WORKLOADS:
            specs.append((o["metadata"]["name"], o["spec"]["template"]["spec"]))
    return specs


def test_feature_store_config_is_the_repository_one() -> None:
    assert (K8S / "base/config/feature_store.redis.yaml").read_text() == (
        REPO_ROOT / "feature_repo/feature_store.redis.yaml"
    ).read_text(), "k8s/base/config/feature_store.redis.yaml drifted from feature_repo/feature_store.redis.yaml"


def test_every_container_is_hardened_and_sized(objects: list[dict[str, Any]]) -> None:
    specs = pod_specs(objects)
    assert len(specs) >= 6
    for name, spec in specs:
        assert spec["automountServiceAccountToken"] is False, name
        assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] and not sc["allowPrivilegeEscalation"], name
            assert sc["capabilities"]["drop"] == ["ALL"], name
            assert set(c["resources"]["requests"]) == set(c["resources"]["limits"]) == {"cpu", "memory"}, name


def test_long_running_containers_are_probed(objects: list[dict[str, Any]]) -> None:
    for o in objects:
        if o["kind"] in ("Deployment", "StatefulSet"):
            for c in o["spec"]["template"]["spec"]["containers"]:
                assert {"startupProbe", "livenessProbe", "readinessProbe"} <= set(c), o["metadata"]["name"]
                if o["kind"] == "Deployment":
                    assert c["livenessProbe"]["httpGet"]["path"] == "/livez"
                    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"


def test_settings_configmap_parses_with_the_service_settings(
    objects: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from pvcast.keys import hash_key
    from service.settings import ServiceSettings

    data = next(
        o["data"] for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("pvcast-settings")
    )
    for key, value in data.items():
        monkeypatch.setenv(key, value)
    url = f"{data['REDIS_SCHEME']}://:secret@{data['REDIS_HOST']}:{data['REDIS_PORT']}/{data['REDIS_DB']}"
    monkeypatch.setenv("REDIS_URL", url)
    monkeypatch.setenv("PVCAST_API_KEYS", json.dumps([{"name": "k", "sha256": hash_key("x"), "scopes": ["read"]}]))
    settings = ServiceSettings()
    assert settings.online_store == "redis"
    assert settings.feature_repo == Path("/pvcast/feature_repo")
    assert settings.store.redis_url == url
    assert re.fullmatch(r"services\.pvcast\.workers=\d+", data["BENTOML_CONFIG_OPTIONS"])
    mounts = {
        m["mountPath"]
        for o in objects
        if o["kind"] == "Deployment"
        for m in o["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    }
    assert {data["PVCAST_FEATURE_REPO"], data["PVCAST_FEATURE_REPO"] + "/data", data["BENTOML_HOME"]} <= mounts
    assert data["PVCAST_FEATURE_REPO"] + "/feature_store.redis.yaml" in mounts


def test_cronjobs_are_bounded_and_run_pvcast_commands(objects: list[dict[str, Any]]) -> None:
    from training.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    known = set(sub.choices)
    cronjobs = [o for o in objects if o["kind"] == "CronJob"]
    assert {c["metadata"]["name"] for c in cronjobs} == {
        "pvcast-ingest-weather", "pvcast-materialize", "pvcast-retrain", "pvcast-monitor-drift",
        "pvcast-monitor-accuracy",
    }  # fmt: skip
    pending = []
    for cron in cronjobs:
        spec = cron["spec"]
        assert spec["concurrencyPolicy"] == "Forbid" and spec["startingDeadlineSeconds"] > 0
        assert spec["successfulJobsHistoryLimit"] <= 3 and spec["failedJobsHistoryLimit"] <= 3
        job = spec["jobTemplate"]["spec"]
        assert job["activeDeadlineSeconds"] > 0
        container = job["template"]["spec"]["containers"][0]
        assert container["command"] == ["pvcast"]
        # read-only root filesystem: relative outputs (reports, caches) must land in a writable working directory
        assert container["workingDir"] in {m["mountPath"] for m in container["volumeMounts"]}
        if container["args"][0] in known:
            parser.parse_args(container["args"])  # exits (SystemExit) on an unknown option
        else:
            pending.append(" ".join(container["args"]))
    if pending:
        pytest.skip(f"SKIPPED FOR PENDING CLI (issue 5): `pvcast {'`, `pvcast '.join(pending)}` not registered yet")


def test_hpa_metric_is_the_adapter_rule(objects: list[dict[str, Any]]) -> None:
    hpa = next(o for o in objects if o["kind"] == "HorizontalPodAutoscaler")
    names = [m["pods"]["metric"]["name"] for m in hpa["spec"]["metrics"] if m["type"] == "Pods"]
    assert names == ["pvcast_http_requests_per_second"]
    terraform = (REPO_ROOT / "terraform/modules/pvcast-platform/main.tf").read_text()
    assert 'as = "pvcast_http_requests_per_second"' in terraform


def _exprs(node: Any) -> list[str]:
    """Every ``expr`` string in a parsed YAML/JSON document."""
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "expr" and isinstance(v, str)] + [
            e for v in node.values() for e in _exprs(v)
        ]
    if isinstance(node, list):
        return [e for v in node for e in _exprs(v)]
    return []


def queried_metrics() -> set[str]:
    """Every metric name in the queries: the alert rules' and the dashboard's ``expr``, the adapter's seriesQuery."""
    rules = yaml.safe_load((K8S / "base/monitoring/prometheusrule.yaml").read_text())
    dashboard = json.loads((K8S / "base/monitoring/dashboard.json").read_text())
    terraform = (REPO_ROOT / "terraform/modules/pvcast-platform/main.tf").read_text()
    queries = _exprs(rules) + _exprs(dashboard) + re.findall(r'seriesQuery\s*=\s*"([^\n]*)"', terraform)
    assert len(queries) >= 10, "the rules, dashboard and adapter hold fewer queries than expected"
    names = set(re.findall(r"\b((?:bentoml|pvcast|kube)_[a-z0-9_]*[a-z0-9])\b", "\n".join(queries)))
    return {re.sub(r"_(bucket|count|sum)$", "", n) for n in names} - {"pvcast_http_requests_per_second"}


@pytest.mark.http
def test_queries_name_real_metrics(served: Any) -> None:
    """BentoML's and pvcast's metric names in the queries exist on a running service's /metrics."""
    answer = httpx.post(
        f"{served.url}/forecast",
        json={"park_id": "synthetic-miami"},
        headers={"Authorization": f"Bearer {served.read_key}"},
        timeout=60,
    )
    assert answer.status_code == 200, answer.text  # labelled histograms appear once observed
    names = {line.split("{")[0].split(" ")[0] for line in httpx.get(f"{served.url}/metrics").text.splitlines()}
    exposed = {re.sub(r"_(bucket|count|sum|created)$", "", n) for n in names if n and not n.startswith("#")} | names
    missing = queried_metrics() - exposed - set(JOB_METRICS) - EXTERNAL_METRICS
    assert not missing, f"queries name metrics the service does not expose: {sorted(missing)}"


def test_job_metrics_are_published_by_the_jobs() -> None:
    assert set(JOB_METRICS) <= queried_metrics()
    for metric, (path, snippets) in JOB_METRICS.items():
        text = (REPO_ROOT / path).read_text()
        assert all(s in text for s in snippets), f"{metric}: {path} no longer publishes it as the queries expect"


def test_dashboard_has_the_required_panels() -> None:
    dashboard = json.loads((K8S / "base/monitoring/dashboard.json").read_text())
    titles = " ".join(p["title"].lower() for p in dashboard["panels"])
    for topic in ("accuracy", "p95", "p99", "drift", "model version", "request volume"):
        assert topic in titles, topic
    assert all(p["targets"] and all(t["expr"] for t in p["targets"]) for p in dashboard["panels"])


def test_served_version_panel_counts_only_served_versions() -> None:
    """pvcast_model_info is 1 for the version a pod serves and 0 for the ones hot reload replaced: the panel
    counts pods per version over the 1s only, or a replaced version would still look served."""
    dashboard = json.loads((K8S / "base/monitoring/dashboard.json").read_text())
    panel = next(p for p in dashboard["panels"] if "model version" in p["title"].lower())
    exprs = [t["expr"].replace(" ", "") for t in panel["targets"]]
    assert exprs and all("pvcast_model_info==1" in e for e in exprs), exprs


def test_error_alert_does_not_blame_missing_weather() -> None:
    """A park without a fresh weather forecast is answered degraded with 200, not 503: the 5xx alert says so."""
    rules = yaml.safe_load((K8S / "base/monitoring/prometheusrule.yaml").read_text())
    alert = next(r for g in rules["spec"]["groups"] for r in g["rules"] if r.get("alert") == "PvcastErrorRateHigh")
    text = alert["annotations"]["description"]
    assert "degraded 200" in text and "or no weather forecast" not in text


def test_alerts_cover_the_required_conditions() -> None:
    rules = yaml.safe_load((K8S / "base/monitoring/prometheusrule.yaml").read_text())
    alerts = {r["alert"]: r["expr"] for g in rules["spec"]["groups"] for r in g["rules"] if "alert" in r}
    assert "> 0.2" in alerts["PvcastForecastLatencyHigh"]
    assert "> 0.01" in alerts["PvcastErrorRateHigh"]
    assert "> 3600" in alerts["PvcastWeatherStale"]
    assert "> 900" in alerts["PvcastTelemetryStale"]
    assert "7 * 86400" in alerts["PvcastModelOld"]
    assert "> 0.2" in alerts["PvcastDriftHigh"]
