# A local cluster (kind, k3d or minikube) reached through a kubeconfig context: in-cluster Redis, the dev
# overlay (self-signed TLS for pvcast.localtest.me). docs/deploy.md walks through it.
terraform {
  required_version = ">= 1.11.0"

  required_providers {
    helm = {
      source  = "hashicorp/helm"
      version = "2.17.0"
    }
    kubernetes = {
      source  = "hashicorp/kubernetes"
      version = "2.36.0"
    }
    kustomization = {
      source  = "kbst/kustomization"
      version = "0.9.6"
    }
  }
}

variable "kubeconfig_path" {
  type        = string
  description = "kubeconfig file of the local cluster."
  default     = "~/.kube/config"

  validation {
    condition     = length(var.kubeconfig_path) > 0
    error_message = "kubeconfig_path must name a file."
  }
}

variable "kube_context" {
  type        = string
  description = "kubeconfig context of the local cluster (kind names it kind-<cluster name>)."
  default     = "kind-pvcast"

  validation {
    condition     = length(var.kube_context) > 0
    error_message = "kube_context must name a context of the kubeconfig."
  }
}

variable "install_app" {
  type        = bool
  description = "false for the first apply on a new cluster (platform and CRDs only), true afterwards (GatewayClass and the pvcast overlay)."
  default     = true
}

provider "kubernetes" {
  config_path    = pathexpand(var.kubeconfig_path)
  config_context = var.kube_context
}

provider "helm" {
  kubernetes {
    config_path    = pathexpand(var.kubeconfig_path)
    config_context = var.kube_context
  }
}

provider "kustomization" {
  kubeconfig_path = pathexpand(var.kubeconfig_path)
  context         = var.kube_context
}

module "pvcast" {
  source       = "../../modules/pvcast-platform"
  install_app  = var.install_app
  overlay_path = "${path.root}/../../../k8s/overlays/dev"
  redis        = { mode = "in-cluster" }
}

output "redis_endpoint" {
  description = "The online store pvcast uses."
  value       = module.pvcast.redis_endpoint
}
