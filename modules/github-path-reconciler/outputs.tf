output "receiver" {
  description = "The workqueue's receiver (name, and URI by region)."
  value       = module.reconciler.receiver
}

output "reconciler-uris" {
  description = "The reconciler's URI in each region."
  value       = module.reconciler.reconciler-uris
}

output "routes" {
  description = "The push route for the gateway module's routes input (files a push to the default branch changed become keys at priority 100); empty while paused, and with `broker` (the module takes the pushes from the broker itself)."
  value = var.paused || var.broker != null ? [] : [{
    name          = var.name
    workqueue     = local.workqueue_name
    priority      = 100
    repository    = local.repository
    path_patterns = var.path_patterns
    receiver_uris = module.reconciler.receiver.uris
  }]
}

output "resync_schedule" {
  description = "When the resync runs (cron, UTC)."
  value       = local.resync_schedule
}
