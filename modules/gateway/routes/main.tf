// The gateway's routes file (TOML, as `reconcilers gateway --routes-toml` reads it), with each
// route's workqueue resolved to its receiver's URI. Strings are written with jsonencode: a
// JSON string is a valid TOML basic string.

locals {
  toml = join("\n", [
    for route in var.routes : join("\n", compact([
      "[[route]]",
      "name = ${jsonencode(route.name)}",
      "priority = ${route.priority}",
      "workqueue = ${jsonencode(var.receiver_uris[route.workqueue])}",
      route.extension_key == null ? "" : "extension_key = ${jsonencode(route.extension_key)}",
      route.repository == null ? "" : "repository = ${jsonencode(route.repository)}",
      length(route.path_patterns) == 0 ? "" : "path_patterns = ${jsonencode(route.path_patterns)}",
      length(route.filters) == 0 ? "" : "filters = [${join(", ", [
        for filter in route.filters : "{ ${join(", ", [for attribute, value in filter : "${jsonencode(attribute)} = ${jsonencode(value)}"])} }"
      ])}]",
    ]))
  ])
}
