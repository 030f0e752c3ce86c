"""Work a service worker does beside its requests: follow promotions (hot reload) and flush the forecast log.

Hot reload: ``pvcast promote`` / ``pvcast retrain`` move the production pointer in the model store. Every
worker polls it (``PVCAST_RELOAD_SECONDS``, default 10 s); a new version is loaded and checked off the request
path (onnxruntime session, feature contract, one smoke inference on a physical example), then swapped into the
:class:`~service.forecaster.ModelHandle` with one assignment. A request reads the handle once, so it is answered
by the old model or the new one, never by a mix, and no request waits for a load. A version that fails its
checks is refused: it is logged, counted in ``pvcast_model_reloads_total{outcome="refused"}`` and not tried
again until the pointer moves; the old model keeps serving.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from feature_repo.forecast_log import ForecastLogBuffer
from pvcast.contract import run_session
from pvcast.model_store import LoadedModel, ModelStore
from service import metrics
from service.forecaster import ModelHandle, ServedModel

logger = logging.getLogger(__name__)


class ModelRefusedError(RuntimeError):
    """A promoted model that must not serve (its checks failed)."""


def smoke_check(model: ServedModel) -> None:
    """One inference on a zero-feature batch of two parks: the output must have the served shape, be finite,
    lie in [0, capacity] and be monotone over the quantile levels."""
    spec, levels = model.spec, len(model.quantiles)
    features = np.zeros((2, spec.horizon_steps, len(model.loaded.metadata.feature_names)), dtype=np.float32)
    capacity = np.array([[100.0], [5000.0]], dtype=np.float32)
    out = run_session(model.loaded.session, features, capacity)
    if out.shape != (2, spec.horizon_steps, levels):
        raise ModelRefusedError(f"output shape {out.shape} != {(2, spec.horizon_steps, levels)}")
    if not np.isfinite(out).all():
        raise ModelRefusedError("non-finite output on a smoke input")
    if (out < 0).any() or (out > capacity[:, :, None] + 1e-3).any():
        raise ModelRefusedError("output outside [0, capacity_ac_kw] on a smoke input")
    if (np.diff(out, axis=-1) < -1e-4).any():
        raise ModelRefusedError("quantiles not monotone on a smoke input")


def prepare(store: ModelStore, version: str, threads: int) -> ServedModel:
    """Load and check ``version``; raises :class:`ModelRefusedError` if it must not serve."""
    try:
        loaded = store.load(version, threads=threads)
        model = ServedModel.of(loaded)
        smoke_check(model)
    except ModelRefusedError:
        raise
    except Exception as exc:  # a corrupt file, a broken contract, a store error: all refuse the version
        raise ModelRefusedError(f"{type(exc).__name__}: {exc}") from exc
    return model


def publish_model_metrics(loaded: LoadedModel, previous: str | None = None) -> None:
    """``pvcast_model_info{version}`` = 1 for the served version (0 for the one it replaced), and its training
    time. (A removed label would linger in the multiprocess files, so the old version is set to 0.)"""
    if previous is not None and previous != loaded.version:
        metrics.model_info.labels(version=previous).set(0)
    metrics.model_info.labels(version=loaded.version).set(1)
    metrics.model_trained_timestamp.set(loaded.created_at.timestamp())


@dataclass
class Reloader:
    """Follows the production pointer of ``store`` (or ``pointer``, when given) for one :class:`ModelHandle`."""

    handle: ModelHandle
    store: ModelStore
    threads: int = 1
    pointer: Callable[[], str | None] | None = None
    refused: set[str] = field(default_factory=set)

    def poll(self) -> str | None:
        """One check; returns the version swapped in (None: nothing changed or the new version was refused)."""
        target = (self.pointer or self.store.production_version)()
        current = self.handle.current.version
        if target is None or target == current or target in self.refused:
            return None
        try:
            model = prepare(self.store, target, self.threads)
        except ModelRefusedError as exc:
            self.refused.add(target)
            metrics.model_reloads.labels(outcome="refused").inc()
            logger.error("refusing model %s (still serving %s): %s", target, current, exc)
            return None
        self.handle.swap(model)
        publish_model_metrics(model.loaded, previous=current)
        metrics.model_reloads.labels(outcome="swapped").inc()
        logger.info("hot reload: now serving model %s (was %s)", target, current)
        return target


class Housekeeper:
    """A daemon thread: reload poll every ``reload_seconds`` (0: never) and forecast-log flushes when due."""

    def __init__(self, reloader: Reloader | None, log: ForecastLogBuffer | None, reload_seconds: float) -> None:
        self.reloader, self.log, self.reload_seconds = reloader, log, reload_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pvcast-housekeeping", daemon=True)

    def start(self) -> Housekeeper:
        self._thread.start()
        return self

    def _run(self) -> None:
        tick = min(self.reload_seconds or 1.0, 1.0)
        waited = 0.0
        while not self._stop.wait(tick):
            waited += tick
            if self.log is not None:
                self.log.flush_if_due()
            if self.reloader is not None and self.reload_seconds > 0 and waited >= self.reload_seconds:
                waited = 0.0
                try:
                    self.reloader.poll()
                except Exception:  # the poller must survive anything (e.g. the model volume briefly unreadable)
                    logger.exception("hot-reload poll failed")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        if self.log is not None:
            self.log.close()
