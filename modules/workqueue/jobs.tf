// The dead-letter re-enqueue job (`reconcilers queue reenqueue`), run by hand, named as the
// reference's runbook names it:
// gcloud run jobs execute <name>-reenqueue --region <primary region>

resource "google_cloud_run_v2_job" "reenqueue" {
  project             = var.project_id
  name                = "${var.name}-reenqueue"
  location            = local.primary_region
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
          network    = var.regions[local.primary_region].network
          subnetwork = var.regions[local.primary_region].subnet
        }
      }

      containers {
        image = local.image
        args  = ["queue", "reenqueue"]
        env {
          name  = "WORKQUEUE_BUCKET"
          value = google_storage_bucket.queue.name
        }
      }
    }
  }

  depends_on = [google_storage_bucket_iam_member.queue]
}
