// A reconciler of a repository's files: the regional reconciler with its workqueue; the push
// route for the gateway (files a push to the default branch changed, at priority 100); and
// the resync, a Cloud Run job on a schedule that enqueues every matching file at priority 0
// once per period.

locals {
  repository     = "${var.github_owner}/${var.github_repo}"
  workqueue_name = "${var.name}-wq"
  // The reference's schedule (Cloud Scheduler reads five fields).
  resync_schedule = var.resync_period_hours < 24 ? "0 */${var.resync_period_hours} * * *" : "0 0 */${floor(var.resync_period_hours / 24)} * *"
  resync_args = concat(
    ["resync", "--once", "--repository", local.repository, "--period-hours", tostring(var.resync_period_hours)],
    flatten([for pattern in var.path_patterns : ["--path-pattern", pattern]]),
  )
  resync_env = merge(
    { WORKQUEUE_SERVICE = module.reconciler.receiver.uris[var.primary-region] },
    var.github_api_url == null ? {} : { GITHUB_API_URL = var.github_api_url },
    // Without stored credentials, the resync reads GitHub with Octo STS tokens too.
    var.octo_sts_identity == null ? {} : { OCTO_IDENTITY = var.octo_sts_identity },
  )
  account_prefix = trimsuffix(substr(var.name, 0, 25), "-")
}

module "reconciler" {
  source = "../regional-reconciler"

  project_id                  = var.project_id
  name                        = var.name
  regions                     = var.regions
  primary-region              = var.primary-region
  image                       = var.image
  containers                  = var.containers
  args                        = var.args
  env                         = merge(var.env, var.octo_sts_identity == null ? {} : { OCTO_IDENTITY = var.octo_sts_identity })
  regional-env                = var.regional-env
  secret_env                  = var.secret_env
  service_account             = var.service_account
  workqueue_image             = local.workqueue_image
  scaling                     = var.scaling
  resources                   = var.resources
  request_timeout_seconds     = var.request_timeout_seconds
  egress                      = var.egress
  concurrent-work             = var.concurrent-work
  batch-size                  = var.batch-size
  max-retry                   = var.max-retry
  enable_dead_letter_alerting = var.enable_dead_letter_alerting
  multi_regional_location     = var.multi_regional_location
  scope                       = var.scope
  team                        = var.team
  product                     = var.product
  labels                      = var.labels
  notification_channels       = var.notification_channels
  deletion_protection         = var.deletion_protection
}

resource "google_service_account" "resync" {
  project      = var.project_id
  account_id   = "${local.account_prefix}-rsy"
  display_name = "${var.name}: the resync of ${local.repository}"
}

resource "google_cloud_run_v2_service_iam_member" "resync_enqueues" {
  project  = var.project_id
  location = var.primary-region
  name     = module.reconciler.receiver.name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.resync.email}"
}

resource "google_secret_manager_secret_iam_member" "resync_reads" {
  for_each = var.github_credentials

  project   = var.project_id
  secret_id = each.value.secret
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.resync.email}"
}

resource "google_cloud_run_v2_job" "resync" {
  project             = var.project_id
  name                = "${var.name}-resync"
  location            = var.primary-region
  deletion_protection = var.deletion_protection
  labels              = merge(var.labels, { team = var.team, product = var.product })

  template {
    task_count = 1
    template {
      service_account = google_service_account.resync.email
      max_retries     = 1
      // A sweep waits out GitHub's rate limits (up to an hour per call) rather than fail.
      timeout = "7200s"

      vpc_access {
        egress = "ALL_TRAFFIC"
        network_interfaces {
          network    = var.regions[var.primary-region].network
          subnetwork = var.regions[var.primary-region].subnet
        }
      }

      containers {
        image = local.workqueue_image
        args  = local.resync_args

        dynamic "env" {
          for_each = local.resync_env
          content {
            name  = env.key
            value = env.value
          }
        }

        dynamic "env" {
          for_each = var.github_credentials
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
    }
  }

  depends_on = [
    google_cloud_run_v2_service_iam_member.resync_enqueues,
    google_secret_manager_secret_iam_member.resync_reads,
  ]
}

// Cloud Scheduler starts the job through the Cloud Run API, as the resync's account.
resource "google_cloud_run_v2_job_iam_member" "scheduler_runs_resync" {
  project  = var.project_id
  location = var.primary-region
  name     = google_cloud_run_v2_job.resync.name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.resync.email}"
}

resource "google_cloud_scheduler_job" "resync" {
  project   = var.project_id
  region    = var.primary-region
  name      = "${var.name}-resync"
  schedule  = local.resync_schedule
  time_zone = "Etc/UTC"
  paused    = var.paused

  http_target {
    http_method = "POST"
    uri         = "https://run.googleapis.com/v2/projects/${var.project_id}/locations/${var.primary-region}/jobs/${google_cloud_run_v2_job.resync.name}:run"
    oauth_token {
      service_account_email = google_service_account.resync.email
      scope                 = "https://www.googleapis.com/auth/cloud-platform"
    }
  }

  depends_on = [google_cloud_run_v2_job_iam_member.scheduler_runs_resync]
}

// The reconcilers image of the workqueue, the resync and the push gateway: given, or built
// once here from this repository.
module "system_image" {
  source = "../image"

  image      = var.workqueue_image
  project_id = var.project_id
  name       = "${var.name}-resync"
  location   = var.primary-region
}

locals {
  workqueue_image = module.system_image.image
}

// With a broker: the repository's pushes from it, through a gateway of this module's own, into
// the workqueue (the same keys a webhook gateway's path route makes).
module "push_events" {
  source = "../cloudevents-workqueue"
  count  = var.broker != null && !var.paused ? 1 : 0

  project_id            = var.project_id
  name                  = "${substr(local.account_prefix, 0, 17)}-push"
  regions               = var.regions
  image                 = local.workqueue_image
  broker                = var.broker
  filters               = [{ type = "dev.chainguard.github.push", subject = local.repository }]
  repository            = local.repository
  path_patterns         = var.path_patterns
  priority              = 100
  workqueue             = { name = module.reconciler.receiver.name, uris = module.reconciler.receiver.uris }
  team                  = var.team
  product               = var.product
  labels                = var.labels
  github_credentials    = var.github_credentials
  github_api_url        = var.github_api_url
  notification_channels = var.notification_channels
  deletion_protection   = var.deletion_protection
}
