output "toml" {
  description = "The routes file."
  value       = local.toml
}
