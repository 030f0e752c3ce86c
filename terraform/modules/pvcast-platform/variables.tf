variable "overlay_path" {
  type        = string
  description = "Path of the pvcast kustomize overlay to apply (k8s/overlays/dev, k8s/overlays/prod, k8s/overlays/prod-ingress)."

  validation {
    condition     = can(regex("k8s/overlays/[a-z-]+/?$", var.overlay_path))
    error_message = "overlay_path must point at a folder under k8s/overlays/."
  }
}

variable "install_app" {
  type        = bool
  description = "Apply the GatewayClass and the pvcast overlay. The first apply on a new cluster runs with false (platform and its CRDs only: Terraform plans custom resources only once their CRDs exist), the second with true."
  default     = true
}

variable "redis" {
  type = object({
    mode = string
    host = optional(string, "")
    port = optional(number, 6379)
    tls  = optional(bool, false)
  })
  description = "Online store. mode \"in-cluster\": the overlay's Redis StatefulSet. mode \"external\": a managed Redis at host:port (the overlay must include components/redis-external); its password stays in the `pvcast-redis` Secret, never in Terraform."
  default     = { mode = "in-cluster" }

  validation {
    condition     = contains(["in-cluster", "external"], var.redis.mode)
    error_message = "redis.mode must be \"in-cluster\" or \"external\"."
  }
  validation {
    condition     = var.redis.mode == "in-cluster" || length(var.redis.host) > 0
    error_message = "redis.host is required when redis.mode is \"external\"."
  }
  validation {
    condition     = var.redis.port > 0 && var.redis.port < 65536
    error_message = "redis.port must be a TCP port (1-65535)."
  }
}

variable "chart_versions" {
  type = object({
    kube_prometheus_stack = string
    prometheus_adapter    = string
    envoy_gateway         = string
    cert_manager          = string
    metrics_server        = string
    pushgateway           = string
  })
  description = "Pinned Helm chart versions of the platform components. Bump deliberately, one at a time."
  default = {
    kube_prometheus_stack = "70.4.2"
    prometheus_adapter    = "4.14.1"
    envoy_gateway         = "v1.7.0"
    cert_manager          = "v1.17.2"
    metrics_server        = "3.12.2"
    pushgateway           = "3.0.0"
  }

  validation {
    condition     = alltrue([for v in values(var.chart_versions) : can(regex("^v?[0-9]+\\.[0-9]+\\.[0-9]+$", v))])
    error_message = "Every chart version must be an exact semantic version (no ranges, no 'latest')."
  }
}

variable "install_metrics_server" {
  type        = bool
  description = "Install metrics-server (the HPA's CPU metric). Managed clusters often ship it already (GKE, AKS): set false there."
  default     = true
}

variable "monitoring_namespace" {
  type        = string
  description = "Namespace of the Prometheus stack and prometheus-adapter. The pvcast NetworkPolicies allow scrapes from a namespace named `monitoring`."
  default     = "monitoring"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", var.monitoring_namespace))
    error_message = "monitoring_namespace must be a valid Kubernetes namespace name."
  }
}

variable "grafana_admin_secret_name" {
  type        = string
  description = "Name of an existing Secret in the monitoring namespace holding Grafana's admin-user and admin-password (created outside Terraform so no password lands in the state)."
  default     = "grafana-admin"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", var.grafana_admin_secret_name))
    error_message = "grafana_admin_secret_name must be a valid Secret name."
  }
}

variable "requests_per_second_target" {
  type        = number
  description = "Not used by the charts; documents the HPA target the prometheus-adapter rule serves (pvcast_http_requests_per_second per pod)."
  default     = 80

  validation {
    condition     = var.requests_per_second_target > 0
    error_message = "requests_per_second_target must be positive."
  }
}
