"""Typed settings of the CLI: the shared ``PvcastSettings`` (environment) overridden by the global options."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from pvcast.settings import PvcastSettings

if TYPE_CHECKING:
    from pvcast.model_store import ModelStore


class CliSettings(PvcastSettings):
    """``--repo`` and ``--online-store`` win over PVCAST_FEATURE_REPO and PVCAST_ONLINE_STORE."""

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> CliSettings:
        overrides = {"feature_repo": args.repo, "online_store": args.online_store}
        return cls(**{k: v for k, v in overrides.items() if v is not None})

    @property
    def models(self) -> ModelStore:
        """The model store under ``BENTOML_HOME`` (imported here: most commands never touch BentoML)."""
        from pvcast.model_store import ModelStore

        return ModelStore(self.bentoml_home)
