"""The park registry behind /parks: create/update, read, list and delete park metadata.

Writes go through ``append_rows`` into the ``park`` view (offline table and online store), so a new park can
be forecast at once (degraded until a weather forecast arrives) and ``pvcast parks`` lists it. Deleting
appends a tombstone row (``feature_repo.store.tombstone``): the park disappears online and from listings, and
backtests of its past still see it. Reads come from the offline table, which every replica shares (in
Kubernetes the store folder is a shared volume).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from feast import FeatureStore

from feature_repo.store import append_rows, registered_parks, tombstone
from pvcast.errors import DataNotFoundError, UnknownParkError
from pvcast.pv.plant import Park, parks_frame, validate_park
from pvcast.schema import PARK_VIEW
from pvcast.settings import StoreConfig


class ParkRegistry:
    def __init__(self, store: FeatureStore, config: StoreConfig) -> None:
        self.store, self.config = store, config

    def all(self) -> list[Park]:
        try:
            return registered_parks(self.config)
        except DataNotFoundError:
            return []

    def get(self, park_id: str) -> Park:
        for park in self.all():
            if park.park_id == park_id:
                return park
        raise UnknownParkError(park_id)

    def put(self, park_id: str, metadata: dict[str, Any]) -> tuple[Park, bool]:
        """Register or update; returns the park and whether it is new."""
        park = validate_park({"park_id": park_id, **metadata})
        created = park_id not in {p.park_id for p in self.all()}
        append_rows(self.store, self.config, PARK_VIEW, parks_frame([park], pd.Timestamp.now(tz="UTC")))
        return park, created

    def delete(self, park_id: str) -> None:
        self.get(park_id)
        append_rows(self.store, self.config, PARK_VIEW, tombstone(park_id, pd.Timestamp.now(tz="UTC")))
