output "json" {
  description = "The dashboard's definition, as the JSON sent to Cloud Monitoring."
  value       = jsonencode(local.dashboard)
}

output "id" {
  description = "The dashboard's ID, `projects/PROJECT/dashboards/DASHBOARD`."
  value       = google_monitoring_dashboard.this.id
}

output "dashboard_json" {
  description = "The same as json, under the reference's name."
  value       = jsonencode(local.dashboard)
}
