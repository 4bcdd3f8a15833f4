//! The view: what this process knows of every key record, kept fresh by a rolling scan of one
//! list page per pass, by its own reads and writes, and by storage notifications.
//!
//! # Why it can be trusted
//! A pass decides from the view, never from a fresh listing of everything, so the view must
//! not go backwards. Three sources feed it, each at its own moment:
//! * **This process's reads and writes** are the freshest: each takes the view's change count
//!   (`seq`) before it starts and records what it found or wrote with that count, so a
//!   slower answer cannot overwrite something learnt after it began.
//! * **A listing page** covers a range of names (`(after, until]`) as they were when it was
//!   taken: names it lacks in that range are gone, names it has take its records, except
//!   where this process learnt something after the page was asked for. A page's record at
//!   the generation already held is not parsed again.
//! * **Notifications** carry a generation; GCS generations only grow, so one older than what
//!   the view holds (a late or repeated delivery) is dropped.
//!
//! What gets through stale anyway costs one failed precondition and a read when the record is
//! next written: every write is pinned, so a stale view never causes a wrong write. The first
//! scan of a process lists everything (the view is `filled` then); after that the scan rolls
//! one page per pass, starting over when it reaches the end or a listing fails. A receiver that
//! never passes keeps no view at all (`active`).

use std::collections::BTreeMap;
use std::ops::Bound;

use super::{KEYS, Queue, QueueError, parse};
use crate::entry::KeyRecord;
use crate::storage::{DEFAULT_PAGE_SIZE, Generation, Object, list_all};

/// The records a process has seen, by object name.
#[derive(Debug, Default)]
pub(crate) struct View {
    /// Set when the first scan begins. Until then nothing is kept: a receiver alone never
    /// scans, and must not collect every key it writes.
    active: bool,
    /// Set once a whole listing landed; until then every scan lists everything.
    filled: bool,
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
    /// For a record seen deleted, the generation deleted, when known.
    removed: Option<Generation>,
    /// The change count when this was learnt.
    touched: u64,
    /// Whether a listing wrote this (rather than a read or write of this process, which a
    /// listing taken before it must not undo, while it may itself replace a listing's data).
    listed: bool,
}

/// A change to one record that storage reported (a Pub/Sub notification from the bucket).
#[derive(Clone, Debug)]
pub enum Change {
    /// The object was written: this is its new content.
    Written(Object),
    /// This generation of the object was deleted, or overwritten by a newer one.
    Deleted {
        /// The object name, as the storage seam names it.
        name: String,
        /// The generation that is gone.
        generation: Generation,
    },
}

impl View {
    /// Records what is now known of `name`, unless something newer was learnt after `since`
    /// (the change count when the read or write that found this began).
    fn learn(&mut self, name: &str, state: Option<(KeyRecord, Generation)>, since: Option<u64>) {
        self.learn_with(name, state, None, since);
    }

    fn learn_with(
        &mut self,
        name: &str,
        state: Option<(KeyRecord, Generation)>,
        removed: Option<Generation>,
        since: Option<u64>,
    ) {
        if !self.active {
            return;
        }
        if let Some(since) = since
            && self
                .records
                .get(name)
                .is_some_and(|seen| seen.touched > since && !seen.listed)
        {
            return;
        }
        self.seq += 1;
        let seen = Seen {
            state,
            removed,
            touched: self.seq,
            listed: false,
        };
        self.records.insert(name.to_owned(), seen);
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
            let seen = self.records.get_mut(&object.name);
            if seen.as_ref().is_some_and(|seen| seen.touched > started) {
                continue;
            }
            // Unchanged since it was last seen: nothing to parse, nothing to change.
            if seen.is_some_and(|seen| {
                seen.state
                    .as_ref()
                    .is_some_and(|(_, g)| *g == object.generation)
            }) {
                continue;
            }
            match parse(&object) {
                Ok(record) => {
                    let seen = Seen {
                        state: Some((record, object.generation)),
                        removed: None,
                        touched: started,
                        listed: true,
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
    /// The view's change count: taken before a read or write whose outcome is then
    /// [`observe`](Self::observe)d, so a slow answer cannot undo something learnt meanwhile.
    pub(crate) fn view_seq(&self) -> u64 {
        self.view().seq
    }

    /// Records what this process just learnt of one key record (read, written, or gone) by a
    /// read or write that began at change count `since`.
    pub(crate) fn observe(&self, name: &str, state: Option<(KeyRecord, Generation)>, since: u64) {
        self.view().learn(name, state, Some(since));
    }

    /// Records that this process deleted `generation` of a key record, by a delete that began
    /// at change count `since`.
    pub(crate) fn observe_deleted(&self, name: &str, generation: Generation, since: u64) {
        self.view()
            .learn_with(name, None, Some(generation), Some(since));
    }

    /// Applies a change that storage reported. Notifications may arrive late, twice or out of
    /// order; GCS generations only grow, so a change older than what the view holds is
    /// dropped. Anything stale that gets through costs one failed precondition and a read
    /// when the record is next written, and the scan corrects it in any case.
    pub fn notify(&self, change: Change) {
        let mut view = self.view();
        // The newest generation the view knows of, written or deleted.
        let known = |view: &View, name: &str| {
            view.records
                .get(name)
                .and_then(|seen| seen.state.as_ref().map(|(_, g)| *g).or(seen.removed))
        };
        match change {
            Change::Written(object) if object.name.starts_with(KEYS) => {
                if known(&view, &object.name).is_some_and(|g| g >= object.generation) {
                    return;
                }
                let state = parse(&object).ok().map(|r| (r, object.generation));
                view.learn(&object.name, state, None);
            }
            Change::Deleted { name, generation }
                if name.starts_with(KEYS)
                    && view
                        .records
                        .get(&name)
                        .and_then(|seen| seen.state.as_ref())
                        .is_some_and(|(_, g)| *g <= generation) =>
            {
                view.learn_with(&name, None, Some(generation), None);
            }
            _ => {}
        }
    }

    /// Reads the next page of the rolling scan into the view; a view never filled lists
    /// everything at once. Returns how many list pages it read. After a failed listing the
    /// scan starts over from the first page (a page token may have gone bad).
    pub(crate) async fn scan(&self) -> Result<usize, QueueError> {
        let result = self.scan_step().await;
        if result.is_err() {
            self.view().cursor = None;
        }
        result
    }

    async fn scan_step(&self) -> Result<usize, QueueError> {
        let (filled, cursor, started) = {
            let mut view = self.view();
            view.active = true;
            (view.filled, view.cursor.clone(), view.seq)
        };
        if !filled {
            let objects = list_all(self.storage(), KEYS)
                .await
                .map_err(|e| QueueError::storage("list", KEYS, e))?;
            let pages = objects.len().div_ceil(DEFAULT_PAGE_SIZE).max(1);
            let mut view = self.view();
            view.apply(objects, None, None, started);
            view.filled = true;
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

    /// Whether a whole listing has filled the view.
    pub(crate) fn view_filled(&self) -> bool {
        self.view().filled
    }

    /// A snapshot of the view as it stands (a copy of every record: for tests).
    #[cfg(test)]
    pub(crate) fn view_snapshot(&self) -> super::Snapshot {
        let now = self.now();
        super::Snapshot::new(now, self.view().records())
    }

    /// Runs `f` over the view's records, under its lock.
    pub(crate) fn with_view_records<T>(
        &self,
        f: impl FnOnce(&mut dyn Iterator<Item = (&KeyRecord, Generation)>) -> T,
    ) -> T {
        let view = self.view();
        f(&mut view.records())
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
        let new = KeyRecord::queued(QueuedEntry::new("k/new", 0, None, UNIX_EPOCH));
        view.learn("k/new", Some((new, Generation(5))), None);
        view.learn("k/gone", None, None);
        view.apply(vec![object("k/gone", 1)], None, None, started);
        assert_eq!(names(&view), ["k/new"]);
        view.learn("k/new", None, Some(started));
        assert_eq!(
            names(&view),
            ["k/new"],
            "an answer from before a change is dropped"
        );
    }

    #[tokio::test]
    async fn notify_should_apply_newer_changes_and_drop_older_ones() {
        let queue = Queue::new(
            std::sync::Arc::new(crate::storage::MemoryStorage::new()),
            Default::default(),
        );
        queue.scan().await.unwrap();
        queue.notify(Change::Written(object("k/a", 5)));
        assert_eq!(queue.view_snapshot().queued.len(), 1);
        queue.notify(Change::Deleted {
            name: "k/a".into(),
            generation: Generation(4),
        });
        assert_eq!(queue.view_snapshot().queued.len(), 1, "an older removal");
        queue.notify(Change::Written(object("k/a", 3)));
        assert_eq!(queue.view_snapshot().queued[0].generation, Generation(5));
        queue.notify(Change::Deleted {
            name: "k/a".into(),
            generation: Generation(5),
        });
        assert!(queue.view_snapshot().queued.is_empty());
        queue.notify(Change::Written(object("k/a", 4)));
        assert!(
            queue.view_snapshot().queued.is_empty(),
            "a late write of a deleted generation"
        );
        queue.notify(Change::Written(object("k/a", 6)));
        assert_eq!(queue.view_snapshot().queued.len(), 1, "created again");
        queue.notify(Change::Deleted {
            name: "k/a".into(),
            generation: Generation(6),
        });
        queue.notify(Change::Written(object("slot/00001", 9)));
        assert!(queue.view_snapshot().queued.is_empty(), "not a key record");
    }

    #[tokio::test]
    async fn passes_should_read_one_page_each_and_see_every_change_within_a_cycle() {
        use crate::storage::{CountingStorage, MemoryStorage, Storage};
        use std::sync::Arc;
        use std::time::Duration;
        let storage = Arc::new(CountingStorage::new(Arc::new(MemoryStorage::new())));
        let receiver = Queue::new(storage.clone(), Default::default());
        let hour = Duration::from_secs(3600);
        for i in 0..2500 {
            receiver
                .enqueue(&format!("key-{i:05}"), 0, hour)
                .await
                .unwrap();
        }
        let dispatcher = Queue::new(storage.clone(), Default::default());
        let before = storage.counts();
        assert_eq!(dispatcher.pass(1).await.unwrap().waiting, 2500);
        assert_eq!(
            storage.counts().since(before).list_pages,
            3,
            "a new view lists all"
        );
        // Changes by another process: a key added after the last name, one removed from the
        // first page.
        receiver.enqueue("key-99999", 0, hour).await.unwrap();
        let first = storage.get("k/key-00000").await.unwrap().unwrap();
        storage
            .delete("k/key-00000", first.generation)
            .await
            .unwrap();
        let before = storage.counts();
        let mut seen = Vec::new();
        for _ in 0..3 {
            seen.push(dispatcher.pass(1).await.unwrap().waiting);
        }
        assert_eq!(
            storage.counts().since(before).list_pages,
            3,
            "one page per pass"
        );
        assert_eq!(
            seen.last(),
            Some(&2500),
            "both changes seen within one cycle: {seen:?}"
        );
        let keys: Vec<String> = dispatcher
            .view_snapshot()
            .queued
            .into_iter()
            .map(|q| q.record.key)
            .collect();
        assert!(keys.contains(&"key-99999".to_owned()) && !keys.contains(&"key-00000".to_owned()));
    }

    #[test]
    fn learn_should_keep_nothing_before_the_first_scan() {
        let mut view = View::default();
        view.learn("k/a", None, None);
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
