"""Prometheus metrics from batch jobs: a textfile-collector file and/or a Pushgateway push.

A CronJob lives for seconds, so nothing can scrape it. Two documented ways out, both from prometheus_client:

* ``--prom-file PATH`` (env ``PVCAST_PROM_FILE``): ``write_to_textfile`` writes the job's metrics atomically to
  a ``.prom`` file for node-exporter's textfile collector (a shared volume in Kubernetes);
* ``--pushgateway URL`` (env ``PVCAST_PUSHGATEWAY_URL``): ``push_to_gateway`` PUTs them to a Pushgateway under
  ``job=<job name>``, replacing that job's previous push.

Every job also sets ``pvcast_job_last_run_timestamp_seconds`` and ``pvcast_job_breaches`` so alerts can fire
on "has not run" as well as on "ran and found a problem".
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge, push_to_gateway, write_to_textfile

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MetricsSink:
    """Where a job's metrics go; both None means nowhere (the job still prints its report)."""

    prom_file: Path | None = None
    pushgateway: str | None = None


def job_registry(job: str, breaches: int) -> CollectorRegistry:
    """A fresh registry holding the two metrics every job exports."""
    registry = CollectorRegistry()
    Gauge(
        "pvcast_job_last_run_timestamp_seconds", "When the job last ran [s since epoch]", ["job"], registry=registry
    ).labels(job).set(time.time())
    Gauge("pvcast_job_breaches", "Thresholds breached in the job's last run", ["job"], registry=registry).labels(
        job
    ).set(breaches)
    return registry


def export(registry: CollectorRegistry, job: str, sink: MetricsSink) -> list[str]:
    """Write/push ``registry``; returns where it went (for the job's output)."""
    done = []
    if sink.prom_file is not None:
        sink.prom_file.parent.mkdir(parents=True, exist_ok=True)
        write_to_textfile(str(sink.prom_file), registry)
        done.append(str(sink.prom_file))
    if sink.pushgateway:
        push_to_gateway(sink.pushgateway, job=job, registry=registry, timeout=10)
        done.append(f"{sink.pushgateway} (job={job})")
    for target in done:
        logger.info("metrics of %s exported to %s", job, target)
    return done
