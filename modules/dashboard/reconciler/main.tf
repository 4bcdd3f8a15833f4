locals {
  service_name   = var.service_name != "" ? var.service_name : "${var.name}-rec"
  workqueue_name = var.workqueue_name != "" ? var.workqueue_name : "${var.name}-wq"

  period        = "60s"
  header_height = 4
  chart_width   = 24
  chart_height  = 16
  logs_height   = 20
}

# The reconciler's workqueue first, charted by the section the workqueue dashboard uses.
module "workqueue" {
  source = "../sections/workqueue"

  name            = local.workqueue_name
  concurrent_work = var.concurrent_work
  max_retry       = var.max_retry
  scope           = var.scope
  y_offset        = 0
}

locals {
  # The reconciler service's built-in Cloud Run metrics, which carry their own units.
  run_filters = {
    for metric in [
      "request_count",
      "request_latencies",
      "container/instance_count",
      "container/cpu/utilizations",
      "container/memory/utilizations",
      ] : metric => join(" ", [
        "resource.type=\"cloud_run_revision\"",
        "resource.label.\"service_name\"=\"${local.service_name}\"",
        "metric.type=\"run.googleapis.com/${metric}\"",
    ])
  }

  percentiles = {
    for metric in ["request_latencies", "container/cpu/utilizations", "container/memory/utilizations"] : metric => [
      for p in [50, 95, 99] : {
        metric   = metric
        aligner  = "ALIGN_DELTA"
        reducer  = "REDUCE_PERCENTILE_${p}"
        group_by = []
        legend   = "p${p}"
        plot     = "LINE"
      }
    ]
  }

  charts = [
    {
      title   = "Requests by response code class (per second)"
      y_label = "requests/s"
      series = [{
        metric   = "request_count"
        aligner  = "ALIGN_RATE"
        reducer  = "REDUCE_SUM"
        group_by = ["metric.label.\"response_code_class\""]
        legend   = "$${metric.labels.response_code_class}"
        plot     = "STACKED_BAR"
      }]
    },
    {
      title   = "Request latency"
      y_label = "latency"
      series  = local.percentiles.request_latencies
    },
    {
      title   = "Instances by state"
      y_label = "instances"
      series = [{
        metric   = "container/instance_count"
        aligner  = "ALIGN_MAX"
        reducer  = "REDUCE_SUM"
        group_by = ["metric.label.\"state\""]
        legend   = "$${metric.labels.state}"
        plot     = "STACKED_AREA"
      }]
    },
    {
      title   = "CPU utilization"
      y_label = "utilization"
      series  = local.percentiles["container/cpu/utilizations"]
    },
    {
      title   = "Memory utilization"
      y_label = "utilization"
      series  = local.percentiles["container/memory/utilizations"]
    },
  ]

  top = module.workqueue.height

  header = {
    yPos   = local.top
    width  = 48
    height = local.header_height
    widget = {
      title = "Reconciler ${local.service_name}"
      text = {
        format = "MARKDOWN"
        content = join(" ", [
          "Cloud Run's built-in metrics for the service `${local.service_name}`, which the",
          "workqueue `${local.workqueue_name}` above calls, and its logs at WARNING and above.",
        ])
      }
    }
  }

  chart_tiles = [
    for i, c in local.charts : merge({
      width  = local.chart_width
      height = local.chart_height
      yPos   = local.top + local.header_height + floor(i / 2) * local.chart_height
      widget = {
        title = c.title
        xyChart = {
          chartOptions = { mode = "COLOR" }
          yAxis        = { scale = "LINEAR", label = c.y_label }
          dataSets = [
            for s in c.series : {
              plotType           = s.plot
              targetAxis         = "Y1"
              minAlignmentPeriod = local.period
              legendTemplate     = s.legend
              timeSeriesQuery = {
                timeSeriesFilter = {
                  filter = local.run_filters[s.metric]
                  aggregation = merge({
                    alignmentPeriod    = local.period
                    perSeriesAligner   = s.aligner
                    crossSeriesReducer = s.reducer
                  }, length(s.group_by) > 0 ? { groupByFields = s.group_by } : {})
                }
              }
            }
          ]
        }
      }
      # The API leaves out a zero position, so only the right-hand column names one.
    }, i % 2 == 0 ? {} : { xPos = local.chart_width })
  ]

  logs = {
    yPos   = local.top + local.header_height + ceil(length(local.charts) / 2) * local.chart_height
    width  = 48
    height = local.logs_height
    widget = {
      title = "Reconciler logs (WARNING and above)"
      logsPanel = {
        filter = join(" ", [
          "resource.type=\"cloud_run_revision\"",
          "resource.labels.service_name=\"${local.service_name}\"",
          "severity>=WARNING",
        ])
      }
    }
  }

  dashboard = merge({
    displayName = "Reconciler: ${var.name}"
    mosaicLayout = {
      columns = 48
      tiles   = concat(module.workqueue.tiles, [local.header], local.chart_tiles, [local.logs])
    }
  }, length(var.labels) > 0 ? { labels = var.labels } : {})
}

resource "google_monitoring_dashboard" "this" {
  project        = var.project_id
  dashboard_json = jsonencode(local.dashboard)
}

# Optional: page while the reconciler answers with 5xx responses. A reconciler that fails a
# key over gRPC still answers HTTP 200, so this catches crashes, timeouts and overload.
resource "google_monitoring_alert_policy" "errors" {
  count = var.enable_error_alert ? 1 : 0

  project               = var.project_id
  display_name          = "Reconciler ${local.service_name}: 5xx responses"
  combiner              = "OR"
  notification_channels = var.notification_channels
  user_labels           = var.labels

  conditions {
    display_name = "5xx responses above ${var.error_alert_threshold}/s for 5 minutes"

    condition_threshold {
      filter = join(" AND ", [
        "resource.type=\"cloud_run_revision\"",
        "resource.label.\"service_name\"=\"${local.service_name}\"",
        "metric.type=\"run.googleapis.com/request_count\"",
        "metric.label.\"response_code_class\"=\"5xx\"",
      ])
      comparison      = "COMPARISON_GT"
      threshold_value = var.error_alert_threshold
      duration        = "300s"

      aggregations {
        alignment_period     = local.period
        per_series_aligner   = "ALIGN_RATE"
        cross_series_reducer = "REDUCE_SUM"
      }

      trigger {
        count = 1
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "The Cloud Run service `${local.service_name}` is answering with 5xx responses faster than ${var.error_alert_threshold} per second. See the \"Reconciler: ${var.name}\" dashboard and the service's logs."
  }
}
