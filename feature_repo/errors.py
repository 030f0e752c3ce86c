"""Domain errors with actionable messages. The service maps them to HTTP status codes in one place
(``service/errors.py``); the CLI turns them into a one-line message and a non-zero exit code."""

from __future__ import annotations


class PvcastError(Exception):
    """Base class: a problem the user can fix, described in one line."""


class NaiveTimestampError(PvcastError, ValueError):
    """A timestamp without a timezone reached a boundary that only accepts UTC."""


class InvalidParkError(PvcastError, ValueError):
    """Park metadata out of range or incomplete. ``field`` names the offending attribute."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class UnknownParkError(PvcastError, LookupError):
    """No metadata is registered for this park id."""

    def __init__(self, park_id: str) -> None:
        super().__init__(f"unknown park_id {park_id!r}: register it first (see `pvcast parks`)")
        self.park_id = park_id


class FeatureContractError(PvcastError):
    """Model and feature definitions disagree (names, order, step or horizon)."""


class DataNotFoundError(PvcastError):
    """A job needs data that is not in the store yet (e.g. training before `pvcast demo`)."""
