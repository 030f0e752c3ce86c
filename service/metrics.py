"""Prometheus metrics of the service (scraped at /metrics with BentoML's own request metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

request_seconds = Histogram(
    "pvcast_request_duration_seconds",
    "Request latency by endpoint (route template), method and status",
    ["endpoint", "method", "status"],
    buckets=LATENCY_BUCKETS,
)
stage_seconds = Histogram(
    "pvcast_stage_duration_seconds",
    "Time per forecast stage: features (read + tensor), inference (onnxruntime or physics), postprocess (JSON)",
    ["stage"],
    buckets=LATENCY_BUCKETS,
)
feature_age_seconds = Histogram(
    "pvcast_feature_age_seconds",
    "Age of the online feature values at request time, by feature view",
    ["view"],
    buckets=(60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 24 * 3600, 48 * 3600),
)
# Under BentoML, metrics are multiprocess: "live*" modes aggregate the live workers and drop the pid label.
model_info = Gauge(
    "pvcast_model_info",
    "Model versions of this pod: 1 = served, 0 = served before a hot reload",
    ["version"],
    multiprocess_mode="livemax",
)
model_trained_timestamp = Gauge(
    "pvcast_model_trained_timestamp_seconds",
    "When the served model was trained (saved to the model store), Unix time",
    multiprocess_mode="livemin",
)
model_reloads = Counter(
    "pvcast_model_reloads_total", "Hot reloads after a promotion: swapped, or refused (failed its checks)", ["outcome"]
)
forecasts_served = Counter("pvcast_forecasts_total", "Park forecasts answered", ["status"])
telemetry_rows = Counter("pvcast_telemetry_rows_total", "Telemetry measurements by outcome", ["outcome"])
rate_limited = Counter("pvcast_rate_limited_total", "Requests refused with 429", ["key"])
shared_state_errors = Counter(
    "pvcast_shared_state_errors_total", "Failures of the shared-state Redis (rate limits fail open)", ["operation"]
)
