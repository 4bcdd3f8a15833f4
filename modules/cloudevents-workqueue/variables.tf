variable "project_id" {
  description = "The project everything is created in."
  type        = string
}

variable "name" {
  description = "The subscriber's name: its gateway service, subscriptions and service account derive from it."
  type        = string
  validation {
    condition     = can(regex("^[a-z][-a-z0-9]{0,20}[a-z0-9]$", var.name))
    error_message = "The name must be lowercase letters, digits and hyphens, start with a letter, and be 2 to 22 characters."
  }
}

variable "regions" {
  description = "The regions to subscribe in (each needs a broker topic), with the VPC network and subnet egress uses."
  type = map(object({
    network = string
    subnet  = string
  }))
}

variable "image" {
  description = "The reconcilers image (the repository's Dockerfile), best by digest; null builds it from this repository with Docker when Terraform applies (the image module)."
  type        = string
  default     = null
}

variable "broker" {
  description = "The broker's Pub/Sub topic in each region (region => topic id or name), carrying CloudEvents with their attributes as ce-* message attributes."
  type        = map(string)
}

variable "filters" {
  description = "Exact-match filters on CloudEvent attributes (type, source, subject, extensions); the attributes of one map must all match, and an event matching any map is taken. Empty: every event with the extension."
  type        = list(map(string))
  default     = []
}

variable "extension_key" {
  description = "The CloudEvent extension whose value is the key (for instance pullrequesturl); events without it are not delivered. Null with `repository`: keys are the paths pushes change."
  type        = string
  default     = null
  validation {
    condition     = var.extension_key == null || can(regex("^[a-z0-9]{1,20}$", var.extension_key))
    error_message = "extension_key must be a CloudEvents attribute name: lowercase letters and digits."
  }
}

variable "repository" {
  description = "Instead of an extension's value: `owner/repo`, whose pushes (dev.chainguard.github.push events, the GitHub delivery in their data) become a key per changed file matching `path_patterns`, as the gateway's path routes make them of webhooks."
  type        = string
  default     = null
}

variable "path_patterns" {
  description = "With `repository`: anchored regular expressions, one capture group each, that pick the files (and the key's path) of a push."
  type        = list(string)
  default     = []
}

variable "github_api_url" {
  description = "With `repository`: the GitHub API's base URL (GitHub Enterprise); null for api.github.com."
  type        = string
  default     = null
}

variable "github_credentials" {
  description = "With `repository`: the gateway's GitHub API credentials from Secret Manager, by variable (GITHUB_TOKEN, or GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY and GITHUB_INSTALLATION_ID), for a push that lists only some of its commits; empty reads public repositories anonymously."
  type = map(object({
    secret  = string
    version = optional(string, "latest")
  }))
  default = {}
}

variable "priority" {
  description = "The priority of the keys (events default to 100; the resync's keys are 0)."
  type        = number
  default     = 100
  validation {
    condition     = floor(var.priority) == var.priority
    error_message = "priority must be a whole number."
  }
}

variable "workqueue" {
  description = "The workqueue the keys go to: its receiver service's name (as the reference takes it: `module.<workqueue>.receiver.name`), and optionally its URI by region (the workqueue module's receiver output has both; without uris the receiver is looked up by name, so it must exist first)."
  type = object({
    name = string
    uris = optional(map(string))
  })
}

variable "max_delivery_attempts" {
  description = "Deliveries of one event before it goes to the dead-letter topic (5 to 100)."
  type        = number
  default     = 20
  validation {
    condition     = var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100
    error_message = "max_delivery_attempts must be 5 to 100."
  }
}

variable "minimum_backoff" {
  description = "Seconds before the first redelivery."
  type        = number
  default     = 10
}

variable "maximum_backoff" {
  description = "The longest wait between redeliveries, in seconds (at most 600)."
  type        = number
  default     = 600
  validation {
    condition     = var.maximum_backoff <= 600
    error_message = "maximum_backoff must be at most 600 seconds."
  }
}

variable "ack_deadline_seconds" {
  description = "How long one delivery may take before Pub/Sub tries again."
  type        = number
  default     = 300
}

variable "team" {
  description = "The team that owns it (a label on everything)."
  type        = string
}

variable "product" {
  description = "The product it belongs to (a label on everything)."
  type        = string
  default     = "unknown"
}

variable "labels" {
  description = "Labels on every resource that takes them."
  type        = map(string)
  default     = {}
}

variable "notification_channels" {
  description = "Where to send an alert when events reach the dead-letter topic; empty for no alert."
  type        = list(string)
  default     = []
}

variable "deletion_protection" {
  description = "Refuse to destroy the gateway services."
  type        = bool
  default     = true
}
