output "image" {
  description = "The image: `image` when given, else the pushed build's reference (`REPOSITORY/NAME:TAG`, the tag a hash of the sources; referring to it waits for the push)."
  value       = local.build ? terraform_data.build[0].output : var.image
}
