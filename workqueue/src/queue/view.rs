//! The view: what this process knows of every key record, kept fresh by a rolling scan of one
//! list page per pass, by its own reads and writes, and by storage notifications.

use std::collections::BTreeMap;
use std::ops::Bound;

use super::{KEYS, Queue, QueueError, Snapshot, parse};
use crate::entry::KeyRecord;
use crate::storage::{DEFAULT_PAGE_SIZE, Generation, Object, list_all};

/// The records a process has seen, by object name.
#[derive(Debug, Default)]
pub(crate) struct View {
    /// Set by the first scan. Until then nothing is kept: a receiver alone never scans, and
    /// must not collect every key it writes.
    active: bool,
    /// What is known of each name: its record, or a tombstone for a record seen gone.
    records: BTreeMap<String, Seen>,
    /// Counts the changes this process saw, so that a page listed before a change cannot
    /// undo it.
    seq: u64,
    /// Where the rolling scan goes on: the next page token and the last name of the page
    /// before it.
    cursor: Option<(String, String)>,
}

#[derive(Debug)]
struct Seen {
    /// The record and its generation; `None` once it was seen deleted.
    state: Option<(KeyRecord, Generation)>,
    /// The change count when this was learnt.
    touched: u64,
}

/// A change to one record that storage reported (a Pub/Sub notification from the bucket).
#[derive(Clone, Debug)]
pub enum Change {
    /// The object was written: this is its new content.
    Written(Object),
    /// The object was deleted (or overwritten) at this generation.
    Deleted {
        /// The object name, as the storage seam names it.
        name: String,
        /// The generation that is gone.
        generation: Generation,
    },
}

impl View {
    fn learn(&mut self, name: &str, state: Option<(KeyRecord, Generation)>) {
        if !self.active {
            return;
        }
        self.seq += 1;
        let touched = self.seq;
        self.records
            .insert(name.to_owned(), Seen { state, touched });
    }

    /// Applies a listing of the names in `(after, until]` (`None`: unbounded) taken when the
    /// change count was `started`: names it lacks are gone, the others take the listed
    /// records, except where this process learnt something newer since.
    fn apply(
        &mut self,
        objects: Vec<Object>,
        after: Option<&str>,
        until: Option<&str>,
        started: u64,
    ) {
        let lower = after.map_or(Bound::Unbounded, |a| Bound::Excluded(a.to_owned()));
        let upper = until.map_or(Bound::Unbounded, |u| Bound::Included(u.to_owned()));
        let listed: std::collections::HashSet<&str> =
            objects.iter().map(|o| o.name.as_str()).collect();
        let gone: Vec<String> = self
            .records
            .range((lower, upper))
            .filter(|(name, seen)| seen.touched <= started && !listed.contains(name.as_str()))
            .map(|(name, _)| name.clone())
            .collect();
        for name in gone {
            self.records.remove(&name);
        }
        for object in objects {
            if self
                .records
                .get(&object.name)
                .is_some_and(|seen| seen.touched > started)
            {
                continue;
            }
            match parse(&object) {
                Ok(record) => {
                    let seen = Seen {
                        state: Some((record, object.generation)),
                        touched: started,
                    };
                    self.records.insert(object.name, seen);
                }
                Err(_) => {
                    self.records.remove(&object.name);
                }
            }
        }
    }

    fn records(&self) -> impl Iterator<Item = (&KeyRecord, Generation)> {
        self.records
            .values()
            .filter_map(|seen| seen.state.as_ref().map(|(r, g)| (r, *g)))
    }
}

impl Queue {
    /// Records what this process just learnt of one key record (read, written, or gone).
    pub(crate) fn observe(&self, name: &str, state: Option<(KeyRecord, Generation)>) {
        self.view().learn(name, state);
    }

    /// Applies a change that storage reported. Notifications may arrive late or out of
    /// order, so a stale one can set a record back; the record's next write then meets a
    /// precondition failure and re-reads it, and the scan corrects it in any case.
    pub fn notify(&self, change: Change) {
        let mut view = self.view();
        match change {
            Change::Written(object) if object.name.starts_with(KEYS) => {
                let current = view.records.get(&object.name);
                if current
                    .is_some_and(|s| s.state.as_ref().map(|(_, g)| *g) == Some(object.generation))
                {
                    return;
                }
                let state = parse(&object).ok().map(|r| (r, object.generation));
                view.learn(&object.name, state);
            }
            Change::Deleted { name, generation } if name.starts_with(KEYS) => {
                let current = view.records.get(&name).and_then(|s| s.state.as_ref());
                if current.is_some_and(|(_, g)| *g == generation) {
                    view.learn(&name, None);
                }
            }
            _ => {}
        }
    }

    /// Reads the next page of the rolling scan into the view; a view never filled lists
    /// everything at once. Returns how many list pages it read.
    pub(crate) async fn scan(&self) -> Result<usize, QueueError> {
        let (active, cursor, started) = {
            let view = self.view();
            (view.active, view.cursor.clone(), view.seq)
        };
        if !active {
            let objects = list_all(self.storage(), KEYS)
                .await
                .map_err(|e| QueueError::storage("list", KEYS, e))?;
            let pages = objects.len().div_ceil(DEFAULT_PAGE_SIZE).max(1);
            let mut view = self.view();
            view.active = true;
            view.apply(objects, None, None, started);
            view.cursor = None;
            return Ok(pages);
        }
        let (token, after) = cursor.unzip();
        let page = self
            .storage()
            .list(KEYS, token.as_deref(), DEFAULT_PAGE_SIZE)
            .await
            .map_err(|e| QueueError::storage("list", KEYS, e))?;
        let mut view = self.view();
        let last = page.objects.last().map(|o| o.name.clone());
        let until = match (&page.next_page_token, &last) {
            // The page ends the scan: it covers everything after `after`.
            (None, _) => None,
            (Some(_), Some(last)) => Some(last.clone()),
            // An empty page that is not the last covers nothing.
            (Some(_), None) => after.clone(),
        };
        if page.next_page_token.is_none() || until != after {
            view.apply(page.objects, after.as_deref(), until.as_deref(), started);
        }
        view.cursor = page
            .next_page_token
            .map(|next| (next, until.or(after).unwrap_or_default()));
        Ok(1)
    }

    /// A snapshot of the view as it stands.
    pub(crate) fn view_snapshot(&self) -> Snapshot {
        let now = self.now();
        Snapshot::new(now, self.view().records())
    }

    fn view(&self) -> std::sync::MutexGuard<'_, View> {
        self.inner.view.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::QueuedEntry;
    use crate::storage::Metadata;
    use std::time::UNIX_EPOCH;

    fn object(name: &str, generation: i64) -> Object {
        let record = KeyRecord::queued(QueuedEntry::new(name, 0, None, UNIX_EPOCH));
        Object {
            name: name.to_owned(),
            generation: Generation(generation),
            metadata: record.to_metadata(),
        }
    }

    fn names(view: &View) -> Vec<&str> {
        view.records()
            .map(|(r, _)| r.key.as_str())
            .collect::<Vec<_>>()
    }

    #[test]
    fn apply_should_drop_names_missing_from_its_range_only() {
        let mut view = View {
            active: true,
            ..View::default()
        };
        view.apply(
            vec![object("k/a", 1), object("k/b", 1), object("k/c", 1)],
            None,
            None,
            0,
        );
        view.apply(vec![object("k/c", 2)], Some("k/a"), Some("k/c"), 0);
        assert_eq!(names(&view), ["k/a", "k/c"]);
    }

    #[test]
    fn apply_should_not_undo_what_was_learnt_after_the_listing_began() {
        let mut view = View {
            active: true,
            ..View::default()
        };
        let started = view.seq;
        view.learn(
            "k/new",
            Some((
                KeyRecord::queued(QueuedEntry::new("k/new", 0, None, UNIX_EPOCH)),
                Generation(5),
            )),
        );
        view.learn("k/gone", None);
        view.apply(vec![object("k/gone", 1)], None, None, started);
        assert_eq!(names(&view), ["k/new"]);
    }

    #[test]
    fn learn_should_keep_nothing_before_the_first_scan() {
        let mut view = View::default();
        view.learn("k/a", None);
        assert!(view.records.is_empty());
        let unreadable = Object {
            name: "k/x".into(),
            generation: Generation(1),
            metadata: Metadata::new(),
        };
        view.active = true;
        view.apply(vec![unreadable], None, None, 0);
        assert!(names(&view).is_empty());
    }
}
