"""The pvcast BentoML service: the forecast API over the Feast stores and the ONNX forecast graph.

Start it with ``bentoml serve service.service:PVCast`` (see README). Settings come from the environment
(``service/settings.py``); the model, the feature store, the readers and the Redis clients are opened once
per worker. Security (keys, scopes, rate limits, body size) is the middleware in ``service/gate.py``; errors
become JSON in ``service/errors.py``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any

import bentoml
import numpy as np
import orjson
import pandas as pd
import redis
from fastapi import FastAPI, Response
from fastapi import Path as PathParam

from feature_repo.forecast_log import ForecastLogBuffer
from feature_repo.store import open_store
from pvcast.model_store import PRODUCTION, ModelStore
from pvcast.pv.plant import PARK_ID_PATTERN, Park
from service import backfill, errors, logs, metrics
from service.forecaster import Forecaster, ForecastQuery, ModelHandle, ParkFailure, ServedModel
from service.gate import Gate, GateConfig
from service.housekeeping import Housekeeper, Reloader, publish_model_metrics
from service.jobs import JobRunner, JobStore
from service.ratelimit import RateLimiter
from service.registry import ParkRegistry
from service.routes import RouteTable, UnknownRoute, scoped
from service.schemas import (
    BackfillRequest,
    BatchForecastRequest,
    BatchForecastResponse,
    ErrorResponse,
    ForecastRequest,
    ForecastResponse,
    JobAccepted,
    JobStatus,
    ParkBody,
    ParkList,
    ParkResponse,
    TelemetryRequest,
    TelemetryResponse,
)
from service.settings import ServiceSettings
from service.telemetry import Rows, TelemetryWriter

logger = logging.getLogger(__name__)


def _error(status: int, description: str) -> dict[str, Any]:
    return {"model": ErrorResponse, "description": description}


COMMON: dict[int | str, dict[str, Any]] = {
    401: _error(401, "Missing or invalid API key"),
    403: _error(403, "The key lacks the scope"),
    413: _error(413, "Request body too large"),
    422: _error(422, "Invalid request (field paths in details)"),
    429: _error(429, "Rate limit of the key exceeded (see the Retry-After header)"),
    503: _error(503, "A store is unreachable (retry shortly)"),
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: _error(404, "Unknown park or job")}
CREATED: dict[int | str, dict[str, Any]] = {201: {"model": ParkResponse, "description": "Park created"}}

app = FastAPI(
    title="pvcast",
    version="1",
    description=(
        "Probabilistic power forecasts for PV parks. Every value is AC power in kW; `valid_time` labels the "
        "beginning of each 15-minute interval (UTC). Authenticate with `Authorization: Bearer <key>`; scopes: "
        "`read` (forecasts), `write` (telemetry), `admin` (parks and jobs). `/livez`, `/readyz` and `/metrics` "
        "are open. Errors are JSON: `{error, message, details: [{field, message}]}`."
    ),
)
errors.install(app)
app.add_middleware(Gate, config=lambda: getattr(app.state, "gate", None))
ParkIdPath = Annotated[str, PathParam(pattern=PARK_ID_PATTERN, description="Park id", examples=["synthetic-miami"])]
JobIdPath = Annotated[str, PathParam(pattern=r"^[0-9a-f]{32}$", description="Job id from POST /jobs/backfill")]


def json_response(content: Any, status: int = 200) -> Response:
    """Serialise with orjson (the batch answer of 1,000 parks is 7 MB of JSON)."""
    return Response(content=orjson.dumps(content), status_code=status, media_type="application/json")


def _shared_state(url: str | None) -> redis.Redis | None:
    if url is None:
        logger.warning("no REDIS_URL / PVCAST_STATE_REDIS_URL: rate limits are off and jobs are unavailable")
        return None
    return redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0, health_check_interval=10)


def _park_json(park: Park) -> dict[str, Any]:
    return park.model_dump()


# No BentoML max_concurrency: beyond it BentoML 1.4.39 answers 429 "Too many requests", which clients would
# read as their own rate limit; the gate sheds overload with 503 + Retry-After instead (PVCAST_MAX_IN_FLIGHT).
@bentoml.service(name="pvcast", traffic={"timeout": 60})
@bentoml.asgi_app(app, path="/")
class PVCast:
    def __init__(self) -> None:
        logs.configure()
        self.settings = ServiceSettings()
        models = ModelStore(self.settings.bentoml_home)
        loaded = models.load(self.settings.model, threads=self.settings.ort_threads)
        config = self.settings.store
        store = open_store(config)
        self.handle = ModelHandle(ServedModel.of(loaded))
        self.forecast_log = self._forecast_log()
        self.forecaster = Forecaster(
            store, self.handle, self.settings.weather_max_age_hours * 3600, log=self.forecast_log
        )
        self.writer = TelemetryWriter(store, config, self.forecaster.reader, loaded.metadata.step_seconds)
        self.registry = ParkRegistry(store, config)
        self.backfills = config.data_dir / "backfills"
        state = _shared_state(self.settings.shared_state_url)
        self.jobs = JobStore(state, self.settings.job_ttl_hours * 3600)
        self.runner = JobRunner(self.jobs)
        app.state.gate = GateConfig(
            keys=self.settings.api_keys,
            limiter=RateLimiter(state),
            rate_per_second=self.settings.rate_per_second,
            burst=self.settings.rate_burst,
            max_body_bytes=self.settings.max_body_bytes,
            routes=RouteTable.of(app),
            max_in_flight=self.settings.max_in_flight,
        )
        publish_model_metrics(loaded)
        # A pinned PVCAST_MODEL (a version, not "production") is never replaced by a promotion.
        follows = self.settings.model == PRODUCTION
        reloader = Reloader(self.handle, models, threads=self.settings.ort_threads) if follows else None
        self.housekeeper = Housekeeper(reloader, self.forecast_log, self.settings.reload_seconds).start()
        logger.info("serving model %s from %s", loaded.tag, config.repo_path)

    def _forecast_log(self) -> ForecastLogBuffer | None:
        rate = self.settings.forecast_log_sample_rate
        if rate <= 0:
            return None
        return ForecastLogBuffer(
            self.settings.store,
            sample_rate=rate,
            max_seconds=self.settings.forecast_log_flush_seconds,
            flush_on_add=False,
            slot_seconds=self.settings.forecast_log_slot_seconds,
        )

    @bentoml.on_shutdown
    def shutdown(self) -> None:
        """Stop following promotions and write the forecasts still buffered."""
        self.housekeeper.stop()

    def __is_ready__(self) -> bool:
        """Ready when the model is loaded (it is, or __init__ failed) and the online store answers."""
        return self.forecaster.store_reachable()

    # --- forecasts -------------------------------------------------------------------------------------------

    @app.post(
        "/forecast",
        response_model=ForecastResponse,
        responses=COMMON | NOT_FOUND,
        dependencies=scoped("read"),
        summary="Quantile forecast for one park (scope read)",
    )
    def forecast(self, request: ForecastRequest) -> Response:
        """Quantiles of AC power [kW] for the next `horizon_hours` in 15-minute steps.

        Without a fresh weather forecast the answer comes from the physics path with `degraded: true` and the
        reason. With `issued_at` the forecast is a backtest that uses only information available then.
        """
        query = ForecastQuery([request.park_id], request.horizon_hours, request.quantiles, _ts(request.issued_at))
        result = self.forecaster.forecast(query)[0]
        if isinstance(result, ParkFailure):
            metrics.forecasts_served.labels(status="not_found").inc()
            raise result.error
        metrics.forecasts_served.labels(status="degraded" if result.degraded else "ok").inc()
        return Response(content=result.body, media_type="application/json")

    @app.post(
        "/forecast/batch",
        response_model=BatchForecastResponse,
        responses=COMMON,
        dependencies=scoped("read"),
        summary="Quantile forecasts for up to 10,000 parks in one call (scope read)",
    )
    def forecast_batch(self, request: BatchForecastRequest) -> Response:
        """One result per requested park id, in request order: a forecast (as `POST /forecast`), or
        `{park_id, error: {error, message}}` for a park that cannot be forecast — the others are unaffected."""
        query = ForecastQuery(request.park_ids, request.horizon_hours, request.quantiles, _ts(request.issued_at))
        parts = []
        for result in self.forecaster.forecast(query):
            if isinstance(result, ParkFailure):
                metrics.forecasts_served.labels(status="not_found").inc()
                parts.append(orjson.dumps({"park_id": result.park_id, "error": errors.park_error(result.error)}))
            else:
                metrics.forecasts_served.labels(status="degraded" if result.degraded else "ok").inc()
                parts.append(result.body)
        return Response(content=b'{"results":[' + b",".join(parts) + b"]}", media_type="application/json")

    # --- telemetry -------------------------------------------------------------------------------------------

    @app.post(
        "/telemetry",
        response_model=TelemetryResponse,
        responses=COMMON,
        dependencies=scoped("write"),
        summary="Measured power of one or many parks (scope write)",
    )
    def telemetry(self, request: TelemetryRequest) -> Response:
        """Stores measured AC power [kW] per 15-minute interval, offline and online; the next forecast of the
        park uses the newest one (intraday update). Idempotent on (park_id, valid_time): re-sending a stored
        measurement counts as a duplicate and changes nothing. Invalid measurements are listed in `rejected`
        (index, field, message) and the valid ones are stored; a body that does not parse is 422 as a whole."""
        rows = Rows(
            park_id=np.array([m.park_id for m in request.measurements], dtype=str),
            valid_time=np.array([int(m.valid_time.timestamp()) for m in request.measurements], dtype=np.int64),
            power_kw=np.array([m.power_kw for m in request.measurements], dtype=np.float64),
        )
        outcome = self.writer.write(rows, pd.Timestamp.now(tz="UTC").timestamp())
        return json_response(
            {"accepted": outcome.accepted, "duplicates": outcome.duplicates, "rejected": outcome.rejected}
        )

    # --- park registry ---------------------------------------------------------------------------------------

    @app.get(
        "/parks", response_model=ParkList, responses=COMMON, dependencies=scoped("admin"), summary="List parks (admin)"
    )
    def list_parks(self) -> Response:
        return json_response({"parks": [_park_json(p) for p in self.registry.all()]})

    @app.get(
        "/parks/{park_id}",
        response_model=ParkResponse,
        responses=COMMON | NOT_FOUND,
        dependencies=scoped("admin"),
        summary="One park's metadata (admin)",
    )
    def get_park(self, park_id: ParkIdPath) -> Response:
        return json_response(_park_json(self.registry.get(park_id)))

    @app.put(
        "/parks/{park_id}",
        response_model=ParkResponse,
        status_code=200,
        responses=COMMON | CREATED,
        dependencies=scoped("admin"),
        summary="Create or update a park (admin)",
    )
    def put_park(self, park_id: ParkIdPath, body: ParkBody) -> Response:
        """Registers the park (201) or records new metadata (200). It can be forecast at once: degraded until a
        weather forecast for it arrives."""
        park, created = self.registry.put(park_id, body.model_dump())
        return json_response(_park_json(park), 201 if created else 200)

    @app.delete(
        "/parks/{park_id}",
        status_code=204,
        responses=COMMON | NOT_FOUND,
        dependencies=scoped("admin"),
        summary="Delete a park (admin)",
    )
    def delete_park(self, park_id: ParkIdPath) -> Response:
        """The park disappears from forecasts (404), listings and `pvcast parks`; its history stays for
        backtests before the deletion."""
        self.registry.delete(park_id)
        return Response(status_code=204)

    # --- jobs ------------------------------------------------------------------------------------------------

    @app.post(
        "/jobs/backfill",
        response_model=JobAccepted,
        status_code=202,
        responses=COMMON,
        dependencies=scoped("admin"),
        summary="Start a forecast backfill over a date range (admin)",
    )
    def submit_backfill(self, request: BackfillRequest) -> Response:
        """Forecasts of the parks (default: all) at every issue time from `start` to `end`, each as of its issue
        time, written as parquet under the store's `data/backfills/<job_id>/`. Returns at once; poll
        `GET /jobs/{job_id}` on any replica."""
        model = self.handle.current
        job = backfill.plan(
            self.settings.store,
            model,
            request.park_ids,
            _ts(request.start),
            _ts(request.end),
            request.every_hours,
            request.horizon_hours,
        )
        job_id = self.jobs.create("backfill", request.model_dump(mode="json") | {"forecasts": job.forecasts})
        out = Path(self.backfills, job_id)
        self.runner.submit(job_id, lambda progress: backfill.run(self.forecaster, out, job, progress))
        return json_response({"job_id": job_id, "status": "queued", "status_url": f"/jobs/{job_id}"}, 202)

    @app.get(
        "/jobs/{job_id}",
        response_model=JobStatus,
        responses=COMMON | NOT_FOUND,
        dependencies=scoped("admin"),
        summary="Status, progress and result of a job (admin)",
    )
    def get_job(self, job_id: JobIdPath) -> Response:
        return json_response(self.jobs.get(job_id))


def _ts(value: Any) -> pd.Timestamp | None:
    return None if value is None else pd.Timestamp(value).tz_convert("UTC")


# Last: every path the routes above do not match answers JSON (404, or a trailing-slash redirect).
app.router.routes.append(UnknownRoute())
