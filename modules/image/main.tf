// A container image built from source with Docker when Terraform applies, and pushed to
// Artifact Registry: what ko does for the Go reference's modules, for a Rust crate. The tag is
// a hash of the sources, so the image's reference is known when Terraform plans, and a source
// that did not change builds nothing. Docker (logged in to the registry:
// `gcloud auth configure-docker LOCATION-docker.pkg.dev`) must be on the machine that applies.
// Given `image`, the module builds nothing and answers it: callers need no branch of their own.

locals {
  build = var.image == null
  # Without a context, this repository (two levels up, wherever Terraform fetched it to).
  repository_root = abspath("${path.module}/../..")
  context         = coalesce(var.context, local.repository_root)
  dockerfile = abspath(coalesce(var.dockerfile, var.context == null
    ? "${local.repository_root}/Dockerfile"
  : "${path.module}/crate.Dockerfile"))
  # The repository's sources are named by place, so the walk stays out of its build output.
  sources = coalesce(var.sources, var.context == null
    ? ["Cargo.toml", "Cargo.lock", "build.rs", "src/**", "*/Cargo.toml", "*/build.rs", "*/src/**", "proto/**"]
  : ["**/*.rs", "**/Cargo.toml", "**/Cargo.lock", "**/*.proto"])
  # Sources under any build output (`target/`), Git's or a hidden directory do not count;
  # nothing is walked when nothing is built.
  files = local.build ? sort(distinct(flatten([
    for pattern in local.sources : [
      for f in fileset(local.context, pattern) : f
      if !can(regex("(^|/)(target/|\\.)", f))
    ]
  ]))) : []
  tag = local.build ? substr(sha256(join("\n", concat(
    [for f in local.files : "${f} ${filesha256("${local.context}/${f}")}"],
    [filesha256(local.dockerfile)],
    [for k in sort(keys(var.build_args)) : "${k}=${var.build_args[k]}"],
  ))), 0, 24) : null
  repository = var.repository != null ? var.repository : "${var.location}-docker.pkg.dev/${var.project_id}/${var.name}"
  built      = local.build ? "${local.repository}/${var.name}:${local.tag}" : null
}

resource "google_artifact_registry_repository" "images" {
  count = local.build && var.repository == null ? 1 : 0
  #checkov:skip=CKV_GCP_84:Images built from source that is not secret; Google-managed encryption, as for the reference's ko-built images.

  project       = var.project_id
  location      = var.location
  repository_id = var.name
  format        = "DOCKER"
  description   = "Images built from source by the image module"
  labels        = var.labels
}

// Built and pushed once per tag; a new tag (changed sources) replaces it. Every value reaches
// the shell through the environment, never spliced into the command: build arguments are
// named with `--build-arg NAME` and Docker reads their values from the environment.
resource "terraform_data" "build" {
  count = local.build ? 1 : 0

  input            = local.built
  triggers_replace = [local.built]

  provisioner "local-exec" {
    working_dir = local.context
    environment = merge(var.build_args, {
      IMAGE_DOCKERFILE = local.dockerfile
      IMAGE_REF        = local.built
      IMAGE_PLATFORM   = var.platform
    })
    command = join(" ", concat(
      ["docker build --platform \"$IMAGE_PLATFORM\" --file \"$IMAGE_DOCKERFILE\""],
      [for k in sort(keys(var.build_args)) : "--build-arg ${k}"],
      ["--tag \"$IMAGE_REF\" . && docker push \"$IMAGE_REF\""],
    ))
  }

  depends_on = [google_artifact_registry_repository.images]
}
