output "receiver" {
  description = "The workqueue's receiver (name, and URI by region): where keys for this reconciler are enqueued."
  value       = module.workqueue.receiver
}

output "dispatcher" {
  description = "The workqueue's dispatcher (name, and URI by region)."
  value       = module.workqueue.dispatcher
}

output "reconciler-uris" {
  description = "The reconciler's URI in each region."
  value       = module.reconciler.uris
}
