//! This replica's runs and the callers' handles on them. A run is one generation's event log in memory,
//! read by any number of [`Listener`]s from any sequence number and then live. Identical requests find the
//! run in flight (coalescing), but each caller holds a [`Handle`] of its own: its own stream id, owner and
//! resume token, and its own cancellation. A reconnecting client finds a run by request or
//! `Idempotency-Key` (scoped to the caller and bound to the request). A run whose listeners have all gone
//! is cancelled after a grace period; a finished run (and its handles) stays readable for the retention
//! period.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tripstream_adapters::eventlog::{Entry, LogWriter};
use tripstream_domain::{PlanRequest, StreamEvent};
use tripstream_engine::EventSink;

#[derive(Debug, Clone, Copy)]
pub struct RegistryConfig {
    /// How long a run with no listener goes on before it is cancelled (0: at once).
    pub cancel_grace: Duration,
    /// How long a finished run stays readable.
    pub retention: Duration,
    /// Bytes (about) the finished runs may hold; beyond it the oldest are forgotten first.
    pub finished_bytes: usize,
}

pub struct Registry {
    maps: Mutex<Maps>,
    config: RegistryConfig,
    /// Runs still generating, counted as they start and finish (no scan under the lock).
    running: AtomicUsize,
    /// Finished runs, oldest first, with the bytes each holds (those already forgotten leave from the
    /// front).
    finished: Mutex<VecDeque<(Arc<Run>, usize)>>,
    finished_bytes: AtomicUsize,
    /// Runs the retention and grace timers.
    tasks: TaskTracker,
    /// Cancelled when the replica stops: timers end at once.
    stopped: CancellationToken,
}

#[derive(Default)]
struct Maps {
    /// The latest run of each request key, finished or not.
    by_key: HashMap<String, Arc<Run>>,
    /// Runs by their (internal) stream id.
    by_stream: HashMap<String, Arc<Run>>,
    /// Callers' handles by the stream id they were given.
    by_handle: HashMap<String, Arc<Handle>>,
    /// A caller's `Idempotency-Key` (`scope` + key) → the request key it was used with, and its run.
    by_idempotency: HashMap<String, (String, String)>,
}

/// Who a stream belongs to: the key that started or joined it, or an anonymous caller (who proves it is
/// theirs with the resume token alone).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Owner {
    Key(String),
    Anonymous,
}

/// A caller's hold on a run: the stream id they were given, who they are, the digest of their resume
/// token, and where their stream was cut off if they cancelled it while others still read the run.
pub struct Handle {
    pub id: String,
    pub run: Arc<Run>,
    pub owner: Owner,
    pub token: [u8; 32],
    cancelled: AtomicBool,
    cut: watch::Sender<Option<u64>>,
}

impl Handle {
    /// Where this caller's stream ends (its own `cancelled`, then `done`), if they cancelled it.
    pub fn cut_at(&self) -> watch::Receiver<Option<u64>> {
        self.cut.subscribe()
    }

    /// Cuts this caller's stream off at the run's next event.
    fn cut(&self) {
        let at = self.run.next_seq();
        self.cut.send_if_modified(|cut| cut.is_none() && cut.replace(at).is_none());
    }
}

/// How far a run's log has grown, and whether it will grow more.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Progress {
    events: usize,
    finished: bool,
}

/// A run to register: what it is for, and where its log starts.
pub struct NewRun<'a> {
    pub key: &'a str,
    pub stream_id: String,
    pub request: &'a PlanRequest,
    /// The caller's scoped `Idempotency-Key`, if they sent one.
    pub idempotency_key: Option<&'a str>,
    /// The sequence number of its first event here: 0, or where a taken-over stream goes on.
    pub first_seq: u64,
}

pub struct Run {
    key: String,
    /// Internal: never shown to a client, who sees their handle's id.
    pub stream_id: String,
    /// What was asked, for the run log of connections that attach to it.
    pub request: PlanRequest,
    /// The scoped `Idempotency-Key`s and the handles that lead here, forgotten with the run.
    aliases: Mutex<Vec<Alias>>,
    /// Handles that have not cancelled.
    active_handles: AtomicUsize,
    /// The sequence number of `log[0]`.
    first_seq: u64,
    /// Shared, not copied, by every listener that reads it.
    log: Mutex<Vec<Arc<StreamEvent>>>,
    progress: watch::Sender<Progress>,
    listeners: AtomicUsize,
    /// About how many bytes its own events hold (a replay's are shared with the cache's: none).
    bytes: AtomicUsize,
    /// Forgotten by the registry (by the retention timer, or the byte budget).
    forgotten: AtomicBool,
    /// Another replica took the stream over: its end is in the shared log, not here.
    moved: AtomicBool,
    /// Cancelled to stop the generation early: it then ends with a `cancelled` error and `done`.
    cancel: CancellationToken,
    registry: Weak<Registry>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Registry {
    pub fn new(config: RegistryConfig, tasks: TaskTracker, stopped: CancellationToken) -> Arc<Registry> {
        Arc::new(Registry {
            maps: Mutex::default(),
            config,
            running: AtomicUsize::new(0),
            finished: Mutex::default(),
            finished_bytes: AtomicUsize::new(0),
            tasks,
            stopped,
        })
    }

    fn maps(&self) -> MutexGuard<'_, Maps> {
        lock(&self.maps)
    }

    /// The unfinished run of the same request that a new caller would join, if any.
    pub fn joinable(&self, key: &str) -> Option<Arc<Run>> {
        self.maps().by_key.get(key).filter(|r| !r.is_finished() && r.first_seq == 0).cloned()
    }

    /// The unfinished run of the same request, or a new run registered and handed to `start`, which must
    /// begin its generation. Returns whether an existing run was joined. The caller's `Idempotency-Key`
    /// leads to the run from now on.
    pub fn join_or_start(self: &Arc<Self>, new: NewRun<'_>, start: impl FnOnce(&Arc<Run>)) -> (Arc<Run>, bool) {
        let mut maps = self.maps();
        let existing = maps.by_key.get(new.key).filter(|r| !r.is_finished() && r.first_seq == 0).cloned();
        if let Some(run) = existing {
            if let Some(k) = new.idempotency_key {
                Self::remember_idempotency(&mut maps, &run, k);
            }
            return (run, true);
        }
        let run = self.register(&mut maps, new, Progress::default(), Vec::new());
        drop(maps);
        start(&run);
        (run, false)
    }

    fn remember_idempotency(maps: &mut Maps, run: &Arc<Run>, scoped_key: &str) {
        maps.by_idempotency.insert(scoped_key.to_owned(), (run.key.clone(), run.stream_id.clone()));
        lock(&run.aliases).push(Alias::Idempotency(scoped_key.to_owned()));
    }

    /// A new handle on `run` for a caller.
    pub fn attach(&self, run: &Arc<Run>, owner: Owner, token: [u8; 32], id: String) -> Arc<Handle> {
        let cut = watch::channel(None).0;
        let handle = Arc::new(Handle { id, run: run.clone(), owner, token, cancelled: AtomicBool::new(false), cut });
        run.active_handles.fetch_add(1, Ordering::SeqCst);
        lock(&run.aliases).push(Alias::Handle(handle.id.clone()));
        self.maps().by_handle.insert(handle.id.clone(), handle.clone());
        handle
    }

    pub fn handle(&self, id: &str) -> Option<Arc<Handle>> {
        self.maps().by_handle.get(id).cloned()
    }

    /// Cancels a caller's stream: the run itself when no other caller holds it (its listeners get the
    /// generation's own `cancelled` with the days so far and the tokens spent), else only this caller's
    /// stream, cut off at the run's next event. False if it had already ended.
    pub fn cancel(&self, handle: &Handle) -> bool {
        if handle.run.is_finished() || handle.cancelled.swap(true, Ordering::SeqCst) {
            return false;
        }
        let before = handle.run.active_handles.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if before.unwrap_or(0) <= 1 {
            return handle.run.cancel();
        }
        handle.cut();
        true
    }

    /// Registers a stream taken over from another replica, running from `new.first_seq`.
    pub fn taken_over(self: &Arc<Self>, new: NewRun<'_>) -> Arc<Run> {
        self.register(&mut self.maps(), new, Progress::default(), Vec::new())
    }

    /// Registers a run that is already complete (a cached plan's replay), so that its stream can be
    /// resumed like any other.
    pub fn completed(self: &Arc<Self>, new: NewRun<'_>, events: Vec<Arc<StreamEvent>>) -> Arc<Run> {
        let progress = Progress { events: events.len(), finished: true };
        let run = self.register(&mut self.maps(), new, progress, events);
        self.clone().retire(&run);
        run
    }

    fn register(
        self: &Arc<Self>,
        maps: &mut Maps,
        new: NewRun<'_>,
        progress: Progress,
        events: Vec<Arc<StreamEvent>>,
    ) -> Arc<Run> {
        let run = Arc::new(Run {
            key: new.key.to_owned(),
            stream_id: new.stream_id,
            request: new.request.clone(),
            aliases: Mutex::default(),
            active_handles: AtomicUsize::new(0),
            first_seq: new.first_seq,
            log: Mutex::new(events),
            progress: watch::channel(progress).0,
            listeners: AtomicUsize::new(0),
            cancel: CancellationToken::new(),
            registry: Arc::downgrade(self),
            bytes: AtomicUsize::new(0),
            forgotten: AtomicBool::new(false),
            moved: AtomicBool::new(false),
        });
        if !progress.finished {
            self.running.fetch_add(1, Ordering::Relaxed);
        }
        // A taken-over run holds only the end of its stream: it is not joined by new requests.
        if run.first_seq == 0 {
            maps.by_key.insert(run.key.clone(), run.clone());
        }
        maps.by_stream.insert(run.stream_id.clone(), run.clone());
        if let Some(k) = new.idempotency_key {
            Self::remember_idempotency(maps, &run, k);
        }
        run
    }

    /// The latest run of a request key (a reconnecting client re-sending its request).
    pub fn by_key(&self, key: &str) -> Option<Arc<Run>> {
        self.maps().by_key.get(key).cloned()
    }

    /// The request key a caller's scoped `Idempotency-Key` was used with, and its run if still here.
    pub fn by_idempotency(&self, scoped_key: &str) -> Option<(String, Option<Arc<Run>>)> {
        let maps = self.maps();
        let (request_key, stream_id) = maps.by_idempotency.get(scoped_key)?;
        Some((request_key.clone(), maps.by_stream.get(stream_id).cloned()))
    }

    #[cfg(test)]
    fn run(&self, stream_id: &str) -> Option<Arc<Run>> {
        self.maps().by_stream.get(stream_id).cloned()
    }

    /// Runs still generating.
    pub fn active(&self) -> usize {
        self.running.load(Ordering::Relaxed)
    }

    /// Runs `then` after `wait`, or at once when the replica stops.
    fn after(&self, wait: Duration, then: impl FnOnce() + Send + 'static) {
        if wait.is_zero() || self.stopped.is_cancelled() {
            return then();
        }
        let stopped = self.stopped.clone();
        self.tasks.spawn(async move {
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = stopped.cancelled() => {}
            }
            then();
        });
    }

    /// A finished run stays readable for the retention period, within the finished runs' byte budget
    /// (the oldest go first when it is full), then is forgotten with its handles.
    fn retire(self: Arc<Self>, run: &Arc<Run>) {
        let bytes = run.bytes.load(Ordering::Relaxed);
        self.finished_bytes.fetch_add(bytes, Ordering::Relaxed);
        let mut finished = lock(&self.finished);
        finished.push_back((run.clone(), bytes));
        // Oldest first: those the retention timer already forgot, then, over the budget, the oldest held.
        while let Some((oldest, _)) = finished.front() {
            let over = self.finished_bytes.load(Ordering::Relaxed) > self.config.finished_bytes;
            if !oldest.forgotten.load(Ordering::SeqCst) && !over {
                break;
            }
            let (oldest, _) = finished.pop_front().expect("there is a front");
            if !oldest.forgotten.load(Ordering::SeqCst) {
                self.forget(&oldest);
                metrics::counter!("tripstream_finished_streams_evicted_total").increment(1);
            }
        }
        drop(finished);
        let registry = self.clone();
        let run = run.clone();
        self.after(self.config.retention, move || registry.forget(&run));
    }

    /// Forgets a finished run, once, with everything that leads to it.
    fn forget(&self, run: &Arc<Run>) {
        if run.forgotten.swap(true, Ordering::SeqCst) {
            return;
        }
        self.finished_bytes.fetch_sub(run.bytes.load(Ordering::Relaxed), Ordering::Relaxed);
        let mut maps = self.maps();
        let same = |r: &Arc<Run>| r.stream_id == run.stream_id;
        if maps.by_key.get(&run.key).is_some_and(same) {
            maps.by_key.remove(&run.key);
        }
        maps.by_stream.remove(&run.stream_id);
        for alias in lock(&run.aliases).drain(..) {
            match alias {
                Alias::Handle(id) => maps.by_handle.remove(&id).map(drop),
                Alias::Idempotency(k) => maps.by_idempotency.remove(&k).map(drop),
            };
        }
    }
}

/// About how many bytes an event holds: its text, and a rough figure per activity of a day or plan.
pub(super) fn approximate_size(event: &StreamEvent) -> usize {
    const OVERHEAD: usize = 96;
    const PER_ACTIVITY: usize = 320;
    let activities = |days: &[tripstream_domain::plan::Day]| days.iter().map(|d| d.activities.len()).sum::<usize>();
    OVERHEAD
        + match event {
            StreamEvent::Status(m) | StreamEvent::Progress(m) => m.message.len(),
            StreamEvent::Chunk(c) => c.content.len(),
            StreamEvent::Day(d) => PER_ACTIVITY * d.day.activities.len(),
            StreamEvent::Complete(c) => PER_ACTIVITY * activities(&c.plan.days) + 512,
            StreamEvent::Error(f) => {
                f.message.len() + f.partial_days.as_deref().map_or(0, |d| PER_ACTIVITY * activities(d))
            }
            StreamEvent::Done => 0,
        }
}

/// A name that leads to a run, forgotten with it.
enum Alias {
    Handle(String),
    Idempotency(String),
}

impl Run {
    pub fn is_finished(&self) -> bool {
        self.progress.borrow().finished
    }

    /// The sequence number the next event will get.
    pub fn next_seq(&self) -> u64 {
        self.first_seq + self.progress.borrow().events as u64
    }

    /// Whether this replica's log holds the event numbered `seq` or later ones (a taken-over run does
    /// not hold the stream's beginning).
    pub fn holds(&self, seq: u64) -> bool {
        seq >= self.first_seq
    }

    /// Whether another replica took the stream over from this one: the rest of it is in the shared log.
    pub fn is_moved(&self) -> bool {
        self.moved.load(Ordering::SeqCst)
    }

    /// Stops the generation now: listeners get `cancelled`, then `done`. False if it had already ended.
    pub fn cancel(&self) -> bool {
        let running = !self.is_finished();
        self.cancel.cancel();
        running
    }

    /// Cancelled when the generation must stop.
    pub fn cancellation(&self) -> CancellationToken {
        self.cancel.clone()
    }

    fn finish(self: &Arc<Self>) {
        let mut first = false;
        self.progress.send_modify(|p| {
            first = !p.finished;
            p.finished = true;
        });
        if first && let Some(registry) = self.registry.upgrade() {
            registry.running.fetch_sub(1, Ordering::Relaxed);
            registry.retire(self);
        }
    }
}

/// Where a run's generation writes: the run's log here and, with a shared log, the shared one. Keeps
/// progress from going below `floor` (a taken-over stream never goes back on what it showed). Marks the
/// run finished when dropped, however the task ended.
pub struct RunSink {
    run: Arc<Run>,
    shared: Option<Box<dyn LogWriter>>,
    floor: u8,
}

impl RunSink {
    pub fn new(run: Arc<Run>, shared: Option<Box<dyn LogWriter>>, floor: u8) -> Self {
        Self { run, shared, floor }
    }

    pub fn stream_id(&self) -> &str {
        &self.run.stream_id
    }

    /// Ends the run here because another replica took its stream over: a status for this replica's
    /// listeners alone (it is not logged, and the other replica numbers its events past it), then the
    /// run is finished as moved, and they read on from the shared log.
    pub fn move_away(mut self, language: tripstream_domain::Language) {
        self.shared = None;
        let last = lock(&self.run.log).iter().rev().find_map(|e| Some((e.progress()?, e.step()?)));
        let (progress, step) = last.unwrap_or((0, tripstream_domain::Step::GatherContext));
        self.run.moved.store(true, Ordering::SeqCst);
        self.emit(StreamEvent::Status(tripstream_domain::event::StepMessage {
            message: tripstream_domain::messages::moved(language),
            progress,
            step,
            iteration: None,
        }));
    }
}

impl EventSink for RunSink {
    fn emit(&mut self, mut event: StreamEvent) {
        if self.floor > 0 {
            event.raise_progress(self.floor);
            self.floor = event.progress().unwrap_or(self.floor);
        }
        self.run.bytes.fetch_add(approximate_size(&event), Ordering::Relaxed);
        let event = Arc::new(event);
        let mut log = lock(&self.run.log);
        let seq = self.run.first_seq + log.len() as u64;
        log.push(event.clone());
        let events = log.len();
        drop(log);
        if let Some(shared) = &mut self.shared {
            shared.append(Entry { seq, event });
        }
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
    next: u64,
    progress: watch::Receiver<Progress>,
}

impl Listener {
    fn new(run: Arc<Run>, from: u64) -> Self {
        run.listeners.fetch_add(1, Ordering::SeqCst);
        let progress = run.progress.subscribe();
        let next = from.max(run.first_seq);
        Self { run, next, progress }
    }

    /// A listener on `run` from sequence number `from`.
    pub fn on(run: Arc<Run>, from: u64) -> Self {
        Self::new(run, from)
    }

    pub fn run(&self) -> &Arc<Run> {
        &self.run
    }

    /// The sequence number of the next event it reads.
    pub fn next_seq(&self) -> u64 {
        self.next
    }

    /// The days the run's draft had sent before sequence number `seq`.
    pub fn days_before(&self, seq: u64) -> Vec<tripstream_domain::plan::Day> {
        let end = seq.saturating_sub(self.run.first_seq) as usize;
        let log = lock(&self.run.log);
        let events = &log[..end.min(log.len())];
        events
            .iter()
            .filter_map(|e| match &**e {
                StreamEvent::Day(d) => Some(d.day.clone()),
                _ => None,
            })
            .collect()
    }

    /// Whether everything has been read from a finished run: nothing will come (here, nor from the
    /// shared log when the run moved to another replica).
    pub fn is_exhausted(&self) -> bool {
        self.run.is_finished() && !self.run.is_moved() && self.next >= self.run.next_seq()
    }

    /// The next event and its sequence number, waiting for it if need be; `None` once the run has
    /// finished and everything has been read.
    pub async fn next(&mut self) -> Option<(u64, Arc<StreamEvent>)> {
        loop {
            let seen = *self.progress.borrow_and_update();
            let index = (self.next - self.run.first_seq) as usize;
            if index < seen.events {
                let seq = self.next;
                let event = lock(&self.run.log).get(index).cloned();
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
        let Some(registry) = self.run.registry.upgrade() else { return };
        let run = self.run.clone();
        let stopping = registry.stopped.clone();
        registry.after(registry.config.cancel_grace, move || {
            // A stopping replica ends its runs itself, handing them over when the log is shared: a
            // cancel here would race that and end, for every replica, a stream another could finish.
            if stopping.is_cancelled() {
                return;
            }
            if run.listeners.load(Ordering::SeqCst) == 0 && !run.is_finished() {
                tracing::info!(stream_id = %run.stream_id, "nobody is listening; cancelling the generation");
                run.cancel.cancel();
            }
        });
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

    async fn read(listener: &mut Listener) -> Option<(u64, StreamEvent)> {
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

    /// A registry with a 30 s cancel grace and a 600 s retention, and the token that stops its replica.
    fn stoppable_registry() -> (Arc<Registry>, TaskTracker, CancellationToken) {
        let tasks = TaskTracker::new();
        let stopped = CancellationToken::new();
        let config = RegistryConfig {
            cancel_grace: Duration::from_secs(30),
            retention: Duration::from_secs(600),
            finished_bytes: usize::MAX,
        };
        (Registry::new(config, tasks.clone(), stopped.clone()), tasks, stopped)
    }

    fn registry(cancel_grace: Duration, retention: Duration) -> (Arc<Registry>, TaskTracker) {
        let tasks = TaskTracker::new();
        let config = RegistryConfig { cancel_grace, retention, finished_bytes: usize::MAX };
        (Registry::new(config, tasks.clone(), CancellationToken::new()), tasks)
    }

    fn new_run<'a>(request: &'a PlanRequest, id: &str) -> NewRun<'a> {
        NewRun { key: "k", stream_id: id.into(), request, idempotency_key: None, first_seq: 0 }
    }

    #[tokio::test]
    async fn a_late_joiner_reads_from_the_start_and_a_resume_from_where_it_left() {
        let (registry, tasks) = registry(Duration::from_secs(30), Duration::from_secs(120));
        let request = request();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (run, joined) = registry.join_or_start(new_run(&request, "str_1"), |run| {
            let mut sink = RunSink::new(run.clone(), None, 0);
            tasks.spawn(async move {
                sink.emit(chunk(1));
                let _ = rx.await;
                sink.emit(chunk(2));
                sink.emit(StreamEvent::Done);
            });
        });
        assert!(!joined);
        let mut first = Listener::on(run, 0);
        assert_eq!(read(&mut first).await, Some((0, chunk(1))));
        let (run, joined) = registry.join_or_start(new_run(&request, "str_x"), |_| unreachable!());
        assert!(joined);
        assert_eq!(run.stream_id, "str_1");
        let mut second = Listener::on(run, 0);
        assert_eq!(read(&mut second).await, Some((0, chunk(1))));
        tx.send(()).unwrap();
        for l in [&mut first, &mut second] {
            assert_eq!(read(l).await, Some((1, chunk(2))));
            assert_eq!(read(l).await, Some((2, StreamEvent::Done)));
            assert_eq!(read(l).await, None);
            assert!(l.is_exhausted());
        }
        // Finished: not joined by a new request, but still there for a resume.
        let mut resumed = Listener::on(registry.by_key("k").unwrap(), 2);
        assert_eq!(read(&mut resumed).await, Some((2, StreamEvent::Done)));
        assert!(registry.run("str_1").unwrap().is_finished());
        let (_, joined) = registry.join_or_start(new_run(&request, "str_2"), |_| {});
        assert!(!joined);
    }

    #[tokio::test(start_paused = true)]
    async fn a_run_nobody_listens_to_is_cancelled_after_the_grace_period() {
        let (registry, tasks) = registry(Duration::from_secs(30), Duration::from_secs(60));
        let request = request();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        let (run, _) = registry.join_or_start(new_run(&request, "s"), |run| {
            let mut sink = RunSink::new(run.clone(), None, 0);
            let cancel = run.cancellation();
            tasks.spawn(async move {
                cancel.cancelled().await;
                sink.emit(StreamEvent::Done);
                drop(sink);
                let _ = done_tx.send(());
            });
        });
        drop(Listener::on(run, 0));
        tokio::time::sleep(Duration::from_secs(29)).await;
        assert!(!registry.run("s").unwrap().is_finished(), "still within the grace period");
        // A client that comes back in time keeps it going.
        let back = Listener::on(registry.by_key("k").unwrap(), 0);
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(!registry.run("s").unwrap().is_finished());
        drop(back);
        done_rx.await.unwrap();
        assert!(registry.run("s").unwrap().is_finished());
        tokio::time::sleep(Duration::from_secs(61)).await;
        assert!(registry.run("s").is_none(), "forgotten after the retention period");
    }

    #[tokio::test(start_paused = true)]
    async fn a_stopping_replica_does_not_cancel_a_run_nobody_listens_to_here() {
        let (registry, tasks, stopped) = stoppable_registry();
        let request = request();
        // Still running: its client left (it resumes on another replica), so the grace timer is pending.
        let (run, _) = registry.join_or_start(new_run(&request, "s"), |_| {});
        drop(Listener::on(run.clone(), 0));
        stopped.cancel();
        tasks.close();
        tasks.wait().await;
        assert!(!run.cancellation().is_cancelled(), "left to the shutdown's hand-over, not cancelled");
    }

    #[tokio::test(start_paused = true)]
    async fn stopping_the_replica_ends_every_timer_at_once() {
        let (registry, tasks, stopped) = stoppable_registry();
        let request = request();
        let (run, _) = registry.join_or_start(new_run(&request, "s"), |run| {
            let mut sink = RunSink::new(run.clone(), None, 0);
            sink.emit(StreamEvent::Done);
        });
        drop(Listener::on(run, 0));
        assert_eq!(tasks.len(), 1, "the retention timer");
        stopped.cancel();
        tasks.close();
        let waited = tokio::time::Instant::now();
        tasks.wait().await;
        assert_eq!(waited.elapsed(), Duration::ZERO);
        assert!(registry.run("s").is_none(), "forgotten when the replica stops");
    }

    #[tokio::test]
    async fn finished_runs_are_held_within_a_byte_budget_oldest_forgotten_first() {
        let one_run = approximate_size(&chunk(1)) + approximate_size(&StreamEvent::Done);
        let config = RegistryConfig {
            cancel_grace: Duration::from_secs(30),
            retention: Duration::from_secs(3600),
            finished_bytes: 3 * one_run,
        };
        let registry = Registry::new(config, TaskTracker::new(), CancellationToken::new());
        let request = request();
        let ids = ["s1", "s2", "s3", "s4", "s5"];
        for id in ids {
            let new = NewRun { key: id, stream_id: id.into(), request: &request, idempotency_key: None, first_seq: 0 };
            let (_, _) = registry.join_or_start(new, |run| {
                let mut sink = RunSink::new(run.clone(), None, 0);
                sink.emit(chunk(1));
                assert_eq!(registry.active(), 1, "counted while it runs");
                sink.emit(StreamEvent::Done);
            });
        }
        assert_eq!(registry.active(), 0);
        let held: Vec<bool> = ids.iter().map(|id| registry.run(id).is_some()).collect();
        assert_eq!(held, [false, false, true, true, true], "the two oldest were forgotten");
        assert_eq!(registry.finished_bytes.load(Ordering::Relaxed), 3 * one_run);
    }
}
