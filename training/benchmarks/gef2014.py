"""GEFCom2014 solar through pvcast's own pipeline, under the competition's protocol.

For each task k (the month April 2013 + k − 1):

1. the benchmark's own Feast store (``<out>/store``, the same definitions and feature service
   ``pv_forecast_v1``) is rewritten to hold what the protocol allows: the parks, every NWP run issued before
   the end of month k and measured power up to the START of month k — nothing later is in the store;
2. training and test sets come from Feast point-in-time retrieval through the shared tensor builder (hourly
   step, 24 h horizon, runs at 00 UTC, telemetry channels blanked: power is never live in the forecast month);
3. the LSTM/physics hybrid is trained and exported by the production pipeline's steps (``training.pipeline``:
   ``hybrid_seeds`` seeds averaged in one module, ONNX parity-checked) and scored from onnxruntime's output —
   what the service would serve — beside the baselines;
4. month k's measured power is read (from the parsed CSV, never from the store) only to score every method:
   pinball loss over the 99 quantiles, every hour and the three zones, on normalised power.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from feature_repo.store import init_store, write_table
from pvcast import baselines as bl
from pvcast.contract import onnx_metadata, open_session, run_in_batches
from pvcast.errors import DataNotFoundError, ExportParityError
from pvcast.schema import ENTITY_KEY, GENERATION_VIEW, ISSUED_AT, PARK_VIEW, WEATHER_VIEW
from pvcast.settings import StoreConfig
from training.benchmarks import methods, report, scoring
from training.benchmarks.onnx_ensemble import build_ensemble
from training.config import ModelConfig, TrainConfig
from training.dataset import Dataset, build_dataset
from training.export import PARITY_TOLERANCE
from training.pipeline import Split, as_one_module, code_version, contract_of, export_checked, train_members
from training.sources import gef2014 as gefcom

logger = logging.getLogger(__name__)

METHODS: Final = ("benchmark", "climatology", "physics", "gbm", "hybrid", "ensemble")
SERVED_METHOD: Final = "ensemble"
"""Fixed in code before the recorded run of tasks 4–10 (docs/benchmarks.md); every method is scored beside it."""
ENSEMBLE_WEIGHT: Final = 0.5
"""Hybrid share of the ensemble: an equal-weight quantile average, not tuned."""
HYBRID_SEEDS: Final = 3
"""Hybrids trained per task (seeds seed … seed + K − 1) and averaged into the one "hybrid" graph."""
QUICK_HYBRID_SEEDS: Final = 1
"""--quick trains one hybrid per task, so the CI run stays short."""
DAY: Final = pd.Timedelta(days=1)


def hybrid_config(quick: bool, seed: int) -> TrainConfig:
    """The production model's training configuration for GEFCom: hourly, 24 h, 99 quantiles, no telemetry."""
    return TrainConfig(
        model=ModelConfig(quantiles=scoring.QUANTILES_99, hidden_size=48, initial_gap=0.01),
        step_seconds=gefcom.STEP_SECONDS,
        horizon_steps=gefcom.HORIZON_STEPS,
        issue_every_hours=24.0,
        validation_days=30,
        test_days=0,
        max_epochs=8 if quick else 40,
        patience=8,
        batch_size=32,
        learning_rate=5e-3 if quick else 3e-3,
        seed=seed,
        threads=1,
        use_telemetry=False,
    )


def gbm_settings(quick: bool, seed: int) -> methods.GbmSettings:
    return methods.GbmSettings(max_iter=60 if quick else 200, learning_rate=0.1 if quick else 0.05, seed=seed)


@dataclass(frozen=True)
class BenchmarkConfig:
    data_dir: Path
    out_dir: Path
    tasks: tuple[int, ...]
    quick: bool = False
    seed: int = 42
    hybrid_seeds: int = HYBRID_SEEDS

    def __post_init__(self) -> None:
        if self.hybrid_seeds < 1:
            raise ValueError(f"hybrid_seeds must be at least 1, got {self.hybrid_seeds}")

    @property
    def train(self) -> TrainConfig:
        return hybrid_config(self.quick, self.seed)

    @property
    def member_seeds(self) -> tuple[int, ...]:
        return tuple(range(self.seed, self.seed + self.hybrid_seeds))

    @property
    def gbm(self) -> methods.GbmSettings:
        return gbm_settings(self.quick, self.seed)

    @property
    def store(self) -> StoreConfig:
        return StoreConfig(repo_path=(self.out_dir / "store").resolve())


@dataclass
class TaskResult:
    """One task: every method's quantiles (fractions) and the truth, for scores and plots."""

    task: int
    test: Dataset
    target: np.ndarray  # (forecasts, steps) normalised power
    predictions: dict[str, np.ndarray]  # method → (forecasts, steps, 99)
    seconds: float
    records: list[dict[str, Any]] = field(default_factory=list)


Progress = Callable[[str], None]


def run_benchmark(config: BenchmarkConfig, progress: Progress = logger.info) -> list[TaskResult]:
    """Every task of ``config`` in ascending order (the store only ever grows forward in time)."""
    hourly = gefcom.read_gefcom(gefcom.csv_path(config.data_dir))
    for task in config.tasks:
        available_until = hourly["valid_time"].max() + pd.Timedelta(seconds=gefcom.STEP_SECONDS)
        if gefcom.task_month(task)[1] > available_until:
            raise DataNotFoundError(
                f"task {task} forecasts {gefcom.task_month(task)[0]:%Y-%m}, but the data end {available_until}: "
                "choose tasks the file covers"
            )
    store = init_store(config.store)
    results = []
    for task in sorted(config.tasks):
        results.append(run_task(task, hourly, store, config, progress))
    return results


def run_task(task: int, hourly: pd.DataFrame, store: Any, config: BenchmarkConfig, progress: Progress) -> TaskResult:
    started = time.perf_counter()
    start, end = gefcom.task_month(task)
    progress(f"task {task} ({start:%Y-%m}): publishing data known before {start:%Y-%m-%d} and NWP up to {end:%Y-%m-%d}")
    publish(config.store, hourly, start, end)
    spec = config.train.spec
    parks = [p.park_id for p in gefcom.zone_parks()]
    history = build_dataset(store, config.store, parks, daily_runs(hourly, None, start), spec)
    test = build_dataset(store, config.store, parks, daily_runs(hourly, start, end), spec)
    target = month_target(hourly, test, start, end)
    progress(f"task {task}: {len(history)} training forecasts, {len(test)} to score")
    predictions = forecast_all(task, history, test, config, progress)
    result = TaskResult(task, test, target, predictions, 0.0)
    for method, pred in predictions.items():
        result.records.append(
            {"task": task, "method": method, **scoring.task_scores(pred, target, scoring.QUANTILES_99)}
        )
    result.seconds = time.perf_counter() - started
    summary = ", ".join(f"{r['method']} {r['pinball']:.5f}" for r in result.records)
    progress(f"task {task} done in {result.seconds:.0f} s — pinball: {summary}")
    return result


def publish(store: StoreConfig, hourly: pd.DataFrame, month_start: pd.Timestamp, month_end: pd.Timestamp) -> None:
    """Rewrite the store's tables with what task (month_start, month_end) may see, and nothing more."""
    runs = hourly[hourly[ISSUED_AT] < month_end]
    measured = hourly[hourly["valid_time"] + pd.Timedelta(seconds=gefcom.STEP_SECONDS) <= month_start]
    write_table(store, PARK_VIEW, gefcom.parks_table(hourly["valid_time"].min() - DAY))
    write_table(store, WEATHER_VIEW, gefcom.weather_forecast_table(runs))
    write_table(store, GENERATION_VIEW, gefcom.generation_table(measured))


def daily_runs(hourly: pd.DataFrame, start: pd.Timestamp | None, end: pd.Timestamp) -> pd.DatetimeIndex:
    """Issue times of the 00 UTC runs in [start, end) (from the first run when start is None)."""
    first = hourly[ISSUED_AT].min() if start is None else start
    return pd.date_range(first, end - DAY, freq="D")


def month_target(hourly: pd.DataFrame, test: Dataset, start: pd.Timestamp, end: pd.Timestamp) -> np.ndarray:
    """Measured normalised power of the forecast month, aligned to the test forecasts — used ONLY to score."""
    month = hourly[(hourly["valid_time"] >= start) & (hourly["valid_time"] < end)]
    power = month.set_index([ENTITY_KEY, gefcom.epoch_seconds(month["valid_time"])])["power"]
    keys = pd.MultiIndex.from_arrays([np.repeat(test.park_id, test.valid_time.shape[1]), test.valid_time.ravel()])
    target = power.reindex(keys).to_numpy(np.float64).reshape(test.valid_time.shape)
    if test.valid_time.size != len(month) or not np.isfinite(target).all():
        raise DataNotFoundError(
            f"the forecasts of {start:%Y-%m} cover {int(np.isfinite(target).sum())} of its {len(month)} "
            "measured hours: a run or a measurement is missing in the file"
        )
    return target


def forecast_all(
    task: int, history: Dataset, test: Dataset, config: BenchmarkConfig, progress: Progress
) -> dict[str, np.ndarray]:
    levels = scoring.QUANTILES_99
    measured = history_power(history)
    predictions = {
        "benchmark": scoring.official_benchmark(year_before(measured, test)),
        "climatology": methods.Climatology.fit(
            measured.index.get_level_values("t").to_numpy(np.int64), measured.to_numpy(), levels
        ).predict(test.valid_time),
    }
    target = history.target_fraction
    physics = bl.fit_physics(history.features, target, levels)
    predictions["physics"] = methods.predict_physics(physics, test.features)
    tic = time.perf_counter()
    gbm = methods.GbmQuantiles(config.gbm).fit(history.features, history.capacity_ac_kw, target)
    predictions["gbm"] = gbm.predict(test.features, test.capacity_ac_kw, levels)
    progress(f"task {task}: gbm fitted in {time.perf_counter() - tic:.0f} s")
    predictions["hybrid"], hybrid_path = hybrid_forecast(task, history, test, config, progress)
    predictions["ensemble"] = ensemble_forecast(task, hybrid_path, gbm, test, predictions, config)
    return predictions


def history_power(history: Dataset) -> pd.Series:
    """Normalised power of every measured hour of the training forecasts, indexed by (park, valid time [s])."""
    steps = history.valid_time.shape[1]
    index = pd.MultiIndex.from_arrays(
        [np.repeat(history.park_id, steps), history.valid_time.ravel()], names=["park", "t"]
    )
    series = pd.Series(history.target_fraction.ravel().astype(np.float64), index=index)
    series = series[np.isfinite(series.to_numpy())]
    return series[~series.index.duplicated(keep="first")]


def year_before(measured: pd.Series, test: Dataset) -> np.ndarray:
    """Normalised power at the same hour one year earlier (the official benchmark's forecast)."""
    times = pd.to_datetime(test.valid_time.ravel(), unit="s", utc=True) - pd.DateOffset(years=1)
    keys = pd.MultiIndex.from_arrays(
        [np.repeat(test.park_id, test.valid_time.shape[1]), gefcom.epoch_seconds(pd.Series(times))]
    )
    values = measured.reindex(keys).to_numpy()
    if not np.isfinite(values).all():
        raise DataNotFoundError("the official benchmark needs the power of the same month one year earlier")
    return values.reshape(test.valid_time.shape)


def hybrid_forecast(
    task: int, history: Dataset, test: Dataset, config: BenchmarkConfig, progress: Progress
) -> tuple[np.ndarray, Path]:
    """Train the production hybrid once per seed (the pipeline's train step), export their mean as ONE ONNX graph
    (its export step, parity-checked) and forecast through onnxruntime."""
    train, validation = split_history(history, config.train)
    results = train_members(Split(train, validation, test), config.train, config.member_seeds)
    for seed, result in zip(config.member_seeds, results, strict=True):
        progress(f"task {task}: hybrid seed {seed} trained in {result.seconds:.0f} s (best epoch {result.best_epoch})")
    path = config.out_dir / "models" / f"task{task}_hybrid.onnx"
    export_checked(as_one_module(results), test, path, onnx_metadata(contract_of(config.train), extras(config, task)))
    return onnx_fractions(path, test), path


def split_history(history: Dataset, config: TrainConfig) -> tuple[Dataset, Dataset]:
    """Training forecasts, then a gap of one horizon, then the last ``validation_days`` for early stopping."""
    horizon = config.horizon_steps * config.step_seconds
    cut = int(history.issued_at.max()) - config.validation_days * 86400
    return history.subset(history.issued_at < cut - horizon), history.subset(history.issued_at >= cut)


def onnx_fractions(path: Path, test: Dataset) -> np.ndarray:
    """The graph's served output through onnxruntime, as fractions of capacity."""
    kw = run_in_batches(open_session(path, threads=1), test.features, test.capacity_ac_kw, batch=512)
    return kw.astype(np.float64) / test.capacity_ac_kw[..., None]


def ensemble_forecast(
    task: int,
    hybrid_path: Path,
    gbm: methods.GbmQuantiles,
    test: Dataset,
    predictions: dict[str, np.ndarray],
    config: BenchmarkConfig,
) -> np.ndarray:
    """Hybrid and GBM in ONE ONNX graph; its onnxruntime output must match the two methods' mean."""
    path = config.out_dir / "models" / f"task{task}_ensemble.onnx"
    build_ensemble(hybrid_path, gbm, ENSEMBLE_WEIGHT, scoring.QUANTILES_99, path)
    served = onnx_fractions(path, test)
    expected = ENSEMBLE_WEIGHT * predictions["hybrid"] + (1 - ENSEMBLE_WEIGHT) * predictions["gbm"]
    worst = float(np.max(np.abs(served - expected)))
    if not worst <= PARITY_TOLERANCE:
        raise ExportParityError(f"the ensemble graph differs from its parts by {worst:.2e} of capacity; export refused")
    logger.info("ensemble ONNX parity with its parts: max |difference| %.2e of capacity", worst)
    return served


def extras(config: BenchmarkConfig, task: int) -> dict[str, str]:
    """What the benchmark adds to the contract inside the ONNX file: the task, the code, the training
    configuration (the first seed's) and the seeds of the averaged hybrids."""
    return {
        "benchmark": f"gefcom2014 task {task}",
        "code_version": code_version(),
        "training_config": json.dumps(asdict(config.train)),
        "hybrid_seeds": json.dumps(list(config.member_seeds)),
    }


@dataclass(frozen=True)
class BenchmarkReport:
    results_path: Path
    markdown_path: Path
    plots: list[Path]
    means: dict[str, float]
    served_method: str
    seconds: float
    results: list[TaskResult]

    def summary(self) -> str:
        lines = [f"mean pinball over tasks {', '.join(str(r.task) for r in self.results)}:"]
        for method, value in sorted(self.means.items(), key=lambda kv: kv[1]):
            mark = " (served)" if method == self.served_method else ""
            lines.append(f"  {method:<12} {value:.5f}{mark}")
        lines += [f"results: {self.results_path}", f"table: {self.markdown_path}"]
        lines += [f"plot: {p}" for p in self.plots]
        lines.append(f"wall time {self.seconds:.0f} s")
        return "\n".join(lines)


def benchmark_job(config: BenchmarkConfig, progress: Progress = logger.info) -> BenchmarkReport:
    """Run the tasks, then write results.json, results.md, reliability.png and fan_<park>.png into ``out``."""
    started = time.perf_counter()
    results = run_benchmark(config, progress)
    records = [rec for r in results for rec in r.records]
    out = config.out_dir
    results_path = report.write_results(out / "results.json", report.results_document(SERVED_METHOD, records))
    table = report.markdown_table(records, SERVED_METHOD, report.read_leaderboard(config.data_dir))
    markdown_path = out / "results.md"
    markdown_path.write_text(_markdown_header(config) + table)
    plots = [
        report.plot_reliability(report.reliability_by_method(results), scoring.QUANTILES_99, out / "reliability.png")
    ]
    plots += report.plot_fans(results[-1], SERVED_METHOD, out)
    return BenchmarkReport(
        results_path,
        markdown_path,
        plots,
        report.mean_pinball(records),
        SERVED_METHOD,
        time.perf_counter() - started,
        results,
    )


def _markdown_header(config: BenchmarkConfig) -> str:
    tasks = ",".join(str(t) for t in config.tasks)
    quick = " --quick" if config.quick else ""
    return (
        f"GEFCom2014 solar, pinball loss (99 quantiles, all hours, three zones; lower is better).\n"
        f"`pvcast benchmark gefcom2014 --tasks {tasks} --hybrid-seeds {config.hybrid_seeds}{quick}`, "
        f"served method: {SERVED_METHOD}.\n\n"
    )
