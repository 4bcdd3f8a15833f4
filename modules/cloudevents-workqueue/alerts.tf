// Events that exhausted their deliveries wait in the dead-letter subscriptions for a person.

resource "google_monitoring_alert_policy" "dead_letters" {
  count = length(var.notification_channels) > 0 ? 1 : 0

  project               = var.project_id
  display_name          = "CloudEvents ${var.name}: dead-lettered events"
  combiner              = "OR"
  notification_channels = var.notification_channels
  severity              = "ERROR"
  user_labels           = local.labels

  conditions {
    display_name = "Undelivered dead letters of ${var.name}"
    condition_threshold {
      filter          = "resource.type = \"pubsub_subscription\" AND metric.type = \"pubsub.googleapis.com/subscription/num_undelivered_messages\" AND resource.labels.subscription_id = starts_with(\"${var.name}-dlq-\")"
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_MAX"
        cross_series_reducer = "REDUCE_MAX"
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "Events for `${var.name}` failed ${var.max_delivery_attempts} deliveries to its gateway. Read them with `gcloud pubsub subscriptions pull ${var.name}-dlq-REGION`."
  }
}
