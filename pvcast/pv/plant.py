"""The PV plant model, declared once: what a park is, in which units, within which limits.

``ParkSpec`` is a park's metadata (location, capacities, orientation); ``Park`` adds its id. Everything else
derives from these classes instead of restating the fields:

* the Feast ``park`` view's schema (``feature_repo/views.py``, from :data:`PARK_FIELD_TYPES`);
* the REST API's park body (``service/schemas.py::ParkBody`` is a ``ParkSpec``);
* the options of ``pvcast ingest park`` (:func:`cli_options`: flag, type and help from each field);
* the tensor builder's park constants (``pvcast/pv/features.py``, from :data:`PARK_FEATURES`);
* the offline park table (:func:`parks_frame` / :func:`parks_from_frame`).

Angles in degrees (pvlib's conventions: tilt from horizontal, azimuth clockwise from north, 180 = south),
altitude in metres, capacities in kWp (DC) and kW (AC).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Any, Final

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pvcast.errors import InvalidParkError
from pvcast.schema import ENTITY_KEY, EVENT_TIMESTAMP
from pvcast.timeutils import require_utc

PARK_ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
PARK_ID_DESCRIPTION: Final = "Park identifier: 1–64 characters, letters, digits, '.', '_' or '-'."

ParkId = Annotated[
    str, Field(pattern=PARK_ID_PATTERN, description=PARK_ID_DESCRIPTION, examples=["synthetic-greensboro"])
]

MAX_DC_AC_RATIO = 3.0


class ParkSpec(BaseModel):
    """A PV park's metadata. Angles [°], altitude [m], capacities [kWp] (DC) and [kW] (AC)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    latitude: float = Field(ge=-90, le=90, description="[°] north positive")
    longitude: float = Field(ge=-180, le=180, description="[°] east positive")
    altitude: float = Field(ge=-500, le=9000, description="[m] above sea level")
    capacity_dc_kwp: float = Field(gt=0, le=10_000_000, description="[kWp] module nameplate (DC)")
    capacity_ac_kw: float = Field(gt=0, le=10_000_000, description="[kW] inverter limit (AC)")
    surface_tilt: float = Field(ge=0, le=90, description="[°] from horizontal")
    surface_azimuth: float = Field(ge=0, lt=360, description="[°] clockwise from north (180 = south)")


class _Identified(BaseModel):
    """The park id, first in every serialised park (a base of :class:`Park` so it precedes the metadata)."""

    park_id: ParkId


class Park(ParkSpec, _Identified):
    """A registered PV park: its id and its metadata, checked as a whole (the DC/AC ratio)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    @model_validator(mode="after")
    def _plausible_dc_ac_ratio(self) -> Park:
        ratio = self.capacity_dc_kwp / self.capacity_ac_kw
        if not 1 / MAX_DC_AC_RATIO <= ratio <= MAX_DC_AC_RATIO:
            raise ValueError(
                f"capacity_dc_kwp / capacity_ac_kw = {ratio:.2f} is implausible (expected "
                f"{1 / MAX_DC_AC_RATIO:.2f}..{MAX_DC_AC_RATIO}); check the units (kWp and kW)"
            )
        return self


PARK_FEATURES: Final = tuple(ParkSpec.model_fields)
"""The park metadata fields in declaration order: the ``park`` feature view's features."""

PARK_FIELD_TYPES: Final[dict[str, type]] = {
    name: field.annotation for name, field in ParkSpec.model_fields.items() if isinstance(field.annotation, type)
}
"""Python type of each metadata field (the Feast schema and the CLI options map it to their own types)."""


@dataclass(frozen=True)
class CliOption:
    """One command-line option derived from a metadata field."""

    flag: str  # --capacity-ac-kw
    dest: str  # capacity_ac_kw
    type: type
    help: str  # "[kW] inverter limit (AC)"


def cli_options() -> list[CliOption]:
    """An option per metadata field, in declaration order: ``--field-name`` of the field's type, help from its
    description ("[unit] description"). Every field is required (nothing is assumed)."""
    return [
        CliOption("--" + name.replace("_", "-"), name, PARK_FIELD_TYPES[name], field.description or "")
        for name, field in ParkSpec.model_fields.items()
    ]


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
