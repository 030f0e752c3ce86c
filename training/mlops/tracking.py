"""Experiment tracking with MLflow (``MlflowClient``, no global run state).

The tracking URI is ``--tracking-uri``, else ``MLFLOW_TRACKING_URI`` (a tracking server in Kubernetes, e.g.
``http://mlflow:5000``; the CLI passes it from its settings), else a local SQLite store
``.pvcast/mlflow/mlflow.db`` with artifacts beside it in ``.pvcast/mlflow/artifacts`` (MLflow 3 refuses the
old ``./mlruns`` file store by default).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

EXPERIMENT = "pvcast"
DEFAULT_DIR = Path(".pvcast/mlflow")


def tracking_uri(uri: str | None = None) -> str:
    """``uri`` if given, else the local SQLite store (created on first use)."""
    if uri:
        return uri
    DEFAULT_DIR.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(DEFAULT_DIR / 'mlflow.db').resolve()}"


def _artifact_location(uri: str) -> str | None:
    """Artifacts beside a local SQLite store; a tracking server decides for itself."""
    if uri.startswith("sqlite:///"):
        return (Path(uri.removeprefix("sqlite:///")).parent / "artifacts").resolve().as_uri()
    return None


class Tracker:
    """One MLflow run: parameters, tags, metrics, artifacts, status."""

    def __init__(
        self, uri: str | None = None, run_name: str | None = None, tags: Mapping[str, str] | None = None
    ) -> None:
        from mlflow import MlflowClient

        self.uri = tracking_uri(uri)
        self.client = MlflowClient(tracking_uri=self.uri)
        experiment = self.client.get_experiment_by_name(EXPERIMENT)
        experiment_id = (
            experiment.experiment_id
            if experiment is not None
            else self.client.create_experiment(EXPERIMENT, artifact_location=_artifact_location(self.uri))
        )
        self.run_id: str = self.client.create_run(experiment_id, tags=dict(tags or {}), run_name=run_name).info.run_id
        logger.info("MLflow run %s at %s", self.run_id, self.uri)

    def params(self, values: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        self.client.log_batch(self.run_id, params=[Param(k, str(v)[:6000]) for k, v in values.items()])

    def tags(self, values: Mapping[str, Any]) -> None:
        for key, value in values.items():
            self.client.set_tag(self.run_id, key, str(value))

    def metrics(self, values: Mapping[str, float], prefix: str = "") -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        finite = {f"{prefix}{k}": float(v) for k, v in values.items() if v == v}  # drop NaN
        self.client.log_batch(self.run_id, metrics=[Metric(k, v, now, 0) for k, v in finite.items()])

    def artifact(self, path: Path) -> None:
        self.client.log_artifact(self.run_id, str(path))

    def end(self, status: str = "FINISHED") -> None:
        self.client.set_terminated(self.run_id, status=status)


def list_runs(uri: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
    """The latest runs of the pvcast experiment, newest first."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri(uri))
    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is None:
        return []
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time DESC"], max_results=limit)
    return [
        {
            "run_id": r.info.run_id,
            "start_time": r.info.start_time,
            "status": r.info.status,
            "model": r.data.tags.get("pvcast.model", ""),
            "decision": r.data.tags.get("pvcast.decision", ""),
            "reason": r.data.tags.get("pvcast.reason", ""),
            "challenger_pinball_mean_pct": r.data.metrics.get("challenger.pinball_mean_pct"),
            "champion_pinball_mean_pct": r.data.metrics.get("champion.pinball_mean_pct"),
            "data_sha256": r.data.params.get("data.sha256", ""),
        }
        for r in runs
    ]
