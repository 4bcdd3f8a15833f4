// What wakes the dispatchers: every change to the bucket, pushed through Pub/Sub (the
// dispatcher also reads the changed object's name from it), and a tick every minute.

data "google_storage_project_service_account" "gcs" {
  project = var.project_id
}

resource "google_pubsub_topic" "changes" {
  #checkov:skip=CKV_GCP_83:The messages are object names and generations of a bucket in this project, not customer data; Google-managed encryption suffices.
  for_each = var.regions

  project = var.project_id
  name    = "${var.name}-${each.key}"
  labels  = local.labels

  message_storage_policy {
    allowed_persistence_regions = [each.key]
  }
}

resource "google_pubsub_topic_iam_member" "gcs_publishes" {
  for_each = var.regions

  project = var.project_id
  topic   = google_pubsub_topic.changes[each.key].id
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${data.google_storage_project_service_account.gcs.email_address}"
}

resource "google_storage_notification" "changes" {
  for_each = var.regions

  bucket         = local.bucket_of[each.key]
  payload_format = "JSON_API_V1"
  topic          = google_pubsub_topic.changes[each.key].id

  depends_on = [google_pubsub_topic_iam_member.gcs_publishes]
}

// Pub/Sub signs its pushes as the trigger account (needed by projects made before 2021).
resource "google_service_account_iam_member" "pubsub_signs_as_trigger" {
  service_account_id = google_service_account.trigger.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

resource "google_pubsub_subscription" "changes" {
  for_each = var.regions

  project              = var.project_id
  name                 = "${var.name}-${each.key}"
  topic                = google_pubsub_topic.changes[each.key].id
  ack_deadline_seconds = 60
  labels               = local.labels

  push_config {
    push_endpoint = "${module.dispatcher.uris[each.key]}/"
    oidc_token {
      service_account_email = google_service_account.trigger.email
      audience              = module.dispatcher.uris[each.key]
    }
  }

  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  expiration_policy {
    ttl = ""
  }

  depends_on = [google_cloud_run_v2_service_iam_member.trigger_calls_dispatcher]
}

resource "google_cloud_scheduler_job" "tick" {
  for_each = var.regions

  project          = var.project_id
  region           = each.key
  name             = "${var.name}-${each.key}"
  schedule         = "* * * * *"
  time_zone        = "Etc/UTC"
  attempt_deadline = "30s"

  http_target {
    http_method = "POST"
    uri         = "${module.dispatcher.uris[each.key]}/"
    oidc_token {
      service_account_email = google_service_account.trigger.email
      audience              = module.dispatcher.uris[each.key]
    }
  }

  depends_on = [google_cloud_run_v2_service_iam_member.trigger_calls_dispatcher]
}
