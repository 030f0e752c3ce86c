"""Feast definitions of pvcast's features, built for a given offline data folder.

The objects are built by a function (not at import) so that the demo store, the test stores and the
GEFCom benchmark store share ONE definition and differ only in where their parquet files live. The DuckDB
offline store opens source paths as given, so they are made absolute here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from feast import Entity, FeatureService, FeatureView, Field, FileSource, PushSource, ValueType
from feast.types import Array, Float32, Float64, Int64, PrimitiveFeastType, String

from pvcast.pv.plant import PARK_FIELD_TYPES
from pvcast.schema import (
    ENTITY_KEY,
    ENTITY_NAME,
    EVENT_TIMESTAMP,
    FEATURE_SERVICE_NAME,
    GENERATION_PUSH_SOURCE,
    GENERATION_VIEW,
    ISSUED_AT,
    PARK_PUSH_SOURCE,
    PARK_VIEW,
    WEATHER_PUSH_SOURCE,
    WEATHER_VARIABLES,
    WEATHER_VIEW,
)

# TTLs are whole units: the DuckDB/ibis offline store cannot build an interval from mixed units (1 day 6 h).
WEATHER_TTL = timedelta(days=2)
"""A weather forecast older than this is not served at all (freshness limits in the service are tighter)."""
GENERATION_TTL = timedelta(hours=6)
"""Telemetry older than this no longer informs the intraday update."""

FEAST_TYPES: dict[type, PrimitiveFeastType] = {float: Float64, int: Int64, str: String}
"""Feast type of each Python type of the plant model's fields."""

SOURCE_DIRS = {
    PARK_VIEW: "parks",
    WEATHER_VIEW: "weather_forecasts",
    GENERATION_VIEW: "generation",
}
"""Each view's offline table is a folder of parquet files (a base plus appended parts, see store.append_rows)."""


@dataclass(frozen=True)
class Definitions:
    park: Entity
    park_source: FileSource
    park_push: PushSource
    park_view: FeatureView
    weather_source: FileSource
    weather_push: PushSource
    weather_view: FeatureView
    generation_source: FileSource
    generation_push: PushSource
    generation_view: FeatureView
    feature_service: FeatureService

    def objects(self) -> list[Any]:
        """Every object, in dependency order, for ``FeatureStore.apply``."""
        return [getattr(self, name) for name in self.__dataclass_fields__]


def source_dir(data_dir: Path, view: str) -> Path:
    return (Path(data_dir) / SOURCE_DIRS[view]).resolve()


def source_path(data_dir: Path, view: str) -> Path:
    """The FileSource path: a glob over every parquet file of the view's folder (DuckDB reads it as one table)."""
    return source_dir(data_dir, view) / "*.parquet"


def build_definitions(data_dir: Path) -> Definitions:
    park = Entity(name=ENTITY_NAME, join_keys=[ENTITY_KEY], value_type=ValueType.STRING, description="A PV park")
    park_source, park_push, park_view = _park_view(park, data_dir)
    weather_source, weather_push, weather_view = _weather_view(park, data_dir)
    generation_source, generation_push, generation_view = _generation_view(park, data_dir)
    service = FeatureService(
        name=FEATURE_SERVICE_NAME,
        features=[park_view, weather_view, generation_view],
        description="Everything a pvcast forecast for (park, issued_at) reads; version in the name.",
    )
    return Definitions(
        park, park_source, park_push, park_view,
        weather_source, weather_push, weather_view,
        generation_source, generation_push, generation_view, service,
    )  # fmt: skip


def _file_source(name: str, data_dir: Path, view: str, timestamp_field: str) -> FileSource:
    return FileSource(name=name, path=str(source_path(data_dir, view)), timestamp_field=timestamp_field)


def park_schema() -> list[Field]:
    """The ``park`` view's fields: the plant model's fields (``pvcast.pv.plant``), in order, with their types."""
    return [Field(name=name, dtype=FEAST_TYPES[kind]) for name, kind in PARK_FIELD_TYPES.items()]


def _park_view(park: Entity, data_dir: Path) -> tuple[FileSource, PushSource, FeatureView]:
    source = _file_source("park_source", data_dir, PARK_VIEW, EVENT_TIMESTAMP)
    push = PushSource(name=PARK_PUSH_SOURCE, batch_source=source)
    view = FeatureView(
        name=PARK_VIEW,
        entities=[park],
        ttl=timedelta(0),  # metadata never expires; a newer row replaces it
        schema=park_schema(),
        source=push,
        description="Park metadata: location [°, m], capacities [kWp, kW], orientation [°].",
    )
    return source, push, view


def _weather_view(park: Entity, data_dir: Path) -> tuple[FileSource, PushSource, FeatureView]:
    source = _file_source("weather_forecast_source", data_dir, WEATHER_VIEW, ISSUED_AT)
    push = PushSource(name=WEATHER_PUSH_SOURCE, batch_source=source)
    schema = [Field(name=n, dtype=Array(Float32)) for n in WEATHER_VARIABLES]
    schema += [Field(name="valid_from_epoch_s", dtype=Int64), Field(name="step_seconds", dtype=Int64)]
    view = FeatureView(
        name=WEATHER_VIEW,
        entities=[park],
        ttl=WEATHER_TTL,
        schema=schema,
        source=push,
        description="Latest NWP forecast issued at or before the request: arrays over valid times.",
    )
    return source, push, view


def _generation_view(park: Entity, data_dir: Path) -> tuple[FileSource, PushSource, FeatureView]:
    source = _file_source("generation_source", data_dir, GENERATION_VIEW, EVENT_TIMESTAMP)
    push = PushSource(name=GENERATION_PUSH_SOURCE, batch_source=source)
    view = FeatureView(
        name=GENERATION_VIEW,
        entities=[park],
        ttl=GENERATION_TTL,
        schema=[Field(name="power_kw", dtype=Float32), Field(name="valid_time_epoch_s", dtype=Int64)],
        source=push,
        description="Latest measured AC power [kW] known at the request (event time = interval end).",
    )
    return source, push, view
