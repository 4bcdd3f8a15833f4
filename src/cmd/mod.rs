//! One file per subcommand: its options, and the call into the library that runs it.

pub(crate) mod dev;
pub(crate) mod dispatcher;
pub(crate) mod enqueue;
pub(crate) mod gateway;
pub(crate) mod queue;
pub(crate) mod receiver;
pub(crate) mod resync;
pub(crate) mod webhook;
