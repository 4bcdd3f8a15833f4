variable "project_id" {
  description = "The project everything is created in."
  type        = string
}

variable "regions" {
  description = "The regions, each with the VPC network and subnet egress uses."
  type = map(object({
    network = string
    subnet  = string
  }))
}

variable "notification_channels" {
  description = "Where alerts go."
  type        = list(string)
  default     = []
}

variable "github_events_broker" {
  description = "The broker GitHub's events reach, by region (its Pub/Sub topic in each)."
  type        = map(string)
}
