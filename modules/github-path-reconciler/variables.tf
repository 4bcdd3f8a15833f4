variable "project_id" {
  description = "The project everything is created in."
  type        = string
}

variable "name" {
  description = "The reconciler's name: its service is <name>-rec and its workqueue <name>-wq."
  type        = string
  validation {
    condition     = can(regex("^[a-z][-a-z0-9]{0,38}[a-z0-9]$", var.name))
    error_message = "The name must be lowercase letters, digits and hyphens, start with a letter, and be 2 to 40 characters."
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
  description = "The region of the resync job, its schedule and the workqueue's jobs."
  type        = string
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
  description = "The reconcilers image (the repository's Dockerfile) for the workqueue's processes, the resync and the push gateway; null builds it from this repository when Terraform applies (the image module)."
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

variable "github_owner" {
  description = "The owner (user or organization) of the repository whose files are reconciled."
  type        = string
}

variable "github_repo" {
  description = "The repository whose files are reconciled."
  type        = string
}

variable "path_patterns" {
  description = "Anchored regular expressions with exactly one capture group each: files of the default branch they match become the keys https://github.com/<owner>/<repo>/blob/<branch>/<group>."
  type        = list(string)
  validation {
    condition     = length(var.path_patterns) > 0
    error_message = "At least one path pattern is needed."
  }
}

variable "resync_period_hours" {
  description = "Every matching file is enqueued (at priority 0, spread over the period) once per this many hours: 1 to 744, whole days above 24."
  type        = number
  validation {
    condition     = var.resync_period_hours >= 1 && var.resync_period_hours <= 744 && floor(var.resync_period_hours) == var.resync_period_hours
    error_message = "resync_period_hours must be a whole number of hours from 1 to 744."
  }
  validation {
    condition     = var.resync_period_hours <= 24 || var.resync_period_hours % 24 == 0
    error_message = "resync_period_hours above 24 must be a multiple of 24."
  }
}

variable "paused" {
  description = "Pause the resync's schedule and leave the push route out of the routes output."
  type        = bool
  default     = false
}

variable "github_credentials" {
  description = "The GitHub API credentials of the resync and (with `broker`) the push gateway, from Secret Manager, by variable (GITHUB_TOKEN, or GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY and GITHUB_INSTALLATION_ID); empty for public repositories at GitHub's low anonymous rate limit."
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
  description = "The GitHub API's base URL (GitHub Enterprise); null for api.github.com."
  type        = string
  default     = null
}

variable "octo_sts_identity" {
  description = "The reconciler's Octo STS identity (OCTO_IDENTITY: a trust policy `.github/chainguard/<identity>.sts.yaml` in the repository), so the toolkit gets its GitHub tokens from Octo STS with no stored secret; null leaves GitHub access to `env`/`secret_env`."
  type        = string
  default     = null
}

variable "broker" {
  description = "A CloudEvents broker, by region (the Pub/Sub topic of each region, as the reference's cloudevent-broker module outputs it): its dev.chainguard.github.push events for the repository become path keys through a gateway of this module's own. Null: the push route is given to a webhook gateway instead (the `routes` output)."
  type        = map(string)
  default     = null
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
