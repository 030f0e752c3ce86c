"""API-key authentication: keys are compared as SHA-256 digests in constant time; secrets are never stored."""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from pvcast.errors import AuthenticationError, PermissionDeniedError
from pvcast.keys import ApiKey, Scope, hash_key


def bearer_token(authorization: str | None) -> str:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError("missing API key: send the header 'Authorization: Bearer <key>'")
    return token.strip()


def authenticate(authorization: str | None, keys: Iterable[ApiKey]) -> ApiKey:
    """The key entry matching the bearer token; every stored digest is compared (no early exit)."""
    digest = hash_key(bearer_token(authorization))
    match = None
    for key in keys:
        if hmac.compare_digest(digest, key.sha256):
            match = key
    if match is None:
        raise AuthenticationError("invalid API key")
    return match


def require_scope(key: ApiKey, scope: Scope) -> None:
    if scope not in key.scopes and "admin" not in key.scopes:
        raise PermissionDeniedError(f"the key {key.name!r} lacks the {scope!r} scope this endpoint needs")
