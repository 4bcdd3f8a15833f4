output "receiver" {
  description = "The receiver: its service name and its URI in each region (enqueue there over gRPC)."
  value = {
    name = "${var.name}-rcv"
    uris = module.receiver.uris
  }
}

output "dispatcher" {
  description = "The dispatcher: its service name and its URI in each region."
  value = {
    name = "${var.name}-dsp"
    uris = module.dispatcher.uris
  }
}

output "bucket" {
  description = "The bucket holding the queue."
  value       = google_storage_bucket.queue.name
}
