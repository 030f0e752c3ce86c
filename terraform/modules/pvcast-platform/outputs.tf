output "gateway_namespace" {
  description = "Namespace of the Envoy Gateway proxies (the pvcast NetworkPolicy admits API traffic only from there)."
  value       = helm_release.envoy_gateway.namespace
}

output "monitoring_namespace" {
  description = "Namespace of Prometheus, Grafana and prometheus-adapter."
  value       = var.monitoring_namespace
}

output "redis_endpoint" {
  description = "Where pvcast's online store lives: the in-cluster Service or the managed Redis (host:port)."
  value       = var.redis.mode == "external" ? "${var.redis.host}:${var.redis.port}" : "pvcast-redis.pvcast.svc:6379"
}

output "hpa_rps_metric" {
  description = "The custom metric prometheus-adapter serves for the pvcast HPA, and its per-pod target."
  value       = { name = "pvcast_http_requests_per_second", target = var.requests_per_second_target }
}
