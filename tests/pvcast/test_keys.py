"""API keys (pvcast/keys.py): the digest the CLI prints and the service compares, fresh keys, the stored entry."""

from __future__ import annotations

import hashlib

import pytest
from pydantic import ValidationError

from pvcast import keys as api_keys
from pvcast.keys import ApiKey

# --- hashing --------------------------------------------------------------------------------------------


def test_hash_key_is_sha256_hex() -> None:
    """The stored digest is the lowercase SHA-256 hex of the UTF-8 secret (what `pvcast apikey` prints)."""
    assert api_keys.hash_key("pvc_abc") == hashlib.sha256(b"pvc_abc").hexdigest()
    assert api_keys.hash_key("pvc_é") == hashlib.sha256("pvc_é".encode()).hexdigest()
    assert api_keys.hash_key("a") != api_keys.hash_key("b")


def test_new_key_is_prefixed_random_and_long() -> None:
    """Fresh keys carry the pvc_ prefix, at least 32 random URL-safe bytes, and never repeat."""
    keys = {api_keys.new_key() for _ in range(50)}
    assert len(keys) == 50
    for key in keys:
        assert key.startswith(api_keys.KEY_PREFIX)
        assert len(key) >= len(api_keys.KEY_PREFIX) + 43  # token_urlsafe(32) → 43 characters


def test_api_key_entry_only_accepts_a_hex_digest() -> None:
    """An entry must hold a 64-character lowercase hex digest: a plain secret or an upper-case digest is refused."""
    digest = api_keys.hash_key("pvc_x")
    assert ApiKey(name="x", sha256=digest).scopes == ("read",)
    for bad in ("pvc_x", digest.upper(), digest[:-1], ""):
        with pytest.raises(ValidationError):
            ApiKey(name="x", sha256=bad)
    with pytest.raises(ValidationError):
        ApiKey(name="x", sha256=digest, scopes=("superuser",))  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        ApiKey(name="", sha256=digest)
