//! A token that is not fixed when the client is made: asked for before every call, so a
//! source that renews its tokens (Octo STS, in the toolkit) is followed by a long-running
//! process. The github crate defines the seam only; the sources live with their protocols.

use std::future::Future;
use std::pin::Pin;

/// Why a token could not be had; never the token itself.
pub type TokenError = Box<dyn std::error::Error + Send + Sync>;

/// A future of a token (boxed: the seam is object-safe without async-trait).
pub type TokenFuture<'a> = Pin<Box<dyn Future<Output = Result<String, TokenError>> + Send + 'a>>;

/// Where a client's GitHub token comes from, call by call.
pub trait TokenSource: Send + Sync + std::fmt::Debug {
    /// A token valid now (a source keeps and renews it as it sees fit).
    fn token(&self) -> TokenFuture<'_>;
}
