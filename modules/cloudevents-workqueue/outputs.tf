output "subscriber" {
  description = "The gateway services taking the events (names and URIs by region) and the service account that delivers to them."
  value = {
    names           = module.gateway.names
    uris            = module.gateway.uris
    service_account = google_service_account.subscriber.email
  }
}

output "subscriptions" {
  description = "The broker subscriptions, one per region and filter, with their filters."
  value       = { for key, subscription in google_pubsub_subscription.events : subscription.name => subscription.filter }
}
