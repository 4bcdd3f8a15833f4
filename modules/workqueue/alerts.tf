// Keys that failed max-retry times wait in the dead-letter part of their object for a person
// (and are listed under dead-letter/ in the bucket).

resource "google_monitoring_alert_policy" "dead_letters" {
  count = var.max-retry > 0 && var.enable_dead_letter_alerting ? 1 : 0

  project               = var.project_id
  display_name          = "Workqueue ${var.name}: dead-lettered keys"
  combiner              = "OR"
  notification_channels = var.notification_channels
  severity              = "ERROR"
  user_labels           = local.labels

  conditions {
    display_name = "Dead-lettered keys in ${var.name}"
    // PromQL rather than a metric filter: a filter naming a metric not yet ingested (none
    // is before the first scrape) is refused when the policy is created.
    condition_prometheus_query_language {
      query               = "max(workqueue_dead_lettered_keys{service_name=\"${var.name}-dsp\"}) > 0"
      duration            = "0s"
      evaluation_interval = "60s"
    }
  }

  alert_strategy {
    auto_close = "3600s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = "Keys of workqueue `${var.name}` failed ${var.max-retry} times and were dead-lettered. List them with `gsutil ls gs://BUCKET/dead-letter/` or `reconcilers queue dead-letters --storage gs://BUCKET` (BUCKET: ${join(", ", [for b in google_storage_bucket.queue : b.name])}); after a fix, run the `${var.name}-reenqueue` job (of the bucket's region) to enqueue them again."
  }
}
