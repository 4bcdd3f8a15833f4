output "image" {
  description = "The pushed image's reference (`REPOSITORY/NAME:TAG`, the tag a hash of the sources); referring to it waits for the push."
  value       = terraform_data.build.output
}
