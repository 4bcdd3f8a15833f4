// A reconciler (your image, <name>-rec) in each region, and the workqueue (<name>-wq) that
// calls it with each key.

locals {
  labels         = merge(var.labels, { team = var.team, product = var.product })
  primary_region = coalesce(var.primary-region, keys(var.regions)[0])
}

module "reconciler" {
  source = "../regional-service"

  project_id              = var.project_id
  name                    = "${var.name}-rec"
  regions                 = var.regions
  service_account         = var.service_account
  image                   = local.image
  args                    = local.args
  env                     = local.env
  regional_env            = local.regional_env
  secret_env              = local.secret_env
  port                    = local.port
  port_name               = local.port_name
  ingress                 = "INGRESS_TRAFFIC_INTERNAL_ONLY"
  egress                  = var.egress
  scaling                 = var.scaling
  resources               = local.resources
  request_timeout_seconds = var.request_timeout_seconds
  deletion_protection     = var.deletion_protection
  labels                  = local.labels
  // The SDK serves gRPC only; the dashboards chart Cloud Run's own metrics for it.
  enable_metrics_sidecar = false
}

module "workqueue" {
  source = "../workqueue"

  project_id                  = var.project_id
  name                        = "${var.name}-wq"
  regions                     = var.regions
  primary-region              = var.primary-region
  image                       = var.workqueue_image
  concurrent-work             = var.concurrent-work
  batch-size                  = var.batch-size
  max-retry                   = var.max-retry
  enable_dead_letter_alerting = var.enable_dead_letter_alerting
  multi_regional_location     = var.multi_regional_location
  scope                       = var.scope
  reconciler-service          = { name = "${var.name}-rec" }
  team                        = var.team
  product                     = var.product
  labels                      = var.labels
  notification_channels       = var.notification_channels
  deletion_protection         = var.deletion_protection

  depends_on = [module.reconciler]
}
