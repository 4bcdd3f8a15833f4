// One Cloud Run service per region running one container (and, by default, the Managed
// Prometheus sidecar that ships its /metrics to Cloud Monitoring). Every module of this
// repository deploys its processes through this one.

resource "google_cloud_run_v2_service" "this" {
  for_each = var.regions

  project             = var.project_id
  name                = var.name
  location            = each.key
  ingress             = var.ingress
  deletion_protection = var.deletion_protection
  labels              = var.labels

  template {
    service_account                  = var.service_account
    timeout                          = "${var.request_timeout_seconds}s"
    max_instance_request_concurrency = var.scaling.max_instance_request_concurrency
    execution_environment            = "EXECUTION_ENVIRONMENT_GEN2"

    scaling {
      min_instance_count = var.scaling.min_instances
      max_instance_count = var.scaling.max_instances
    }

    vpc_access {
      egress = var.egress
      network_interfaces {
        network    = each.value.network
        subnetwork = each.value.subnet
      }
    }

    containers {
      name  = "app"
      image = var.image
      args  = var.args

      ports {
        name           = var.port_name
        container_port = var.port
      }

      resources {
        limits = {
          cpu    = var.resources.cpu
          memory = var.resources.memory
        }
        cpu_idle          = var.resources.cpu_idle
        startup_cpu_boost = var.resources.startup_cpu_boost
      }

      dynamic "env" {
        for_each = merge(var.env, { for name, by_region in var.regional_env : name => by_region[each.key] if contains(keys(by_region), each.key) })
        content {
          name  = env.key
          value = env.value
        }
      }

      dynamic "env" {
        for_each = var.secret_env
        content {
          name = env.key
          value_source {
            secret_key_ref {
              secret  = env.value.secret
              version = env.value.version
            }
          }
        }
      }
    }

    dynamic "containers" {
      for_each = var.enable_metrics_sidecar ? [1] : []
      content {
        name       = "metrics"
        image      = var.metrics_sidecar_image
        depends_on = ["app"]
        resources {
          limits = {
            cpu    = "500m"
            memory = "256Mi"
          }
        }
      }
    }
  }
}

// The sidecar writes the metrics to Cloud Monitoring as the service's account.
resource "google_project_iam_member" "metric_writer" {
  count = var.enable_metrics_sidecar ? 1 : 0

  project = var.project_id
  role    = "roles/monitoring.metricWriter"
  member  = "serviceAccount:${var.service_account}"
}
