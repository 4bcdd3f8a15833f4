//! A durable, deduplicating, prioritized workqueue over object storage, with its gRPC
//! receiver and its dispatcher. Reconcilers are written with the `reconciler` crate, which
//! this one calls them through.
//!
//! # Layout
//! * [`storage`]: the seam (a few conditional object operations), its backends
//!   ([`storage::MemoryStorage`], [`storage::DirStorage`], [`storage::GcsStorage`]) and
//!   wrappers that count operations or inject faults; beside it, [`storage_url`]: the URL that
//!   names a backend, and opens it.
//! * [`entry`], [`backoff`], [`key`]: the pure rules: records and their merge and order,
//!   retry delays, key validation and encoding; [`clock`]: wall time, movable in tests.
//! * [`queue`]: the queue rules on top of the seam: enqueue, [`Queue::start`] (claims under the
//!   capacity slots), [`Claim`] and how a run ends; its docs give the storage layout and what
//!   each step costs.
//! * [`client`]: the `Enqueue` seam the parts that only enqueue are handed: a receiver over
//!   gRPC, or this process's queue, which nudges this process's dispatcher.
//! * [`receiver`]: the gRPC service clients enqueue through.
//! * [`dispatcher`]: passes, triggers and runs against a reconciler; [`notification`]: the
//!   bucket notifications that keep a dispatcher's view of the queue fresh.
//! * [`metrics`], [`http`], [`server`]: what every process exposes and how it listens;
//!   [`service`]: a receiver, a dispatcher or both, run until shutdown.
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
pub mod storage_url;

pub use dispatcher::{Dispatcher, DispatcherConfig, Trigger};
pub use queue::{
    Claim, Enqueued, Failure, KeyState, KeyStatus, Queue, QueueConfig, QueueError, Started,
};
pub use receiver::Receiver;

pub use reconciler::error_chain;
