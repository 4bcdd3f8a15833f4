//! GitHub webhooks and CloudEvents in, routed workqueue keys out.
