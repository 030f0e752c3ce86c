"""API keys: the stored entry (only a SHA-256 digest of the secret), the scopes, and how keys are made.

The CLI creates keys (``pvcast apikey create``) and the service checks them (``service/auth.py``); both use
this module, so the digest is computed one way only.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Scope = Literal["read", "write", "admin"]
KEY_PREFIX = "pvc_"


class ApiKey(BaseModel):
    """A client key, stored only as the SHA-256 hex digest of the secret."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(min_length=1)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    scopes: tuple[Scope, ...] = ("read",)
    rate_per_second: float | None = Field(default=None, gt=0, description="Overrides PVCAST_RATE_PER_SECOND")
    burst: int | None = Field(default=None, ge=1, description="Overrides PVCAST_RATE_BURST")


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_key() -> str:
    """A fresh random key (~190 bits)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)
