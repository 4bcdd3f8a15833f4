//! The gateway: GitHub webhooks and CloudEvents in, routed workqueue keys out.
//!
//! # Layout
//! * [`server`]: the HTTP front (`/webhook`, `/events`) and its answers.
//! * [`signature`]: webhook signatures against every configured secret.
//! * [`webhook`]: a GitHub delivery as a CloudEvent; [`events`]: CloudEvents over HTTP in
//!   binary, structured and batch modes; both give an [`Incoming`] event.
//! * [`route`]: routes (filters, key rule, priority, workqueue) and the routes file; a path
//!   route's patterns and keys are the `github` crate's, shared with the resync.
//! * [`gateway`]: what happens to one event: keys from each route (`keys`), enqueued through
//!   the workqueue's `Enqueue` seam (a receiver over gRPC, or the queue of this process),
//!   forwarded to the [`sink`]. The GitHub API (the `github` crate) answers what a push's
//!   payload does not say.
//! * [`metrics`]: the gateway's series.

pub mod events;
pub mod gateway;
pub mod incoming;
mod keys;
pub mod metrics;
mod payload;
pub mod route;
pub mod server;
pub mod signature;
pub mod sink;
pub mod webhook;

pub use gateway::{Gateway, GatewayConfig};
pub use incoming::Incoming;
pub use keys::KeysError;
