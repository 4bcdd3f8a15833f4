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
  description = "The bucket holding the queue (scope global); null for a regional queue (see buckets)."
  value       = local.regional ? null : google_storage_bucket.queue["global"].name
}

output "buckets" {
  description = "The bucket each region's receiver and dispatcher use (region => bucket): the one global bucket in every region, or each region's own."
  value       = local.bucket_of
}
