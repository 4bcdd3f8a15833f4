// The reconcilers image: `image`, or built from this repository when Terraform applies.
module "system_image" {
  source = "../image"

  image      = var.image
  project_id = var.project_id
  name       = "${var.name}-workqueue"
  location   = local.primary_region
}

locals {
  image = module.system_image.image
}
