// The reconciler's container: `image`, or the one entry of `containers` (the reference's
// shape), whose `source` is built from a crate by the image module when Terraform applies, as
// ko builds the reference's Go sources. Its settings apply on top of the module's own.

locals {
  container = one(values(var.containers))
  source    = try(local.container.source, null)
  # The crate's directory in the build context, and its binary (default: that directory's
  # name, as a Go importpath names its command).
  crate  = local.source == null ? null : trimsuffix(local.source.importpath, "/")
  binary = local.source == null ? null : coalesce(local.source.binary, basename(abspath("${local.source.working_dir}/${local.crate}")))

  image = try(coalesce(
    var.image,
    try(local.container.image, null),
    try(module.source_image[0].image, null),
  ), null)
  args = concat(var.args, try(local.container.args, []))
  env = merge(var.env, {
    for e in try(local.container.env, []) : e.name => e.value if e.value_source == null
  })
  secret_env = merge(var.secret_env, {
    for e in try(local.container.env, []) : e.name => {
      secret  = e.value_source.secret_key_ref.secret
      version = e.value_source.secret_key_ref.version
    } if e.value_source != null
  })
  regional_env = merge(var.regional-env, {
    for e in try(local.container["regional-env"], []) : e.name => e.value
  })
  # gRPC needs HTTP/2 end to end: h2c unless the container names its port otherwise.
  port      = try(local.container.ports[0].container_port, 8080)
  port_name = try(local.container.ports[0].name, "h2c")
  limits    = try(local.container.resources.limits, null)
  resources = {
    cpu               = local.limits != null ? local.limits.cpu : var.resources.cpu
    memory            = local.limits != null ? local.limits.memory : var.resources.memory
    cpu_idle          = coalesce(try(local.container.resources.cpu_idle, null), var.resources.cpu_idle)
    startup_cpu_boost = coalesce(try(local.container.resources.startup_cpu_boost, null), true)
  }
}

module "source_image" {
  source = "../image"
  count  = local.source != null ? 1 : 0

  project_id = var.project_id
  name       = var.name
  location   = local.primary_region
  context    = local.source.working_dir
  build_args = merge(
    { CRATE = local.crate, BIN = local.binary },
    local.source.base_image != null ? { RUNTIME = local.source.base_image } : {},
  )
  labels = local.labels
}

// One of `image` and `containers` says what runs.
resource "terraform_data" "inputs" {
  lifecycle {
    precondition {
      condition     = (var.image != null) != (length(var.containers) == 1)
      error_message = "Give the reconciler as `image` (pushed already) or as the one entry of `containers`, not both and not neither."
    }
  }
}
