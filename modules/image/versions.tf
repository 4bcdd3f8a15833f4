terraform {
  # terraform_data, which runs the build, came in Terraform 1.4.
  required_version = ">= 1.5"
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.0"
    }
  }
}
