// Stands in for the reference's cloudevent-broker module: only its `broker` output, the
// broker's Pub/Sub topic in each region.

variable "project_id" {
  description = "The broker's project."
  type        = string
}

variable "regions" {
  description = "The regions the broker runs in."
  type        = map(any)
}

output "broker" {
  description = "The broker's topic by region."
  value       = { for region in keys(var.regions) : region => "projects/${var.project_id}/topics/broker-${region}" }
}
