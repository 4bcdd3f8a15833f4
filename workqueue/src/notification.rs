//! Bucket notifications: the Pub/Sub push body that a GCS bucket notification (payload format
//! `JSON_API_V1`) delivers to the dispatcher, parsed into the object change it reports, so
//! the dispatcher's view learns of a key the moment another process writes it.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;

use crate::storage::{Generation, Metadata};

/// One object change, named as the bucket names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    /// The bucket.
    pub bucket: String,
    /// The full object name in the bucket.
    pub object: String,
    /// The generation written or removed.
    pub generation: Generation,
    /// What happened to it.
    pub event: Event,
}

/// What happened to the object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A new generation was written, with this metadata.
    Written(Metadata),
    /// The generation was deleted, or replaced by a newer one.
    Removed,
}

#[derive(Deserialize)]
struct Push {
    message: Message,
}

#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    attributes: HashMap<String, String>,
    #[serde(default)]
    data: Option<String>,
}

/// The parts of the object resource (the message data) this reads.
#[derive(Deserialize)]
struct Resource {
    #[serde(default)]
    metadata: Option<Metadata>,
}

/// Parses a Pub/Sub push body; `None` when it is not a bucket notification this can use (an
/// empty trigger, a scheduler tick, another payload format).
pub fn parse_push(body: &[u8]) -> Option<Notification> {
    let push: Push = serde_json::from_slice(body).ok()?;
    let attributes = &push.message.attributes;
    let attribute = |name: &str| attributes.get(name).cloned();
    let generation = Generation(attribute("objectGeneration")?.parse().ok()?);
    let event = match attributes.get("eventType")?.as_str() {
        "OBJECT_FINALIZE" | "OBJECT_METADATA_UPDATE" => {
            let data = STANDARD.decode(push.message.data?).ok()?;
            let resource: Resource = serde_json::from_slice(&data).ok()?;
            Event::Written(resource.metadata.unwrap_or_default())
        }
        "OBJECT_DELETE" | "OBJECT_ARCHIVE" => Event::Removed,
        _ => return None,
    };
    Some(Notification {
        bucket: attribute("bucketId")?,
        object: attribute("objectId")?,
        generation,
        event,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(event: &str, data: Option<&str>) -> Vec<u8> {
        let mut message = serde_json::json!({
            "attributes": {
                "bucketId": "b",
                "objectId": "wq/k/abc",
                "objectGeneration": "1712345678901234",
                "eventType": event,
                "payloadFormat": "JSON_API_V1",
            },
            "messageId": "1",
        });
        if let Some(data) = data {
            message["data"] = STANDARD.encode(data).into();
        }
        serde_json::to_vec(&serde_json::json!({ "message": message, "subscription": "s" })).unwrap()
    }

    #[test]
    fn parse_push_should_read_a_written_object_and_its_metadata() {
        let resource = r#"{"kind":"storage#object","name":"wq/k/abc","bucket":"b","generation":"1712345678901234","metadata":{"key":"abc","priority":"3"}}"#;
        let notification = parse_push(&push("OBJECT_FINALIZE", Some(resource))).unwrap();
        assert_eq!(notification.bucket, "b");
        assert_eq!(notification.object, "wq/k/abc");
        assert_eq!(notification.generation, Generation(1_712_345_678_901_234));
        let Event::Written(metadata) = notification.event else {
            panic!("a write")
        };
        assert_eq!(metadata.get("priority").map(String::as_str), Some("3"));
    }

    #[test]
    fn parse_push_should_read_a_removal_without_data() {
        let notification = parse_push(&push("OBJECT_DELETE", None)).unwrap();
        assert_eq!(notification.event, Event::Removed);
    }

    #[test]
    fn parse_push_should_ignore_what_it_cannot_use() {
        assert_eq!(parse_push(b""), None);
        assert_eq!(parse_push(b"{}"), None);
        assert_eq!(parse_push(&push("OBJECT_FINALIZE", None)), None);
        assert_eq!(parse_push(&push("OBJECT_FINALIZE", Some("not json"))), None);
        assert_eq!(parse_push(&push("SOMETHING_ELSE", None)), None);
    }
}
