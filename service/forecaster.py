"""The forecast path: features (online, or point-in-time offline for ``issued_at``) → the shared tensor builder →
one onnxruntime call per request (one park or a whole batch) → each park's JSON (``service/answers.py``).

Everything that does not depend on the request is prepared once per worker: the feature reader (feature
service resolved, entity keys cached), the model handle (session, labels, the degraded-mode baseline), and
the valid-time labels of each issue time (cached). Parks without a fresh weather forecast are answered from
the physics path, flagged ``degraded`` with the reason.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from feast import FeatureStore
from numpy.typing import NDArray

from feature_repo.forecast_log import ForecastLogBuffer, ServedForecasts
from feature_repo.online import OnlineReader
from feature_repo.store import frame_rows, read_offline
from pvcast.baselines import DegradedMode
from pvcast.contract import FeatureSpec, run_session
from pvcast.errors import HorizonTooLongError, IssuedInFutureError, QuantileNotServedError, StoreUnavailableError
from pvcast.model_store import LoadedModel
from pvcast.pv.features import ModelInputs, build_inputs, without_weather
from pvcast.schema import WEATHER_VARIABLES
from service import metrics
from service.answers import ParkFailure, ParkForecast, assemble, quantile_label

logger = logging.getLogger(__name__)


# --- the model behind one handle ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ServedModel:
    """A loaded model and everything derived from it once."""

    loaded: LoadedModel
    spec: FeatureSpec
    labels: tuple[str, ...]
    quantiles: tuple[float, ...]
    fallback: DegradedMode

    @classmethod
    def of(cls, loaded: LoadedModel) -> ServedModel:
        meta = loaded.metadata
        return cls(
            loaded=loaded,
            spec=meta.spec,
            labels=tuple(quantile_label(q) for q in meta.quantiles),
            quantiles=tuple(meta.quantiles),
            fallback=DegradedMode.of(meta),
        )

    @property
    def version(self) -> str:
        return self.loaded.version


class ModelHandle:
    """The one reference to the served model. A request reads ``current`` once, so replacing it (a later hot
    reload) is a single atomic assignment and never mixes two models in one answer."""

    def __init__(self, model: ServedModel) -> None:
        self._model = model

    @property
    def current(self) -> ServedModel:
        return self._model

    def swap(self, model: ServedModel) -> None:
        self._model = model


# --- requests and results ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ForecastQuery:
    park_ids: Sequence[str]
    horizon_hours: int = 24
    quantiles: Sequence[float] | None = None
    issued_at: pd.Timestamp | None = None


@dataclass(frozen=True)
class Computed:
    """Quantiles [kW] for every requested row plus what labels and judges them."""

    park_ids: list[str]
    issued_at: NDArray[np.int64]  # (n,) [s since epoch]
    quantiles_kw: NDArray[np.float32]  # (n, steps, levels)
    inputs: ModelInputs
    degraded_reason: list[str | None]
    capacity_ac_kw: list[float]  # as registered (the tensor holds float32)


@dataclass
class Forecaster:
    store: FeatureStore
    handle: ModelHandle
    weather_max_age_s: float
    log: ForecastLogBuffer | None = None  # the forecast log (accuracy monitoring); None: not logged
    reader: OnlineReader = field(init=False)

    def __post_init__(self) -> None:
        self.reader = OnlineReader(self.store)

    # -- validation of the request against the served model --

    @staticmethod
    def steps_for(model: ServedModel, horizon_hours: float) -> int:
        steps = int(np.ceil(horizon_hours * 3600 / model.spec.step_seconds))
        if steps > model.spec.horizon_steps:
            raise HorizonTooLongError(
                f"horizon_hours={horizon_hours:g} exceeds the served model's horizon of {model.spec.horizon_hours:g} h"
            )
        return steps

    @staticmethod
    def levels_for(model: ServedModel, requested: Sequence[float] | None) -> list[int]:
        if requested is None:
            return list(range(len(model.quantiles)))
        served = np.asarray(model.quantiles)
        missing = [q for q in requested if not np.isclose(served, q, rtol=0, atol=1e-9).any()]
        if missing:
            raise QuantileNotServedError(
                f"quantiles {missing} are not served; the model serves {list(model.quantiles)}"
            )
        return sorted({int(np.argmin(np.abs(served - q))) for q in requested})

    @staticmethod
    def as_of(issued_at: pd.Timestamp | None) -> tuple[pd.Timestamp, bool]:
        """The issue time and whether it was given (a backtest: point-in-time offline read)."""
        now = pd.Timestamp.now(tz="UTC")
        if issued_at is None:
            return now, False
        issued = pd.Timestamp(issued_at).tz_convert("UTC")
        if issued > now:
            raise IssuedInFutureError(f"issued_at={issued.isoformat()} is in the future (now {now.isoformat()})")
        return issued, True

    # -- the path --

    def forecast(self, query: ForecastQuery) -> list[ParkForecast | ParkFailure]:
        """One result per requested park, in order: its serialised forecast or a :class:`ParkFailure`."""
        model = self.handle.current
        steps = self.steps_for(model, query.horizon_hours)
        levels = self.levels_for(model, query.quantiles)
        issued, backtest = self.as_of(query.issued_at)
        computed = self.compute(model, list(query.park_ids), issued, backtest)
        if not backtest:
            self.log_served(model, computed)
        tic = time.perf_counter()
        results = assemble(model, computed, issued, steps, levels)
        metrics.stage_seconds.labels(stage="postprocess").observe(time.perf_counter() - tic)
        return results

    def compute(self, model: ServedModel, park_ids: list[str], issued: pd.Timestamp, backtest: bool) -> Computed:
        """Every requested park at one issue time; each distinct park is read and computed once."""
        tic = time.perf_counter()
        unique = list(dict.fromkeys(park_ids))
        rows = self.read_offline(unique, [issued] * len(unique)) if backtest else self.read_online(unique, issued)
        seconds = np.full(len(unique), issued.value // 10**9, dtype=np.int64)
        computed = self.compute_rows(model, unique, seconds, rows, tic)
        where = {p: i for i, p in enumerate(unique)}
        order = np.array([where[p] for p in park_ids], dtype=np.int64)
        return Computed(
            park_ids=park_ids,
            issued_at=computed.issued_at[order],
            quantiles_kw=computed.quantiles_kw[order],
            inputs=_take(computed.inputs, order),
            degraded_reason=[computed.degraded_reason[i] for i in order],
            capacity_ac_kw=[computed.capacity_ac_kw[i] for i in order],
        )

    def compute_rows(
        self,
        model: ServedModel,
        park_ids: list[str],
        issued: NDArray[np.int64],
        rows: dict[str, list[Any]],
        started: float | None = None,
    ) -> Computed:
        """Features → model (or physics) for rows already read; ``issued`` [s since epoch] per row."""
        tic = time.perf_counter() if started is None else started
        inputs = build_inputs(rows, issued, model.spec)
        reasons = self.degraded_reasons(rows, inputs, issued)
        metrics.stage_seconds.labels(stage="features").observe(time.perf_counter() - tic)
        tic = time.perf_counter()
        quantiles, inputs = self.infer(model, rows, inputs, issued, reasons)
        metrics.stage_seconds.labels(stage="inference").observe(time.perf_counter() - tic)
        capacity = [float("nan") if v is None else float(v) for v in rows["capacity_ac_kw"]]
        return Computed(park_ids, issued, quantiles, inputs, reasons, capacity)

    def read_online(self, park_ids: list[str], issued: pd.Timestamp) -> dict[str, list[Any]]:
        now = issued.value / 1e9
        try:
            read = self.reader.read(park_ids, now)
        except Exception as exc:  # any backend failure (connection refused, timeout, corrupt file)
            logger.warning("online store read failed: %s", type(exc).__name__)
            raise StoreUnavailableError("the online feature store is unreachable; retry shortly") from exc
        for view, stamps in read.event_time.items():
            ages = now - stamps[np.isfinite(stamps)]
            for age in ages[:64]:  # a sample is enough for the histogram; batches would dominate it otherwise
                metrics.feature_age_seconds.labels(view=view).observe(max(float(age), 0.0))
        return read.rows

    def read_offline(self, park_ids: list[str], issued: Sequence[pd.Timestamp]) -> dict[str, list[Any]]:
        """Point-in-time features of each (park, issue time): nothing known later, from the offline store."""
        try:
            frame = read_offline(self.store, park_ids, list(issued))
        except Exception as exc:
            logger.warning("offline store read failed: %s", type(exc).__name__)
            raise StoreUnavailableError("the offline feature store cannot be read; retry shortly") from exc
        return frame_rows(frame)

    def degraded_reasons(
        self, rows: dict[str, list[Any]], inputs: ModelInputs, issued: NDArray[np.int64]
    ) -> list[str | None]:
        """Why each park cannot get the model's forecast (None: it can)."""
        valid_from = np.array([np.nan if v is None else v for v in rows["valid_from_epoch_s"]], dtype=np.float64)
        present = np.array([a is not None for a in rows[WEATHER_VARIABLES[0]]]) & np.isfinite(valid_from)
        age_h = (issued - np.where(present, valid_from, 0)) / 3600.0
        limit_h = self.weather_max_age_s / 3600.0
        reasons: list[str | None] = []
        for known, have, ok, age in zip(inputs.park_known, present, inputs.weather_ok, age_h, strict=True):
            if not known:
                reasons.append(None)
            elif not have:
                reasons.append("no weather forecast for this park")
            elif age > limit_h:
                reasons.append(f"the latest weather forecast is {age:.1f} h old (freshness limit {limit_h:g} h)")
            elif not ok:
                reasons.append("the latest weather forecast does not cover the forecast horizon")
            else:
                reasons.append(None)
        return reasons

    def infer(
        self,
        model: ServedModel,
        rows: dict[str, list[Any]],
        inputs: ModelInputs,
        issued: NDArray[np.int64],
        reasons: list[str | None],
    ) -> tuple[NDArray[np.float32], ModelInputs]:
        """One onnxruntime call for every park with a fresh forecast; the physics path for the degraded ones."""
        n, levels = len(reasons), len(model.quantiles)
        out = np.zeros((n, model.spec.horizon_steps, levels), dtype=np.float32)
        degraded = np.array([r is not None for r in reasons], dtype=bool)
        served = inputs.park_known & ~degraded
        if served.any():
            index = np.flatnonzero(served)
            out[index] = run_session(model.loaded.session, inputs.features[index], inputs.capacity_ac_kw[index])
        if degraded.any():
            index = np.flatnonzero(degraded)
            fallback = build_inputs(without_weather(rows, index, issued, model.spec), issued[index], model.spec)
            out[index] = model.fallback.predict_kw(fallback.features, fallback.capacity_ac_kw)
            inputs = _replace_rows(inputs, index, fallback)
        return out, inputs

    def log_served(self, model: ServedModel, computed: Computed) -> None:
        """Hand the model's forecasts (not the degraded physics answers, not unknown parks; each park once) to
        the forecast log. Never fails the request."""
        if self.log is None:
            return
        served = computed.inputs.park_known & np.array([r is None for r in computed.degraded_reason], dtype=bool)
        first = np.zeros(len(computed.park_ids), dtype=bool)
        first[np.unique(np.asarray(computed.park_ids, dtype=object), return_index=True)[1]] = True
        index = np.flatnonzero(served & first)
        if not len(index):
            return
        try:
            self.log.add(
                ServedForecasts(
                    park_id=[computed.park_ids[i] for i in index],
                    issued_at=computed.issued_at[index],
                    valid_time=computed.inputs.valid_time[index],
                    quantiles_kw=computed.quantiles_kw[index],
                    quantile_levels=model.quantiles,
                    capacity_ac_kw=np.asarray(computed.capacity_ac_kw, dtype=np.float64)[index],
                    model_version=model.version,
                )
            )
        except Exception:
            logger.exception("could not log %d served forecasts", len(index))

    def store_reachable(self) -> bool:
        try:
            self.reader.read(["__readiness_probe__"], None)
            return True
        except Exception as exc:
            logger.warning("readiness: online store unreachable (%s)", type(exc).__name__)
            return False


def _take(inputs: ModelInputs, order: NDArray[np.int64]) -> ModelInputs:
    return ModelInputs(**{k: getattr(inputs, k)[order] for k in ModelInputs.__dataclass_fields__})


def _replace_rows(inputs: ModelInputs, index: NDArray[np.int64], other: ModelInputs) -> ModelInputs:
    fields = {}
    for name in ModelInputs.__dataclass_fields__:
        values = getattr(inputs, name).copy()
        values[index] = getattr(other, name)
        fields[name] = values
    return ModelInputs(**fields)
