"""API-key authentication (service/auth.py) and the service settings that hold the keys (service/settings.py).
Key hashing and the stored entry are pvcast/keys.py's (tests/pvcast/test_keys.py)."""

from __future__ import annotations

import hmac
import json

import pytest
from pydantic import ValidationError

from pvcast.errors import AuthenticationError, PermissionDeniedError
from pvcast.keys import ApiKey
from service import auth
from service.settings import ServiceSettings

READER = ApiKey(name="reader", sha256=auth.hash_key("pvc_reader"), scopes=("read",))
WRITER = ApiKey(name="writer", sha256=auth.hash_key("pvc_writer"), scopes=("write",))
ADMIN = ApiKey(name="admin", sha256=auth.hash_key("pvc_admin"), scopes=("admin",))
KEYS = (READER, WRITER, ADMIN)


# --- bearer parsing -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "token"),
    [("Bearer pvc_abc", "pvc_abc"), ("bearer pvc_abc", "pvc_abc"), ("BEARER   pvc_abc  ", "pvc_abc")],
)
def test_bearer_token_parsed(header: str, token: str) -> None:
    """The scheme is case-insensitive and whitespace around the token is dropped."""
    assert auth.bearer_token(header) == token


@pytest.mark.parametrize(
    "header", [None, "", "pvc_abc", "Bearer", "Bearer ", "Bearer    ", "Basic pvc_abc", "Token pvc_abc"]
)
def test_bearer_token_refused(header: str | None) -> None:
    """No header, no token, or another scheme → AuthenticationError telling how to send the key."""
    with pytest.raises(AuthenticationError, match="Authorization: Bearer <key>"):
        auth.bearer_token(header)


# --- authenticate ---------------------------------------------------------------------------------------


def test_authenticate_returns_the_matching_entry() -> None:
    """Each secret maps to its own entry."""
    assert auth.authenticate("Bearer pvc_reader", KEYS) is READER
    assert auth.authenticate("Bearer pvc_writer", KEYS) is WRITER
    assert auth.authenticate("Bearer pvc_admin", KEYS) is ADMIN


@pytest.mark.parametrize(
    "header", ["Bearer pvc_nobody", f"Bearer {READER.sha256}", "Bearer pvc_reader2", "Bearer PVC_READER"]
)
def test_authenticate_refuses_unknown_keys(header: str) -> None:
    """An unknown secret — including the stored digest itself, a near miss or a case change — is refused (401)."""
    with pytest.raises(AuthenticationError, match="invalid API key"):
        auth.authenticate(header, KEYS)


def test_authenticate_refuses_everything_without_keys() -> None:
    """With no configured keys nothing authenticates."""
    with pytest.raises(AuthenticationError):
        auth.authenticate("Bearer pvc_reader", ())


def test_authenticate_compares_every_digest_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Digests are compared with hmac.compare_digest, against EVERY stored key even when the first matches
    (no early exit whose timing would reveal the position of a key)."""
    calls: list[tuple[str, str]] = []
    real = hmac.compare_digest

    def spy(a: str, b: str) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    assert auth.authenticate("Bearer pvc_reader", KEYS) is READER  # READER is the first entry
    assert [b for _, b in calls] == [k.sha256 for k in KEYS]
    assert {a for a, _ in calls} == {auth.hash_key("pvc_reader")}  # the secret itself is never compared


# --- scopes ---------------------------------------------------------------------------------------------


def test_scope_granted_only_when_held() -> None:
    """read allows read only; write allows write only."""
    auth.require_scope(READER, "read")
    auth.require_scope(WRITER, "write")
    with pytest.raises(PermissionDeniedError, match="'reader' lacks the 'write' scope"):
        auth.require_scope(READER, "write")
    with pytest.raises(PermissionDeniedError, match="'writer' lacks the 'read' scope"):
        auth.require_scope(WRITER, "read")
    with pytest.raises(PermissionDeniedError):
        auth.require_scope(READER, "admin")


@pytest.mark.parametrize("scope", ["read", "write", "admin"])
def test_admin_implies_every_scope(scope: str) -> None:
    """An admin key passes every scope check."""
    auth.require_scope(ADMIN, scope)  # type: ignore[arg-type]


# --- settings -------------------------------------------------------------------------------------------


def test_settings_read_keys_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """PVCAST_API_KEYS (a JSON list of entries) becomes typed ApiKey entries."""
    entries = [
        {"name": "reader", "sha256": READER.sha256, "scopes": ["read"]},
        {"name": "ops", "sha256": ADMIN.sha256, "scopes": ["admin"]},
    ]
    monkeypatch.setenv("PVCAST_API_KEYS", json.dumps(entries))
    settings = ServiceSettings()
    assert settings.api_keys == (READER, ApiKey(name="ops", sha256=ADMIN.sha256, scopes=("admin",)))
    assert auth.authenticate("Bearer pvc_admin", settings.api_keys).name == "ops"


def test_settings_refuse_an_empty_key_list(monkeypatch: pytest.MonkeyPatch) -> None:
    """`PVCAST_API_KEYS=[]` → the service refuses to start, saying how to create a key."""
    monkeypatch.setenv("PVCAST_API_KEYS", "[]")
    with pytest.raises(ValidationError, match="PVCAST_API_KEYS is empty"):
        ServiceSettings()


def test_settings_refuse_missing_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """PVCAST_API_KEYS unset → refused as well (the default is validated, not silently accepted)."""
    monkeypatch.delenv("PVCAST_API_KEYS", raising=False)
    with pytest.raises(ValidationError, match="PVCAST_API_KEYS is empty"):
        ServiceSettings()


@pytest.mark.parametrize("value", ["", "not json", '[{"name": "x", "sha256": "pvc_plain_secret"}]'])
def test_settings_refuse_unusable_key_values(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    """An empty string, non-JSON or an entry holding a secret instead of a digest refuses to start."""
    monkeypatch.setenv("PVCAST_API_KEYS", value)
    with pytest.raises(ValueError, match="api_keys"):
        ServiceSettings()


def test_settings_are_frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings cannot be changed after start-up."""
    monkeypatch.setenv("PVCAST_API_KEYS", json.dumps([{"name": "r", "sha256": READER.sha256}]))
    settings = ServiceSettings()
    with pytest.raises(ValidationError):
        settings.model = "latest"  # type: ignore[misc]
