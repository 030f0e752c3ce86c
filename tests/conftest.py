"""Shared fixtures: real stores, a real trained model, a real `bentoml serve`, a real Redis.

Expensive fixtures are session-scoped and built once: the synthetic demo store (one year, like `make demo`),
the model trained on it with the default configuration (so the suite reproduces the demo's claims), and a
service process serving that model over HTTP.

Settings (environment or pytest option):
  PVCAST_SHARED_DATA / --shared-data   folder with the real data sets (default ../shared/data)
  PVCAST_TEST_REDIS_URL                Redis for tests, a DEDICATED db that is flushed (default db 15)
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pytest
import redis

if TYPE_CHECKING:
    from pvcast.model_store import ModelStore

REPO_ROOT = Path(__file__).resolve().parents[1]
_BENTOML_HOME = Path(tempfile.mkdtemp(prefix="pvcast-test-bentoml-"))


def pytest_addoption(parser: pytest.Parser) -> None:
    default = os.environ.get("PVCAST_SHARED_DATA", str(REPO_ROOT.parent / "shared" / "data"))
    parser.addoption("--shared-data", default=default, help="folder holding gefcom2014_solar/ and kaggle_plant/")


def pytest_configure(config: pytest.Config) -> None:
    # Before anything imports bentoml: every model of this run lives in a throwaway store.
    os.environ["BENTOML_HOME"] = str(_BENTOML_HOME)
    os.environ.pop("PVCAST_API_KEY", None)


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_BENTOML_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def shared_data(request: pytest.FixtureRequest) -> Path:
    """The real data sets; skipped loudly where absent, but never on CI."""
    path = Path(request.config.getoption("--shared-data")).resolve()
    if not path.is_dir():
        message = f"real data folder {path} is absent (set PVCAST_SHARED_DATA or --shared-data)"
        if os.environ.get("CI"):
            pytest.fail(message + " — required on CI")
        pytest.skip("SKIPPED FOR MISSING DATA: " + message)
    return path


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real Redis database reserved for tests (flushed before and after)."""
    url = os.environ.get("PVCAST_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    client = redis.Redis.from_url(url)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.fail(f"Redis is not reachable at {url}: start one (`redis-server --daemonize yes`) or run `make test`")
    client.flushdb()
    yield url
    client.flushdb()


def run_models() -> ModelStore:
    """The model store of this test run (pvcast.model_store imports bentoml, which must see BENTOML_HOME first:
    call this from tests, never at conftest import)."""
    from pvcast.model_store import ModelStore

    return ModelStore(_BENTOML_HOME)


@dataclass(frozen=True)
class DemoStore:
    config: object  # feature_repo.store.StoreConfig
    end: pd.Timestamp


@pytest.fixture(scope="session")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> DemoStore:
    """One year of synthetic demo data ending now, in its own store folder, materialized (SQLite)."""
    from pvcast.settings import StoreConfig
    from training.jobs import build_demo_store

    config = StoreConfig(repo_path=tmp_path_factory.mktemp("demo_store"))
    end = pd.Timestamp.now(tz="UTC").floor("15min")
    build_demo_store(config, end, days=365, seed=7)
    return DemoStore(config=config, end=end)


@pytest.fixture(scope="session")
def trained(demo_store: DemoStore):  # type: ignore[no-untyped-def]
    """The default training configuration on the demo store, promoted to production."""
    from feature_repo.store import open_store
    from training.config import TrainConfig
    from training.pipeline import train_and_register

    return train_and_register(
        open_store(demo_store.config), demo_store.config, TrainConfig(), run_models(), promote=True
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Served:
    url: str
    read_key: str
    write_key: str


READ_KEY = "pvc_test-read-key"
WRITE_ONLY_KEY = "pvc_test-write-only-key"


def api_keys_json() -> str:
    from pvcast.keys import hash_key

    return json.dumps([
        {"name": "reader", "sha256": hash_key(READ_KEY), "scopes": ["read"]},
        {"name": "writer", "sha256": hash_key(WRITE_ONLY_KEY), "scopes": ["write"]},
    ])  # fmt: skip


def start_service(env_overrides: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROMETHEUS_")} | env_overrides
    cmd = [sys.executable, "-m", "bentoml", "serve", "service.service:PVCast", "--port", str(port)]
    with log.open("wb") as out:  # the child keeps its own descriptor
        return subprocess.Popen(
            cmd, cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop_service(proc: subprocess.Popen[bytes]) -> None:
    from service.launch import stop_group  # imported late: bentoml must see this run's BENTOML_HOME

    stop_group(proc, timeout=20)


@pytest.fixture(scope="session")
def served(trained, demo_store: DemoStore, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:  # type: ignore[no-untyped-def]
    """`bentoml serve` of the trained model over the demo store (SQLite online), on a free port."""
    port, log = free_port(), tmp_path_factory.mktemp("serve") / "serve.log"
    env = {
        "PVCAST_FEATURE_REPO": str(demo_store.config.repo_path),
        "PVCAST_API_KEYS": api_keys_json(),
        "BENTOML_HOME": str(_BENTOML_HOME),
    }
    proc = start_service(env, port, log)
    url = f"http://127.0.0.1:{port}"
    from service.launch import wait_ready

    try:
        wait_ready(proc, url, log)
        yield Served(url=url, read_key=READ_KEY, write_key=WRITE_ONLY_KEY)
    finally:
        stop_service(proc)
