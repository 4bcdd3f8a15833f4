variable "project_id" {
  description = "The project everything is created in."
  type        = string
}

variable "name" {
  description = "The gateway's name: its service, secret and service account derive from it."
  type        = string
  validation {
    condition     = can(regex("^[a-z][-a-z0-9]{1,20}[a-z0-9]$", var.name))
    error_message = "The name must be lowercase letters, digits and hyphens, start with a letter, and be 3 to 22 characters."
  }
}

variable "regions" {
  description = "The regions to run the gateway in, each with the VPC network and subnet egress uses."
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

variable "routes" {
  description = <<-EOT
    The routes deliveries go through, in order (see the README's routes file). Each names the
    workqueue its keys go to (the workqueue's name, as given to the workqueue module; its
    receiver in the gateway's region is used: receiver_uris, region => URI, as the workqueue
    module's receiver output gives them, else looked up, so the receiver must exist first) and
    either an extension_key (default pullrequesturl) with exact-match filters, or a repository
    with path_patterns (pushes to its default branch; github-path-reconciler's `routes` output
    is one).
  EOT
  type = list(object({
    name          = string
    workqueue     = string
    priority      = optional(number, 100)
    extension_key = optional(string)
    filters       = optional(list(map(string)), [])
    repository    = optional(string)
    path_patterns = optional(list(string), [])
    receiver_uris = optional(map(string))
  }))
  validation {
    condition     = length(var.routes) > 0
    error_message = "At least one route is needed."
  }
  validation {
    condition     = alltrue([for route in var.routes : (route.repository == null) == (length(route.path_patterns) == 0)])
    error_message = "A route with a repository needs path_patterns, and path_patterns need a repository."
  }
  validation {
    condition     = alltrue([for route in var.routes : floor(route.priority) == route.priority])
    error_message = "Route priorities must be whole numbers."
  }
}

variable "additional_webhook_secrets" {
  description = "More secrets deliveries may be signed with, for rotation: key => Secret Manager secret id and version (exposed as WEBHOOK_SECRET_<KEY>)."
  type = map(object({
    secret  = string
    version = optional(string, "latest")
  }))
  default = {}
  validation {
    condition     = alltrue([for key in keys(var.additional_webhook_secrets) : can(regex("^[A-Za-z0-9_]+$", key))])
    error_message = "The keys of additional_webhook_secrets must be letters, digits and underscores."
  }
}

variable "secret_version_adder" {
  description = "A member (user:..., group:...) allowed to add versions of the webhook secret (to set or rotate it); null for none."
  type        = string
  default     = null
}

variable "github_credentials" {
  description = "For path routes: GitHub API credentials from Secret Manager, by variable (GITHUB_TOKEN, or GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY and GITHUB_INSTALLATION_ID)."
  type = map(object({
    secret  = string
    version = optional(string, "latest")
  }))
  default = {}
  validation {
    condition     = alltrue([for name in keys(var.github_credentials) : contains(["GITHUB_TOKEN", "GITHUB_APP_ID", "GITHUB_APP_PRIVATE_KEY", "GITHUB_INSTALLATION_ID"], name)])
    error_message = "github_credentials keys must be GITHUB_TOKEN, GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY or GITHUB_INSTALLATION_ID."
  }
}

variable "github_api_url" {
  description = "The GitHub API's base URL for path routes (GitHub Enterprise); null for api.github.com."
  type        = string
  default     = null
}

variable "sink" {
  description = "Also forward each delivery as a CloudEvent (binary mode) to this URL, such as a broker's ingress; null for none."
  type        = string
  default     = null
}

variable "service-ingress" {
  description = "Who may reach the gateway: INGRESS_TRAFFIC_ALL (GitHub, the default) or INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER (behind your own load balancer)."
  type        = string
  default     = "INGRESS_TRAFFIC_ALL"
  validation {
    condition     = contains(["INGRESS_TRAFFIC_ALL", "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"], var.service-ingress)
    error_message = "service-ingress must be INGRESS_TRAFFIC_ALL or INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER."
  }
}

variable "team" {
  description = "The team that owns the gateway (a label on everything)."
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

variable "deletion_protection" {
  description = "Refuse to destroy the gateway services and the webhook secret."
  type        = bool
  default     = true
}
