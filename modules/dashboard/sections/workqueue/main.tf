locals {
  period        = "60s"
  header_height = 4
  chart_width   = 24
  chart_height  = 16

  # The workqueue's metrics, as Managed Service for Prometheus names them: the Prometheus
  # name and its kind. Both services of the queue export every series.
  kinds = {
    workqueue_in_progress_keys           = "gauge"
    workqueue_queued_keys                = "gauge"
    workqueue_notbefore_keys             = "gauge"
    workqueue_max_attempts               = "gauge"
    workqueue_dead_lettered_keys         = "gauge"
    workqueue_process_latency_seconds    = "histogram"
    workqueue_wait_latency_seconds       = "histogram"
    workqueue_time_to_completion_seconds = "histogram"
    workqueue_attempts_at_completion     = "histogram"
    workqueue_lease_age_seconds          = "histogram"
    workqueue_enumerate_latency_seconds  = "histogram"
    workqueue_added_keys_total           = "counter"
    workqueue_deduped_keys_total         = "counter"
    workqueue_expired_leases_total       = "counter"
    workqueue_dispatch_triggers_total    = "counter"
  }

  filters = {
    for metric, kind in local.kinds : metric => join(" ", [
      "resource.type=\"prometheus_target\"",
      "metric.type=\"prometheus.googleapis.com/${metric}/${kind}\"",
      "metric.label.\"service_name\"=monitoring.regex.full_match(\"${var.name}-(rcv|dsp)\")",
    ])
  }

  # With a queue per region, the queue's own figures are per region: a line each.
  regional       = var.scope == "regional"
  by_region      = local.regional ? ["resource.label.\"location\""] : []
  region_legend  = local.regional ? " $${resource.labels.location}" : ""
  promql_regions = local.regional ? ", location" : ""

  # A series spec: which metric, how to align and reduce it, and how to draw it.
  # The gauges are set from a dispatch pass's view of the whole queue, so every
  # dispatcher instance of a queue reports the same figure (and receivers report 0): take
  # the max (per region, when each region has its own queue).
  gauge = {
    for metric, kind in local.kinds : metric => {
      metric   = metric
      aligner  = "ALIGN_MEAN"
      reducer  = "REDUCE_MAX"
      group_by = local.by_region
      legend   = local.region_legend
      plot     = "LINE"
    } if kind == "gauge"
  }

  # Counters are summed over every instance of both services, as a per-second rate.
  rate = {
    for metric, kind in local.kinds : metric => {
      metric   = metric
      aligner  = "ALIGN_RATE"
      reducer  = "REDUCE_SUM"
      group_by = []
      legend   = ""
      plot     = "LINE"
    } if kind == "counter"
  }

  # Histograms are charted as percentiles of the distribution merged over all series.
  percentiles = {
    for metric, kind in local.kinds : metric => [
      for p in [50, 95, 99] : {
        metric   = metric
        aligner  = "ALIGN_DELTA"
        reducer  = "REDUCE_PERCENTILE_${p}"
        group_by = []
        legend   = "p${p}"
        plot     = "LINE"
      }
    ] if kind == "histogram"
  }

  max_retry_lines = var.max_retry > 0 ? [{
    label      = "max_retry (${var.max_retry})"
    value      = var.max_retry
    color      = "RED"
    direction  = "ABOVE"
    targetAxis = "Y1"
  }] : []

  charts = concat([
    {
      title   = "Queue depth (queued keys; not-before keys are a subset)"
      y_label = "keys"
      unit    = "1"
      series = [
        merge(local.gauge.workqueue_queued_keys, { legend = "queued (due and not yet due)${local.region_legend}" }),
        merge(local.gauge.workqueue_notbefore_keys, { legend = "not before (not yet due)${local.region_legend}" }),
      ]
      thresholds = []
    },
    {
      title   = "Keys in progress"
      y_label = "keys"
      unit    = "1"
      series  = [merge(local.gauge.workqueue_in_progress_keys, { legend = "in progress${local.region_legend}" })]
      thresholds = [{
        label      = "concurrent_work (${var.concurrent_work})"
        value      = var.concurrent_work
        color      = "YELLOW"
        direction  = "ABOVE"
        targetAxis = "Y1"
      }]
    },
    {
      title   = "Keys added and deduplicated (per second)"
      y_label = "keys/s"
      unit    = "1/s"
      series = [
        merge(local.rate.workqueue_added_keys_total, { legend = "added" }),
        merge(local.rate.workqueue_deduped_keys_total, { legend = "deduplicated" }),
      ]
      thresholds = []
    },
    {
      title      = "Process latency"
      y_label    = "seconds"
      unit       = "s"
      series     = local.percentiles.workqueue_process_latency_seconds
      thresholds = []
    },
    {
      title      = "Wait latency (due to started)"
      y_label    = "seconds"
      unit       = "s"
      series     = local.percentiles.workqueue_wait_latency_seconds
      thresholds = []
    },
    {
      title   = "Time to completion by status"
      y_label = "seconds"
      unit    = "s"
      series = [
        for s in slice(local.percentiles.workqueue_time_to_completion_seconds, 0, 2) : merge(s, {
          group_by = ["metric.label.\"status\""]
          legend   = "${s.legend} $${metric.labels.status}"
        })
      ]
      thresholds = []
    },
    {
      # A histogram's count as a rate, which only PromQL reads from Managed Prometheus.
      title   = "Completions by status (per second)"
      y_label = "keys/s"
      unit    = "1/s"
      series = [{
        promql = "sum by (status${local.promql_regions}) (rate(workqueue_time_to_completion_seconds_count{service_name=\"${var.name}-dsp\"}[5m]))"
        legend = "$${metric.labels.status}${local.promql_regions == "" ? "" : " $${metric.labels.location}"}"
        plot   = "STACKED_BAR"
      }]
      thresholds = []
    },
    {
      title      = "Attempts at completion"
      y_label    = "attempts"
      unit       = "1"
      series     = slice(local.percentiles.workqueue_attempts_at_completion, 0, 2)
      thresholds = local.max_retry_lines
    },
    {
      title      = "Max attempts among queued keys"
      y_label    = "attempts"
      unit       = "1"
      series     = [merge(local.gauge.workqueue_max_attempts, { legend = "max attempts${local.region_legend}" })]
      thresholds = local.max_retry_lines
    },
    ], var.max_retry > 0 ? [{
      title      = "Dead-lettered keys"
      y_label    = "keys"
      unit       = "1"
      series     = [merge(local.gauge.workqueue_dead_lettered_keys, { legend = "dead-lettered${local.region_legend}" })]
      thresholds = []
    }] : [], [
    {
      title      = "Lease age at renewal"
      y_label    = "seconds"
      unit       = "s"
      series     = local.percentiles.workqueue_lease_age_seconds
      thresholds = []
    },
    {
      title      = "Expired leases (per second)"
      y_label    = "leases/s"
      unit       = "1/s"
      series     = [merge(local.rate.workqueue_expired_leases_total, { legend = "expired" })]
      thresholds = []
    },
    {
      title      = "Enumerate latency (listing the queue)"
      y_label    = "seconds"
      unit       = "s"
      series     = local.percentiles.workqueue_enumerate_latency_seconds
      thresholds = []
    },
    {
      title   = "Dispatch triggers by result (per second)"
      y_label = "triggers/s"
      unit    = "1/s"
      series = [merge(local.rate.workqueue_dispatch_triggers_total, {
        group_by = ["metric.label.\"result\""]
        legend   = "$${metric.labels.result}"
        plot     = "STACKED_BAR"
      })]
      thresholds = []
    },
  ])

  header = merge({
    width  = 48
    height = local.header_height
    widget = {
      title = "Workqueue ${var.name}"
      text = {
        format = "MARKDOWN"
        content = join(" ", [
          "Receiver `${var.name}-rcv` and dispatcher `${var.name}-dsp`, from the `workqueue_*`",
          "series they export through Managed Service for Prometheus. Concurrency ${var.concurrent_work};",
          var.max_retry > 0 ? "keys are dead-lettered after ${var.max_retry} attempts." : "retries are unlimited.",
        ])
      }
    }
  }, var.y_offset == 0 ? {} : { yPos = var.y_offset })

  chart_tiles = [
    for i, c in local.charts : merge({
      width  = local.chart_width
      height = local.chart_height
      yPos   = var.y_offset + local.header_height + floor(i / 2) * local.chart_height
      widget = {
        title = c.title
        xyChart = merge({
          chartOptions = { mode = "COLOR" }
          yAxis        = { scale = "LINEAR", label = c.y_label }
          dataSets = [
            for s in c.series : {
              plotType           = s.plot
              targetAxis         = "Y1"
              minAlignmentPeriod = local.period
              legendTemplate     = s.legend
              # A series is a PromQL query or a filter with its aggregation; the two
              # shapes go through JSON, as Terraform cannot choose between object types.
              timeSeriesQuery = jsondecode(can(s.promql) ? jsonencode({
                unitOverride    = c.unit
                prometheusQuery = try(s.promql, "")
                }) : jsonencode({
                unitOverride = c.unit
                timeSeriesFilter = {
                  filter = try(local.filters[s.metric], "")
                  aggregation = merge({
                    alignmentPeriod    = local.period
                    perSeriesAligner   = try(s.aligner, "")
                    crossSeriesReducer = try(s.reducer, "")
                  }, length(try(s.group_by, [])) > 0 ? { groupByFields = s.group_by } : {})
                }
              }))
            }
          ]
        }, length(c.thresholds) > 0 ? { thresholds = c.thresholds } : {})
      }
      # The API leaves out a zero position, so only the right-hand column names one.
    }, i % 2 == 0 ? {} : { xPos = local.chart_width })
  ]

  tiles  = concat([local.header], local.chart_tiles)
  height = local.header_height + ceil(length(local.charts) / 2) * local.chart_height
}
