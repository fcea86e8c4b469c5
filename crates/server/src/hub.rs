//! Generations as jobs, decoupled from the connections that watch them.
//!
//! A [`Run`] is one generation: a task that appends every event to the run's log (the per-stream
//! sequence number of an event is its index, the SSE `id:`), and any number of [`Listener`]s that read
//! the log from any point and then follow it live. Identical requests that arrive while a run is going
//! join it (coalescing); a client whose connection dropped resumes it by stream id from the last event it
//! saw. A run whose listeners have all gone is cancelled after a grace period (its upstream call is
//! closed), and a finished run stays readable for a while so late resumes still get their tail.
//!
//! The registry is in-process; with Redis, each run's events are also mirrored to a Redis Stream (see
//! `tripstream_adapters::eventlog`), which is how other replicas serve and take over streams this one
//! produces. Coalescing stays per replica.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tripstream_adapters::eventlog::RedisEventLog;
use tripstream_domain::{PlanRequest, RawPlanRequest, StreamEvent};
use tripstream_engine::EventSink;

/// The request in the contract's JSON form, for replicas that resume a stream from the shared log.
fn raw_request_json(request: &PlanRequest) -> String {
    let raw = RawPlanRequest {
        location: Some(request.location.as_str().to_owned()),
        start_date: Some(request.dates.start().to_string()),
        end_date: Some(request.dates.end().to_string()),
        budget: Some(request.budget.as_str().to_owned()),
        language: Some(request.language.as_str().to_owned()),
        travelers: Some(i64::from(request.travelers)),
        interests: Some(request.interests.clone()),
    };
    serde_json::to_string(&raw).unwrap_or_default()
}

#[derive(Debug, Clone, Copy)]
pub struct HubConfig {
    /// How long a run with no listener goes on before it is cancelled (0: at once).
    pub cancel_grace: Duration,
    /// How long a finished run stays readable for resumes.
    pub retention: Duration,
}

impl Default for HubConfig {
    fn default() -> Self {
        Self { cancel_grace: Duration::from_secs(30), retention: Duration::from_secs(120) }
    }
}

pub struct Hub {
    maps: Mutex<Maps>,
    config: HubConfig,
    /// This replica's name in the shared log's leases.
    pub replica: String,
    /// With Redis, every run's events are mirrored there, so other replicas can serve its stream.
    log: Option<RedisEventLog>,
}

#[derive(Default)]
struct Maps {
    /// The latest run of each request key, finished or not.
    by_key: HashMap<String, Arc<Run>>,
    by_stream: HashMap<String, Arc<Run>>,
    /// `Idempotency-Key` → stream id.
    by_idempotency: HashMap<String, String>,
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
    /// What was asked, for the run log of connections that resume it.
    pub request: PlanRequest,
    idempotency_key: Option<String>,
    /// Shared, not copied, by every listener that reads it.
    log: Mutex<Vec<Arc<StreamEvent>>>,
    progress: watch::Sender<Progress>,
    listeners: AtomicUsize,
    /// Cancelled to stop the generation early: it then ends with a `cancelled` error and `done`.
    cancel: CancellationToken,
    hub: Weak<Hub>,
}

impl Hub {
    pub fn new(config: HubConfig, log: Option<RedisEventLog>) -> Arc<Hub> {
        let replica = tripstream_domain::plan::prefixed_id("rep_", uuid::Uuid::now_v7().as_u128());
        Arc::new(Hub { maps: Mutex::default(), config, replica, log })
    }

    /// The shared event log, when there is one.
    pub fn shared_log(&self) -> Option<&RedisEventLog> {
        self.log.as_ref()
    }

    /// A sink for a new run, mirroring to the shared log when there is one.
    fn sink(&self, run: &Arc<Run>) -> RunSink {
        let mirror =
            self.log.as_ref().map(|log| log.writer(&run.stream_id, raw_request_json(&run.request), &self.replica));
        RunSink { run: run.clone(), mirror }
    }

    fn maps(&self) -> std::sync::MutexGuard<'_, Maps> {
        self.maps.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A listener on the run `key` names, or on a new run started with `start` (which must spawn the
    /// generation, writing to the sink and stopping when the token is cancelled). Returns whether an
    /// existing run was joined.
    pub fn join_or_start(
        self: &Arc<Self>,
        key: &str,
        request: &PlanRequest,
        idempotency_key: Option<&str>,
        stream_id: impl FnOnce() -> String,
        start: impl FnOnce(RunSink, CancellationToken) -> tokio::task::JoinHandle<()>,
    ) -> (Listener, bool) {
        let mut maps = self.maps();
        let existing = idempotency_key
            .and_then(|k| maps.by_idempotency.get(k))
            .and_then(|id| maps.by_stream.get(id))
            .or_else(|| maps.by_key.get(key).filter(|r| !r.is_finished()))
            .cloned();
        if let Some(run) = existing {
            return (Listener::new(run, 0), true);
        }
        let run = Arc::new(Run {
            key: key.to_owned(),
            stream_id: stream_id(),
            request: request.clone(),
            idempotency_key: idempotency_key.map(str::to_owned),
            log: Mutex::new(Vec::new()),
            progress: watch::channel(Progress::default()).0,
            listeners: AtomicUsize::new(0),
            cancel: CancellationToken::new(),
            hub: Arc::downgrade(self),
        });
        maps.by_key.insert(key.to_owned(), run.clone());
        maps.by_stream.insert(run.stream_id.clone(), run.clone());
        if let Some(k) = idempotency_key {
            maps.by_idempotency.insert(k.to_owned(), run.stream_id.clone());
        }
        drop(maps);
        let listener = Listener::new(run.clone(), 0);
        start(self.sink(&run), run.cancel.clone());
        (listener, false)
    }

    /// Registers a run that is already complete (a cached plan's replay), so that its stream can be
    /// resumed like any other.
    pub fn completed(
        self: &Arc<Self>,
        key: &str,
        request: &PlanRequest,
        stream_id: String,
        events: Vec<StreamEvent>,
    ) -> Arc<Run> {
        let progress = Progress { events: events.len(), finished: true };
        let run = Arc::new(Run {
            key: key.to_owned(),
            stream_id,
            request: request.clone(),
            idempotency_key: None,
            log: Mutex::new(events.into_iter().map(Arc::new).collect()),
            progress: watch::channel(progress).0,
            listeners: AtomicUsize::new(0),
            cancel: CancellationToken::new(),
            hub: Arc::downgrade(self),
        });
        let mut maps = self.maps();
        maps.by_key.insert(key.to_owned(), run.clone());
        maps.by_stream.insert(run.stream_id.clone(), run.clone());
        drop(maps);
        if let Some(log) = &self.log {
            let mirror = log.writer(&run.stream_id, raw_request_json(&run.request), &self.replica);
            for (seq, event) in run.log.lock().unwrap_or_else(|p| p.into_inner()).iter().enumerate() {
                let _ = mirror.send((seq, serde_json::to_string(&**event).unwrap_or_default()));
            }
        }
        self.clone().retire(&run);
        run
    }

    /// The latest run of `key` (a reconnecting client re-sending its request), read from `from`.
    pub fn resume_by_key(&self, key: &str, from: usize) -> Option<Listener> {
        let run = self.maps().by_key.get(key).cloned()?;
        Some(Listener::new(run, from))
    }

    /// The run of an `Idempotency-Key` seen before, read from `from`.
    pub fn resume_by_idempotency(&self, idempotency_key: &str, from: usize) -> Option<Listener> {
        let maps = self.maps();
        let run = maps.by_idempotency.get(idempotency_key).and_then(|id| maps.by_stream.get(id)).cloned()?;
        drop(maps);
        Some(Listener::new(run, from))
    }

    pub fn run(&self, stream_id: &str) -> Option<Arc<Run>> {
        self.maps().by_stream.get(stream_id).cloned()
    }

    /// Runs still generating.
    pub fn active(&self) -> usize {
        self.maps().by_stream.values().filter(|r| !r.is_finished()).count()
    }

    /// A finished run stays readable for the retention period, then is forgotten.
    fn retire(self: Arc<Self>, run: &Arc<Run>) {
        let (stream_id, key, idem) = (run.stream_id.clone(), run.key.clone(), run.idempotency_key.clone());
        let retention = self.config.retention;
        let forget = move || {
            let mut maps = self.maps();
            let same = |r: &Arc<Run>| r.stream_id == stream_id;
            if maps.by_key.get(&key).is_some_and(same) {
                maps.by_key.remove(&key);
            }
            maps.by_stream.remove(&stream_id);
            if let Some(k) = idem {
                maps.by_idempotency.remove(&k);
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) if !retention.is_zero() => {
                rt.spawn(async move {
                    tokio::time::sleep(retention).await;
                    forget();
                });
            }
            _ => forget(),
        }
    }
}

impl Run {
    pub fn is_finished(&self) -> bool {
        self.progress.borrow().finished
    }

    /// Events in the log so far.
    pub fn len(&self) -> usize {
        self.progress.borrow().events
    }

    /// Stops the generation now: listeners get `cancelled`, then `done`. False if it had already ended.
    pub fn cancel(&self) -> bool {
        let running = !self.is_finished();
        self.cancel.cancel();
        running
    }

    fn finish(self: &Arc<Self>) {
        let mut first = false;
        self.progress.send_modify(|p| {
            first = !p.finished;
            p.finished = true;
        });
        if first && let Some(hub) = self.hub.upgrade() {
            hub.retire(self);
        }
    }
}

/// Where a run's generation writes. Marks the run finished when dropped, however the task ended.
pub struct RunSink {
    run: Arc<Run>,
    mirror: Option<tokio::sync::mpsc::UnboundedSender<tripstream_adapters::eventlog::Entry>>,
}

impl RunSink {
    pub fn stream_id(&self) -> &str {
        &self.run.stream_id
    }
}

impl EventSink for RunSink {
    fn emit(&mut self, event: StreamEvent) {
        if let Some(mirror) = &self.mirror {
            let seq = self.run.len();
            let _ = mirror.send((seq, serde_json::to_string(&event).unwrap_or_default()));
        }
        let mut log = self.run.log.lock().unwrap_or_else(|p| p.into_inner());
        log.push(Arc::new(event));
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

/// One reader of a run: every event from a sequence number on, then live, until the run finishes.
pub struct Listener {
    run: Arc<Run>,
    next: usize,
    progress: watch::Receiver<Progress>,
}

impl Listener {
    fn new(run: Arc<Run>, from: usize) -> Self {
        run.listeners.fetch_add(1, Ordering::SeqCst);
        let progress = run.progress.subscribe();
        Self { run, next: from, progress }
    }

    /// A listener on `run` from sequence number `from`.
    pub fn on(run: Arc<Run>, from: usize) -> Self {
        Self::new(run, from)
    }

    pub fn stream_id(&self) -> &str {
        &self.run.stream_id
    }

    pub fn run(&self) -> &Arc<Run> {
        &self.run
    }

    /// The sequence number of the next event.
    pub fn position(&self) -> usize {
        self.next
    }

    /// The next event and its sequence number, waiting for it if need be; `None` once the run has
    /// finished and everything has been read.
    pub async fn next(&mut self) -> Option<(usize, Arc<StreamEvent>)> {
        loop {
            let seen = *self.progress.borrow_and_update();
            if self.next < seen.events {
                let seq = self.next;
                let event = self.run.log.lock().unwrap_or_else(|p| p.into_inner()).get(seq).cloned();
                self.next += 1;
                return event.map(|e| (seq, e));
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
        if left > 0 || self.run.is_finished() {
            return;
        }
        let grace = self.run.hub.upgrade().map_or(Duration::ZERO, |h| h.config.cancel_grace);
        let run = self.run.clone();
        let abandon = move || {
            if run.listeners.load(Ordering::SeqCst) == 0 && !run.is_finished() {
                tracing::info!(stream_id = %run.stream_id, "nobody is listening; cancelling the generation");
                run.cancel.cancel();
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) if !grace.is_zero() => {
                rt.spawn(async move {
                    tokio::time::sleep(grace).await;
                    abandon();
                });
            }
            _ => abandon(),
        }
    }
}

#[cfg(test)]
mod tests {
    use tripstream_domain::request::{RawPlanRequest, RequestLimits};

    use super::*;

    fn chunk(n: u8) -> StreamEvent {
        StreamEvent::Chunk(tripstream_domain::event::Chunk {
            content: n.to_string(),
            progress: 31,
            step: tripstream_domain::Step::GenerateDraft,
        })
    }

    async fn read(listener: &mut Listener) -> Option<(usize, StreamEvent)> {
        listener.next().await.map(|(seq, event)| (seq, (*event).clone()))
    }

    fn request() -> PlanRequest {
        let raw = RawPlanRequest {
            location: Some("Seoul".into()),
            start_date: Some("2025-11-10".into()),
            end_date: Some("2025-11-10".into()),
            budget: Some("low".into()),
            ..RawPlanRequest::default()
        };
        PlanRequest::parse(raw, None, RequestLimits::default()).unwrap()
    }

    #[tokio::test]
    async fn a_late_joiner_reads_from_the_start_and_a_resume_from_where_it_left() {
        let hub = Hub::new(HubConfig::default(), None);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (mut first, joined) = hub.join_or_start(
            "k",
            &request(),
            None,
            || "str_1".into(),
            |mut sink, _| {
                tokio::spawn(async move {
                    sink.emit(chunk(1));
                    let _ = rx.await;
                    sink.emit(chunk(2));
                    sink.emit(StreamEvent::Done);
                })
            },
        );
        assert!(!joined);
        assert_eq!(read(&mut first).await, Some((0, chunk(1))));
        let (mut second, joined) = hub.join_or_start("k", &request(), None, || unreachable!(), |_, _| unreachable!());
        assert!(joined);
        assert_eq!(second.stream_id(), "str_1");
        assert_eq!(read(&mut second).await, Some((0, chunk(1))));
        tx.send(()).unwrap();
        for l in [&mut first, &mut second] {
            assert_eq!(read(l).await, Some((1, chunk(2))));
            assert_eq!(read(l).await, Some((2, StreamEvent::Done)));
            assert_eq!(read(l).await, None);
        }
        // Finished: not joined by a new request, but still there for a resume.
        let mut resumed = hub.resume_by_key("k", 2).unwrap();
        assert_eq!(read(&mut resumed).await, Some((2, StreamEvent::Done)));
        assert!(hub.run("str_1").unwrap().is_finished());
        let (_, joined) = hub.join_or_start("k", &request(), None, || "str_2".into(), |_, _| tokio::spawn(async {}));
        assert!(!joined);
    }

    #[tokio::test(start_paused = true)]
    async fn a_run_nobody_listens_to_is_cancelled_after_the_grace_period() {
        let hub =
            Hub::new(HubConfig { cancel_grace: Duration::from_secs(30), retention: Duration::from_secs(60) }, None);
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        let (a, _) = hub.join_or_start(
            "k",
            &request(),
            None,
            || "s".into(),
            |mut sink, cancel| {
                tokio::spawn(async move {
                    cancel.cancelled().await;
                    sink.emit(StreamEvent::Done);
                    let _ = done_tx.send(());
                })
            },
        );
        drop(a);
        tokio::time::sleep(Duration::from_secs(29)).await;
        assert!(!hub.run("s").unwrap().is_finished(), "still within the grace period");
        // A client that comes back in time keeps it going.
        let back = hub.resume_by_key("k", 0).unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(!hub.run("s").unwrap().is_finished());
        drop(back);
        done_rx.await.unwrap();
        assert!(hub.run("s").unwrap().is_finished());
        tokio::time::sleep(Duration::from_secs(61)).await;
        assert!(hub.run("s").is_none(), "forgotten after the retention period");
    }
}
