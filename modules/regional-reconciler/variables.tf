variable "project_id" {
  description = "The project everything is created in."
  type        = string
}

variable "name" {
  description = "The reconciler's name: its service is <name>-rec and its workqueue <name>-wq."
  type        = string
  validation {
    condition     = can(regex("^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$", var.name))
    error_message = "The name must be lowercase letters, digits and hyphens, start with a letter, and be at most 40 characters."
  }
}

variable "regions" {
  description = "The regions to run in, each with the VPC network and subnet egress uses."
  type = map(object({
    network = string
    subnet  = string
  }))
}

variable "primary-region" {
  description = "The region of the workqueue's jobs; null for the first of regions."
  type        = string
  default     = null
}

variable "image" {
  description = "The reconciler's image, pushed already: a program built with the reconcilers SDK serving the workqueue's gRPC contract on $PORT. Give this or `containers`."
  type        = string
  default     = null
}

variable "containers" {
  description = "The reconciler's container, as the reference's regional-go-reconciler takes it: one entry whose `image` is pushed already, or whose `source` is built with Docker when Terraform applies (`working_dir` the build context, a crate or its Cargo workspace; `importpath` the crate's directory in it; `binary` default that directory's name; `base_image` the runtime image, default distroless cc; ko's build `env` is refused). Its args, env (values, or Secret Manager references), regional-env, ports and resources apply on top of the module's own. Give this or `image`."
  type = map(object({
    image = optional(string)
    source = optional(object({
      working_dir = string
      importpath  = optional(string, ".")
      binary      = optional(string)
      base_image  = optional(string)
      env         = optional(list(string), [])
    }))
    args = optional(list(string), [])
    ports = optional(list(object({
      name           = optional(string, "h2c")
      container_port = number
    })), [])
    resources = optional(object({
      limits = optional(object({
        cpu    = string
        memory = string
      }))
      cpu_idle          = optional(bool)
      startup_cpu_boost = optional(bool)
    }), {})
    env = optional(list(object({
      name  = string
      value = optional(string)
      value_source = optional(object({
        secret_key_ref = object({
          secret  = string
          version = string
        })
      }))
    })), [])
    regional-env = optional(list(object({
      name  = string
      value = map(string)
    })), [])
  }))
  default = {}

  validation {
    condition     = length(var.containers) <= 1
    error_message = "The containers map takes one container (the reconciler); sidecars are not supported."
  }

  validation {
    condition     = alltrue([for c in values(var.containers) : (c.image == null) != (c.source == null)])
    error_message = "Each container gives either an image (pushed already) or a source (built when Terraform applies), not both."
  }

  validation {
    condition     = alltrue([for c in values(var.containers) : c.source == null || length(try(c.source.env, [])) == 0])
    error_message = "A source's env (ko's build environment in the reference) is not taken: set Cargo's build settings in the crate's .cargo/config.toml."
  }

  validation {
    condition     = alltrue(flatten([for c in values(var.containers) : [for e in c.env : (e.value == null) != (e.value_source == null)]]))
    error_message = "Each container env entry gives a value or a value_source (a Secret Manager reference), not both and not neither."
  }
}

variable "args" {
  description = "Arguments of the reconciler's container."
  type        = list(string)
  default     = []
}

variable "env" {
  description = "Environment variables of the reconciler, the same in every region."
  type        = map(string)
  default     = {}
}

variable "regional-env" {
  description = "Environment variables of the reconciler that differ by region: name => region => value."
  type        = map(map(string))
  default     = {}
}

variable "secret_env" {
  description = "Environment variables of the reconciler read from Secret Manager: name => secret id and version."
  type = map(object({
    secret  = string
    version = optional(string, "latest")
  }))
  default = {}
}

variable "service_account" {
  description = "The email of the service account the reconciler runs as (what it may touch is up to you)."
  type        = string
}

variable "workqueue_image" {
  description = "The reconcilers image (the repository's Dockerfile) for the workqueue's processes; null builds it from this repository when Terraform applies (the image module)."
  type        = string
  default     = null
}

variable "scaling" {
  description = "Reconciler instances per region and requests per instance."
  type = object({
    min_instances                    = optional(number, 0)
    max_instances                    = optional(number, 100)
    max_instance_request_concurrency = optional(number, 1000)
  })
  default = {}
}

variable "resources" {
  description = "CPU and memory limits of the reconciler's container."
  type = object({
    cpu      = optional(string, "1000m")
    memory   = optional(string, "512Mi")
    cpu_idle = optional(bool, true)
  })
  default = {}
}

variable "request_timeout_seconds" {
  description = "The longest one reconcile call may take."
  type        = number
  default     = 300
}

variable "egress" {
  description = "Which of the reconciler's egress goes through the VPC: ALL_TRAFFIC or PRIVATE_RANGES_ONLY."
  type        = string
  default     = "ALL_TRAFFIC"
}

variable "concurrent-work" {
  description = "Keys reconciled at once across every region."
  type        = number
  default     = 20
}

variable "batch-size" {
  description = "Keys one dispatch pass may start; null for concurrent-work divided by the number of regions."
  type        = number
  default     = null
}

variable "max-retry" {
  description = "Failed attempts before a key is dead-lettered; 0 retries without end."
  type        = number
  default     = 100
}

variable "enable_dead_letter_alerting" {
  description = "Alert when keys are dead-lettered (only when max-retry is above 0)."
  type        = bool
  default     = true
}

variable "multi_regional_location" {
  description = "The workqueue bucket's multi-region: US, EU or ASIA."
  type        = string
  default     = "US"
}

variable "team" {
  description = "The team that owns the reconciler (a label on everything)."
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
  description = "Where the dead-letter alert is sent."
  type        = list(string)
  default     = []
}

variable "deletion_protection" {
  description = "Refuse to destroy the services, jobs and a bucket that still holds keys."
  type        = bool
  default     = true
}

variable "scope" {
  description = "The workqueue's scope: \"global\" (one multi-regional bucket: a key runs in one region at a time) or \"regional\" (a bucket per region, each region's receiver and dispatcher on their own: lower latency, no exclusion across regions)."
  type        = string
  default     = "global"
  validation {
    condition     = contains(["global", "regional"], var.scope)
    error_message = "The scope must be \"global\" or \"regional\"."
  }
}
