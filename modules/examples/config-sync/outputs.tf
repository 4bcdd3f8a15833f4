output "webhook_urls" {
  description = "Give GitHub this URL (content type application/json) and the secret stored in the webhook secret."
  value       = module.gateway.public-urls
}

output "webhook_secret" {
  description = "The Secret Manager secret to add GitHub's webhook secret to."
  value       = module.gateway.webhook-secret
}

output "resync_schedule" {
  description = "When the resync runs (UTC)."
  value       = module.configs.resync_schedule
}
