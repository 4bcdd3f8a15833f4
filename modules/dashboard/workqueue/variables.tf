variable "project_id" {
  description = "The project that holds the dashboard; null means the google provider's project."
  type        = string
  default     = null

  validation {
    condition     = var.project_id == null || can(regex("^([a-z][-.a-z0-9]*:)?[a-z][-a-z0-9]{4,28}[a-z0-9]$", var.project_id))
    error_message = "The project_id must be null or a project ID: 6 to 30 lowercase letters, digits and hyphens, starting with a letter and not ending with a hyphen (optionally after a \"domain:\" prefix)."
  }
}

variable "name" {
  description = "The workqueue's name: its receiver is the Cloud Run service `NAME-rcv` and its dispatcher `NAME-dsp`."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[a-z]([-a-z0-9]*[a-z0-9])?$", var.name)) && length(var.name) <= 45
    error_message = "The name must start with a lowercase letter, hold only lowercase letters, digits and hyphens, not end with a hyphen, and be at most 45 characters long (so that \"NAME-rcv\" is a valid Cloud Run service name, under 50 characters)."
  }
}

variable "concurrent_work" {
  description = "How many keys the dispatcher works on at once; drawn as a threshold line on the in-progress chart."
  type        = number
  nullable    = false

  validation {
    condition     = var.concurrent_work >= 1 && floor(var.concurrent_work) == var.concurrent_work
    error_message = "The concurrent_work must be a whole number of at least 1."
  }
}

variable "max_retry" {
  description = "How many attempts a key gets before it is dead-lettered; 0 means unlimited, which drops the threshold lines and the dead-lettered chart."
  type        = number
  default     = 100
  nullable    = false

  validation {
    condition     = var.max_retry >= 0 && floor(var.max_retry) == var.max_retry
    error_message = "The max_retry must be a whole number of at least 0."
  }
}

variable "scope" {
  description = "The workqueue's scope: \"global\" (one queue for every region) or \"regional\" (a queue per region, charted a line per region)."
  type        = string
  default     = "global"
  nullable    = false

  validation {
    condition     = contains(["global", "regional"], var.scope)
    error_message = "The scope must be \"global\" or \"regional\"."
  }
}

variable "labels" {
  description = "Labels for the dashboard. Keys: a lowercase letter, then up to 62 lowercase letters, digits, underscores or hyphens; values: up to 63 of the same."
  type        = map(string)
  default     = {}
  nullable    = false

  validation {
    condition = alltrue([
      for k, v in var.labels : can(regex("^[a-z][a-z0-9_-]{0,62}$", k)) && can(regex("^[a-z0-9_-]{0,63}$", v))
    ])
    error_message = "Each label key must match ^[a-z][a-z0-9_-]{0,62}$ and each value ^[a-z0-9_-]{0,63}$ (lowercase only)."
  }
}
