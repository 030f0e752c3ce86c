"""Sub-commands of ``pvcast``. Each handler parses nothing itself: it composes library functions."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from pvcast.errors import DataNotFoundError
from pvcast.pv.plant import parks_from_frame
from pvcast.schema import PARK_VIEW
from pvcast.timeutils import require_utc, utc_now
from training.cli.settings import CliSettings
from training.config import TrainConfig

logger = logging.getLogger("pvcast")
Handler = Any
DEFAULTS = TrainConfig()


def emit(text: str) -> None:
    """Command output (tables, JSON) goes to stdout; logs go to stderr."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def timestamp(value: str) -> pd.Timestamp:
    """argparse type: an ISO 8601 time WITH a timezone, or 'now'."""
    try:
        return utc_now() if value == "now" else require_utc(value, "time")
    except ValueError as exc:  # naive or unparseable: argparse reports the message on one line
        raise argparse.ArgumentTypeError(str(exc)) from None


def quantile_list(value: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in value.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"quantiles must be comma-separated numbers, got {value!r}") from None


def register(sub: argparse._SubParsersAction) -> None:
    _demo(sub.add_parser("demo", help="build the synthetic demo store, train and promote a model"))
    _apply(sub.add_parser("apply", help="register the Feast definitions in the store"))
    _materialize(sub.add_parser("materialize", help="copy the latest features into the online store"))
    _train(sub.add_parser("train", help="train, evaluate against baselines, export ONNX, store the model"))
    _evaluate(sub.add_parser("evaluate", help="score a stored model and the baselines on a window; fan chart"))
    _promote(sub.add_parser("promote", help="point production at a stored model version"))
    _models(sub.add_parser("models", help="list stored model versions"))
    _parks(sub.add_parser("parks", help="list registered parks and their metadata"))
    _apikey(sub.add_parser("apikey", help="create an API key; prints the secret once and the entry the service stores"))
    from training.cli import mlops  # ingest, validate, monitor, retrain, runs (imported here: it imports this module)

    mlops.register(sub)
    from training.cli import benchmark  # real-data benchmarks (pvcast benchmark gefcom2014)

    benchmark.register(sub)


def _add_train_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quantiles", type=quantile_list, default=DEFAULTS.model.quantiles, help="levels, e.g. 0.1,0.5,0.9")
    p.add_argument(
        "--horizon-hours",
        type=float,
        default=DEFAULTS.spec.horizon_hours,
        help="forecast horizon [h] (default 24)",
    )
    p.add_argument(
        "--issue-every-hours",
        type=float,
        default=DEFAULTS.issue_every_hours,
        help="spacing of training issue times [h]",
    )
    p.add_argument(
        "--epochs",
        type=int,
        default=DEFAULTS.max_epochs,
        help="maximum epochs (early stopping usually ends sooner)",
    )
    p.add_argument("--hidden-size", type=int, default=DEFAULTS.model.hidden_size, help="LSTM width")
    p.add_argument("--seed", type=int, default=DEFAULTS.seed)
    p.add_argument(
        "--test-days",
        type=int,
        default=DEFAULTS.test_days,
        help="held-out window at the end of the data [days]",
    )
    p.add_argument(
        "--validation-days",
        type=int,
        default=DEFAULTS.validation_days,
        help="early-stopping window before it [days]",
    )
    p.add_argument("--out", type=Path, default=Path(".pvcast/reports"), help="folder for the fan chart PNG")


def _demo(p: argparse.ArgumentParser) -> None:
    p.add_argument("--days", type=int, default=365, help="days of synthetic history ending now")
    p.add_argument("--end", type=timestamp, default="now", help="end of the data (UTC, default now)")
    p.add_argument("--data-seed", type=int, default=7, help="seed of the synthetic data")
    p.add_argument("--skip-train", action="store_true", help="only build and materialize the store")
    _add_train_options(p)
    p.set_defaults(handler=run_demo)


def _apply(p: argparse.ArgumentParser) -> None:
    p.set_defaults(handler=run_apply)


def _materialize(p: argparse.ArgumentParser) -> None:
    p.add_argument("--end", type=timestamp, default="now", help="materialize values known up to this time")
    p.add_argument("--start", type=timestamp, default=None, help="default: end - 7 days")
    p.set_defaults(handler=run_materialize)


def _train(p: argparse.ArgumentParser) -> None:
    _add_train_options(p)
    p.add_argument("--promote", action="store_true", help="make the new model the production model")
    p.set_defaults(handler=run_train)


def _evaluate(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="production", help="model tag, version, 'latest' or 'production'")
    p.add_argument("--start", type=timestamp, default=None, help="first issue time (default: the model's test window)")
    p.add_argument("--end", type=timestamp, default=None, help="last issue time")
    p.add_argument("--park", default=None, help="park for the fan chart (default: the first)")
    p.add_argument("--out", type=Path, default=Path(".pvcast/reports"), help="folder for the fan chart PNG")
    p.add_argument("--json", action="store_true", help="print the scores as JSON instead of a table")
    p.set_defaults(handler=run_evaluate)


def _promote(p: argparse.ArgumentParser) -> None:
    p.add_argument("--to", required=True, help="model version or tag to serve")
    p.set_defaults(handler=run_promote)


def _models(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=run_models)


def _parks(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.set_defaults(handler=run_parks)


def _apikey(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["create"])
    p.add_argument("--name", required=True, help="who the key is for")
    p.add_argument("--scopes", default="read", help="comma-separated: read, write, admin")
    p.set_defaults(handler=run_apikey)


# --- handlers ------------------------------------------------------------------------------------------


def run_demo(args: argparse.Namespace, settings: CliSettings) -> int:
    from training.jobs import build_demo_store

    build_demo_store(settings.store, args.end, args.days, args.data_seed)
    if args.skip_train:
        return 0
    args.promote = True
    return run_train(args, settings)


def run_apply(args: argparse.Namespace, settings: CliSettings) -> int:
    from feature_repo.store import init_store

    init_store(settings.store)
    emit(f"applied pvcast definitions to {settings.store.repo_path}")
    return 0


def run_materialize(args: argparse.Namespace, settings: CliSettings) -> int:
    from feature_repo.store import materialize, open_store

    materialize(open_store(settings.store), args.end, args.start)
    emit(f"materialized features known up to {args.end.isoformat()} into the {settings.online_store} online store")
    return 0


def run_train(args: argparse.Namespace, settings: CliSettings) -> int:
    from training.jobs import train_config_from_args, train_job

    report = train_job(settings.store, train_config_from_args(args), settings.models, args.promote, args.out)
    emit(report)
    return 0


def run_evaluate(args: argparse.Namespace, settings: CliSettings) -> int:
    from training.jobs import evaluate_job

    scores, table = evaluate_job(settings.store, settings.models, args.model, args.start, args.end, args.park, args.out)
    emit(json.dumps(scores, indent=2) if args.json else table)
    return 0


def run_promote(args: argparse.Namespace, settings: CliSettings) -> int:
    emit(f"production -> {settings.models.promote(args.to)}")
    return 0


def run_models(args: argparse.Namespace, settings: CliSettings) -> int:
    rows = settings.models.list_models()
    if args.json:
        emit(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        mark = "*" if r["production"] else " "
        emit(f"{mark} {r['tag']:<45} {r['created_at'][:19]}  pinball {r['pinball_mean_pct'] or float('nan'):.3f} %")
    return 0


def run_parks(args: argparse.Namespace, settings: CliSettings) -> int:
    from feature_repo.store import drop_tombstones, read_table, registered_parks

    try:
        parks = registered_parks(settings.store)
    except DataNotFoundError:
        raise DataNotFoundError(f"no parks registered in {settings.store.repo_path}: run `pvcast demo` first") from None
    if args.json:
        emit(json.dumps([p.model_dump() for p in parks], indent=2))
    else:
        parks_from_frame(drop_tombstones(read_table(settings.store, PARK_VIEW)))  # validates every stored row
        for p in parks:
            emit(
                f"{p.park_id:<28} {p.latitude:8.3f} {p.longitude:9.3f} {p.capacity_ac_kw:10.1f} kW AC  "
                f"tilt {p.surface_tilt:g}  azimuth {p.surface_azimuth:g}"
            )
    return 0


def run_apikey(args: argparse.Namespace, settings: CliSettings) -> int:
    from pvcast.keys import ApiKey, hash_key, new_key

    key = new_key()
    entry = ApiKey(name=args.name, sha256=hash_key(key), scopes=tuple(s.strip() for s in args.scopes.split(",")))
    emit(json.dumps({"key": key, "entry": entry.model_dump(mode="json", exclude_none=True)}, indent=2))
    logger.info("store only 'entry' (in PVCAST_API_KEYS / the Kubernetes Secret); give 'key' to the client once")
    return 0
