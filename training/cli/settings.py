"""Typed settings of the CLI, from the environment (PVCAST_*, REDIS_URL) and global options."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from feature_repo.store import StoreConfig


class CliSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PVCAST_", frozen=True, extra="ignore")

    feature_repo: Path = Path("feature_repo")
    online_store: Literal["sqlite", "redis"] = "sqlite"
    redis_url: str | None = Field(default=None, validation_alias=AliasChoices("REDIS_URL", "PVCAST_REDIS_URL"))

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> CliSettings:
        overrides = {"feature_repo": args.repo, "online_store": args.online_store}
        return cls(**{k: v for k, v in overrides.items() if v is not None})

    @property
    def store(self) -> StoreConfig:
        return StoreConfig(repo_path=self.feature_repo.resolve(), online=self.online_store, redis_url=self.redis_url)
