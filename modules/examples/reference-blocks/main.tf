// The five module blocks of the Go reference's README (terraform-infra-reconcilers), as its
// users have them, with only `source` changed to this repository's modules (the reference's
// regional-go-reconciler is regional-reconciler here). The offline checks load them, check every
// argument against the module's variables and types, and check their references: a block that
// stops fitting fails CI. `module.cloudevent-broker` and `module.my-service` are the user's own
// modules in the reference's README; small stand-ins here (stand-ins/) give the outputs the
// blocks read.

module "my-reconciler" { # the reference's regional-go-reconciler
  source = "../../regional-reconciler"

  project_id = var.project_id
  name       = "my-reconciler"
  regions    = var.regions
  team       = "platform"

  service_account = google_service_account.reconciler.email

  containers = {
    "reconciler" = {
      source = {
        working_dir = path.module
        importpath  = "./cmd/reconciler" # Go; a Rust source names a crate dir and binary
      }
      ports = [{ container_port = 8080 }]
    }
  }

  concurrent-work = 20
  max-retry       = 100

  notification_channels = var.notification_channels
}

module "config-sync" { # github-path-reconciler
  source = "../../github-path-reconciler"

  project_id     = var.project_id
  name           = "config-sync"
  regions        = var.regions
  primary-region = "us-central1"
  team           = "platform"

  github_owner      = "my-org"
  github_repo       = "config-repo"
  octo_sts_identity = "config-sync"

  path_patterns       = ["(configs/.+\\.yaml)"]
  resync_period_hours = 6
  broker              = var.github_events_broker

  service_account = google_service_account.reconciler.email
  containers = {
    "reconciler" = {
      source = {
        working_dir = path.module
        importpath  = "./cmd/reconciler"
      }
      ports = [{ container_port = 8080 }]
    }
  }
  notification_channels = var.notification_channels
}

module "pr-processor" { # cloudevents-workqueue
  source = "../../cloudevents-workqueue"

  project_id = var.project_id
  name       = "pr-processor"
  regions    = var.regions
  team       = "platform"

  broker = module.cloudevent-broker.broker
  filters = [
    { "type" = "dev.chainguard.github.pull_request" },
    { "type" = "dev.chainguard.github.pull_request_review" },
  ]
  extension_key = "pullrequesturl"
  workqueue = {
    name = module.workqueue.receiver.name
  }

  notification_channels = var.notification_channels
}

module "workqueue" { # workqueue
  source = "../../workqueue"

  project_id = var.project_id
  name       = "my-workqueue"
  regions    = var.regions
  team       = "platform"

  concurrent-work = 10
  max-retry       = 5
  scope           = "global"

  reconciler-service = {
    name = module.my-service.name
  }

  notification_channels = var.notification_channels
}

module "workqueue-dashboard" { # dashboard/workqueue
  source = "../../dashboard/workqueue"

  name            = "my-reconciler"
  max_retry       = 100
  concurrent_work = 20
  scope           = "global"
}

// What the blocks refer to, as the reference's README assumes the user has it.
resource "google_service_account" "reconciler" {
  project      = var.project_id
  account_id   = "my-reconciler"
  display_name = "The reconciler"
}

module "cloudevent-broker" {
  source = "./stand-ins/cloudevent-broker"

  project_id = var.project_id
  regions    = var.regions
}

module "my-service" {
  source = "./stand-ins/service"

  name = "my-service"
}
