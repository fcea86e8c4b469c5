//! Generations in flight, each with its own event log, shared by everyone who asked for the same plan.
//!
//! A [`Run`] is one generation: a task that appends every event to the run's log, and any number of
//! [`Listener`]s that read the log from the start and then follow it live. Identical requests that arrive
//! while a run is going join it (coalescing) instead of starting another generation. When the last
//! listener leaves an unfinished run, the run's task is aborted, and with it any upstream call.
//!
//! The registry is in-process. Its interface — join or start by key, read the log from a sequence number —
//! is what a Redis-backed registry (Redis Streams for the log) would offer for several replicas.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use tokio::sync::watch;
use tokio::task::AbortHandle;
use tripstream_domain::StreamEvent;
use tripstream_engine::EventSink;

#[derive(Default)]
pub struct Hub {
    runs: Mutex<HashMap<String, Weak<Run>>>,
}

/// How far a run's log has grown, and whether it will grow more.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Progress {
    events: usize,
    finished: bool,
}

pub struct Run {
    key: String,
    pub stream_id: String,
    log: Mutex<Vec<StreamEvent>>,
    progress: watch::Sender<Progress>,
    listeners: AtomicUsize,
    task: OnceLock<AbortHandle>,
    hub: Weak<Hub>,
}

impl Hub {
    pub fn new() -> Arc<Hub> {
        Arc::new(Hub::default())
    }

    /// Joins the run for `key` if one is going; otherwise creates one and calls `start` with a sink for its
    /// events, which must spawn the generation and return its task. Returns a listener reading the run
    /// from its first event, and whether it joined an existing run.
    pub fn join_or_start(
        self: &Arc<Self>,
        key: &str,
        stream_id: impl FnOnce() -> String,
        start: impl FnOnce(RunSink) -> tokio::task::JoinHandle<()>,
    ) -> (Listener, bool) {
        let mut runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(run) = runs.get(key).and_then(Weak::upgrade)
            && !run.progress.borrow().finished
        {
            return (Listener::new(run), true);
        }
        let run = Arc::new(Run {
            key: key.to_owned(),
            stream_id: stream_id(),
            log: Mutex::new(Vec::new()),
            progress: watch::channel(Progress::default()).0,
            listeners: AtomicUsize::new(0),
            task: OnceLock::new(),
            hub: Arc::downgrade(self),
        });
        runs.insert(key.to_owned(), Arc::downgrade(&run));
        drop(runs);
        let listener = Listener::new(run.clone());
        let task = start(RunSink { run: run.clone() });
        let _ = run.task.set(task.abort_handle());
        (listener, false)
    }

    /// Runs in flight.
    pub fn active(&self) -> usize {
        let runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        runs.values().filter(|r| r.strong_count() > 0).count()
    }

    fn forget(&self, run: &Run) {
        let mut runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        if runs.get(&run.key).is_some_and(|w| std::ptr::eq(w.as_ptr(), run)) {
            runs.remove(&run.key);
        }
    }
}

impl Run {
    fn finish(&self) {
        self.progress.send_modify(|p| p.finished = true);
        if let Some(hub) = self.hub.upgrade() {
            hub.forget(self);
        }
    }
}

/// Where a run's generation writes. Marks the run finished when dropped, however the task ended.
pub struct RunSink {
    run: Arc<Run>,
}

impl RunSink {
    pub fn stream_id(&self) -> &str {
        &self.run.stream_id
    }
}

impl EventSink for RunSink {
    fn emit(&mut self, event: StreamEvent) {
        let mut log = self.run.log.lock().unwrap_or_else(|p| p.into_inner());
        log.push(event);
        let events = log.len();
        drop(log);
        self.run.progress.send_modify(|p| p.events = events);
    }
}

impl Drop for RunSink {
    fn drop(&mut self) {
        self.run.finish();
    }
}

/// One reader of a run: every event from the first, then live, until the run finishes.
pub struct Listener {
    run: Arc<Run>,
    next: usize,
    progress: watch::Receiver<Progress>,
}

impl Listener {
    fn new(run: Arc<Run>) -> Self {
        run.listeners.fetch_add(1, Ordering::SeqCst);
        let progress = run.progress.subscribe();
        Self { run, next: 0, progress }
    }

    pub fn stream_id(&self) -> &str {
        &self.run.stream_id
    }

    /// The next event, waiting for it if need be; `None` once the run has finished and everything has
    /// been read.
    pub async fn next(&mut self) -> Option<StreamEvent> {
        loop {
            let seen = *self.progress.borrow_and_update();
            if self.next < seen.events {
                let event = self.run.log.lock().unwrap_or_else(|p| p.into_inner()).get(self.next).cloned();
                self.next += 1;
                return event;
            }
            if seen.finished {
                return None;
            }
            // The sender lives as long as the run, which this listener holds.
            if self.progress.changed().await.is_err() {
                return None;
            }
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let left = self.run.listeners.fetch_sub(1, Ordering::SeqCst) - 1;
        if left == 0 && !self.run.progress.borrow().finished {
            if let Some(task) = self.run.task.get() {
                tracing::info!(stream_id = %self.run.stream_id, "every client left; cancelling the generation");
                task.abort();
            }
            self.run.finish();
        }
    }
}

#[cfg(test)]
mod tests {
    use tripstream_domain::StreamEvent;

    use super::*;

    fn chunk(n: u8) -> StreamEvent {
        StreamEvent::Chunk(tripstream_domain::event::Chunk {
            content: n.to_string(),
            progress: 31,
            step: tripstream_domain::Step::GenerateDraft,
        })
    }

    #[tokio::test]
    async fn a_late_joiner_reads_from_the_start_and_follows_live() {
        let hub = Hub::new();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (mut first, joined) = hub.join_or_start(
            "k",
            || "str_1".into(),
            |mut sink| {
                tokio::spawn(async move {
                    sink.emit(chunk(1));
                    let _ = rx.await;
                    sink.emit(chunk(2));
                    sink.emit(StreamEvent::Done);
                })
            },
        );
        assert!(!joined);
        assert_eq!(first.next().await, Some(chunk(1)));
        let (mut second, joined) = hub.join_or_start("k", || unreachable!(), |_| unreachable!());
        assert!(joined);
        assert_eq!(second.stream_id(), "str_1");
        assert_eq!(second.next().await, Some(chunk(1)));
        tx.send(()).unwrap();
        for l in [&mut first, &mut second] {
            assert_eq!(l.next().await, Some(chunk(2)));
            assert_eq!(l.next().await, Some(StreamEvent::Done));
            assert_eq!(l.next().await, None);
        }
        // A finished run is not joined: the next request starts afresh (or hits the cache).
        let (_, joined) = hub.join_or_start("k", || "str_2".into(), |_| tokio::spawn(async {}));
        assert!(!joined);
    }

    #[tokio::test]
    async fn the_last_listener_leaving_cancels_the_run() {
        let hub = Hub::new();
        let (dropped_tx, dropped_rx) = tokio::sync::oneshot::channel::<()>();
        struct OnDrop(Option<tokio::sync::oneshot::Sender<()>>);
        impl Drop for OnDrop {
            fn drop(&mut self) {
                let _ = self.0.take().unwrap().send(());
            }
        }
        let guard = OnDrop(Some(dropped_tx));
        let (a, _) = hub.join_or_start(
            "k",
            || "s".into(),
            |sink| {
                tokio::spawn(async move {
                    let _held = (sink, guard);
                    std::future::pending::<()>().await;
                })
            },
        );
        let (b, joined) = hub.join_or_start("k", || unreachable!(), |_| unreachable!());
        assert!(joined);
        drop(a);
        assert_eq!(hub.active(), 1, "one listener remains");
        drop(b);
        dropped_rx.await.expect("the generation task was aborted");
        assert_eq!(hub.active(), 0);
    }
}
