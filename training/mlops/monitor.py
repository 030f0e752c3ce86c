"""Monitoring jobs: forecast accuracy from the forecast log, feature drift against the model's reference.

``pvcast monitor accuracy`` joins logged forecasts (``feature_repo.forecast_log``) with the measured power of
the same parks and intervals and scores them per park and UTC day of the valid time:

* ``nmae_pct`` — MAE of the median in % of AC capacity over DAYLIGHT intervals, i.e. those where the forecast
  median or the measurement is above zero (the graph forecasts exactly 0 at night; nights would dilute it);
* ``pinball_pct`` — pinball loss averaged over the quantile levels, % of capacity, every measured interval;
* ``coverage_pct`` — share of daylight measurements inside the P10–P90 band (nominal 80 %).

A park breaches when, over the whole window and with at least ``min_points`` daylight points, its nMAE is
above ``max_nmae_pct`` or its coverage leaves [``min_coverage_pct``, ``max_coverage_pct``].
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from prometheus_client import CollectorRegistry, Gauge

from feature_repo.forecast_log import read_forecast_log
from feature_repo.store import open_store, read_table, registered_parks
from pvcast.errors import DataNotFoundError
from pvcast.model_store import ModelStore
from pvcast.schema import ENTITY_KEY, GENERATION_VIEW
from pvcast.settings import StoreConfig
from pvcast.timeutils import require_utc
from training.dataset import build_dataset, issue_times
from training.metrics import central_index, interval_indices
from training.mlops import drift
from training.mlops.prometheus import job_registry

logger = logging.getLogger(__name__)

ACCURACY_JOB = "pvcast_monitor_accuracy"
DRIFT_JOB = "pvcast_monitor_drift"


@dataclass(frozen=True)
class AccuracyThresholds:
    max_nmae_pct: float = 15.0
    min_coverage_pct: float = 60.0
    max_coverage_pct: float = 95.0
    min_points: int = 96  # one day of daylight quarter-hours is about 48; 96 ≈ two days


@dataclass
class AccuracyReport:
    start: pd.Timestamp
    end: pd.Timestamp
    daily: pd.DataFrame  # park_id, day, nmae_pct, pinball_pct, coverage_pct, points
    parks: pd.DataFrame  # park_id, nmae_pct, pinball_pct, coverage_pct, points, forecasts, breach, why

    @property
    def breaches(self) -> int:
        return int(self.parks["breach"].sum()) if len(self.parks) else 0

    def table(self) -> str:
        lines = [f"forecast accuracy for valid times {self.start.isoformat()} .. {self.end.isoformat()}"]
        lines.append(f"{'park_id':<28}{'day':<12}{'nmae_pct':>10}{'pinball_pct':>13}{'coverage_pct':>14}{'points':>8}")
        for row in self.daily.itertuples():
            lines.append(
                f"{row.park_id:<28}{row.day:<12}{row.nmae_pct:>10.2f}{row.pinball_pct:>13.3f}"
                f"{row.coverage_pct:>14.1f}{row.points:>8d}"
            )
        lines.append("window per park:")
        for row in self.parks.itertuples():
            flag = f"  BREACH: {row.why}" if row.breach else ""
            lines.append(
                f"{row.park_id:<28}{'':<12}{row.nmae_pct:>10.2f}{row.pinball_pct:>13.3f}"
                f"{row.coverage_pct:>14.1f}{row.points:>8d}{flag}"
            )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "daily": self.daily.to_dict("records"),
            "parks": self.parks.to_dict("records"),
            "breaches": self.breaches,
        }


def score_rows(log: pd.DataFrame, generation: pd.DataFrame) -> pd.DataFrame:
    """Per logged (forecast, valid time): the measurement and the errors, as fractions of capacity."""
    measured = generation.set_index([ENTITY_KEY, "valid_time_epoch_s"])["power_kw"].astype(np.float64)
    measured = measured[~measured.index.duplicated()]
    epoch = log["valid_time"].astype("int64") // 10**6
    target = measured.reindex(pd.MultiIndex.from_arrays([log[ENTITY_KEY], epoch])).to_numpy()
    parts = [_score_group(group, target[group.index.to_numpy()]) for _, group in log.groupby(_levels_key(log))]
    return pd.concat(parts).sort_index() if parts else pd.DataFrame()


def _levels_key(log: pd.DataFrame) -> pd.Series:
    return log["quantile_levels"].map(lambda levels: ",".join(f"{x:g}" for x in levels))


def _score_group(group: pd.DataFrame, target: np.ndarray) -> pd.DataFrame:
    levels = [float(x) for x in group["quantile_levels"].iloc[0]]
    pred = np.stack(group["quantiles_kw"].to_numpy()).astype(np.float64)
    cap = group["capacity_ac_kw"].to_numpy(dtype=np.float64)
    median = pred[:, central_index(levels)]
    lo, hi = interval_indices(levels)
    is_measured = np.isfinite(target)
    t = np.where(is_measured, target, 0.0)
    error = (t[:, None] - pred) / cap[:, None]
    level = np.asarray(levels)
    return pd.DataFrame(
        {
            ENTITY_KEY: group[ENTITY_KEY].to_numpy(),
            "day": group["valid_time"].dt.strftime("%Y-%m-%d").to_numpy(),
            "issued_at": group["issued_at"].to_numpy(),
            "measured": is_measured,
            "daylight": is_measured & ((t > 0) | (median > 0)),
            "abs_error": np.abs(median - t) / cap,
            "pinball": np.mean(np.maximum(level * error, (level - 1) * error), axis=1),
            "inside": (t >= pred[:, lo]) & (t <= pred[:, hi]),
        },
        index=group.index,
    )


def _aggregate(rows: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    def metrics(g: pd.DataFrame) -> pd.Series:
        day, measured = g["daylight"], g["measured"]
        return pd.Series(
            {
                "nmae_pct": 100 * g.loc[day, "abs_error"].mean() if day.any() else np.nan,
                "pinball_pct": 100 * g.loc[measured, "pinball"].mean() if measured.any() else np.nan,
                "coverage_pct": 100 * g.loc[day, "inside"].mean() if day.any() else np.nan,
                "points": int(day.sum()),
                "forecasts": int(g["issued_at"].nunique()),
            }
        )

    out = rows.groupby(keys, sort=True)[list(rows.columns)].apply(metrics).reset_index()
    return out.astype({"points": int, "forecasts": int})


def accuracy_job(
    config: StoreConfig, start: pd.Timestamp, end: pd.Timestamp, thresholds: AccuracyThresholds
) -> AccuracyReport:
    start, end = require_utc(start, "start"), require_utc(end, "end")
    log = read_forecast_log(config, start, end, by="valid_time")
    if log.empty:
        raise DataNotFoundError(f"no logged forecasts with valid times in {start} .. {end}")
    rows = score_rows(log, read_table(config, GENERATION_VIEW))
    rows = rows[rows["measured"]]
    if rows.empty:
        raise DataNotFoundError(f"no telemetry yet for the {len(log)} logged forecast steps in {start} .. {end}")
    daily = _aggregate(rows, [ENTITY_KEY, "day"])
    parks = _aggregate(rows, [ENTITY_KEY])
    parks["why"] = [_why(r, thresholds) for r in parks.itertuples()]
    parks["breach"] = parks["why"] != ""
    logger.info("scored %d measured forecast steps of %d parks", len(rows), len(parks))
    return AccuracyReport(start, end, daily, parks)


def _why(row: Any, t: AccuracyThresholds) -> str:
    if row.points < t.min_points:
        return ""
    reasons = []
    if row.nmae_pct > t.max_nmae_pct:
        reasons.append(f"nMAE {row.nmae_pct:.1f} % > {t.max_nmae_pct:g} %")
    if not t.min_coverage_pct <= row.coverage_pct <= t.max_coverage_pct:
        reasons.append(
            f"P10–P90 coverage {row.coverage_pct:.1f} % outside {t.min_coverage_pct:g}–{t.max_coverage_pct:g} %"
        )
    return "; ".join(reasons)


def accuracy_registry(report: AccuracyReport) -> CollectorRegistry:
    registry = job_registry(ACCURACY_JOB, report.breaches)
    gauges = {
        name: Gauge(f"pvcast_accuracy_{name}", help_text, [ENTITY_KEY], registry=registry)
        for name, help_text in (
            ("nmae_pct", "Daylight nMAE of the logged median forecasts over the window [% of AC capacity]"),
            ("pinball_pct", "Mean pinball loss of the logged forecasts over the window [% of AC capacity]"),
            ("coverage_pct", "Share of daylight measurements inside P10-P90 over the window [%] (nominal 80)"),
            ("points", "Daylight forecast steps scored over the window"),
            ("breach", "1 if the park breached an accuracy threshold"),
        )
    }
    for row in report.parks.itertuples():
        for name, gauge in gauges.items():
            gauge.labels(row.park_id).set(float(getattr(row, name)))
    return registry


# --- drift ----------------------------------------------------------------------------------------------


@dataclass
class DriftReport:
    model: str
    start: pd.Timestamp
    end: pd.Timestamp
    forecasts: int
    features: list[drift.FeatureDrift] = field(default_factory=list)

    @property
    def breaches(self) -> int:
        return sum(f.breach for f in self.features)

    def table(self, thresholds: drift.DriftThresholds) -> str:
        lines = [
            f"feature drift of {self.forecasts} forecasts issued {self.start.isoformat()} .. {self.end.isoformat()} "
            f"against the reference of model {self.model} (PSI > {thresholds.psi:g} or KS > {thresholds.ks:g} = drift)",
            f"{'feature':<22}{'psi':>9}{'ks':>9}{'values':>10}",
        ]
        for f in self.features:
            lines.append(f"{f.feature:<22}{f.psi:>9.3f}{f.ks:>9.3f}{f.values:>10d}{'  DRIFT' if f.breach else ''}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "forecasts": self.forecasts,
            "features": [f.__dict__ for f in self.features],
            "breaches": self.breaches,
        }


def drift_job(
    config: StoreConfig,
    models: ModelStore,
    model: str,
    end: pd.Timestamp,
    days: float,
    every_hours: float | None,
    names: list[str],
    thresholds: drift.DriftThresholds,
) -> DriftReport:
    """Rebuild the model inputs of the last ``days`` (issue times every ``every_hours``, default: as in the
    model's training) and compare them with the reference stored with ``model``."""
    tag = models.resolve(model)
    meta = models.metadata_of(tag)
    reference = getattr(meta, "reference", None) or {}
    if not reference.get("features"):
        raise DataNotFoundError(f"model {tag} carries no reference distribution: retrain it (pvcast retrain)")
    unknown = sorted(set(names) - set(reference["features"]))
    if unknown:
        raise ValueError(f"features {unknown} are not in the model's reference")
    end = require_utc(end, "end")
    start = end - pd.Timedelta(days=days)
    if every_hours is None:  # the model's own spacing: the lead-time mix then matches the reference
        every_hours = float(meta.training.get("config", {}).get("issue_every_hours", 2.0))
    parks = [p.park_id for p in registered_parks(config)]
    data = build_dataset(open_store(config), config, parks, issue_times(start, end, every_hours), meta.spec)
    report = DriftReport(tag, start, end, len(data))
    report.features = drift.compare(reference, data.features, names, thresholds)
    return report


def drift_registry(report: DriftReport) -> CollectorRegistry:
    registry = job_registry(DRIFT_JOB, report.breaches)
    psi = Gauge(
        "pvcast_drift_psi",
        "Population stability index of a feature vs the model's reference",
        ["feature"],
        registry=registry,
    )
    ks = Gauge(
        "pvcast_drift_ks",
        "Kolmogorov-Smirnov statistic of a feature vs the model's reference",
        ["feature"],
        registry=registry,
    )
    breach = Gauge(
        "pvcast_drift_breach", "1 if the feature's PSI or KS is past its threshold", ["feature"], registry=registry
    )
    for f in report.features:
        psi.labels(f.feature).set(f.psi)
        ks.labels(f.feature).set(f.ks)
        breach.labels(f.feature).set(float(f.breach))
    Gauge("pvcast_drift_model_info", "The model whose reference was used", ["model"], registry=registry).labels(
        report.model
    ).set(1)
    return registry
