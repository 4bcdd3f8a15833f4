variable "routes" {
  description = "The routes, as the gateway module takes them."
  type = list(object({
    name          = string
    workqueue     = string
    priority      = optional(number, 100)
    extension_key = optional(string)
    filters       = optional(list(map(string)), [])
    repository    = optional(string)
    path_patterns = optional(list(string), [])
  }))
}

variable "receiver_uris" {
  description = "The URI of each route's workqueue receiver: workqueue name => https://..."
  type        = map(string)
}
