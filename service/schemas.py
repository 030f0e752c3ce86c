"""Request and response bodies of the REST API, with units and examples for the OpenAPI document."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from pvcast.pv.plant import ParkId, ParkSpec

MAX_HORIZON_HOURS = 48
MAX_BATCH_PARKS = 10_000
MAX_TELEMETRY_ROWS = 10_000

HorizonHours = Field(
    default=24,
    ge=1,
    le=MAX_HORIZON_HOURS,
    description="Hours ahead [h], 1–48; at most the served model's horizon (24 h for the demo model).",
)
Quantiles = Field(
    default=None,
    min_length=1,
    max_length=99,
    description="Non-exceedance levels to return, a subset of the served model's (default: all of them).",
    examples=[[0.1, 0.9]],
)
IssuedAt = Field(
    default=None,
    description=(
        "'As of' time for backtests (UTC, with a timezone): the forecast uses only information available then "
        "(point-in-time read of the offline store). Default: now, from the online store."
    ),
    examples=["2026-11-20T12:00:00Z"],
)


EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)


def plausible_time(value: datetime) -> datetime:
    """Refuse times before 2000 (no pvcast data can be that old; far-off years are typing errors)."""
    if value < EARLIEST:
        raise ValueError("must not be before 2000-01-01T00:00:00Z")
    return value


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid")

    horizon_hours: int = HorizonHours
    quantiles: list[float] | None = Quantiles
    issued_at: AwareDatetime | None = IssuedAt

    @field_validator("quantiles")
    @classmethod
    def _levels(cls, levels: list[float] | None) -> list[float] | None:
        if levels is not None and any(not (0 < q < 1) for q in levels):
            raise ValueError("quantile levels lie strictly between 0 and 1")
        return levels

    @field_validator("issued_at")
    @classmethod
    def _plausible_issue_time(cls, value: datetime | None) -> datetime | None:
        return None if value is None else plausible_time(value)


class ForecastRequest(_Options):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"park_id": "synthetic-greensboro", "horizon_hours": 24}]},
    )

    park_id: ParkId


class BatchForecastRequest(_Options):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"park_ids": ["synthetic-greensboro", "synthetic-miami"], "horizon_hours": 6}]},
    )

    park_ids: list[ParkId] = Field(
        min_length=1,
        max_length=MAX_BATCH_PARKS,
        description=f"1–{MAX_BATCH_PARKS:,} park ids; results come back in this order (repeats allowed).",
    )


class ForecastStep(BaseModel):
    """One interval: its beginning and the power quantiles [kW], keyed p10, p50, p90, ..."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [{"valid_time": "2026-11-24T12:00:00Z", "p10": 812.4, "p50": 1033.9, "p90": 1270.2}]
        },
    )

    valid_time: datetime


class ForecastResponse(BaseModel):
    park_id: str
    issued_at: datetime = Field(description="The latest information this forecast may use (UTC).")
    model_version: str
    capacity_ac_kw: float = Field(description="Inverter limit [kW]; every value lies in [0, capacity_ac_kw].")
    unit: str = Field("kW", description="Unit of every quantile value.")
    interval_length: str = Field("PT15M", description="ISO 8601 duration of each interval.")
    interval_label: str = Field("beginning", description="valid_time labels the beginning of the interval.")
    quantiles: list[float] = Field(
        description="Non-exceedance levels, e.g. 0.1 = P10 (10 % chance the power is lower)."
    )
    degraded: bool = Field(
        False,
        description=(
            "True when no fresh weather forecast was available: the values come from the physics path "
            "(clear-sky power × the clear-sky index of the latest measurement, with the error quantiles fitted "
            "in training), not from the model."
        ),
    )
    degraded_reason: str | None = Field(None, description="Why the forecast is degraded; null otherwise.")
    forecast: list[ForecastStep]


class ErrorDetail(BaseModel):
    field: str | None = None
    message: str


class ErrorResponse(BaseModel):
    error: str = Field(description="Machine-readable kind: unauthorized, forbidden, not_found, validation_error, ...")
    message: str
    details: list[ErrorDetail] = []


class ParkErrorBody(BaseModel):
    error: str = Field(description="not_found, validation_error, ...", examples=["not_found"])
    message: str


class ParkError(BaseModel):
    """A park of a batch that could not be forecast; the others are unaffected."""

    park_id: str
    error: ParkErrorBody


class BatchForecastResponse(BaseModel):
    results: list[ForecastResponse | ParkError] = Field(description="One entry per requested park id, in order.")


class Measurement(BaseModel):
    model_config = ConfigDict(extra="forbid")

    park_id: ParkId
    valid_time: AwareDatetime = Field(
        description="Beginning of the 15-minute interval (UTC, with a timezone), on a quarter hour.",
        examples=["2026-11-24T11:45:00Z"],
    )
    power_kw: float = Field(description="Mean AC power over the interval [kW], 0..1.1 × capacity_ac_kw.")

    @field_validator("valid_time")
    @classmethod
    def _plausible(cls, value: datetime) -> datetime:
        return plausible_time(value)

    @field_validator("power_kw")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("power_kw must be a finite number")
        return value


class TelemetryRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "measurements": [
                        {"park_id": "synthetic-miami", "valid_time": "2026-11-24T11:45:00Z", "power_kw": 1210.5}
                    ]
                }
            ]
        },
    )

    measurements: list[Measurement] = Field(min_length=1, max_length=MAX_TELEMETRY_ROWS)


class Rejection(BaseModel):
    index: int = Field(description="Position of the measurement in the request.")
    field: str = Field(description="Offending field, e.g. measurements[3].power_kw.")
    message: str


class TelemetryResponse(BaseModel):
    accepted: int = Field(description="Measurements stored now (new (park_id, valid_time) keys).")
    duplicates: int = Field(description="Measurements already stored earlier (idempotent: nothing changed).")
    rejected: list[Rejection] = Field(description="Measurements refused by validation; the others were stored.")


class ParkBody(ParkSpec):
    """Park metadata (the park id is in the path). Angles [°], altitude [m], capacities [kWp] and [kW]."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "latitude": 36.1,
                    "longitude": -79.8,
                    "altitude": 270,
                    "capacity_dc_kwp": 5200,
                    "capacity_ac_kw": 4300,
                    "surface_tilt": 25,
                    "surface_azimuth": 180,
                }
            ]
        },
    )


class ParkResponse(ParkBody):
    model_config = ConfigDict(extra="forbid")

    park_id: str


class ParkList(BaseModel):
    parks: list[ParkResponse]


class BackfillRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"start": "2026-11-01T00:00:00Z", "end": "2026-11-08T00:00:00Z", "every_hours": 6}]
        },
    )

    park_ids: list[ParkId] | None = Field(
        default=None, min_length=1, max_length=MAX_BATCH_PARKS, description="Default: every registered park."
    )
    start: AwareDatetime = Field(description="First issue time (UTC).")
    end: AwareDatetime = Field(description="Last issue time (UTC), not in the future.")

    @field_validator("start", "end")
    @classmethod
    def _plausible(cls, value: datetime) -> datetime:
        return plausible_time(value)

    every_hours: float = Field(default=24.0, ge=0.25, le=168, description="Spacing of issue times [h].")
    horizon_hours: int = HorizonHours


class JobAccepted(BaseModel):
    job_id: str
    status: str = "queued"
    status_url: str


class JobStatus(BaseModel):
    job_id: str
    kind: str
    status: Literal["queued", "running", "succeeded", "failed"]
    progress: float = Field(description="Fraction done, 0..1.")
    created_at: datetime
    updated_at: datetime
    params: dict[str, Any]
    result: dict[str, Any] | None = None
    error: str | None = None
