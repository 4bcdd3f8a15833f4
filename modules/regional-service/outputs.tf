output "names" {
  description = "The service's name in each region (region => name)."
  value       = { for region, service in google_cloud_run_v2_service.this : region => service.name }
}

output "uris" {
  description = "The service's URI in each region (region => https://...)."
  value       = { for region, service in google_cloud_run_v2_service.this : region => service.uri }
}
