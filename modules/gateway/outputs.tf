output "public-urls" {
  description = "GitHub's webhook URL in each region (region => https://.../webhook)."
  value       = { for region, uri in module.gateway.uris : region => "${uri}/webhook" }
}

output "service-account" {
  description = "The email of the service account the gateway runs as."
  value       = google_service_account.gateway.email
}

output "webhook-secret" {
  description = "The Secret Manager secret holding the webhook secret (add a version with GitHub's secret)."
  value       = google_secret_manager_secret.webhook.id
}

output "initial-webhook-secret" {
  description = "The webhook secret generated at creation, for GitHub's webhook settings (until you add a version of your own)."
  value       = random_password.webhook.result
  sensitive   = true
}
