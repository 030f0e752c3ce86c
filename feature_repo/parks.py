"""Park metadata: the validated description of a PV park that every other part relies on."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from feature_repo.errors import InvalidParkError
from feature_repo.schema import ENTITY_KEY, EVENT_TIMESTAMP, PARK_FEATURES
from feature_repo.timeutils import require_utc

ParkId = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
        description="Park identifier: 1–64 characters, letters, digits, '.', '_' or '-'.",
        examples=["synthetic-greensboro"],
    ),
]

MAX_DC_AC_RATIO = 3.0


class Park(BaseModel):
    """A PV park. Angles in degrees, altitude in metres, capacities in kWp (DC) and kW (AC)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    park_id: ParkId
    latitude: float = Field(ge=-90, le=90, description="[°] north positive")
    longitude: float = Field(ge=-180, le=180, description="[°] east positive")
    altitude: float = Field(ge=-500, le=9000, description="[m] above sea level")
    capacity_dc_kwp: float = Field(gt=0, le=10_000_000, description="[kWp] module nameplate (DC)")
    capacity_ac_kw: float = Field(gt=0, le=10_000_000, description="[kW] inverter limit (AC)")
    surface_tilt: float = Field(ge=0, le=90, description="[°] from horizontal")
    surface_azimuth: float = Field(ge=0, lt=360, description="[°] clockwise from north (180 = south)")

    @model_validator(mode="after")
    def _plausible_dc_ac_ratio(self) -> Park:
        ratio = self.capacity_dc_kwp / self.capacity_ac_kw
        if not 1 / MAX_DC_AC_RATIO <= ratio <= MAX_DC_AC_RATIO:
            raise ValueError(
                f"capacity_dc_kwp / capacity_ac_kw = {ratio:.2f} is implausible (expected "
                f"{1 / MAX_DC_AC_RATIO:.2f}..{MAX_DC_AC_RATIO}); check the units (kWp and kW)"
            )
        return self


def validate_park(data: dict[str, Any]) -> Park:
    """Build a ``Park`` or raise ``InvalidParkError`` naming the first bad field."""
    try:
        return Park.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "park"
        raise InvalidParkError(field, first["msg"]) from None


def parks_frame(parks: Iterable[Park], registered_at: pd.Timestamp) -> pd.DataFrame:
    """Parks as the ``park`` source table: one row per park, stamped with the time it takes effect."""
    rows = [p.model_dump() for p in parks]
    frame = pd.DataFrame(rows, columns=[ENTITY_KEY, *PARK_FEATURES])
    stamp = require_utc(registered_at, "registered_at")
    frame[EVENT_TIMESTAMP] = pd.Series([stamp] * len(frame), dtype="datetime64[us, UTC]")
    return frame


def parks_from_frame(frame: pd.DataFrame) -> list[Park]:
    """Validate every row of a park table; the error names the row's park_id and the field."""
    parks = []
    for record in frame[[ENTITY_KEY, *PARK_FEATURES]].to_dict("records"):
        try:
            parks.append(validate_park(record))
        except InvalidParkError as exc:
            raise InvalidParkError(f"{record.get(ENTITY_KEY)!s}.{exc.field}", exc.reason) from None
    return parks
