"""Asynchronous jobs whose state every replica can read: Redis holds it, a thread of the submitting pod runs it.

``POST /jobs/backfill`` stores a job record (``pvcast:job:<id>``, a hash with a TTL) and hands the work to a
one-thread executor of the pod that received it; ``GET /jobs/<id>`` on ANY replica reads the record. While a
job is queued or running, its pod refreshes a lease key every few seconds. If the pod dies, the lease expires
and readers report the job ``failed`` ("the replica running it stopped") — resubmit it; a backfill rewrites
its own output folder, so a rerun is safe.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pandas as pd
import redis

from pvcast.errors import JobNotFoundError, PvcastError, SharedStateUnavailableError

logger = logging.getLogger(__name__)

LEASE_S = 30
Progress = Callable[[float], None]
Work = Callable[[Progress], dict[str, Any]]


def _now() -> str:
    return pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class JobStore:
    def __init__(self, client: redis.Redis | None, ttl_s: float, prefix: str = "pvcast:job:") -> None:
        self._client, self._ttl, self._prefix = client, int(ttl_s), prefix

    def _redis(self) -> redis.Redis:
        if self._client is None:
            raise SharedStateUnavailableError("jobs need a shared Redis: set REDIS_URL or PVCAST_STATE_REDIS_URL")
        return self._client

    def _call(self, operation: Callable[[redis.Redis], Any]) -> Any:
        try:
            return operation(self._redis())
        except redis.RedisError as exc:
            logger.warning("job state unavailable: %s", type(exc).__name__)
            raise SharedStateUnavailableError("job state (Redis) is unreachable; retry shortly") from exc

    def create(self, kind: str, params: dict[str, Any]) -> str:
        job_id = uuid.uuid4().hex
        record = {
            "job_id": job_id,
            "kind": kind,
            "status": "queued",
            "progress": "0",
            "created_at": _now(),
            "updated_at": _now(),
            "params": json.dumps(params),
            "worker": f"{socket.gethostname()}:{os.getpid()}",
        }

        def write(client: redis.Redis) -> None:
            pipe = client.pipeline()
            pipe.hset(self._prefix + job_id, mapping=record)
            pipe.expire(self._prefix + job_id, self._ttl)
            pipe.set(self._prefix + job_id + ":lease", "1", ex=LEASE_S)
            pipe.execute()

        self._call(write)
        return job_id

    def update(self, job_id: str, **fields: Any) -> None:
        values = {k: json.dumps(v) if k == "result" else str(v) for k, v in fields.items()}
        values["updated_at"] = _now()
        self._call(lambda c: c.hset(self._prefix + job_id, mapping=values))

    def heartbeat(self, job_id: str) -> None:
        self._call(lambda c: c.set(self._prefix + job_id + ":lease", "1", ex=LEASE_S))

    def get(self, job_id: str) -> dict[str, Any]:
        key = self._prefix + job_id
        raw, lease = self._call(lambda c: (c.hgetall(key), c.exists(key + ":lease")))
        if not raw:
            raise JobNotFoundError(f"no job {job_id!r} (unknown, or its state expired)")
        job = {k.decode(): v.decode() for k, v in raw.items()}
        if job["status"] in ("queued", "running") and not lease:
            job |= {"status": "failed", "error": "the replica running this job stopped (no heartbeat); submit it again"}
        return {
            "job_id": job["job_id"],
            "kind": job["kind"],
            "status": job["status"],
            "progress": float(job.get("progress", 0)),
            "created_at": job["created_at"],
            "updated_at": job["updated_at"],
            "params": json.loads(job["params"]),
            "result": json.loads(job["result"]) if job.get("result") else None,
            "error": job.get("error") or None,
        }


class JobRunner:
    """Runs jobs one at a time in a background thread of this pod, keeping their lease alive."""

    def __init__(self, jobs: JobStore) -> None:
        self.jobs = jobs
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pvcast-job")

    def submit(self, job_id: str, work: Work) -> None:
        stop = threading.Event()
        threading.Thread(target=self._keep_alive, args=(job_id, stop), daemon=True, name=f"lease-{job_id}").start()
        self._executor.submit(self._run, job_id, work, stop)

    def _keep_alive(self, job_id: str, stop: threading.Event) -> None:
        while not stop.wait(LEASE_S / 3):
            with contextlib.suppress(PvcastError):
                self.jobs.heartbeat(job_id)

    def _run(self, job_id: str, work: Work, stop: threading.Event) -> None:
        try:
            self.jobs.update(job_id, status="running")
            result = work(lambda fraction: self.jobs.update(job_id, progress=round(fraction, 4)))
            self.jobs.update(job_id, status="succeeded", progress=1.0, result=result)
            logger.info("job %s succeeded", job_id)
        except Exception as exc:  # the job's failure is its result; the pod goes on serving
            logger.error("job %s failed: %s", job_id, exc, exc_info=exc)
            message = str(exc) if isinstance(exc, PvcastError) else f"internal error ({type(exc).__name__}); logged"
            with contextlib.suppress(PvcastError):
                self.jobs.update(job_id, status="failed", error=message)
        finally:
            stop.set()

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
