"""``pvcast benchmark``: real-data benchmarks run through pvcast's own pipeline."""

from __future__ import annotations

import argparse
from pathlib import Path

from training.cli.settings import CliSettings
from training.sources.gef2014 import MAX_TASK


def task_list(value: str) -> tuple[int, ...]:
    """argparse type: '4-10', '1,3,5-7' → sorted unique task numbers in 1..15."""
    tasks: set[int] = set()
    try:
        for part in value.split(","):
            first, _, last = part.strip().partition("-")
            tasks.update(range(int(first), int(last or first) + 1))
    except ValueError:
        raise argparse.ArgumentTypeError(f"tasks must look like 4-10 or 1,3,5-7, got {value!r}") from None
    if not tasks or min(tasks) < 1 or max(tasks) > MAX_TASK:
        raise argparse.ArgumentTypeError(f"tasks must be within 1..{MAX_TASK}, got {value!r}")
    return tuple(sorted(tasks))


def positive_int(value: str) -> int:
    """argparse type: an integer ≥ 1."""
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected an integer of at least 1, got {value!r}")
    return number


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("benchmark", help="real-data benchmarks through pvcast's own pipeline")
    kinds = parser.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK")
    p = kinds.add_parser("gefcom2014", help="GEFCom2014 probabilistic solar track, the competition's protocol")
    p.add_argument(
        "--data",
        type=Path,
        default=None,
        help="folder with gefcom2014_solar.csv (default $PVCAST_SHARED_DATA/gefcom2014_solar)",
    )
    p.add_argument("--tasks", type=task_list, default=task_list("4-10"), help="tasks to run, e.g. 4-10 or 1,3,5-7")
    p.add_argument(
        "--out",
        type=Path,
        default=Path(".pvcast/benchmarks/gefcom2014"),
        help="folder for the store, models, results.json, results.md and PNGs",
    )
    p.add_argument("--quick", action="store_true", help="the first task only, with a short schedule (CI)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument(
        "--hybrid-seeds",
        type=positive_int,
        default=None,
        metavar="N",
        help="hybrids trained per task (seeds seed … seed+N−1), averaged into one ONNX graph "
        "(default 3; 1 with --quick)",
    )
    p.set_defaults(handler=run_gefcom2014)


def run_gefcom2014(args: argparse.Namespace, settings: CliSettings) -> int:
    from pvcast.errors import DataNotFoundError
    from training.benchmarks.gef2014 import HYBRID_SEEDS, QUICK_HYBRID_SEEDS, BenchmarkConfig, benchmark_job
    from training.cli.commands import emit

    data = args.data or (settings.shared_data / "gefcom2014_solar" if settings.shared_data else None)
    if data is None:
        raise DataNotFoundError("give the GEFCom2014 data folder with --data (or set PVCAST_SHARED_DATA)")
    tasks = args.tasks[:1] if args.quick else args.tasks
    seeds = args.hybrid_seeds or (QUICK_HYBRID_SEEDS if args.quick else HYBRID_SEEDS)
    config = BenchmarkConfig(
        data_dir=data, out_dir=args.out, tasks=tasks, quick=args.quick, seed=args.seed, hybrid_seeds=seeds
    )
    emit(benchmark_job(config).summary())
    return 0
