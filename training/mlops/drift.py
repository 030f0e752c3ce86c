"""Feature drift: the reference distribution stored with a model, and PSI / KS of recent features against it.

At training time :func:`reference_distribution` summarises every input channel over the TRAINING window's
daylight steps (sun above the horizon; night steps are zeros by construction and would hide everything else):
decile bin edges with the share of values in each bin (for PSI) and 101 evenly spaced quantiles (for KS).
It travels in the model's metadata (``ModelMetadata.reference``).

``pvcast monitor drift`` rebuilds the SAME tensors for recent issue times through the offline store and the
one tensor builder (``pvcast.pv.features.build_inputs``) and compares, per feature:

* PSI = Σ (r_i − q_i) · ln(r_i / q_i) over the reference bins (shares floored at 1e-4); > 0.2 is a drift;
* KS = the largest gap between the two empirical CDFs, computed against the 101 reference quantiles
  (resolution 1 %).

Monitored by default (``DRIFT_FEATURES``) are the channels that should NOT move with the season or the
weather regime of a fortnight: the forecast clear-sky index and cloud cover (a feed that changes units, model
or location shows there first) and the weather run's lead time (stale forecasts). Temperature, humidity,
wind, irradiance and sun position move with the season alone, and so do the telemetry channels
(measured_csi, measured_available: whether the sun is up at a given issue hour changes with the season). All
25 channels are in the reference and can be asked for with ``--features``; judge those against a reference
from the same season. ``tests/training/test_mlops.py`` shows an unshifted fortnight of the synthetic demo
below PSI 0.2 and a halved irradiance feed above it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from pvcast.pv.features import ELEVATION_CHANNEL, FEATURE_NAMES

REFERENCE_VERSION: Final = 1
BINS: Final = 10
QUANTILES: Final = 101
PSI_FLOOR: Final = 1e-4
MAX_VALUES: Final = 500_000
DRIFT_FEATURES: Final = ("clearsky_index", "cloud_cover", "weather_lead")


@dataclass(frozen=True)
class DriftThresholds:
    psi: float = 0.2
    ks: float = 0.3
    min_values: int = 500  # fewer recent daylight values than this: not judged


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    psi: float
    ks: float
    values: int
    breach: bool


def daylight_values(features: NDArray[np.float32], seed: int = 0) -> NDArray[np.float64]:
    """(values, channels) of the steps with the sun up, subsampled to at most MAX_VALUES (seeded)."""
    flat = features[features[..., ELEVATION_CHANNEL] > 0].astype(np.float64)
    if len(flat) > MAX_VALUES:
        flat = flat[np.random.default_rng(seed).choice(len(flat), MAX_VALUES, replace=False)]
    return flat


def reference_distribution(features: NDArray[np.float32], window: dict[str, str] | None = None) -> dict[str, Any]:
    """The per-feature reference summary stored with a model (JSON/YAML-safe floats)."""
    values = daylight_values(features)
    summary = {name: _summary(values[:, i]) for i, name in enumerate(FEATURE_NAMES)} if len(values) else {}
    return {
        "version": REFERENCE_VERSION,
        "mask": "solar_elevation > 0",
        "values": len(values),
        "window": window or {},
        "features": summary,
    }


def _summary(values: NDArray[np.float64]) -> dict[str, list[float]]:
    # inverted_cdf: edges and quantiles are observed values, so discrete features (0/1 flags) keep their bins
    edges = np.unique(np.quantile(values, np.linspace(0, 1, BINS + 1)[1:-1], method="inverted_cdf"))
    return {
        "edges": _round(edges),
        "fractions": _round(bin_fractions(values, edges)),
        "quantiles": _round(np.quantile(values, np.linspace(0, 1, QUANTILES), method="inverted_cdf")),
    }


def _round(values: NDArray[np.float64]) -> list[float]:
    return [float(f"{v:.5g}") for v in values]


def bin_fractions(values: NDArray[np.float64], edges: ArrayLike) -> NDArray[np.float64]:
    """Share of values in (-inf, e1], (e1, e2], …, (ek, inf)."""
    bounds = np.asarray(edges, dtype=np.float64)
    index = np.searchsorted(bounds, values, side="left")
    counts = np.bincount(index, minlength=len(bounds) + 1).astype(np.float64)
    return counts / max(len(values), 1)


def psi(reference: ArrayLike, recent: ArrayLike) -> float:
    """Population stability index of two binned distributions (shares floored at PSI_FLOOR)."""
    r = np.maximum(np.asarray(reference, dtype=np.float64), PSI_FLOOR)
    q = np.maximum(np.asarray(recent, dtype=np.float64), PSI_FLOOR)
    return float(np.sum((q - r) * np.log(q / r)))


def ks(reference_quantiles: ArrayLike, recent: NDArray[np.float64]) -> float:
    """Two-sample Kolmogorov–Smirnov statistic of the recent values against the reference quantiles."""
    return float(stats.ks_2samp(np.asarray(reference_quantiles), recent).statistic)


def compare(
    reference: dict[str, Any], features: NDArray[np.float32], names: Sequence[str], thresholds: DriftThresholds
) -> list[FeatureDrift]:
    """PSI and KS of each feature in ``names`` between the reference and recent model inputs."""
    values = daylight_values(features)
    out = []
    for name in names:
        ref = reference["features"][name]
        column = values[:, FEATURE_NAMES.index(name)]
        if len(column) < thresholds.min_values:
            out.append(FeatureDrift(name, float("nan"), float("nan"), len(column), False))
            continue
        p = psi(ref["fractions"], bin_fractions(column, ref["edges"]))
        k = ks(ref["quantiles"], column)
        out.append(FeatureDrift(name, p, k, len(column), p > thresholds.psi or k > thresholds.ks))
    return out
