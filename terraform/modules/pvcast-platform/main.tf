# What pvcast needs around it on an existing cluster, then pvcast itself from its kustomize overlay.
# Secrets (API key digests, Redis password, Grafana admin) are created outside Terraform: nothing secret is
# ever in a variable, a plan or the state.

locals {
  # prometheus-adapter: a per-pod requests-per-second metric for the HPA, from BentoML's request counter.
  adapter_rules = {
    default = false
    custom = [{
      seriesQuery = "bentoml_service_request_total{namespace!=\"\",pod!=\"\",service_name=\"pvcast\"}"
      resources   = { overrides = { namespace = { resource = "namespace" }, pod = { resource = "pod" } } }
      name        = { matches = "^bentoml_service_request_total$", as = "pvcast_http_requests_per_second" }
      metricsQuery = join("", [
        "sum(rate(<<.Series>>{<<.LabelMatchers>>,endpoint!~\"/(livez|readyz|metrics)\"}[2m])) by (<<.GroupBy>>)",
      ])
    }]
  }
}

resource "helm_release" "kube_prometheus_stack" {
  name             = "kube-prometheus-stack"
  repository       = "https://prometheus-community.github.io/helm-charts"
  chart            = "kube-prometheus-stack"
  version          = var.chart_versions.kube_prometheus_stack
  namespace        = var.monitoring_namespace
  create_namespace = true
  atomic           = true
  timeout          = 900

  values = [yamlencode({
    grafana = {
      admin   = { existingSecret = var.grafana_admin_secret_name, userKey = "admin-user", passwordKey = "admin-password" }
      sidecar = { dashboards = { enabled = true, label = "grafana_dashboard", searchNamespace = "ALL" } }
    }
    prometheus = {
      prometheusSpec = {
        # Pick up the pvcast ServiceMonitor and PrometheusRule (labelled release: kube-prometheus-stack).
        serviceMonitorSelectorNilUsesHelmValues = true
        ruleSelectorNilUsesHelmValues           = true
        retention                               = "15d"
      }
    }
  })]
}

resource "helm_release" "prometheus_adapter" {
  name       = "prometheus-adapter"
  repository = "https://prometheus-community.github.io/helm-charts"
  chart      = "prometheus-adapter"
  version    = var.chart_versions.prometheus_adapter
  namespace  = var.monitoring_namespace
  atomic     = true

  values = [yamlencode({
    prometheus = { url = "http://kube-prometheus-stack-prometheus.${var.monitoring_namespace}.svc", port = 9090 }
    rules      = local.adapter_rules
  })]

  depends_on = [helm_release.kube_prometheus_stack]
}

# Batch jobs (drift, accuracy, ingestion) push their metrics here (PVCAST_PUSHGATEWAY_URL); Prometheus scrapes it.
resource "helm_release" "pushgateway" {
  name       = "prometheus-pushgateway"
  repository = "https://prometheus-community.github.io/helm-charts"
  chart      = "prometheus-pushgateway"
  version    = var.chart_versions.pushgateway
  namespace  = var.monitoring_namespace
  atomic     = true

  values = [yamlencode({
    serviceMonitor = { enabled = true, additionalLabels = { release = "kube-prometheus-stack" } }
  })]

  depends_on = [helm_release.kube_prometheus_stack]
}

resource "helm_release" "cert_manager" {
  name             = "cert-manager"
  repository       = "https://charts.jetstack.io"
  chart            = "cert-manager"
  version          = var.chart_versions.cert_manager
  namespace        = "cert-manager"
  create_namespace = true
  atomic           = true

  values = [yamlencode({
    crds   = { enabled = true }
    config = { apiVersion = "controller.config.cert-manager.io/v1alpha1", kind = "ControllerConfiguration", enableGatewayAPI = true }
  })]

  depends_on = [helm_release.envoy_gateway] # the Gateway API CRDs must exist when cert-manager starts
}

resource "helm_release" "envoy_gateway" {
  name             = "eg"
  repository       = "oci://docker.io/envoyproxy"
  chart            = "gateway-helm"
  version          = var.chart_versions.envoy_gateway
  namespace        = "envoy-gateway-system"
  create_namespace = true
  atomic           = true
}

# The GatewayClass `eg` the pvcast Gateway names. kubernetes_manifest needs its CRD at plan time, so it is
# created with the app, in the second apply (docs/deploy.md: the first apply runs with install_app = false).
resource "kubernetes_manifest" "gateway_class" {
  count = var.install_app ? 1 : 0
  manifest = {
    apiVersion = "gateway.networking.k8s.io/v1"
    kind       = "GatewayClass"
    metadata   = { name = "eg" }
    spec       = { controllerName = "gateway.envoyproxy.io/gatewayclass-controller" }
  }

  depends_on = [helm_release.envoy_gateway]
}

resource "helm_release" "metrics_server" {
  count      = var.install_metrics_server ? 1 : 0
  name       = "metrics-server"
  repository = "https://kubernetes-sigs.github.io/metrics-server/"
  chart      = "metrics-server"
  version    = var.chart_versions.metrics_server
  namespace  = "kube-system"
  atomic     = true
}

# pvcast itself: the overlay rendered by the kustomization provider and applied object by object
# (namespaces and CRD-free objects first, as the provider's documentation recommends). For a managed Redis,
# its address is merged into the pvcast-settings ConfigMap here, so one overlay serves every environment.
data "kustomization_overlay" "pvcast" {
  count     = var.install_app ? 1 : 0
  resources = [var.overlay_path]

  dynamic "config_map_generator" {
    for_each = var.redis.mode == "external" ? [var.redis] : []
    content {
      name     = "pvcast-settings"
      behavior = "merge"
      literals = [
        "REDIS_HOST=${config_map_generator.value.host}",
        "REDIS_PORT=${config_map_generator.value.port}",
        "REDIS_SCHEME=${config_map_generator.value.tls ? "rediss" : "redis"}",
      ]
    }
  }
}

resource "kustomization_resource" "pvcast_p0" {
  for_each = var.install_app ? data.kustomization_overlay.pvcast[0].ids_prio[0] : toset([])
  manifest = data.kustomization_overlay.pvcast[0].manifests[each.value]
}

resource "kustomization_resource" "pvcast_p1" {
  for_each   = var.install_app ? data.kustomization_overlay.pvcast[0].ids_prio[1] : toset([])
  manifest   = data.kustomization_overlay.pvcast[0].manifests[each.value]
  depends_on = [kustomization_resource.pvcast_p0, helm_release.kube_prometheus_stack, helm_release.cert_manager, kubernetes_manifest.gateway_class]
}

resource "kustomization_resource" "pvcast_p2" {
  for_each   = var.install_app ? data.kustomization_overlay.pvcast[0].ids_prio[2] : toset([])
  manifest   = data.kustomization_overlay.pvcast[0].manifests[each.value]
  depends_on = [kustomization_resource.pvcast_p1]
}
