"""The JSON answer of each park, serialised once per request: a header with orjson, the steps from fragments.

A batch of 1,000 parks is about 7 MB of JSON; building dicts per step and serialising them would dominate
the request. Instead every number of the batch is formatted by ONE orjson call, and the JSON text around the
numbers (valid times and quantile labels) is built once per issue time and shared by every park
(:func:`step_fragments`, cached).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
import pandas as pd

from pvcast.errors import PvcastError, UnknownParkError
from pvcast.timeutils import iso_duration

if TYPE_CHECKING:  # the forecaster imports this module at run time
    from service.forecaster import Computed, ServedModel


def quantile_label(level: float) -> str:
    """0.1 → 'p10', 0.025 → 'p2.5'."""
    return f"p{round(level * 100, 6):g}"


@dataclass(frozen=True)
class ParkForecast:
    """One park's answer, already serialised (JSON object bytes)."""

    park_id: str
    degraded: bool
    body: bytes


@dataclass(frozen=True)
class ParkFailure:
    park_id: str
    error: PvcastError


def assemble(
    model: ServedModel, computed: Computed, issued: pd.Timestamp, steps: int, levels: list[int]
) -> list[ParkForecast | ParkFailure]:
    """Each park's answer serialised once: the header with orjson, the steps from precomputed fragments."""
    labels = tuple(model.labels[i] for i in levels)
    header = {
        "issued_at": issued.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "model_version": model.version,
        "unit": "kW",
        "interval_length": iso_duration(model.spec.step_seconds),
        "interval_label": "beginning",
        "quantiles": [model.quantiles[i] for i in levels],
    }
    values = np.round(computed.quantiles_kw[:, :steps, levels].astype(np.float64), 3)
    numbers = orjson.dumps(values.reshape(len(values), -1), option=orjson.OPT_SERIALIZE_NUMPY)
    per_park = numbers[2:-2].split(b"],[") if len(values) else []
    results: list[ParkForecast | ParkFailure] = []
    for i, park_id in enumerate(computed.park_ids):
        if not computed.inputs.park_known[i]:
            results.append(ParkFailure(park_id, UnknownParkError(park_id)))
            continue
        reason = computed.degraded_reason[i]
        head = header | {"capacity_ac_kw": computed.capacity_ac_kw[i], "degraded": reason is not None}
        head = {"park_id": park_id, **head, "degraded_reason": reason}
        fragments = step_fragments(int(computed.inputs.valid_time[i, 0]), model.spec.step_seconds, steps, labels)
        results.append(ParkForecast(park_id, reason is not None, _join(head, fragments, per_park[i])))
    return results


@lru_cache(maxsize=512)
def step_fragments(first: int, step_seconds: int, steps: int, labels: tuple[str, ...]) -> tuple[bytes, ...]:
    """The JSON text around each number of a ``forecast`` array, shared by every park of an issue time.

    Fragment k precedes number k (step k // levels, level k % levels); the last one closes the array.
    """
    times = pd.to_datetime(first + step_seconds * np.arange(steps), unit="s", utc=True).strftime("%Y-%m-%dT%H:%M:%SZ")
    fragments = []
    for s, stamp in enumerate(times):
        opening = b"[{" if s == 0 else b"},{"
        fragments.append(opening + b'"valid_time":"' + stamp.encode() + b'","' + labels[0].encode() + b'":')
        fragments.extend(b',"' + label.encode() + b'":' for label in labels[1:])
    fragments.append(b"}]")
    return tuple(fragments)


def _join(head: dict[str, Any], fragments: tuple[bytes, ...], numbers: bytes) -> bytes:
    """``head`` plus ``"forecast": [...]`` as one JSON object; ``numbers`` is the park's comma-separated values."""
    values = numbers.split(b",")
    parts: list[bytes] = [b""] * (2 * len(values))
    parts[0::2] = fragments[:-1]
    parts[1::2] = values
    return orjson.dumps(head)[:-1] + b',"forecast":' + b"".join(parts) + fragments[-1] + b"}"
