output "tiles" {
  description = "The section's mosaic-layout tiles (a header and one chart per workqueue signal), placed from row y_offset down."
  value       = local.tiles
}

output "height" {
  description = "How many rows the section takes; the next section starts at y_offset + height."
  value       = local.height
}
