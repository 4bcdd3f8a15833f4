variable "name" {
  description = "The workqueue's name: its receiver is the Cloud Run service `NAME-rcv` and its dispatcher `NAME-dsp`."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[a-z]([-a-z0-9]*[a-z0-9])?$", var.name)) && length(var.name) <= 59
    error_message = "The name must start with a lowercase letter, hold only lowercase letters, digits and hyphens, not end with a hyphen, and be at most 59 characters long (so that \"NAME-rcv\" is a valid Cloud Run service name)."
  }
}

variable "concurrent_work" {
  description = "How many keys the dispatcher works on at once; drawn as a threshold on the in-progress chart."
  type        = number
  nullable    = false

  validation {
    condition     = var.concurrent_work >= 1 && floor(var.concurrent_work) == var.concurrent_work
    error_message = "The concurrent_work must be a whole number of at least 1."
  }
}

variable "max_retry" {
  description = "How many attempts a key gets before it is dead-lettered; 0 means unlimited (no threshold lines, no dead-letter chart)."
  type        = number
  default     = 100
  nullable    = false

  validation {
    condition     = var.max_retry >= 0 && floor(var.max_retry) == var.max_retry
    error_message = "The max_retry must be a whole number of at least 0."
  }
}

variable "scope" {
  description = "The workqueue's scope: \"global\" (one queue for every region: each chart is one line, as every dispatcher reports the same queue) or \"regional\" (a queue per region: the queue's charts get a line per region)."
  type        = string
  default     = "global"
  nullable    = false

  validation {
    condition     = contains(["global", "regional"], var.scope)
    error_message = "The scope must be \"global\" or \"regional\"."
  }
}

variable "y_offset" {
  description = "The row of the dashboard's 48-column mosaic layout at which the section starts."
  type        = number
  default     = 0
  nullable    = false

  validation {
    condition     = var.y_offset >= 0 && floor(var.y_offset) == var.y_offset
    error_message = "The y_offset must be a whole number of at least 0."
  }
}
