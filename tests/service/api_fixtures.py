"""Fixtures of the production-API tests (imported by tests/service/test_api.py): a real `bentoml serve` over a
COPY of the demo store with the REAL Redis online store (the test database), keys of every scope, and
throwaway redis-server processes for outage tests.

The copy keeps the shared demo store untouched by telemetry, park and job writes; its definitions are
re-applied so its Feast sources point at the copy's own files.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
import redis
from conftest import free_port, start_service, stop_service

from service.launch import wait_ready

READ = "pvc_api-test-read"
WRITE = "pvc_api-test-write"
ADMIN = "pvc_api-test-admin"
LIMITED = "pvc_api-test-limited"
MAX_BODY = 1_000_000
WEATHER_MAX_AGE_H = 12


@dataclass(frozen=True)
class Api:
    url: str
    store: Any  # feature_repo.store.StoreConfig of the copy
    redis_url: str
    log: Path

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=120)


def api_keys() -> str:
    from pvcast.keys import hash_key

    return json.dumps([
        {"name": "reader", "sha256": hash_key(READ), "scopes": ["read"]},
        {"name": "writer", "sha256": hash_key(WRITE), "scopes": ["write"]},
        {"name": "admin", "sha256": hash_key(ADMIN), "scopes": ["admin"]},
        {"name": "limited", "sha256": hash_key(LIMITED), "scopes": ["read"], "rate_per_second": 0.2, "burst": 2},
    ])  # fmt: skip


def copy_store(demo_store: Any, target: Path, redis_url: str) -> Any:
    """The demo store copied to ``target``, registered for its own files, materialized into ``redis_url`` now."""
    from feature_repo.store import init_store, materialize
    from pvcast.settings import StoreConfig

    shutil.copytree(demo_store.config.repo_path, target)
    config = StoreConfig(repo_path=target, online="redis", redis_url=redis_url)
    materialize(init_store(config), pd.Timestamp.now(tz="UTC"))
    return config


def serve(
    config: Any, redis_url: str, log: Path, extra: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        "PVCAST_FEATURE_REPO": str(config.repo_path),
        "PVCAST_ONLINE_STORE": "redis",
        "REDIS_URL": redis_url,
        "PVCAST_API_KEYS": api_keys(),
        "PVCAST_MAX_BODY_BYTES": str(MAX_BODY),
        "PVCAST_WEATHER_MAX_AGE_HOURS": str(WEATHER_MAX_AGE_H),
        "BENTOML_HOME": os.environ["BENTOML_HOME"],
    } | (extra or {})
    proc = start_service(env, port, log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(proc, url, log)
    except Exception:
        stop_service(proc)
        raise
    return proc, url


@pytest.fixture(scope="module")
def api(trained: Any, demo_store: Any, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """The service on the real Redis online store (the test database) over a copy of the demo store."""
    root = tmp_path_factory.mktemp("api")
    config = copy_store(demo_store, root / "store", redis_url)
    proc, url = serve(config, redis_url, root / "serve.log")
    try:
        yield Api(url=url, store=config, redis_url=redis_url, log=root / "serve.log")
    finally:
        stop_service(proc)


class RedisServer:
    """A throwaway redis-server on a free port that keeps its data across a stop/start (RDB file)."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.port = folder, free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        cmd = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder)]
        cmd += ["--dbfilename", "dump.rdb", "--save", "", "--appendonly", "no"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port)
        for _ in range(100):
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        """Save the data set and stop (like a restart of the Redis pod with persistence)."""
        if self.proc is None:
            return
        with contextlib.suppress(redis.ConnectionError):  # shutdown closes the connection
            redis.Redis(port=self.port).shutdown(save=True)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self.proc = None


@pytest.fixture
def throwaway_redis(tmp_path: Path) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed: the outage test needs its own Redis to stop and start")
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()
