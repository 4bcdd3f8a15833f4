//! Dispatch triggers: any number of callers may ask for a pass; at most one waits, the rest
//! are shed (docs/architecture.md, "Concurrency and passes").

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

use crate::client::Nudge;
use crate::metrics::{Metrics, TriggerResult};
use crate::notification::{Event, parse_push};
use crate::queue::{Change, Queue};
use crate::storage::Object;

/// A handle that asks the dispatcher for a pass; cheap to clone.
#[derive(Clone, Debug)]
pub struct Trigger {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Set while a pass is pending: later triggers are covered by it and shed.
    pending: AtomicBool,
    notify: Notify,
    metrics: Metrics,
    /// The dispatcher's queue, whose view bucket notifications update.
    queue: Option<Queue>,
}

impl Trigger {
    pub(crate) fn new(metrics: Metrics, queue: Option<Queue>) -> Self {
        Self {
            inner: Arc::new(Inner {
                pending: AtomicBool::new(false),
                notify: Notify::new(),
                metrics,
                queue,
            }),
        }
    }

    /// Takes a push (Pub/Sub, Cloud Scheduler): a bucket notification in `body` updates the
    /// dispatcher's view of that key at once, and any push asks for a pass.
    pub fn push(&self, body: &[u8]) -> TriggerResult {
        if let (Some(queue), Some(notification)) = (&self.inner.queue, parse_push(body))
            && let Some(name) = queue
                .storage()
                .notified_name(&notification.bucket, &notification.object)
        {
            let generation = notification.generation;
            queue.notify(match notification.event {
                Event::Written(metadata) => Change::Written(Object {
                    name,
                    generation,
                    metadata,
                }),
                Event::Removed => Change::Deleted { name, generation },
            });
        }
        self.fire()
    }

    /// Asks for a pass (a receiver's nudge, a push notification, a scheduler tick).
    pub fn fire(&self) -> TriggerResult {
        let result = self.request();
        self.inner.metrics.observe_trigger(result);
        result
    }

    /// Asks for a pass without counting it as an outside trigger (capacity freed up).
    pub(crate) fn pass_again(&self) {
        self.request();
    }

    fn request(&self) -> TriggerResult {
        if self.inner.pending.swap(true, Ordering::AcqRel) {
            TriggerResult::Shed
        } else {
            self.inner.notify.notify_one();
            TriggerResult::Dispatched
        }
    }

    /// Waits until a pass is requested.
    pub(crate) async fn requested(&self) {
        self.inner.notify.notified().await;
    }

    /// Marks the pending request as served: a pass is starting now.
    pub(crate) fn serve(&self) {
        self.inner.pending.store(false, Ordering::Release);
    }
}

impl Nudge for Trigger {
    /// A key stored in this process: a pass, counted as a trigger.
    fn nudge(&self) {
        self.fire();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn fire_should_shed_triggers_while_one_is_pending() {
        let trigger = Trigger::new(Metrics::new(), None);
        assert_eq!(trigger.fire(), TriggerResult::Dispatched);
        assert_eq!(trigger.fire(), TriggerResult::Shed);
        trigger.requested().await;
        trigger.serve();
        assert_eq!(trigger.fire(), TriggerResult::Dispatched);
    }
}
