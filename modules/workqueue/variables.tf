variable "project_id" {
  description = "The project everything is created in."
  type        = string
}

variable "name" {
  description = "The workqueue's name: its services are <name>-rcv and <name>-dsp."
  type        = string
  validation {
    condition     = can(regex("^[a-z]([-a-z0-9]{0,43}[a-z0-9])?$", var.name))
    error_message = "The name must be lowercase letters, digits and hyphens, start with a letter, and be at most 45 characters (the services add -rcv and -dsp)."
  }
}

variable "regions" {
  description = "The regions to run the receiver and dispatcher in, each with the VPC network and subnet their egress uses."
  type = map(object({
    network = string
    subnet  = string
  }))
  validation {
    condition     = length(var.regions) > 0
    error_message = "At least one region is needed."
  }
}

variable "primary-region" {
  description = "The region of a global queue's dead-letter re-enqueue job (a regional queue has one per region) and of the repository an image built from source goes to; null for the first of regions."
  type        = string
  default     = null
}

variable "image" {
  description = "The reconcilers image (the repository's Dockerfile), best by digest; null builds it from this repository with Docker when Terraform applies (the image module)."
  type        = string
  default     = null
}

variable "concurrent-work" {
  description = "Keys in progress at once (the number of capacity slots): across every region for a global queue, in each region for a regional one."
  type        = number
  validation {
    condition     = var.concurrent-work >= 1
    error_message = "concurrent-work must be at least 1."
  }
}

variable "batch-size" {
  description = "Keys one dispatch pass may start; null for concurrent-work (divided by the number of regions, rounded up, for a global queue)."
  type        = number
  default     = null
  validation {
    condition     = var.batch-size == null ? true : var.batch-size >= 1
    error_message = "batch-size must be at least 1."
  }
}

variable "max-retry" {
  description = "Failed attempts before a key is dead-lettered; 0 retries without end."
  type        = number
  default     = 100
  validation {
    condition     = var.max-retry >= 0
    error_message = "max-retry must not be negative."
  }
}

variable "reconciler-service" {
  description = "The Cloud Run service (in every region) the dispatcher calls with each key."
  type = object({
    name = string
  })
}

variable "team" {
  description = "The team that owns the workqueue (a label on everything)."
  type        = string
}

variable "product" {
  description = "The product the workqueue belongs to (a label on everything)."
  type        = string
  default     = "unknown"
}

variable "scope" {
  description = "Where the queue's storage lives: \"global\", one multi-regional bucket (multi_regional_location) shared by every region, so a key runs in one region at a time; or \"regional\", a bucket per region, each region's receiver and dispatcher on their own: lower latency, but no exclusion across regions (a key enqueued in two regions may run in both at once)."
  type        = string
  default     = "global"
  validation {
    condition     = contains(["global", "regional"], var.scope)
    error_message = "The scope must be \"global\" or \"regional\"."
  }
}

variable "multi_regional_location" {
  description = "The bucket's multi-region: US, EU or ASIA."
  type        = string
  default     = "US"
  validation {
    condition     = contains(["US", "EU", "ASIA"], var.multi_regional_location)
    error_message = "multi_regional_location must be US, EU or ASIA."
  }
}

variable "receiver_ingress" {
  description = "Who may reach the receiver: INGRESS_TRAFFIC_INTERNAL_ONLY (the default), INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER or INGRESS_TRAFFIC_ALL (callers still need run.invoker)."
  type        = string
  default     = "INGRESS_TRAFFIC_INTERNAL_ONLY"
  validation {
    condition     = contains(["INGRESS_TRAFFIC_ALL", "INGRESS_TRAFFIC_INTERNAL_ONLY", "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"], var.receiver_ingress)
    error_message = "receiver_ingress must be INGRESS_TRAFFIC_ALL, INGRESS_TRAFFIC_INTERNAL_ONLY or INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER."
  }
}

variable "deletion_protection" {
  description = "Refuse to destroy the services, the jobs and a bucket that still holds keys."
  type        = bool
  default     = true
}

variable "labels" {
  description = "Labels on every resource that takes them."
  type        = map(string)
  default     = {}
}

variable "notification_channels" {
  description = "Where the dead-letter alert is sent."
  type        = list(string)
  default     = []
}

variable "enable_dead_letter_alerting" {
  description = "Alert when keys are dead-lettered (only when max-retry is above 0)."
  type        = bool
  default     = true
}
