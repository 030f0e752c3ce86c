# An existing EKS cluster and an existing ElastiCache (Redis OSS, in-transit encryption and AUTH on),
# referenced by name: this environment creates neither (they belong to the account's network/cluster stack).
# The prod overlay: Gateway API + Let's Encrypt, managed Redis over TLS, an RWX storage class on EFS.
terraform {
  required_version = ">= 1.11.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "5.94.1"
    }
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

  # State in S3 with locking; no secret is ever written to it (Secrets are created with kubectl).
  backend "s3" {}
}

variable "region" {
  type        = string
  description = "AWS region of the cluster and the cache."

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "region must look like eu-central-1."
  }
}

variable "cluster_name" {
  type        = string
  description = "Name of the existing EKS cluster."

  validation {
    condition     = can(regex("^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$", var.cluster_name))
    error_message = "cluster_name must be an EKS cluster name (letters, digits, - and _, at most 100)."
  }
}

variable "elasticache_replication_group_id" {
  type        = string
  description = "ID of the existing ElastiCache replication group used as pvcast's online store (TLS and AUTH enabled)."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,39}$", var.elasticache_replication_group_id))
    error_message = "elasticache_replication_group_id must be a replication group ID (lowercase, starts with a letter, at most 40)."
  }
}

variable "efs_file_system_id" {
  type        = string
  description = "EFS file system backing the `pvcast-rwx` storage class (the shared data volume, ReadWriteMany)."

  validation {
    condition     = can(regex("^fs-[0-9a-f]+$", var.efs_file_system_id))
    error_message = "efs_file_system_id must look like fs-0123456789abcdef0."
  }
}

variable "install_app" {
  type        = bool
  description = "false for the first apply on a new cluster (platform and CRDs only), true afterwards (GatewayClass and the pvcast overlay)."
  default     = true
}

provider "aws" {
  region = var.region
}

data "aws_eks_cluster" "this" {
  name = var.cluster_name
}

data "aws_eks_cluster_auth" "this" {
  name = var.cluster_name
}

data "aws_elasticache_replication_group" "online_store" {
  replication_group_id = var.elasticache_replication_group_id
}

provider "kubernetes" {
  host                   = data.aws_eks_cluster.this.endpoint
  cluster_ca_certificate = base64decode(data.aws_eks_cluster.this.certificate_authority[0].data)
  token                  = data.aws_eks_cluster_auth.this.token
}

provider "helm" {
  kubernetes {
    host                   = data.aws_eks_cluster.this.endpoint
    cluster_ca_certificate = base64decode(data.aws_eks_cluster.this.certificate_authority[0].data)
    token                  = data.aws_eks_cluster_auth.this.token
  }
}

provider "kustomization" {
  kubeconfig_raw = yamlencode({
    apiVersion      = "v1"
    kind            = "Config"
    current-context = "eks"
    clusters        = [{ name = "eks", cluster = { server = data.aws_eks_cluster.this.endpoint, certificate-authority-data = data.aws_eks_cluster.this.certificate_authority[0].data } }]
    users           = [{ name = "eks", user = { token = data.aws_eks_cluster_auth.this.token } }]
    contexts        = [{ name = "eks", context = { cluster = "eks", user = "eks" } }]
  })
}

# ReadWriteMany storage for the shared pvcast data volume (EFS CSI driver: an EKS add-on of the cluster stack).
resource "kubernetes_storage_class" "pvcast_rwx" {
  metadata {
    name = "pvcast-rwx"
  }
  storage_provisioner = "efs.csi.aws.com"
  reclaim_policy      = "Retain"
  parameters = {
    provisioningMode = "efs-ap"
    fileSystemId     = var.efs_file_system_id
    directoryPerms   = "0770"
  }
}

module "pvcast" {
  source                 = "../../modules/pvcast-platform"
  install_app            = var.install_app
  overlay_path           = "${path.root}/../../../k8s/overlays/prod"
  install_metrics_server = true
  redis = {
    mode = "external"
    host = data.aws_elasticache_replication_group.online_store.primary_endpoint_address
    port = data.aws_elasticache_replication_group.online_store.port
    tls  = true
  }

  depends_on = [kubernetes_storage_class.pvcast_rwx]
}

output "redis_endpoint" {
  description = "The managed Redis pvcast uses."
  value       = module.pvcast.redis_endpoint
}
