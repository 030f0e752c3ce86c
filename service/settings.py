"""Typed, frozen service settings: the shared ``PvcastSettings`` plus the service's own. Built once at start-up."""

from __future__ import annotations

from pydantic import Field, field_validator

from pvcast.keys import ApiKey
from pvcast.settings import PvcastSettings


class ServiceSettings(PvcastSettings):
    """The forecast service's settings (environment ``PVCAST_*``)."""

    state_redis_url: str | None = Field(
        default=None,
        description="Redis for rate limits and job state shared by the replicas (default: REDIS_URL).",
    )
    model: str = "production"
    api_keys: tuple[ApiKey, ...] = ()
    ort_threads: int = Field(default=1, ge=1)
    weather_max_age_hours: float = Field(
        default=12.0,
        gt=0,
        description="A weather forecast issued longer ago than this is stale: the forecast degrades to physics.",
    )
    rate_per_second: float = Field(default=50.0, gt=0, description="Requests per second per key (token bucket)")
    rate_burst: int = Field(default=100, ge=1, description="Bucket size: requests a key may send at once")
    max_body_bytes: int = Field(default=4_000_000, ge=1024, description="Larger request bodies get 413")
    max_in_flight: int = Field(
        default=32, ge=1, description="Requests in progress per worker beyond which the service answers 503"
    )
    reload_seconds: float = Field(
        default=10.0,
        ge=0,
        description="How often a worker checks the production pointer for a promoted model (0: never hot-reload)",
    )
    forecast_log_sample_rate: float = Field(
        default=1.0,
        ge=0,
        le=1,
        description="Share of served forecasts logged to the offline store for accuracy monitoring (0: none)",
    )
    forecast_log_slot_seconds: int = Field(
        default=900,
        ge=0,
        description="Log only the first forecast of a park per issue slot of this length (0: every forecast)",
    )
    forecast_log_flush_seconds: float = Field(
        default=60.0, gt=0, description="The forecast log is written at least this often"
    )
    job_ttl_hours: float = Field(default=168.0, gt=0, description="How long job state and results stay readable")

    @field_validator("api_keys")
    @classmethod
    def _at_least_one_key(cls, keys: tuple[ApiKey, ...]) -> tuple[ApiKey, ...]:
        if not keys:
            raise ValueError(
                "PVCAST_API_KEYS is empty: the service refuses to start without API keys. "
                "Create one with `pvcast apikey create --name NAME` and pass the printed JSON list."
            )
        return keys

    @property
    def shared_state_url(self) -> str | None:
        """The Redis holding rate limits and jobs: PVCAST_STATE_REDIS_URL, else REDIS_URL."""
        return self.state_redis_url or self.redis_url
