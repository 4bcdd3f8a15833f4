// A container image built from source with Docker when Terraform applies, and pushed to
// Artifact Registry: what ko does for the Go reference's modules, for a Rust crate. The tag is
// a hash of the sources, so the image's reference is known when Terraform plans, and a source
// that did not change builds nothing. Docker (logged in to the registry:
// `gcloud auth configure-docker LOCATION-docker.pkg.dev`) must be on the machine that applies.

locals {
  # Without a context, this repository (two levels up, wherever Terraform fetched it to).
  repository_root = abspath("${path.module}/../..")
  context         = coalesce(var.context, local.repository_root)
  dockerfile = coalesce(var.dockerfile, var.context == null
    ? "${local.repository_root}/Dockerfile"
  : "${path.module}/crate.Dockerfile")
  # The repository's sources are named by place, so the walk stays out of its build output.
  sources = coalesce(var.sources, var.context == null
    ? ["Cargo.toml", "Cargo.lock", "build.rs", "src/**", "*/Cargo.toml", "*/build.rs", "*/src/**", "proto/**"]
  : ["**/*.rs", "**/Cargo.toml", "**/Cargo.lock", "**/*.proto"])
  # Sources under the build output, Git's or any hidden directory do not count.
  files = sort(distinct(flatten([
    for pattern in local.sources : [
      for f in fileset(local.context, pattern) : f
      if !startswith(f, "target/") && !can(regex("(^|/)\\.", f))
    ]
  ])))
  tag = substr(sha256(join("\n", concat(
    [for f in local.files : "${f} ${filesha256("${local.context}/${f}")}"],
    [filesha256(local.dockerfile)],
    [for k in sort(keys(var.build_args)) : "${k}=${var.build_args[k]}"],
  ))), 0, 24)
  repository = var.repository != null ? var.repository : "${var.location}-docker.pkg.dev/${var.project_id}/${one(google_artifact_registry_repository.images[*].repository_id)}"
  image      = "${local.repository}/${var.name}:${local.tag}"
  build_args = join(" ", [for k in sort(keys(var.build_args)) : "--build-arg ${k}=${jsonencode(var.build_args[k])}"])
}

resource "google_artifact_registry_repository" "images" {
  count = var.repository == null ? 1 : 0
  #checkov:skip=CKV_GCP_84:Images built from source that is not secret; Google-managed encryption, as for the reference's ko-built images.

  project       = var.project_id
  location      = var.location
  repository_id = var.name
  format        = "DOCKER"
  description   = "Images built from source by the image module"
  labels        = var.labels
}

// Built and pushed once per tag; a new tag (changed sources) replaces it.
resource "terraform_data" "build" {
  input            = local.image
  triggers_replace = [local.image]

  provisioner "local-exec" {
    working_dir = local.context
    command     = "docker build --file ${jsonencode(abspath(local.dockerfile))} ${local.build_args} --tag ${local.image} . && docker push ${local.image}"
  }

  depends_on = [google_artifact_registry_repository.images]
}
