# The queue's charts come from the shared section, which the reconciler dashboard uses too.
module "workqueue" {
  source = "../sections/workqueue"

  name            = var.name
  concurrent_work = var.concurrent_work
  max_retry       = var.max_retry
  scope           = var.scope
  y_offset        = 0
}

locals {
  dashboard = merge({
    displayName = "Workqueue: ${var.name}"
    mosaicLayout = {
      columns = 48
      tiles   = module.workqueue.tiles
    }
  }, length(var.labels) > 0 ? { labels = var.labels } : {})
}

resource "google_monitoring_dashboard" "this" {
  project        = var.project_id
  dashboard_json = jsonencode(local.dashboard)
}
