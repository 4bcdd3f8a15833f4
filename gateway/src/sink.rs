//! The sink: every GitHub delivery, as its CloudEvent, forwarded in binary mode to a broker
//! (`--sink` or `K_SINK`), so the gateway is also the GitHub → CloudEvents bridge.

use std::time::Duration;

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

use crate::incoming::Incoming;

/// What a binary-mode header value must percent-encode (CloudEvents HTTP binding 3.1.3.2):
/// controls, space, `"`, `%`, and everything beyond ASCII.
const HEADER_VALUE: &AsciiSet = &CONTROLS.add(b' ').add(b'"').add(b'%');

/// A broker the converted events go to.
#[derive(Clone, Debug)]
pub struct Sink {
    url: String,
    client: reqwest::Client,
}

/// The sink did not take an event.
#[derive(Debug, thiserror::Error)]
#[error("the sink {url} did not take the event")]
pub struct SinkError {
    url: String,
    /// The request's failure, or the sink's answer.
    #[source]
    source: Box<dyn std::error::Error + Send + Sync>,
}

impl Sink {
    /// A sink at `url`; each delivery fails after `timeout`.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder().timeout(timeout).build()?;
        Ok(Self {
            url: url.to_owned(),
            client,
        })
    }

    /// Posts a GitHub delivery's event in binary mode: attributes in `ce-` headers, the data
    /// (`{"when", "headers", "body"}`) as the body.
    pub async fn send(&self, event: &Incoming) -> Result<(), SinkError> {
        let failed = |source: Box<dyn std::error::Error + Send + Sync>| SinkError {
            url: self.url.clone(),
            source,
        };
        let data = data_of(event);
        let mut request = self
            .client
            .post(&self.url)
            .header("ce-specversion", "1.0")
            .header("content-type", "application/json");
        let mut attributes = vec![
            ("id", event.id.as_str()),
            ("type", event.ty.as_str()),
            ("source", event.source.as_str()),
        ];
        if let Some(subject) = &event.subject {
            attributes.push(("subject", subject));
        }
        for (name, value) in attributes.into_iter().chain(
            event
                .extensions
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str())),
        ) {
            let encoded = utf8_percent_encode(value, HEADER_VALUE).to_string();
            request = request.header(format!("ce-{name}"), encoded);
        }
        let time = event
            .github
            .as_ref()
            .map(|g| humantime::format_rfc3339_millis(g.received).to_string());
        if let Some(time) = time {
            request = request.header("ce-time", time);
        }
        let response = request
            .body(data)
            .send()
            .await
            .map_err(|e| failed(e.into()))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(failed(format!("it answered {}", response.status()).into()))
        }
    }
}

/// `{"when": <received>, "headers": {...}, "body": <payload>}`, the payload copied as is.
pub fn data_of(event: &Incoming) -> Vec<u8> {
    let Some(github) = &event.github else {
        return b"{}".to_vec();
    };
    let when = humantime::format_rfc3339_millis(github.received).to_string();
    let headers: serde_json::Map<String, serde_json::Value> = github
        .headers
        .iter()
        .map(|(n, v)| (n.clone(), serde_json::Value::String(v.clone())))
        .collect();
    let mut out = Vec::with_capacity(github.body.len() + 256);
    out.extend_from_slice(b"{\"when\":");
    out.extend_from_slice(serde_json::to_string(&when).unwrap_or_default().as_bytes());
    out.extend_from_slice(b",\"headers\":");
    out.extend_from_slice(
        serde_json::to_string(&headers)
            .unwrap_or_default()
            .as_bytes(),
    );
    out.extend_from_slice(b",\"body\":");
    out.extend_from_slice(&github.body);
    out.push(b'}');
    out
}
