// Broker events into a workqueue: in each region, one push subscription per filter on the
// broker's topic (exact-match filters, ORed by being separate subscriptions), delivering each
// event in CloudEvents binary mode to a gateway's /events, whose one route makes the key of
// extension_key at priority, or, with repository, a key per file a push changed that matches
// path_patterns. Events that keep failing go to a dead-letter topic.

locals {
  labels   = merge(var.labels, { team = var.team, product = var.product })
  receiver = var.workqueue.name
  # The gateway's one route: the extension's value, or the paths of the repository's pushes.
  route_args = var.repository == null ? ["--extension-key", var.extension_key] : concat(
    ["--repository", var.repository],
    flatten([for pattern in var.path_patterns : ["--path-pattern", pattern]]),
  )
  filter_set = length(var.filters) > 0 ? var.filters : [{}]
  subscriptions = merge([
    for region in keys(var.regions) : {
      for index, filter in local.filter_set : "${region}-${index}" => {
        region = region
        filter = join(" AND ", concat(
          [for attribute, value in filter : "attributes.ce-${attribute} = ${jsonencode(value)}"],
          var.extension_key == null ? [] : ["attributes:ce-${var.extension_key}"],
        ))
      }
    }
  ]...)
}

data "google_project" "this" {
  project_id = var.project_id
}

resource "google_service_account" "subscriber" {
  project      = var.project_id
  account_id   = "${var.name}-sub"
  display_name = "${var.name}: broker subscriptions and their gateway"
}

data "google_cloud_run_v2_service" "receiver" {
  for_each = var.workqueue.uris == null ? var.regions : {}

  project  = var.project_id
  name     = local.receiver
  location = each.key
}

module "gateway" {
  source = "../regional-service"

  project_id      = var.project_id
  name            = var.name
  regions         = var.regions
  service_account = google_service_account.subscriber.email
  image           = local.image
  args            = concat(["gateway"], local.route_args, ["--priority", tostring(var.priority)])
  secret_env      = var.github_credentials
  env             = var.github_api_url == null ? {} : { GITHUB_API_URL = var.github_api_url }
  regional_env = {
    WORKQUEUE_SERVICE = var.workqueue.uris != null ? var.workqueue.uris : { for region, service in data.google_cloud_run_v2_service.receiver : region => service.uri }
  }
  port_name           = "http1"
  ingress             = "INGRESS_TRAFFIC_INTERNAL_ONLY"
  deletion_protection = var.deletion_protection
  labels              = local.labels
}

// The gateway reads its GitHub credentials.
resource "google_secret_manager_secret_iam_member" "gateway_reads" {
  for_each = var.github_credentials

  project   = var.project_id
  secret_id = each.value.secret
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.subscriber.email}"
}

// One route: an extension's value, or a repository's pushes.
resource "terraform_data" "route" {
  lifecycle {
    precondition {
      condition     = (var.extension_key == null) != (var.repository == null) && (var.repository == null || length(var.path_patterns) > 0)
      error_message = "Give extension_key, or repository with path_patterns, not both."
    }
  }
}

resource "google_cloud_run_v2_service_iam_member" "gateway_enqueues" {
  for_each = var.regions

  project  = var.project_id
  location = each.key
  name     = local.receiver
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.subscriber.email}"
}

resource "google_cloud_run_v2_service_iam_member" "pubsub_delivers" {
  for_each = var.regions

  project  = var.project_id
  location = each.key
  name     = module.gateway.names[each.key]
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.subscriber.email}"
}

resource "google_pubsub_topic" "dead_letter" {
  #checkov:skip=CKV_GCP_83:Events that failed delivery, from a broker in this project; Google-managed encryption as for the broker's own topic.
  for_each = var.regions

  project = var.project_id
  name    = "${var.name}-dlq-${each.key}"
  labels  = local.labels

  message_storage_policy {
    allowed_persistence_regions = [each.key]
  }
}

locals {
  pubsub_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  for_each = var.regions

  project = var.project_id
  topic   = google_pubsub_topic.dead_letter[each.key].id
  role    = "roles/pubsub.publisher"
  member  = local.pubsub_agent
}

resource "google_pubsub_subscription" "events" {
  for_each = local.subscriptions

  project              = var.project_id
  name                 = "${var.name}-${each.key}"
  topic                = var.broker[each.value.region]
  filter               = each.value.filter
  ack_deadline_seconds = var.ack_deadline_seconds
  labels               = local.labels

  push_config {
    push_endpoint = "${module.gateway.uris[each.value.region]}/events"
    oidc_token {
      service_account_email = google_service_account.subscriber.email
      audience              = module.gateway.uris[each.value.region]
    }
    // The message's attributes become headers: the event arrives in binary mode.
    no_wrapper {
      write_metadata = true
    }
  }

  retry_policy {
    minimum_backoff = "${var.minimum_backoff}s"
    maximum_backoff = "${var.maximum_backoff}s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter[each.value.region].id
    max_delivery_attempts = var.max_delivery_attempts
  }

  expiration_policy {
    ttl = ""
  }

  depends_on = [
    google_cloud_run_v2_service_iam_member.pubsub_delivers,
    google_pubsub_topic_iam_member.dead_letter_publisher,
  ]
}

// Pub/Sub signs its pushes as the subscriber account (needed by projects made before 2021).
resource "google_service_account_iam_member" "pubsub_signs_as_subscriber" {
  service_account_id = google_service_account.subscriber.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_agent
}

// Keeps dead letters for a week (a topic without a subscription drops what it is sent):
// inspect them with `gcloud pubsub subscriptions pull <name>-dlq-<region>`.
resource "google_pubsub_subscription" "dead_letter" {
  for_each = var.regions

  project                    = var.project_id
  name                       = "${var.name}-dlq-${each.key}"
  topic                      = google_pubsub_topic.dead_letter[each.key].id
  message_retention_duration = "604800s"
  labels                     = local.labels

  expiration_policy {
    ttl = ""
  }
}

// Pub/Sub moves undeliverable events to the dead-letter topic as its own agent.
resource "google_pubsub_subscription_iam_member" "dead_letter_subscriber" {
  for_each = local.subscriptions

  project      = var.project_id
  subscription = google_pubsub_subscription.events[each.key].name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_agent
}
