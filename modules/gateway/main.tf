// The gateway as GitHub's webhook endpoint: a public Cloud Run service serving /webhook only
// (every delivery's signature is checked against the webhook secrets in Secret Manager), whose
// routes send keys to workqueue receivers in its own region.

locals {
  labels = merge(var.labels, { team = var.team, product = var.product })

  workqueues = toset([for route in var.routes : route.workqueue])
  receivers = {
    for pair in setproduct(keys(var.regions), local.workqueues) : "${pair[0]}/${pair[1]}" => {
      region = pair[0]
      name   = "${pair[1]}-rcv"
    }
  }
  // Receiver URIs the routes carry (region/workqueue => URI); the others are looked up.
  route_uris = [
    for route in var.routes : { workqueue = route.workqueue, uris = route.receiver_uris == null ? {} : route.receiver_uris }
  ]
  given_uris = merge({}, [
    for route in local.route_uris : { for region, uri in route.uris : "${region}/${route.workqueue}" => uri }
  ]...)
  lookups = { for key, receiver in local.receivers : key => receiver if !contains(keys(local.given_uris), key) }

  secret_env = merge(
    { WEBHOOK_SECRET = { secret = google_secret_manager_secret.webhook.secret_id, version = "latest" } },
    { for key, secret in var.additional_webhook_secrets : "WEBHOOK_SECRET_${upper(key)}" => secret },
    var.github_credentials,
  )
}

resource "google_service_account" "gateway" {
  project      = var.project_id
  account_id   = "${var.name}-gw"
  display_name = "${var.name}: the GitHub webhook gateway"
}

resource "google_secret_manager_secret" "webhook" {
  project   = var.project_id
  secret_id = "${var.name}-webhook-secret"
  labels    = local.labels

  replication {
    auto {}
  }
}

// A first secret, so the service starts at once; give it to GitHub (the `initial-webhook-secret`
// output), or add a version of your own and use that.
resource "random_password" "webhook" {
  length  = 40
  special = false
}

resource "google_secret_manager_secret_version" "initial" {
  secret      = google_secret_manager_secret.webhook.id
  secret_data = random_password.webhook.result
}

resource "google_secret_manager_secret_iam_member" "adder" {
  count = var.secret_version_adder == null ? 0 : 1

  project   = var.project_id
  secret_id = google_secret_manager_secret.webhook.secret_id
  role      = "roles/secretmanager.secretVersionAdder"
  member    = var.secret_version_adder
}

resource "google_secret_manager_secret_iam_member" "gateway_reads" {
  for_each = local.secret_env

  project   = var.project_id
  secret_id = each.value.secret
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.gateway.email}"
}

module "routes" {
  for_each = var.regions
  source   = "./routes"

  routes = var.routes
  receiver_uris = {
    for workqueue in local.workqueues : workqueue => try(
      local.given_uris["${each.key}/${workqueue}"],
      data.google_cloud_run_v2_service.receiver["${each.key}/${workqueue}"].uri,
    )
  }
}

data "google_cloud_run_v2_service" "receiver" {
  for_each = local.lookups

  project  = var.project_id
  name     = each.value.name
  location = each.value.region
}

resource "google_cloud_run_v2_service_iam_member" "gateway_enqueues" {
  for_each = local.receivers

  project  = var.project_id
  location = each.value.region
  name     = each.value.name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.gateway.email}"
}

module "gateway" {
  source = "../regional-service"

  project_id      = var.project_id
  name            = var.name
  regions         = var.regions
  service_account = google_service_account.gateway.email
  image           = local.image
  // /events takes unauthenticated events: a gateway open to the internet serves /webhook only.
  args = ["gateway", "--webhook-only"]
  env = merge(
    var.sink == null ? {} : { K_SINK = var.sink },
    var.github_api_url == null ? {} : { GITHUB_API_URL = var.github_api_url },
  )
  regional_env = {
    GATEWAY_ROUTES_TOML = { for region, routes in module.routes : region => routes.toml }
  }
  secret_env          = local.secret_env
  port_name           = "http1"
  ingress             = var.service-ingress
  deletion_protection = var.deletion_protection
  labels              = local.labels

  depends_on = [
    google_secret_manager_secret_iam_member.gateway_reads,
    google_secret_manager_secret_version.initial,
  ]
}

// GitHub cannot present Google credentials: anyone may call the service, and the gateway
// itself refuses every delivery that is not signed with a webhook secret.
resource "google_cloud_run_v2_service_iam_member" "public" {
  for_each = var.regions

  project  = var.project_id
  location = each.key
  name     = module.gateway.names[each.key]
  role     = "roles/run.invoker"
  member   = "allUsers"
}
