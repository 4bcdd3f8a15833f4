//! Conditional requests: answers remembered with their ETag, so that asking again with
//! `If-None-Match` gets a 304, which GitHub does not count against the hourly budget.
//!
//! One cache per client, and a client per scope ([`crate::Clients`]), so a remembered body
//! is only ever returned through the credentials that fetched it.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// How many answers one client remembers; the oldest is forgotten first.
pub(crate) const ETAG_ENTRIES: usize = 1_000;

/// An answer remembered: its ETag and body.
#[derive(Clone, Debug)]
pub(crate) struct Remembered {
    pub(crate) etag: String,
    pub(crate) body: Arc<[u8]>,
}

/// Answers by URL and `Accept`, first in first out.
#[derive(Debug, Default)]
pub(crate) struct EtagCache {
    answers: HashMap<String, Remembered>,
    order: VecDeque<String>,
}

impl EtagCache {
    /// The answer remembered for `url`.
    pub(crate) fn get(&self, url: &str) -> Option<Remembered> {
        self.answers.get(url).cloned()
    }

    /// Remembers `answer` for `url`, forgetting the oldest beyond [`ETAG_ENTRIES`].
    pub(crate) fn put(&mut self, url: String, answer: Remembered) {
        if self.answers.insert(url.clone(), answer).is_none() {
            self.order.push_back(url);
        }
        while self.order.len() > ETAG_ENTRIES {
            if let Some(oldest) = self.order.pop_front() {
                self.answers.remove(&oldest);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_answer_should_be_forgotten_first() {
        let mut cache = EtagCache::default();
        let answer = |etag: &str| Remembered {
            etag: etag.to_owned(),
            body: Arc::from(&b"{}"[..]),
        };
        for i in 0..=ETAG_ENTRIES {
            cache.put(format!("/{i}"), answer("a"));
        }
        assert!(cache.get("/0").is_none());
        assert!(cache.get("/1").is_some());
        cache.put("/1".to_owned(), answer("b"));
        assert_eq!(cache.get("/1").unwrap().etag, "b");
        assert_eq!(cache.answers.len(), ETAG_ENTRIES);
    }
}
