// The dead-letter re-enqueue job (`reconcilers queue reenqueue`), run by hand, named as the
// reference's runbook names it, one per bucket (in the primary region, or in each region of a
// regional queue):
// gcloud run jobs execute <name>-reenqueue --region <region>

locals {
  reenqueue_regions = local.regional ? { for region in keys(var.regions) : region => region } : { global = local.primary_region }
}

moved {
  from = google_cloud_run_v2_job.reenqueue
  to   = google_cloud_run_v2_job.reenqueue["global"]
}

resource "google_cloud_run_v2_job" "reenqueue" {
  for_each = local.reenqueue_regions

  project             = var.project_id
  name                = "${var.name}-reenqueue"
  location            = each.value
  deletion_protection = var.deletion_protection
  labels              = local.labels

  template {
    task_count = 1
    template {
      service_account = google_service_account.reenqueue.email
      max_retries     = 1
      timeout         = "600s"

      vpc_access {
        egress = "ALL_TRAFFIC"
        network_interfaces {
          network    = var.regions[each.value].network
          subnetwork = var.regions[each.value].subnet
        }
      }

      containers {
        image = local.image
        args  = ["queue", "reenqueue"]
        env {
          name  = "WORKQUEUE_BUCKET"
          value = google_storage_bucket.queue[each.key].name
        }
      }
    }
  }

  depends_on = [google_storage_bucket_iam_member.queue]
}
