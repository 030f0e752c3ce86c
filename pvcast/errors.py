"""Every domain error of pvcast, in one place, each with an actionable one-line message.

The service maps them to HTTP status codes in one table (``service/errors.py``); the CLI turns them into a
one-line message and exit code 2. A module that raises an error imports it from here, so the status table
and the raisers cannot drift apart.
"""

from __future__ import annotations


class PvcastError(Exception):
    """Base class: a problem the user can fix, described in one line."""


# --- data and time ---------------------------------------------------------------------------------------


class NaiveTimestampError(PvcastError, ValueError):
    """A timestamp without a timezone reached a boundary that only accepts UTC."""


class DataNotFoundError(PvcastError):
    """A job needs data that is not in the store yet (e.g. training before `pvcast demo`)."""


class TelemetryFormatError(PvcastError, ValueError):
    """A telemetry file does not look like the format it was declared as."""


class OpenMeteoError(PvcastError):
    """Open-Meteo answered with something unusable (HTTP error, malformed or partial body) after retries."""


# --- plants ----------------------------------------------------------------------------------------------


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


# --- models ----------------------------------------------------------------------------------------------


class FeatureContractError(PvcastError):
    """Model and feature definitions disagree (names, order, step or horizon)."""


class ModelNotFoundError(PvcastError, LookupError):
    """No stored model answers to this reference (or there is no production model yet)."""


class ExportParityError(PvcastError):
    """The ONNX graph does not reproduce torch within the tolerance."""


# --- requests to the service -----------------------------------------------------------------------------


class AuthenticationError(PvcastError):
    """Missing or unknown key (HTTP 401)."""


class PermissionDeniedError(PvcastError):
    """Valid key without the scope the endpoint needs (HTTP 403)."""


class HorizonTooLongError(PvcastError, ValueError):
    """The request asks for more hours than the served model forecasts (HTTP 422)."""

    field = "horizon_hours"


class QuantileNotServedError(PvcastError, ValueError):
    """A requested quantile level is not one of the served model's (HTTP 422)."""

    field = "quantiles"


class IssuedInFutureError(PvcastError, ValueError):
    """``issued_at`` lies in the future: no information from then exists yet (HTTP 422)."""

    field = "issued_at"


class StoreUnavailableError(PvcastError):
    """The online feature store cannot be read (HTTP 503)."""


# --- jobs ------------------------------------------------------------------------------------------------


class JobNotFoundError(PvcastError, LookupError):
    """No job with this id (or its state has expired) (HTTP 404)."""


class SharedStateUnavailableError(PvcastError):
    """The Redis that holds job state cannot be reached, or none is configured (HTTP 503)."""


class InvalidJobError(PvcastError, ValueError):
    """A job request that cannot run as given (HTTP 422); ``field`` names the offending field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
