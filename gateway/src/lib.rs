//! The gateway: GitHub webhooks and CloudEvents in, routed workqueue keys out.
//!
//! # Layout
//! * [`server`]: the HTTP front (`/webhook`, `/events`) and its answers.
//! * [`signature`]: webhook signatures against every configured secret.
//! * [`webhook`]: a GitHub delivery as a CloudEvent; [`events`]: CloudEvents over HTTP in
//!   binary, structured and batch modes; both give an [`Incoming`] event.
//! * [`route`]: routes (filters, key rule, priority, workqueue) and the routes file;
//!   [`paths`]: path patterns and their keys, shared with the resync.
//! * [`gateway`]: what happens to one event: keys from each route, enqueued (through
//!   [`enqueue`]: a receiver over gRPC, or the queue of this process), forwarded to the
//!   [`sink`].
//! * [`github_api`]: the GitHub API for what a payload does not say (default branch, trees).
//! * [`metrics`]: the gateway's series.

pub mod enqueue;
pub mod events;
pub mod gateway;
pub mod github_api;
pub mod incoming;
mod keys;
pub mod metrics;
pub mod paths;
mod payload;
pub mod route;
pub mod server;
pub mod signature;
pub mod sink;
pub mod webhook;

pub use gateway::{Gateway, GatewayConfig};
pub use incoming::Incoming;
