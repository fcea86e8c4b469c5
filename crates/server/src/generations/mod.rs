//! The life of a generation, in one place: what the routes, the takeover watcher and shutdown call.
//!
//! [`Generations::start`] answers a plan request: the cache first (a replay, or the plan itself for the
//! JSON endpoint), then the identical run in flight (a join), and only then a new generation, spawned on
//! the service's task tracker and writing through one sink into this replica's run and, with Redis, the
//! shared event log. [`Generations::resume`] and [`Generations::cancel`] find a stream by id;
//! [`Generations::watch`] takes over streams whose replica died, through the same launch path;
//! [`Generations::shutdown`] ends what is still running (handing it over when there is a shared log) and
//! waits for every task it spawned.
//!
//! Invariants: one writer per stream id (with a shared log, the holder of its lease); events reach
//! clients only through the sink and the logs; every task is tracked.

mod registry;
mod source;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;
use tripstream_adapters::cache::{Resilient, plan_key};
use tripstream_adapters::eventlog::{EventLog, EventLogError, LEASE_RENEW, LogWriter, OpenStream};
use tripstream_domain::event::{Failure, StepMessage};
use tripstream_domain::plan::prefixed_id;
use tripstream_domain::{
    Destination, ErrorCode, Plan, PlanRequest, RawPlanRequest, RequestLimits, Step, StreamEvent, messages,
};
use tripstream_engine::{Destinations, Engine, EventSink, ResolveError};

use self::registry::{Listener, NewRun, Registry, RunSink};
pub use self::registry::{Owner, RegistryConfig};
pub use self::source::Events;
use self::source::{Cut, Source};
use crate::admission::{Admission, Refusal};
use crate::auth::Caller;
use crate::auth::secret::{self, random_id};

/// Why a plan request or a stream look-up was not answered with a stream.
#[derive(Debug, thiserror::Error)]
pub enum GenerationError {
    #[error(transparent)]
    Destination(#[from] ResolveError),
    #[error("no stream {0:?}: unknown, or expired")]
    UnknownStream(String),
    #[error("the shared event log cannot be read")]
    SharedLog(#[source] EventLogError),
    #[error("this Idempotency-Key was used before with another request")]
    IdempotencyKeyReused,
    #[error("{}", .0.message)]
    Refused(Refusal),
}

impl From<Refusal> for GenerationError {
    fn from(refusal: Refusal) -> Self {
        GenerationError::Refused(refusal)
    }
}

/// What a plan request wants back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wants {
    /// The plan as one document: a cache hit is the plan itself.
    Plan,
    /// The generation's events: a cache hit is a replay.
    Stream,
}

/// How a request came to its stream, for the run log and the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    /// It started a new generation.
    Started,
    /// It joined an identical generation in flight.
    Joined,
    /// A reconnecting client (`Last-Event-ID`, a known `Idempotency-Key`, or a resume by id).
    Reattached,
    /// A cached plan, replayed.
    Replayed,
}

/// A caller's place on a stream.
pub struct Attachment {
    /// The caller's own id for the stream (their handle's), never another caller's.
    pub stream_id: String,
    /// The handle's resume token, when this call made the handle: given once, here.
    pub resume_token: Option<String>,
    /// What the stream was started for.
    pub request: PlanRequest,
    pub how: How,
    pub events: Events,
}

/// What a caller shows to reach a stream by id: who they are, and the stream's resume token if they
/// have one.
#[derive(Clone, Copy)]
pub struct Credentials<'a> {
    pub caller: &'a Caller,
    pub token: Option<&'a str>,
}

impl Credentials<'_> {
    /// Whether these reach a stream of `owner` whose token has the digest `token`: its owner's key, an
    /// admin's, or the token. An address never does.
    fn allow(&self, owner: &Owner, token: &[u8; 32]) -> bool {
        let owner_key = match owner {
            Owner::Key(id) => Some(id.as_str()),
            Owner::Anonymous => None,
        };
        self.caller.is_admin()
            || owner_key.is_some_and(|id| self.caller.key_id() == Some(id))
            || self.token.is_some_and(|t| secret::matches(t, token))
    }
}

/// A handle as the shared log keeps it, for other replicas.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct HandleRecord {
    /// The run's (internal) stream id.
    stream: String,
    owner: Owner,
    /// The SHA-256 of the resume token, in hex.
    token_sha256: String,
    cancelled_at: Option<u64>,
}

impl HandleRecord {
    fn of(handle: &registry::Handle) -> Self {
        HandleRecord {
            stream: handle.run.stream_id.clone(),
            owner: handle.owner.clone(),
            token_sha256: handle.token.iter().map(|b| format!("{b:02x}")).collect(),
            cancelled_at: *handle.cut_at().borrow(),
        }
    }

    fn json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    fn token(&self) -> Option<[u8; 32]> {
        let hex = self.token_sha256.as_bytes();
        let mut out = [0u8; 32];
        if hex.len() != 64 {
            return None;
        }
        for (i, pair) in hex.chunks(2).enumerate() {
            out[i] = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
        }
        Some(out)
    }
}

/// How long a request waits on the shared log for a handle's record before going on without it.
const SHARED_WRITE_TIMEOUT: Duration = Duration::from_secs(1);

// Made once per request and moved straight into its response: boxing the large variant saves nothing.
#[allow(clippy::large_enum_variant)]
pub enum Attached {
    Stream(Attachment),
    /// A cached plan (only when [`Wants::Plan`]).
    Cached(Box<Plan>),
    /// A reconnect after the stream ended, with nothing left to send.
    Finished,
}

/// A plan request as the service needs it.
pub struct PlanCall {
    pub request: PlanRequest,
    pub wants: Wants,
    pub idempotency_key: Option<String>,
    /// The last event id a reconnecting client saw.
    pub last_event_id: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct GenerationsConfig {
    pub registry: RegistryConfig,
    /// For requests read back from the shared log.
    pub limits: RequestLimits,
}

#[derive(Clone)]
pub struct Generations {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    destinations: Arc<dyn Destinations>,
    /// Finished plans; `None` when caching is off.
    cache: Option<Arc<Resilient>>,
    registry: Arc<Registry>,
    /// Streams shared with other replicas, when there is a shared log.
    shared: Option<Arc<dyn EventLog>>,
    limits: RequestLimits,
    /// This replica's name in the shared log's leases.
    replica: String,
    /// Every task this service spawns: generations, log writers, takeovers, timers.
    tasks: TaskTracker,
    /// Cancelled when the shutdown grace period is over: running generations end at once.
    stopped: CancellationToken,
    /// Rates, budgets and the replica's places for generations.
    admission: Arc<Admission>,
    /// Cached plans' replays by plan id and the location as typed, shared by every stream that replays
    /// them; bounded in bytes.
    replays: moka::future::Cache<(String, String), Arc<Vec<Arc<StreamEvent>>>>,
}

/// Bytes the shared replays may hold, about.
const REPLAYS_MAX_BYTES: u64 = 32 * 1024 * 1024;

/// A generation about to be spawned.
struct Launch {
    request: PlanRequest,
    destination: Destination,
    /// The request's cache key.
    key: String,
    sink: RunSink,
    cancel: CancellationToken,
    /// Cancellations of this run's callers asked for on other replicas.
    cancels: mpsc::UnboundedReceiver<String>,
    /// The replica's place it holds until it ends (a takeover holds none: it was admitted elsewhere).
    place: Option<OwnedSemaphorePermit>,
    /// The key whose daily token budget it spends.
    payer: Option<String>,
}

/// The request in the contract's JSON form: what the shared log keeps for other replicas.
#[derive(serde::Serialize, serde::Deserialize)]
struct StreamRecord {
    request: RawPlanRequest,
}

impl StreamRecord {
    fn new(request: &PlanRequest) -> Self {
        StreamRecord {
            request: RawPlanRequest {
                location: Some(request.location.as_str().to_owned()),
                start_date: Some(request.dates.start().to_string()),
                end_date: Some(request.dates.end().to_string()),
                budget: Some(request.budget.as_str().to_owned()),
                language: Some(request.language.as_str().to_owned()),
                travelers: Some(i64::from(request.travelers)),
                interests: Some(request.interests.clone()),
            },
        }
    }

    fn json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    fn parse(json: &str, limits: RequestLimits) -> Option<PlanRequest> {
        let record: StreamRecord = serde_json::from_str(json).ok()?;
        PlanRequest::parse(record.request, None, limits).ok()
    }
}

/// A run's id: internal, but random all the same.
fn new_stream_id() -> String {
    random_id("run_")
}

impl Generations {
    pub fn new(
        engine: Engine,
        destinations: Arc<dyn Destinations>,
        cache: Option<Arc<Resilient>>,
        shared: Option<Arc<dyn EventLog>>,
        admission: Arc<Admission>,
        config: GenerationsConfig,
    ) -> Generations {
        let tasks = TaskTracker::new();
        let stopped = CancellationToken::new();
        let registry = Registry::new(config.registry, tasks.clone(), stopped.clone());
        let replica = prefixed_id("rep_", uuid::Uuid::now_v7().as_u128());
        let limits = config.limits;
        let replays = moka::future::Cache::builder()
            .max_capacity(REPLAYS_MAX_BYTES)
            .weigher(|_, events: &Arc<Vec<Arc<StreamEvent>>>| {
                events.iter().map(|e| registry::approximate_size(e) as u32).fold(0u32, u32::saturating_add)
            })
            .time_to_idle(std::time::Duration::from_secs(600))
            .build();
        let inner = Inner {
            engine,
            destinations,
            cache,
            registry,
            shared,
            limits,
            replica,
            tasks,
            stopped,
            admission,
            replays,
        };
        Generations { inner: Arc::new(inner) }
    }

    /// Who writes plans here, for `/health` and rows of requests that fail before `complete`.
    pub fn generator_info(&self) -> tripstream_engine::GeneratorInfo {
        self.inner.engine.generator_info()
    }

    /// Generations running on this replica.
    pub fn active(&self) -> usize {
        self.inner.registry.active()
    }

    /// The shared log's kind, when there is one.
    pub fn shared_log(&self) -> Option<&'static str> {
        self.inner.shared.as_ref().map(|log| log.name())
    }

    /// A stream for a plan request: a reconnecting client gets the rest of the stream it was reading;
    /// otherwise the cache, the identical run in flight, or a new generation, in that order. Everything
    /// that can be answered with a 4xx is answered here, before a stream opens. A stream is given to the
    /// caller as a handle of their own: its id and resume token are theirs, whoever else reads the run.
    pub async fn start(&self, call: PlanCall, caller: &Caller) -> Result<Attached, GenerationError> {
        let inner = &self.inner;
        inner.admission.request(caller).await?;
        if inner.destinations.costs_a_lookup(&call.request.location) {
            inner.admission.lookup(caller).await?;
        }
        let destination = inner.destinations.resolve(&call.request.location).await?;
        let key = plan_key(&call.request, &inner.engine.generator_info());
        let from = call.last_event_id.map_or(0, |id| id.saturating_add(1));
        // A caller's Idempotency-Key is theirs alone, and names one request.
        let scoped = call.idempotency_key.as_deref().map(|k| format!("{}\n{k}", caller.scope()));
        let reattached = match (&scoped, call.last_event_id) {
            (Some(k), _) => match inner.registry.by_idempotency(k) {
                Some((request_key, _)) if request_key != key => return Err(GenerationError::IdempotencyKeyReused),
                Some((_, run)) => run,
                None => None,
            },
            (None, Some(_)) => inner.registry.by_key(&key),
            (None, None) => None,
        };
        if let Some(run) = reattached {
            return Ok(self.attach(run, caller, call.wants, from, How::Reattached).await);
        }
        if let Some(plan) = self.cached(&key).await {
            if call.wants == Wants::Plan {
                return Ok(Attached::Cached(Box::new(plan)));
            }
            let run = self.replay(&key, &call.request, &destination, &plan, scoped.as_deref()).await;
            return Ok(self.attach(run, caller, call.wants, from, How::Replayed).await);
        }
        // A new generation takes a place on this replica and spends from the caller's budget; joining one in
        // flight takes neither.
        let place = match inner.registry.joinable(&key) {
            Some(_) => None,
            None => {
                inner.admission.budget(caller).await?;
                Some(inner.admission.generation().await?)
            }
        };
        let new = NewRun {
            key: &key,
            stream_id: new_stream_id(),
            request: &call.request,
            idempotency_key: scoped.as_deref(),
            first_seq: 0,
        };
        let (run, joined) = inner.registry.join_or_start(new, |run| {
            let (shared, cancels) = self.open_shared(&run.stream_id, &StreamRecord::new(&call.request).json());
            self.launch(Launch {
                request: call.request.clone(),
                destination,
                key: key.clone(),
                sink: RunSink::new(run.clone(), shared, 0),
                cancel: run.cancellation(),
                cancels,
                place,
                payer: caller.key_id().map(str::to_owned),
            });
        });
        let how = if joined { How::Joined } else { How::Started };
        Ok(self.attach(run, caller, call.wants, 0, how).await)
    }

    /// The rest of a caller's stream after `after`, then live: from this replica's run, or from the
    /// shared log of a stream another replica produces (or produced). Only the stream's owner (their key),
    /// an admin, or whoever holds its resume token may read it; to anyone else it does not exist.
    pub async fn resume(
        &self,
        stream_id: &str,
        after: Option<u64>,
        credentials: Credentials<'_>,
    ) -> Result<Attached, GenerationError> {
        let from = after.map_or(0, |id| id.saturating_add(1));
        let unknown = || GenerationError::UnknownStream(stream_id.to_owned());
        if let Some(handle) = self.inner.registry.handle(stream_id) {
            if !credentials.allow(&handle.owner, &handle.token) {
                return Err(unknown());
            }
            let (run, lang) = (&handle.run, handle.run.request.language);
            if run.holds(from) {
                let listener = Listener::on(run.clone(), from);
                let cut = handle.cut_at();
                if listener.is_exhausted() || cut.borrow().is_some_and(|at| from > at + 1) {
                    return Ok(Attached::Finished);
                }
                let events = Events::new(Source::Local(listener), Cut::Live(cut), lang);
                return Ok(self.attached(stream_id, None, run.request.clone(), How::Reattached, events));
            }
            let cut = *handle.cut_at().borrow();
            return self.resume_shared(stream_id, &run.stream_id, from, cut).await;
        }
        let record = self.shared_handle(stream_id, credentials).await?;
        self.resume_shared(stream_id, &record.stream, from, record.cancelled_at).await
    }

    /// A handle another replica made, from the shared log, if these credentials reach it.
    async fn shared_handle(&self, id: &str, credentials: Credentials<'_>) -> Result<HandleRecord, GenerationError> {
        let unknown = || GenerationError::UnknownStream(id.to_owned());
        let log = self.inner.shared.as_ref().ok_or_else(unknown)?;
        let record = log.handle(id).await.map_err(GenerationError::SharedLog)?.ok_or_else(unknown)?;
        let record: HandleRecord = serde_json::from_str(&record).map_err(|_| unknown())?;
        let token = record.token().ok_or_else(unknown)?;
        if !credentials.allow(&record.owner, &token) {
            return Err(unknown());
        }
        Ok(record)
    }

    /// A caller's stream read from the shared log of its run.
    async fn resume_shared(
        &self,
        handle_id: &str,
        run_id: &str,
        from: u64,
        cut: Option<u64>,
    ) -> Result<Attached, GenerationError> {
        let unknown = || GenerationError::UnknownStream(handle_id.to_owned());
        let log = self.inner.shared.as_ref().ok_or_else(unknown)?;
        let record = log.record(run_id).await.map_err(GenerationError::SharedLog)?.ok_or_else(unknown)?;
        let request = StreamRecord::parse(&record, self.inner.limits).ok_or_else(unknown)?;
        let last = log.last(run_id).await.map_err(GenerationError::SharedLog)?;
        let ended = last.is_some_and(|last| from > last.seq && last.is_done());
        if ended || cut.is_some_and(|at| from > at + 1) {
            return Ok(Attached::Finished);
        }
        let reader = log.reader(run_id, from).await.map_err(GenerationError::SharedLog)?;
        let events = Events::new(Source::Shared { reader, ended: false }, Cut::Fixed(cut), request.language);
        Ok(self.attached(handle_id, None, request, How::Reattached, events))
    }

    /// Cancels a caller's stream: the generation itself when nobody else reads it (its listeners get a
    /// `cancelled` error with the days drafted so far and the tokens spent, then `done`), only this
    /// caller's stream otherwise. On a stream another replica produces, the cancellation is passed on to
    /// it. Only its owner, an admin or the holder of its resume token may cancel it. `Ok(false)` if it
    /// had already ended.
    pub async fn cancel(&self, stream_id: &str, credentials: Credentials<'_>) -> Result<bool, GenerationError> {
        let unknown = || GenerationError::UnknownStream(stream_id.to_owned());
        if let Some(handle) = self.inner.registry.handle(stream_id) {
            if !credentials.allow(&handle.owner, &handle.token) {
                return Err(unknown());
            }
            let cancelled = self.inner.registry.cancel(&handle);
            if cancelled {
                self.share_handle(&handle).await;
            }
            return Ok(cancelled);
        }
        let record = self.shared_handle(stream_id, credentials).await?;
        let log = self.inner.shared.as_ref().ok_or_else(unknown)?;
        if record.cancelled_at.is_some() || log.last(&record.stream).await.ok().flatten().is_some_and(|e| e.is_done()) {
            return Ok(false);
        }
        log.request_cancel(&record.stream, stream_id).await.map_err(GenerationError::SharedLog)?;
        Ok(true)
    }

    /// Looks for streams whose producer died, every lease renewal period, until the replica stops; each
    /// one claimed is run again here.
    pub fn watch(&self) {
        let Some(log) = self.inner.shared.clone() else { return };
        let this = self.clone();
        let stopped = self.inner.stopped.clone();
        self.inner.tasks.spawn(async move {
            let mut tick = tokio::time::interval(LEASE_RENEW);
            loop {
                tokio::select! {
                    () = stopped.cancelled() => return,
                    _ = tick.tick() => {}
                }
                match log.claim_orphans(&this.inner.replica).await {
                    Ok(claimed) => {
                        for stream_id in claimed {
                            let span = tracing::info_span!("takeover", run_id = %stream_id);
                            this.inner.tasks.spawn(this.clone().take_over(stream_id).instrument(span));
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "takeover scan failed"),
                }
            }
        });
    }

    /// Ends every generation still running now: handed over when there is a shared log, ended with a
    /// retryable error otherwise.
    pub fn stop(&self) {
        self.inner.stopped.cancel();
    }

    /// [`Self::stop`], then waits up to `deadline` for every task this service spawned (log writers
    /// release their leases, hand-overs reach the shared log).
    pub async fn shutdown(&self, deadline: Duration) {
        self.stop();
        self.inner.tasks.close();
        if tokio::time::timeout(deadline, self.inner.tasks.wait()).await.is_err() {
            tracing::warn!(tasks = self.inner.tasks.len(), ?deadline, "tasks still running at the shutdown deadline");
        }
    }

    /// A caller's place on `run` from `from`: for a stream, a handle of their own (its id, resume token and
    /// owner), kept in the shared log too so that any replica can authorize it.
    async fn attach(&self, run: Arc<registry::Run>, caller: &Caller, wants: Wants, from: u64, how: How) -> Attached {
        let listener = Listener::on(run.clone(), from);
        if listener.is_exhausted() {
            return Attached::Finished;
        }
        let lang = run.request.language;
        if wants == Wants::Plan {
            let events = Events::new(Source::Local(listener), Cut::Fixed(None), lang);
            return self.attached(&run.stream_id, None, run.request.clone(), how, events);
        }
        let token = random_id("tok_");
        let owner = caller.key_id().map_or(Owner::Anonymous, |id| Owner::Key(id.to_owned()));
        let handle = self.inner.registry.attach(&run, owner, secret::digest(&token), random_id("str_"));
        self.share_handle(&handle).await;
        let events = Events::new(Source::Local(listener), Cut::Live(handle.cut_at()), lang);
        self.attached(&handle.id, Some(token), run.request.clone(), how, events)
    }

    fn attached(&self, id: &str, token: Option<String>, request: PlanRequest, how: How, events: Events) -> Attached {
        Attached::Stream(Attachment { stream_id: id.to_owned(), resume_token: token, request, how, events })
    }

    /// Writes a handle's record to the shared log, so other replicas can resume and cancel by it. A
    /// failure is logged: the stream still works here.
    async fn share_handle(&self, handle: &registry::Handle) {
        let Some(log) = &self.inner.shared else { return };
        let record = HandleRecord::of(handle).json();
        match tokio::time::timeout(SHARED_WRITE_TIMEOUT, log.put_handle(&handle.id, &record)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "a stream handle was not shared; other replicas cannot resume it"),
            Err(_) => tracing::warn!("the shared log is slow; other replicas cannot resume this stream handle"),
        }
    }

    /// A cached plan, marked as such.
    async fn cached(&self, key: &str) -> Option<Plan> {
        let mut plan = self.inner.cache.as_ref()?.get(key).await?;
        plan.metadata.cached = true;
        Some(plan)
    }

    /// A cached plan's stream, registered (and shared) like a generation's, so a dropped replay resumes
    /// like one.
    async fn replay(
        &self,
        key: &str,
        request: &PlanRequest,
        destination: &Destination,
        plan: &Plan,
        idempotency_key: Option<&str>,
    ) -> Arc<registry::Run> {
        // Every replay of a plan (as its location was typed) is the same events: made once, shared.
        let replay = async {
            let mut events = Vec::new();
            self.inner.engine.replay(request, destination, plan, &mut events).await;
            Arc::new(events.into_iter().map(Arc::new).collect::<Vec<_>>())
        };
        let shared_events =
            self.inner.replays.get_with((plan.id.clone(), request.location.as_str().into()), replay).await;
        let events: Vec<Arc<StreamEvent>> = shared_events.iter().cloned().collect();
        let stream_id = new_stream_id();
        if let (Some(mut shared), _) = self.open_shared(&stream_id, &StreamRecord::new(request).json()) {
            for (seq, event) in events.iter().enumerate() {
                shared.append(tripstream_adapters::eventlog::Entry { seq: seq as u64, event: event.clone() });
            }
        }
        let new = NewRun { key, stream_id, request, idempotency_key, first_seq: 0 };
        self.inner.registry.completed(new, events)
    }

    /// Opens a stream's shared log for this replica, its writer task on the tracker; with the channel on
    /// which cancellations asked for on other replicas arrive.
    fn open_shared(
        &self,
        stream_id: &str,
        record: &str,
    ) -> (Option<Box<dyn LogWriter>>, mpsc::UnboundedReceiver<String>) {
        let (cancels, requested) = mpsc::unbounded_channel();
        let Some(log) = self.inner.shared.as_ref() else { return (None, requested) };
        let (writer, background) = log.open(OpenStream { stream_id, record, owner: &self.inner.replica, cancels });
        if let Some(task) = background {
            self.inner.tasks.spawn(task);
        }
        (Some(writer), requested)
    }

    /// Spawns a generation writing to its sink: the one place a generation starts, for new requests and
    /// takeovers alike. A plan goes into the cache; when the replica stops before the generation ends,
    /// the stream is handed over (with a shared log) or ends with a retryable error.
    fn launch(&self, launch: Launch) {
        let Launch { request, destination, key, mut sink, cancel, mut cancels, place, payer } = launch;
        let inner = self.inner.clone();
        let span = tracing::info_span!("generation", run_id = %sink.stream_id(), location = %request.location.as_str());
        self.inner.tasks.spawn(
            async move {
                // Held until the generation ends.
                let _place = place;
                let outcome = {
                    let run =
                        inner.engine.run_until(&request, &destination, &mut sink, cancel.clone().cancelled_owned());
                    tokio::pin!(run);
                    loop {
                        tokio::select! {
                            () = inner.stopped.cancelled() => break None,
                            result = &mut run => break Some(result),
                            // Another replica was asked to cancel a caller's stream of this run. A caller this
                            // replica does not know (it took the run over) cancels the run.
                            Some(handle) = cancels.recv() => match inner.registry.handle(&handle) {
                                Some(handle) => {
                                    if inner.registry.cancel(&handle) {
                                        Generations { inner: inner.clone() }.share_handle(&handle).await;
                                    }
                                }
                                None => cancel.cancel(),
                            },
                        }
                    }
                };
                match outcome {
                    Some(Ok(plan)) => {
                        let m = &plan.metadata;
                        crate::observe::count_tokens(&m.provider, m.usage.input_tokens, m.usage.output_tokens);
                        if let Some(payer) = &payer {
                            inner.admission.spend(payer, m.usage.input_tokens + m.usage.output_tokens).await;
                        }
                        // The key names the chain's first generator: a plan a fallback wrote is not served
                        // under it (it would pass for the first one's for a day).
                        let first = inner.engine.generator_info();
                        match &inner.cache {
                            Some(cache) if m.provider == first.provider && m.model == first.model => {
                                cache.put(&key, &plan).await;
                            }
                            Some(_) => tracing::info!(provider = %m.provider, "a fallback's plan is not cached"),
                            None => {}
                        }
                    }
                    Some(Err(e)) => {
                        if let Some(payer) = &payer {
                            inner.admission.spend(payer, e.usage.input_tokens + e.usage.output_tokens).await;
                        }
                    }
                    // Ending the stream here without `done` sends this replica's clients to resume
                    // elsewhere, and releases the stream for another replica to take over.
                    None if inner.shared.is_some() => {
                        tracing::warn!("shutdown grace period over; handing the stream over");
                    }
                    None => {
                        tracing::warn!("shutdown grace period over; ending the stream");
                        sink.emit(StreamEvent::Error(Failure {
                            message: messages::shutting_down(request.language),
                            error: ErrorCode::Internal,
                            retryable: true,
                            usage: None,
                            partial_days: None,
                        }));
                        sink.emit(StreamEvent::Done);
                    }
                }
            }
            .instrument(span),
        );
    }

    /// Runs a stream another replica stopped producing again here, from its logged request, numbering
    /// on from its last event after a status saying so, with progress never below what it showed.
    async fn take_over(self, stream_id: String) {
        let inner = &self.inner;
        let Some(log) = &inner.shared else { return };
        let (Ok(Some(record)), Ok(last)) = (log.record(&stream_id).await, log.last(&stream_id).await) else {
            return;
        };
        let Some(request) = StreamRecord::parse(&record, inner.limits) else {
            tracing::warn!("cannot take over: the logged request does not parse");
            return;
        };
        let destination = match inner.destinations.resolve(&request.location).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "cannot take over: the destination does not resolve here");
                return;
            }
        };
        let (first_seq, floor) = match &last {
            Some(entry) => (entry.seq + 1, entry.event.progress().unwrap_or(0)),
            None => (0, 0),
        };
        tracing::warn!(next = first_seq, "the replica producing this stream stopped; running it again here");
        let key = plan_key(&request, &inner.engine.generator_info());
        let new =
            NewRun { key: &key, stream_id: stream_id.clone(), request: &request, idempotency_key: None, first_seq };
        // Its clients may be reading it through any replica: nobody listening here does not cancel it.
        let run = inner.registry.taken_over(new);
        let (shared, cancels) = self.open_shared(&stream_id, &record);
        let mut sink = RunSink::new(run.clone(), shared, floor);
        sink.emit(StreamEvent::Status(StepMessage {
            message: messages::restarted(request.language),
            progress: floor,
            step: Step::GatherContext,
            iteration: None,
        }));
        let cancel = run.cancellation();
        self.launch(Launch { request, destination, key, sink, cancel, cancels, place: None, payer: None });
    }
}
