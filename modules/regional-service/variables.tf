variable "project_id" {
  description = "The project the services run in."
  type        = string
}

variable "name" {
  description = "The service's name, the same in every region."
  type        = string
  validation {
    condition     = can(regex("^[a-z]([-a-z0-9]{0,47}[a-z0-9])?$", var.name))
    error_message = "The name must be a Cloud Run service name: lowercase letters, digits and hyphens, starting with a letter, at most 49 characters."
  }
}

variable "regions" {
  description = "The regions to run in, each with the VPC network and subnet its egress uses."
  type = map(object({
    network = string
    subnet  = string
  }))
}

variable "service_account" {
  description = "The email of the service account the service runs as."
  type        = string
}

variable "image" {
  description = "The container image (a digest reference is best: revisions then change only when the image does)."
  type        = string
}

variable "args" {
  description = "The container's arguments (for the reconcilers image: the subcommand and its flags)."
  type        = list(string)
  default     = []
}

variable "env" {
  description = "Environment variables, the same in every region."
  type        = map(string)
  default     = {}
}

variable "regional_env" {
  description = "Environment variables that differ by region: name => region => value."
  type        = map(map(string))
  default     = {}
}

variable "secret_env" {
  description = "Environment variables read from Secret Manager: name => secret id and version."
  type = map(object({
    secret  = string
    version = optional(string, "latest")
  }))
  default = {}
}

variable "port" {
  description = "The container port Cloud Run sends requests to (the process reads it as $PORT)."
  type        = number
  default     = 8080
}

variable "port_name" {
  description = "How Cloud Run speaks to the container: h2c (HTTP/2 cleartext, needed for gRPC) or http1."
  type        = string
  default     = "h2c"
  validation {
    condition     = contains(["h2c", "http1"], var.port_name)
    error_message = "port_name must be h2c or http1."
  }
}

variable "resources" {
  description = "CPU and memory limits of the container, whether CPU is only allocated during requests, and whether it is boosted while the instance starts."
  type = object({
    cpu               = optional(string, "1000m")
    memory            = optional(string, "512Mi")
    cpu_idle          = optional(bool, true)
    startup_cpu_boost = optional(bool, true)
  })
  default = {}
}

variable "ingress" {
  description = "Who may reach the service: INGRESS_TRAFFIC_ALL, INGRESS_TRAFFIC_INTERNAL_ONLY or INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER."
  type        = string
  default     = "INGRESS_TRAFFIC_INTERNAL_ONLY"
  validation {
    condition     = contains(["INGRESS_TRAFFIC_ALL", "INGRESS_TRAFFIC_INTERNAL_ONLY", "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"], var.ingress)
    error_message = "ingress must be INGRESS_TRAFFIC_ALL, INGRESS_TRAFFIC_INTERNAL_ONLY or INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER."
  }
}

variable "egress" {
  description = "Which egress goes through the VPC: ALL_TRAFFIC or PRIVATE_RANGES_ONLY."
  type        = string
  default     = "ALL_TRAFFIC"
  validation {
    condition     = contains(["ALL_TRAFFIC", "PRIVATE_RANGES_ONLY"], var.egress)
    error_message = "egress must be ALL_TRAFFIC or PRIVATE_RANGES_ONLY."
  }
}

variable "scaling" {
  description = "Instances per region and requests per instance."
  type = object({
    min_instances                    = optional(number, 0)
    max_instances                    = optional(number, 100)
    max_instance_request_concurrency = optional(number, 1000)
  })
  default = {}
}

variable "request_timeout_seconds" {
  description = "The longest a request may take."
  type        = number
  default     = 300
  validation {
    condition     = var.request_timeout_seconds >= 1 && var.request_timeout_seconds <= 3600
    error_message = "request_timeout_seconds must be 1 to 3600."
  }
}

variable "enable_metrics_sidecar" {
  description = "Run Google's Managed Prometheus sidecar beside the container, scraping its /metrics on port 8080 into Cloud Monitoring (what the dashboards chart)."
  type        = bool
  default     = true
}

variable "metrics_sidecar_image" {
  description = "The Managed Prometheus sidecar image for Cloud Run."
  type        = string
  default     = "us-docker.pkg.dev/cloud-ops-agents-artifacts/cloud-run-gmp-sidecar/cloud-run-gmp-sidecar:1.2.0"
}

variable "deletion_protection" {
  description = "Refuse to destroy the services."
  type        = bool
  default     = true
}

variable "labels" {
  description = "Labels on every service."
  type        = map(string)
  default     = {}
}
