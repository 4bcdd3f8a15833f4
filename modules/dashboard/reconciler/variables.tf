variable "project_id" {
  description = "The project that holds the dashboard (and the error alert policy); null means the google provider's project."
  type        = string
  default     = null

  validation {
    condition     = var.project_id == null || can(regex("^([a-z][-.a-z0-9]*:)?[a-z][-a-z0-9]{4,28}[a-z0-9]$", var.project_id))
    error_message = "The project_id must be null or a project ID: 6 to 30 lowercase letters, digits and hyphens, starting with a letter and not ending with a hyphen (optionally after a \"domain:\" prefix)."
  }
}

variable "name" {
  description = "The reconciler's name: the default service_name is `NAME-rec` and the default workqueue_name `NAME-wq`."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[a-z]([-a-z0-9]*[a-z0-9])?$", var.name)) && length(var.name) <= 40
    error_message = "The name must start with a lowercase letter, hold only lowercase letters, digits and hyphens, not end with a hyphen, and be at most 40 characters long (so that \"NAME-wq-rcv\" is a valid Cloud Run service name)."
  }
}

variable "service_name" {
  description = "The reconciler's Cloud Run service; the empty string means `NAME-rec`."
  type        = string
  default     = ""
  nullable    = false

  validation {
    condition     = var.service_name == "" || (can(regex("^[a-z]([-a-z0-9]*[a-z0-9])?$", var.service_name)) && length(var.service_name) <= 49)
    error_message = "The service_name must be \"\" or a Cloud Run service name: a lowercase letter, then lowercase letters, digits and hyphens, not ending with a hyphen, at most 49 characters."
  }
}

variable "workqueue_name" {
  description = "The name of the reconciler's workqueue, whose services are `WORKQUEUE_NAME-rcv` and `WORKQUEUE_NAME-dsp`; the empty string means `NAME-wq`."
  type        = string
  default     = ""
  nullable    = false

  validation {
    condition     = var.workqueue_name == "" || (can(regex("^[a-z]([-a-z0-9]*[a-z0-9])?$", var.workqueue_name)) && length(var.workqueue_name) <= 45)
    error_message = "The workqueue_name must be \"\" or start with a lowercase letter, hold only lowercase letters, digits and hyphens, not end with a hyphen, and be at most 45 characters long."
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

variable "concurrent_work" {
  description = "How many keys the workqueue's dispatcher works on at once; drawn as a threshold line on the in-progress chart."
  type        = number
  default     = 20
  nullable    = false

  validation {
    condition     = var.concurrent_work >= 1 && floor(var.concurrent_work) == var.concurrent_work
    error_message = "The concurrent_work must be a whole number of at least 1."
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
  description = "Labels for the dashboard (and the error alert policy, when enabled). Keys: a lowercase letter, then up to 62 lowercase letters, digits, underscores or hyphens; values: up to 63 of the same."
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

variable "notification_channels" {
  description = "Notification channel IDs (`projects/PROJECT/notificationChannels/ID`) the error alert notifies; used only when enable_error_alert is true."
  type        = list(string)
  default     = []
  nullable    = false

  validation {
    condition     = alltrue([for c in var.notification_channels : can(regex("^projects/[^/]+/notificationChannels/[^/]+$", c))])
    error_message = "Each notification channel must be a full ID, \"projects/PROJECT/notificationChannels/ID\"."
  }
}

variable "enable_error_alert" {
  description = "Whether to create an alert policy that fires while the reconciler service answers with 5xx responses faster than error_alert_threshold."
  type        = bool
  default     = false
  nullable    = false
}

variable "error_alert_threshold" {
  description = "The error alert's threshold: 5xx responses per second, summed over the service's revisions, sustained for 5 minutes."
  type        = number
  default     = 0.1
  nullable    = false

  validation {
    condition     = var.error_alert_threshold > 0
    error_message = "The error_alert_threshold must be greater than 0."
  }
}
