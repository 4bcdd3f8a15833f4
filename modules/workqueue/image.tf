// The reconcilers image: `image`, or built from this repository when Terraform applies.

module "system_image" {
  source = "../image"
  count  = var.image == null ? 1 : 0

  project_id = var.project_id
  name       = "${var.name}-reconcilers"
  location   = local.primary_region
}

locals {
  image = var.image != null ? var.image : module.system_image[0].image
}
