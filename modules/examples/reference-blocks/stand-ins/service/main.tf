// Stands in for a user's own Cloud Run service module: only its `name` output.

variable "name" {
  description = "The service's name."
  type        = string
}

output "name" {
  description = "The service's name."
  value       = var.name
}
