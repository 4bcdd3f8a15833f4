//! A durable, deduplicating, prioritized workqueue over object storage, with its gRPC
//! receiver, its dispatcher, and the SDK reconcilers are written with.
//!
//! # Layout
//! * [`storage`]: the seam (a few conditional object operations), its backends
//!   ([`storage::MemoryStorage`], [`storage::DirStorage`], [`storage::GcsStorage`]) and
//!   wrappers that count operations or inject faults.
//! * [`entry`], [`backoff`], [`key`]: the pure rules: records and their merge and order,
//!   retry delays, key validation and encoding; [`clock`]: wall time, movable in tests.
//! * [`queue`]: the queue rules on top of the seam (its docs give the storage
//!   layout and the operations each step costs); [`claim`]: an owned in-progress key.
//! * [`receiver`]: the gRPC service clients enqueue through; [`client`]: the gRPC client of
//!   it (and of reconcilers, which serve the same service).
//! * [`dispatcher`]: passes, triggers and runs against a reconciler; [`notification`]: the
//!   bucket notifications that keep a dispatcher's view of the queue fresh.
//! * [`reconciler`]: the SDK: the [`reconciler::Reconciler`] trait, [`reconciler::serve`] and
//!   the gRPC client the dispatcher uses.
//! * [`metrics`], [`http`], [`server`]: what every process exposes and how it listens;
//!   [`service`]: a receiver, a dispatcher or both, run until shutdown.
//! * [`github`]: parsing GitHub keys for reconcilers.
//! * `conformance` (feature `conformance`): the suites every storage backend must pass, and
//!   the GCS emulator fixture.

pub mod backoff;
pub mod client;
pub mod clock;
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
pub mod dispatcher;
pub mod entry;
pub mod http;
pub mod key;
pub mod metrics;
pub mod notification;
pub mod queue;
pub mod receiver;
pub mod server;
pub mod service;
pub mod storage;

pub use dispatcher::{Dispatcher, DispatcherConfig, Trigger};
pub use queue::{
    Claim, Enqueued, Failure, KeyState, KeyStatus, Queue, QueueConfig, QueueError, Started,
};
pub use receiver::Receiver;

/// An error and its causes, `: `-separated (as `anyhow` prints a chain with `{:#}`): for one
/// log field, or a message that leaves a library as text.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}
