"""The one place that reads the environment: typed, frozen settings built in entry points, never at import.

``PvcastSettings`` holds every variable pvcast reads (``PVCAST_*`` plus the few names other tools share:
``REDIS_URL``, ``BENTOML_HOME``, ``MLFLOW_TRACKING_URI``). Each entry point builds it once (or a subclass
that adds only its own fields: the service's, the CLI's, the demo launcher's, the serving benchmark's, the
load test's) and passes plain values down. ``child_environment`` builds the environment of a subprocess.
No other module reads ``os.environ`` (``tests/test_layout.py`` checks it).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

OnlineBackend = Literal["sqlite", "redis"]


@dataclass(frozen=True)
class StoreConfig:
    """Where a feature store lives and which online backend it uses."""

    repo_path: Path
    online: OnlineBackend = "sqlite"
    redis_url: str | None = None

    @property
    def data_dir(self) -> Path:
        return self.repo_path / "data"


class PvcastSettings(BaseSettings):
    """Settings every pvcast process shares (environment ``PVCAST_*`` unless an alias says otherwise)."""

    model_config = SettingsConfigDict(env_prefix="PVCAST_", frozen=True, extra="ignore")

    feature_repo: Path = Field(default=Path("feature_repo"), description="The feature store folder")
    online_store: OnlineBackend = "sqlite"
    redis_url: str | None = Field(default=None, validation_alias=AliasChoices("REDIS_URL", "PVCAST_REDIS_URL"))
    offline_dir: Path | None = Field(
        default=None, description="Offline data folder for the `feast` CLI (default: feature_repo/data)"
    )
    bentoml_home: Path = Field(
        default=Path.home() / "bentoml",
        validation_alias="BENTOML_HOME",
        description="BentoML's home; its models/ folder is the model store (BentoML reads the same variable)",
    )
    shared_data: Path | None = Field(default=None, description="Folder of the real data sets (../shared/data)")
    mlflow_tracking_uri: str | None = Field(default=None, validation_alias="MLFLOW_TRACKING_URI")
    openmeteo_url: str | None = Field(default=None, description="Open-Meteo forecast API (default: the public one)")
    openmeteo_historical_url: str | None = Field(default=None, description="Open-Meteo historical-forecast API")
    openmeteo_backoff: float | None = Field(default=None, ge=0, description="Backoff factor between retries [s]")
    prom_file: Path | None = Field(default=None, description="Textfile-collector file for batch jobs' metrics")
    pushgateway_url: str | None = Field(default=None, description="Prometheus Pushgateway for batch jobs' metrics")

    @field_validator("prom_file", "pushgateway_url", "shared_data", "mlflow_tracking_uri", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        """An empty variable (``PVCAST_PROM_FILE=``) means "not set", as a shell user expects."""
        return None if value == "" else value

    @property
    def store(self) -> StoreConfig:
        return StoreConfig(repo_path=self.feature_repo.resolve(), online=self.online_store, redis_url=self.redis_url)


def child_environment(overrides: Mapping[str, str], drop: tuple[str, ...] = ()) -> dict[str, str]:
    """The environment of a subprocess: this one's, minus ``drop`` and every ``PROMETHEUS_*`` variable (this
    process's multiprocess-metrics folder, set by ``import feast``; a child manages its own), plus
    ``overrides``."""
    keep = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("PROMETHEUS_")}
    return keep | dict(overrides)
