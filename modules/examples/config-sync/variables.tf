variable "project_id" {
  description = "The project to deploy into."
  type        = string
}

variable "region" {
  description = "The one region of this example."
  type        = string
  default     = "us-central1"
}

variable "network" {
  description = "The VPC network the services' egress uses."
  type        = string
}

variable "subnet" {
  description = "The subnet of that network in the region."
  type        = string
}

variable "image" {
  description = "The reconcilers image (built from the repository's Dockerfile), by digest."
  type        = string
}

variable "reconciler_image" {
  description = "Your reconciler of config files (built with the reconcilers SDK), by digest."
  type        = string
}

variable "github_owner" {
  description = "The owner of the repository whose config files are reconciled."
  type        = string
}

variable "github_repo" {
  description = "The repository whose config files are reconciled."
  type        = string
}

variable "github_token_secret" {
  description = "The Secret Manager secret id holding a GitHub token for the resync (and the gateway's path route)."
  type        = string
}

variable "notification_channels" {
  description = "Where alerts go."
  type        = list(string)
  default     = []
}
