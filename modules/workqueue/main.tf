// A workqueue on Cloud Run: one multi-regional bucket holds the queue (scope "global"), or
// one bucket per region (scope "regional"); in each region a receiver (gRPC, where keys are
// enqueued) and a dispatcher (which calls the reconciler), woken by its bucket's notifications
// through Pub/Sub and by a Cloud Scheduler tick every minute; a job that re-enqueues dead
// letters (per bucket); an alert on dead letters.

locals {
  primary_region = coalesce(var.primary-region, keys(var.regions)[0])
  # A global queue's limit is shared by the regions' dispatchers; a regional one is each's.
  batch_size = coalesce(var.batch-size, var.scope == "regional" ? var.concurrent-work : ceil(var.concurrent-work / length(var.regions)))
  labels     = merge(var.labels, { team = var.team, product = var.product })
  # The buckets: "global" => the multi-region, or region => that region. Each region's
  # processes use the bucket of their region, or the one global bucket.
  regional = var.scope == "regional"
  buckets  = local.regional ? { for region in keys(var.regions) : region => upper(region) } : { global = var.multi_regional_location }
  bucket_of = {
    for region in keys(var.regions) : region => google_storage_bucket.queue[local.regional ? region : "global"].name
  }
  // Service account ids are at most 30 characters: a prefix of the name, the role, and the
  // random suffix.
  account_prefix = trimsuffix(substr(var.name, 0, 19), "-")
}

resource "random_string" "suffix" {
  length  = 6
  special = false
  upper   = false
}

data "google_project" "this" {
  project_id = var.project_id
}

resource "google_storage_bucket" "queue" {
  #checkov:skip=CKV_GCP_78:Queue objects churn (one per key, rewritten at each step): versions would keep every past state and bill for it.
  #checkov:skip=CKV_GCP_62:Access logs would record every queue operation, several per key, costing more than the queue itself; Cloud Audit Logs cover administrative access.
  for_each = local.buckets

  project                     = var.project_id
  name                        = each.key == "global" ? "${var.name}-${random_string.suffix.result}" : "${substr(var.name, 0, 30)}-${each.key}-${random_string.suffix.result}"
  location                    = each.value
  force_destroy               = !var.deletion_protection
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  labels                      = local.labels
}

resource "google_service_account" "receiver" {
  project      = var.project_id
  account_id   = "${local.account_prefix}-rcv-${random_string.suffix.result}"
  display_name = "${var.name} workqueue receiver"
}

resource "google_service_account" "dispatcher" {
  project      = var.project_id
  account_id   = "${local.account_prefix}-dsp-${random_string.suffix.result}"
  display_name = "${var.name} workqueue dispatcher"
}

resource "google_service_account" "trigger" {
  project      = var.project_id
  account_id   = "${local.account_prefix}-trg-${random_string.suffix.result}"
  display_name = "${var.name} workqueue triggers (Pub/Sub push, Cloud Scheduler)"
}

resource "google_service_account" "reenqueue" {
  project      = var.project_id
  account_id   = "${local.account_prefix}-req-${random_string.suffix.result}"
  display_name = "${var.name} workqueue dead-letter re-enqueue"
}

// Before scope: one bucket, and its grants, not keyed.
moved {
  from = google_storage_bucket.queue
  to   = google_storage_bucket.queue["global"]
}

moved {
  from = google_storage_bucket_iam_member.queue["receiver"]
  to   = google_storage_bucket_iam_member.queue["global-receiver"]
}

moved {
  from = google_storage_bucket_iam_member.queue["dispatcher"]
  to   = google_storage_bucket_iam_member.queue["global-dispatcher"]
}

moved {
  from = google_storage_bucket_iam_member.queue["reenqueue"]
  to   = google_storage_bucket_iam_member.queue["global-reenqueue"]
}

// The queue's processes read and write objects of its buckets only.
resource "google_storage_bucket_iam_member" "queue" {
  for_each = merge([
    for bucket in keys(local.buckets) : {
      for role, email in {
        receiver   = google_service_account.receiver.email
        dispatcher = google_service_account.dispatcher.email
        reenqueue  = google_service_account.reenqueue.email
      } : "${bucket}-${role}" => { bucket = bucket, email = email }
    }
  ]...)
  bucket = google_storage_bucket.queue[each.value.bucket].name
  role   = "roles/storage.objectAdmin"
  member = "serviceAccount:${each.value.email}"
}

module "receiver" {
  source = "../regional-service"

  project_id          = var.project_id
  name                = "${var.name}-rcv"
  regions             = var.regions
  service_account     = google_service_account.receiver.email
  image               = local.image
  args                = ["receiver"]
  regional_env        = { WORKQUEUE_BUCKET = local.bucket_of }
  ingress             = var.receiver_ingress
  deletion_protection = var.deletion_protection
  labels              = local.labels
  resources           = { memory = "1Gi" }

  depends_on = [google_storage_bucket_iam_member.queue]
}

data "google_cloud_run_v2_service" "reconciler" {
  for_each = var.regions

  project  = var.project_id
  name     = var.reconciler-service.name
  location = each.key
}

module "dispatcher" {
  source = "../regional-service"

  project_id      = var.project_id
  name            = "${var.name}-dsp"
  regions         = var.regions
  service_account = google_service_account.dispatcher.email
  image           = local.image
  args            = ["dispatcher"]
  env = {
    WORKQUEUE_CONCURRENCY = tostring(var.concurrent-work)
    WORKQUEUE_BATCH_SIZE  = tostring(local.batch_size)
    WORKQUEUE_MAX_RETRY   = tostring(var.max-retry)
  }
  regional_env = {
    WORKQUEUE_BUCKET = local.bucket_of
    WORKQUEUE_TARGET = { for region, service in data.google_cloud_run_v2_service.reconciler : region => service.uri }
  }
  // Reconciler calls and lease renewals go on between the requests that wake it.
  resources               = { memory = "1Gi", cpu_idle = false }
  request_timeout_seconds = 3600
  deletion_protection     = var.deletion_protection
  labels                  = local.labels

  depends_on = [google_storage_bucket_iam_member.queue]
}

resource "google_cloud_run_v2_service_iam_member" "dispatcher_calls_reconciler" {
  for_each = var.regions

  project  = var.project_id
  location = each.key
  name     = var.reconciler-service.name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.dispatcher.email}"
}

resource "google_cloud_run_v2_service_iam_member" "trigger_calls_dispatcher" {
  for_each = var.regions

  project  = var.project_id
  location = each.key
  name     = module.dispatcher.names[each.key]
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.trigger.email}"
}
