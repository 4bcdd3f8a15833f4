variable "image" {
  description = "An image pushed already: the module builds nothing and answers it (so a module can take an optional image and call this one either way)."
  type        = string
  default     = null
}

variable "project_id" {
  description = "The project of the Artifact Registry repository the image is pushed to."
  type        = string
}

variable "name" {
  description = "The image's name in the repository (and, without `repository`, the name of the repository this module creates)."
  type        = string

  validation {
    condition     = can(regex("^[a-z]([-a-z0-9]*[a-z0-9])?$", var.name)) && length(var.name) <= 63
    error_message = "The name must start with a lowercase letter, hold only lowercase letters, digits and hyphens, not end with a hyphen, and be at most 63 characters long."
  }
}

variable "location" {
  description = "Where the Artifact Registry repository is created, without `repository` (a region, or a multi-region such as `us`)."
  type        = string
}

variable "repository" {
  description = "A Docker repository to push to (`LOCATION-docker.pkg.dev/PROJECT/REPO`); null creates one named after `name`."
  type        = string
  default     = null
}

variable "context" {
  description = "The directory the image is built from (the build context): a crate, or the Cargo workspace holding it; null builds this repository's own `reconcilers` image (its Dockerfile, at the repository's root)."
  type        = string
  default     = null
}

variable "dockerfile" {
  description = "The Dockerfile; null is this module's recipe for one binary of one crate (`crate.Dockerfile`, which takes the build args CRATE and BIN), or the repository's Dockerfile when `context` is null."
  type        = string
  default     = null
}

variable "build_args" {
  description = "Build arguments, such as CRATE (the crate's directory, relative to the context) and BIN (its binary) for the crate recipe."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.build_args) : can(regex("^[A-Za-z_][A-Za-z0-9_]*$", k))])
    error_message = "Build argument names are letters, digits and underscores, not starting with a digit."
  }
}

variable "platform" {
  description = "The platform built for: Cloud Run runs linux/amd64 (ko's default too), whatever machine applies."
  type        = string
  default     = "linux/amd64"
}

variable "sources" {
  description = "The files, as globs relative to the context, whose contents make the image's tag: when none of them changes, nothing is built. Null: every Rust source, manifest, lockfile and proto (the repository's own, for its image)."
  type        = list(string)
  default     = null
}

variable "labels" {
  description = "Labels for the repository this module creates."
  type        = map(string)
  default     = {}
}
