// One repository's config files kept in sync: GitHub's webhooks reach the gateway; pushes to
// the default branch enqueue the files they changed (priority 100), a daily resync enqueues
// every config file (priority 0, spread over the day); the reconciler makes the world match
// each file; dashboards chart the workqueue and the reconciler.

locals {
  regions = {
    (var.region) = {
      network = var.network
      subnet  = var.subnet
    }
  }
  github_credentials = {
    GITHUB_TOKEN = { secret = var.github_token_secret }
  }
}

resource "google_service_account" "configs" {
  account_id   = "configs-reconciler"
  display_name = "The config files' reconciler"
}

module "configs" {
  source = "../../github-path-reconciler"

  project_id      = var.project_id
  name            = "configs"
  regions         = local.regions
  primary-region  = var.region
  image           = var.reconciler_image
  service_account = google_service_account.configs.email
  workqueue_image = var.image
  team            = "platform"

  github_owner        = var.github_owner
  github_repo         = var.github_repo
  path_patterns       = ["config/(.+)\\.yaml"]
  resync_period_hours = 24
  github_credentials  = local.github_credentials

  concurrent-work       = 10
  max-retry             = 20
  notification_channels = var.notification_channels
}

module "gateway" {
  source = "../../gateway"

  project_id         = var.project_id
  name               = "github"
  regions            = local.regions
  image              = var.image
  team               = "platform"
  routes             = module.configs.routes
  github_credentials = local.github_credentials
}

module "workqueue_dashboard" {
  source = "../../dashboard/workqueue"

  project_id      = var.project_id
  name            = "configs-wq"
  concurrent_work = 10
  max_retry       = 20
}

module "reconciler_dashboard" {
  source = "../../dashboard/reconciler"

  project_id      = var.project_id
  name            = "configs"
  concurrent_work = 10
  max_retry       = 20
}
