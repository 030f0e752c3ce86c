"""``pvcast`` sub-commands of the MLOps loop: ingest, validate, monitor, retrain, runs.

Exit codes: 0 done; 1 the job ran but found a problem an alert should see (a failed fetch, a quality score or
an accuracy/drift threshold breached); 2 a user mistake (one line on stderr). See docs/operations.md.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from pvcast.pv.plant import cli_options
from training.cli.commands import _add_train_options, emit, timestamp
from training.cli.settings import CliSettings


def register(sub: argparse._SubParsersAction) -> None:
    _ingest(sub.add_parser("ingest", help="bring data in: park metadata, weather forecasts, telemetry"))
    _validate(sub.add_parser("validate", help="per-park data quality report and score"))
    _monitor(sub.add_parser("monitor", help="forecast accuracy and feature drift, as Prometheus metrics"))
    _retrain(sub.add_parser("retrain", help="train a challenger, compare with production, promote if better"))
    _runs(sub.add_parser("runs", help="list MLflow runs of retraining"))


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return number


# --- ingest ---------------------------------------------------------------------------------------------


def _ingest(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="source", required=True, metavar="SOURCE")
    park = sub.add_parser("park", help="register a park (or new metadata from --effective-from); nothing is assumed")
    park.add_argument("--park-id", required=True)
    for option in cli_options():  # one per field of the plant model, all required
        park.add_argument(option.flag, dest=option.dest, type=option.type, required=True, help=option.help)
    park.add_argument("--effective-from", type=timestamp, default="now", help="from when the metadata holds (UTC)")
    park.set_defaults(handler=run_ingest_park)

    weather = sub.add_parser("weather", help="Open-Meteo forecasts for every registered park")
    weather.add_argument("--issued-at", type=timestamp, default="now", help="fetch time stamp (ceiled to 15 min)")
    weather.add_argument("--park", action="append", default=None, help="only this park (repeatable)")
    weather.add_argument("--backfill", nargs=2, type=timestamp, metavar=("START", "END"), default=None,
                         help="historical-forecast API: runs for the UTC days START..END")  # fmt: skip
    weather.add_argument("--every-hours", type=_positive_int, default=24, help="backfill: hours between runs")
    weather.add_argument("--hours", type=_positive_int, default=48, help="forecast length of each run [h]")
    weather.add_argument("--batch-size", type=_positive_int, default=50, help="parks per request")
    weather.add_argument("--attempts", type=_positive_int, default=3, help="attempts per request (malformed bodies)")
    weather.add_argument("--cache", type=Path, default=Path(".pvcast/openmeteo_cache"), help="HTTP cache file")
    weather.add_argument("--no-cache", action="store_true")
    weather.set_defaults(handler=run_ingest_weather)

    telemetry = sub.add_parser("telemetry", help="a SCADA export into the generation source (validated)")
    telemetry.add_argument("--csv", type=Path, required=True, help="the export file")
    telemetry.add_argument("--format", required=True, choices=["kaggle", "pvcast"], help="see docs/operations.md")
    telemetry.add_argument("--park-id", required=True, help="a registered park (`pvcast ingest park`)")
    telemetry.add_argument("--dry-run", action="store_true", help="validate and report, write nothing")
    telemetry.add_argument("--json", action="store_true")
    telemetry.set_defaults(handler=run_ingest_telemetry)


def run_ingest_park(args: argparse.Namespace, settings: CliSettings) -> int:
    from pvcast.pv.plant import PARK_FEATURES, validate_park
    from training.mlops.ingest import register_park

    park = validate_park({"park_id": args.park_id, **{f: getattr(args, f) for f in PARK_FEATURES}})
    result = register_park(settings.store, park, args.effective_from)
    state = "registered" if result.appended else "already registered with this effective time"
    emit(f"park {park.park_id} {state} (effective from {args.effective_from.isoformat()})")
    return 0


def _openmeteo_config(args: argparse.Namespace, settings: CliSettings) -> Any:
    """The client's configuration from the options, and from the environment where it names other endpoints
    (a mirror, or the test server) or another backoff."""
    from training.sources.openmeteo import OpenMeteoConfig

    config = OpenMeteoConfig(
        cache_path=None if args.no_cache else args.cache,
        attempts=args.attempts,
        batch_size=args.batch_size,
        forecast_hours=args.hours,
    )
    backoff = settings.openmeteo_backoff
    return replace(
        config,
        forecast_url=settings.openmeteo_url or config.forecast_url,
        historical_url=settings.openmeteo_historical_url or config.historical_url,
        backoff_factor=config.backoff_factor if backoff is None else backoff,
    )


def run_ingest_weather(args: argparse.Namespace, settings: CliSettings) -> int:
    from training.mlops.ingest import backfill_weather, ingest_weather

    om = _openmeteo_config(args, settings)
    if args.backfill:
        start, end = args.backfill
        report = backfill_weather(settings.store, om, start, end, args.every_hours, args.park)
    else:
        report = ingest_weather(settings.store, om, args.issued_at, args.park)
    emit(report.summary())
    return 1 if report.failures else 0


def run_ingest_telemetry(args: argparse.Namespace, settings: CliSettings) -> int:
    from training.mlops.ingest import ingest_telemetry
    from training.validation import QualityThresholds, format_reports

    report = ingest_telemetry(settings.store, args.csv, args.format, args.park_id, QualityThresholds(), args.dry_run)
    quality = report.validated.report
    if args.json:
        counts = {"appended": report.appended.appended, "duplicates": report.appended.duplicates}
        emit(json.dumps({"quality": quality.to_dict(), **counts, "quarantined": report.quarantined}, indent=2))
    else:
        emit(format_reports([quality]))
        emit(report.summary() + ("" if not args.dry_run else " (dry run: nothing written)"))
    return 0


# --- validate -------------------------------------------------------------------------------------------


def _validate(p: argparse.ArgumentParser) -> None:
    p.add_argument("--park", action="append", default=None, help="only this park (repeatable)")
    p.add_argument("--csv", type=Path, default=None, help="validate this telemetry export instead of the store")
    p.add_argument("--format", choices=["kaggle", "pvcast"], default=None, help="format of --csv")
    p.add_argument("--park-id", default=None, help="park of --csv (registered)")
    p.add_argument("--min-score", type=float, default=80.0, help="exit 1 if a park scores below this [%%]")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=run_validate)


def run_validate(args: argparse.Namespace, settings: CliSettings) -> int:
    from dataclasses import replace

    from training.mlops.ingest import ingest_telemetry, validate_store
    from training.validation import QualityThresholds, format_reports

    thresholds = replace(QualityThresholds(), min_score=args.min_score)
    if args.csv is not None:
        if not (args.format and args.park_id):
            raise ValueError("--csv needs --format and --park-id")
        reports = [
            ingest_telemetry(settings.store, args.csv, args.format, args.park_id, thresholds, True).validated.report
        ]
    else:
        reports = validate_store(settings.store, thresholds, args.park)
    emit(json.dumps([r.to_dict() for r in reports], indent=2) if args.json else format_reports(reports))
    scored = [r for r in reports if r.expected_slots]
    return 1 if any(r.score < thresholds.min_score for r in scored) else 0


# --- monitor --------------------------------------------------------------------------------------------


def _metrics_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--prom-file", type=Path, default=None,
                   help="write a textfile-collector .prom file (env PVCAST_PROM_FILE)")  # fmt: skip
    p.add_argument("--pushgateway", default=None,
                   help="push to this Prometheus Pushgateway (env PVCAST_PUSHGATEWAY_URL)")  # fmt: skip
    p.add_argument("--json", action="store_true")


def _monitor(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="what", required=True, metavar="WHAT")
    accuracy = sub.add_parser("accuracy", help="score logged forecasts against telemetry, per park and day")
    accuracy.add_argument("--end", type=timestamp, default="now", help="end of the valid-time window (UTC)")
    accuracy.add_argument("--days", type=float, default=7.0, help="length of the window [days]")
    accuracy.add_argument("--max-nmae-pct", type=float, default=15.0)
    accuracy.add_argument("--min-coverage-pct", type=float, default=60.0)
    accuracy.add_argument("--max-coverage-pct", type=float, default=95.0)
    accuracy.add_argument("--min-points", type=int, default=96, help="daylight points a park needs to be judged")
    _metrics_options(accuracy)
    accuracy.set_defaults(handler=run_monitor_accuracy)

    drift = sub.add_parser("drift", help="PSI and KS of recent features against the model's reference")
    drift.add_argument("--model", default="production", help="whose reference (default: production)")
    drift.add_argument("--end", type=timestamp, default="now", help="last issue time (UTC)")
    drift.add_argument("--days", type=float, default=14.0, help="length of the recent window [days]")
    drift.add_argument("--every-hours", type=float, default=None, help="issue-time spacing [h] (default: the model's)")
    drift.add_argument(
        "--features", default=None, help="comma-separated (default: clearsky_index,cloud_cover,weather_lead)"
    )
    drift.add_argument("--psi-threshold", type=float, default=0.2)
    drift.add_argument("--ks-threshold", type=float, default=0.3)
    _metrics_options(drift)
    drift.set_defaults(handler=run_monitor_drift)


def _export(registry: Any, job: str, args: argparse.Namespace, settings: CliSettings) -> None:
    from training.mlops.prometheus import MetricsSink, export

    sink = MetricsSink(args.prom_file or settings.prom_file, args.pushgateway or settings.pushgateway_url)
    for target in export(registry, job, sink):
        emit(f"metrics: {target}")


def run_monitor_accuracy(args: argparse.Namespace, settings: CliSettings) -> int:
    import pandas as pd

    from training.mlops.monitor import ACCURACY_JOB, AccuracyThresholds, accuracy_job, accuracy_registry

    thresholds = AccuracyThresholds(args.max_nmae_pct, args.min_coverage_pct, args.max_coverage_pct, args.min_points)
    report = accuracy_job(settings.store, args.end - pd.Timedelta(days=args.days), args.end, thresholds)
    emit(json.dumps(report.to_dict(), indent=2, default=str) if args.json else report.table())
    _export(accuracy_registry(report), ACCURACY_JOB, args, settings)
    return 1 if report.breaches else 0


def run_monitor_drift(args: argparse.Namespace, settings: CliSettings) -> int:
    from training.mlops.drift import DRIFT_FEATURES, DriftThresholds
    from training.mlops.monitor import DRIFT_JOB, drift_job, drift_registry

    names = [n.strip() for n in args.features.split(",")] if args.features else list(DRIFT_FEATURES)
    thresholds = DriftThresholds(psi=args.psi_threshold, ks=args.ks_threshold)
    report = drift_job(
        settings.store, settings.models, args.model, args.end, args.days, args.every_hours, names, thresholds
    )
    emit(json.dumps(report.to_dict(), indent=2) if args.json else report.table(thresholds))
    _export(drift_registry(report), DRIFT_JOB, args, settings)
    return 1 if report.breaches else 0


# --- retrain and runs -----------------------------------------------------------------------------------


def _retrain(p: argparse.ArgumentParser) -> None:
    _add_train_options(p)
    p.add_argument("--window-days", type=_positive_int, default=365, help="latest data used [days]")
    p.add_argument("--min-improvement-pct", type=float, default=2.0, help="mean pinball gain needed [%% relative]")
    p.add_argument("--max-park-regression-pct", type=float, default=10.0, help="worst allowed park loss [%% relative]")
    p.add_argument("--no-promote", action="store_true", help="decide and record, but do not move production")
    p.add_argument("--tracking-uri", default=None, help="MLflow tracking URI (env MLFLOW_TRACKING_URI)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=run_retrain)


def run_retrain(args: argparse.Namespace, settings: CliSettings) -> int:
    from training.jobs import train_config_from_args
    from training.mlops.retrain import PromotionPolicy, retrain

    policy = PromotionPolicy(args.min_improvement_pct, args.max_park_regression_pct)
    decision = retrain(
        settings.store,
        train_config_from_args(args),
        settings.models,
        args.window_days,
        policy,
        not args.no_promote,
        args.tracking_uri or settings.mlflow_tracking_uri,
        args.out,
    )
    emit(json.dumps(decision.to_dict(), indent=2, default=float) if args.json else decision.summary())
    return 0


def _runs(p: argparse.ArgumentParser) -> None:
    p.add_argument("--limit", type=_positive_int, default=20)
    p.add_argument("--tracking-uri", default=None, help="MLflow tracking URI (env MLFLOW_TRACKING_URI)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=run_runs)


def run_runs(args: argparse.Namespace, settings: CliSettings) -> int:
    from training.mlops.tracking import list_runs

    runs = list_runs(args.tracking_uri or settings.mlflow_tracking_uri, args.limit)
    if args.json:
        emit(json.dumps(runs, indent=2))
        return 0
    for r in runs:
        pinball = r["challenger_pinball_mean_pct"]
        emit(
            f"{r['run_id']}  {r['status']:<9} {r['decision'] or '-':<9} {r['model'] or '-':<40} "
            f"pinball {pinball if pinball is None else round(pinball, 3)}  {r['reason']}"
        )
    return 0
