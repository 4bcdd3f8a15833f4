//! An event on its way to the routes: the CloudEvent attributes routes match on, whether it
//! came as a GitHub delivery or as a CloudEvent.

use std::time::SystemTime;

use axum::body::Bytes;

/// One event: its CloudEvent attributes, and the GitHub payload when it carries one.
#[derive(Clone, Debug, PartialEq)]
pub struct Incoming {
    /// `id`.
    pub id: String,
    /// `type`.
    pub ty: String,
    /// `source`.
    pub source: String,
    /// `subject`.
    pub subject: Option<String>,
    /// Extension attributes, by lower-case name, as strings.
    pub extensions: Vec<(String, String)>,
    /// The GitHub delivery it is or carries.
    pub github: Option<GitHubPayload>,
}

/// A GitHub delivery's payload and the headers it came with.
#[derive(Clone, Debug, PartialEq)]
pub struct GitHubPayload {
    /// `X-GitHub-Event`.
    pub event: String,
    /// The payload, JSON.
    pub body: Bytes,
    /// The delivery's `X-GitHub-*` headers and `User-Agent`, for the event's data.
    pub headers: Vec<(String, String)>,
    /// When the gateway received it.
    pub received: SystemTime,
}

impl Incoming {
    /// An attribute by its CloudEvents name (`type`, `source`, `subject`, `id`, or an
    /// extension).
    pub fn attribute(&self, name: &str) -> Option<&str> {
        match name {
            "type" => Some(&self.ty),
            "source" => Some(&self.source),
            "id" => Some(&self.id),
            "subject" => self.subject.as_deref(),
            _ => self.extension(name),
        }
    }

    /// An extension attribute's value.
    pub fn extension(&self, name: &str) -> Option<&str> {
        self.extensions
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}
