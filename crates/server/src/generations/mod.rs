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
mod woken;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;
use tripstream_adapters::cache::{Resilient, plan_key};
use tripstream_adapters::eventlog::{
    Claim, Entry, EventLog, EventLogError, LEASE_RENEW, LogWriter, OpenStream, TAKEOVER_GAP, fence,
};
use tripstream_adapters::plans::{self, PlanStoreError, SavedPlans};
use tripstream_domain::event::{Failure, StepMessage};
use tripstream_domain::plan::prefixed_id;
use tripstream_domain::{
    Destination, ErrorCode, Language, Plan, PlanRequest, RawPlanRequest, RequestLimits, Step, StreamEvent, messages,
};
use tripstream_engine::{Destinations, Destined, Engine, EngineError, EventSink, Regeneration, ResolveError};

use self::registry::{Listener, NewRun, Registry, RunSink};
pub use self::registry::{Owner, RegistryConfig};
pub use self::source::Events;
use self::source::{Cut, Keeper, Source};
use self::woken::Woken;
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
    /// No saved plan has this id, or it is not the caller's: the same answer.
    #[error("no saved plan {0:?} (or it is not yours)")]
    PlanNotFound(String),
    #[error("the plan has {days} days; there is no day {day}")]
    DayOutOfRange { day: u32, days: usize },
    #[error("the plan store cannot be read")]
    PlanStore(#[source] PlanStoreError),
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

/// A request to write one day of a saved plan again (`POST /plans/{planId}/days/{n}/regenerate`).
pub struct RegenerateCall {
    pub plan_id: String,
    /// 1-based.
    pub day: u32,
    /// At most [`Regeneration::MAX_INSTRUCTION_CHARS`] characters (the route checks).
    pub instruction: Option<String>,
    pub idempotency_key: Option<String>,
    pub last_event_id: Option<u64>,
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
    /// Every delivered plan, kept for its caller; `None` in tests that keep nothing.
    plans: Option<SavedPlans>,
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

/// A new run as `join_or_start` needs it.
struct Start<'a> {
    /// The request's key: identical requests in flight share one run.
    key: &'a str,
    request: &'a PlanRequest,
    /// `None`: looked up by the generation itself, after its first event ([`Destined::Lookup`]).
    destination: Option<Destination>,
    /// What the shared log keeps to run it again elsewhere (`StreamRecord` as JSON); empty without one.
    record: String,
    /// The caller's Idempotency-Key, scoped to them.
    scoped: Option<&'a str>,
}

/// A generation about to be spawned.
struct Launch {
    request: PlanRequest,
    /// `None`: looked up by the generation itself, after its first event ([`Destined::Lookup`]).
    destination: Option<Destination>,
    /// The request's cache key.
    key: String,
    sink: RunSink,
    cancel: CancellationToken,
    /// Cancellations of this run's callers asked for on other replicas.
    cancels: mpsc::UnboundedReceiver<String>,
    /// Cancelled when another producer took the stream over (this one stalled past its lease).
    lost: CancellationToken,
    /// The replica's place it holds until it ends (a takeover holds none: it was admitted elsewhere).
    place: Option<OwnedSemaphorePermit>,
    /// The key whose daily token budget it spends.
    payer: Option<String>,
    job: Job,
}

/// What a launched run does.
enum Job {
    /// A new plan (it goes into the cache).
    Generate,
    /// One day of a saved plan's version written again; the plan is saved as its next version.
    Regenerate(Box<DayJob>),
}

struct DayJob {
    saved_id: String,
    /// The version it starts from.
    plan: Plan,
    day: u32,
    instruction: Option<String>,
}

/// A producer's end of a stream's shared log.
struct SharedStream {
    /// `None` without a shared log.
    writer: Option<Box<dyn LogWriter>>,
    /// Cancellations of the run's callers asked for on other replicas.
    cancels: mpsc::UnboundedReceiver<String>,
    /// Cancelled when another producer took the stream over.
    lost: CancellationToken,
}

/// How a spawned generation ended.
// One short-lived value per stream, matched at once: boxing the plan would buy nothing.
#[allow(clippy::large_enum_variant)]
enum Ended {
    Ran(Result<Plan, tripstream_engine::EngineError>),
    /// The replica is stopping and the grace period is over.
    Stopped,
    /// Another replica took the stream over.
    Moved,
}

/// The request in the contract's JSON form: what the shared log keeps for other replicas; for a day
/// regeneration, which day of which saved version.
#[derive(serde::Serialize, serde::Deserialize)]
struct StreamRecord {
    request: RawPlanRequest,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    regenerate: Option<DayRecord>,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct DayRecord {
    plan_id: String,
    version: u32,
    day: u32,
    instruction: Option<String>,
}

impl StreamRecord {
    fn new(request: &PlanRequest) -> Self {
        StreamRecord { request: RawPlanRequest::from(request), regenerate: None }
    }

    /// The day regeneration a logged record asks for, if it is one.
    fn day_record(json: &str) -> Option<DayRecord> {
        serde_json::from_str::<StreamRecord>(json).ok()?.regenerate
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
        plans: Option<SavedPlans>,
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
            plans,
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
        let key = plan_key(&call.request, &inner.engine.generator_info());
        let from = call.last_event_id.map_or(0, |id| id.saturating_add(1));
        // A caller's Idempotency-Key is theirs alone, and names one request.
        let scoped = call.idempotency_key.as_deref().map(|k| format!("{}\n{k}", caller.scope()));
        let reattached = self.reattached(&key, scoped.as_deref(), call.last_event_id)?;
        if let Some(run) = reattached {
            return Ok(self.attach(run, caller, call.wants, from, How::Reattached).await);
        }
        // A plan already made carries its destination: a cache hit never waits for (nor spends) a geocoder
        // look-up, and survives the geocoder's outage.
        if let Some(plan) = self.cached(&key).await {
            if call.wants == Wants::Plan {
                return Ok(Attached::Cached(Box::new(plan)));
            }
            let run = self.replay(&key, &call.request, &plan, scoped.as_deref()).await;
            return Ok(self.attach(run, caller, call.wants, from, How::Replayed).await);
        }
        let location = &call.request.location;
        let lookup = inner.destinations.costs_a_lookup(location);
        if lookup {
            inner.admission.lookup(caller).await?;
        }
        // A place the service must ask a geocoder about is looked up by a stream's own first step, after
        // its first event: in a burst of new places, no first event waits for a geocoder's round trip. An
        // unknown one ends that stream with `unknown_destination`; the JSON answer is still a 422.
        let destination = if lookup && call.wants == Wants::Stream {
            None
        } else {
            Some(inner.destinations.resolve(location).await?)
        };
        // Written only where a shared log will keep it: not on a burst's way to its first events for nothing.
        let record = if inner.shared.is_some() { StreamRecord::new(&call.request).json() } else { String::new() };
        let start = Start { key: &key, request: &call.request, destination, record, scoped: scoped.as_deref() };
        let (run, joined) = self.join_or_start(start, caller, Job::Generate).await?;
        let how = if joined { How::Joined } else { How::Started };
        Ok(self.attach(run, caller, call.wants, 0, how).await)
    }

    /// A stream of one day of the caller's saved plan written again, exactly like a generation's (the same
    /// admission, handles, resume, cancellation and shared log); its `complete` carries the whole plan,
    /// saved as the plan's next version, with `planId`. Someone else's plan is the same
    /// [`GenerationError::PlanNotFound`] as one that does not exist; a day the plan does not have is
    /// [`GenerationError::DayOutOfRange`]. A client reconnecting with `Last-Event-ID` (or the same
    /// `Idempotency-Key`) gets the rest of its stream.
    pub async fn regenerate(&self, call: RegenerateCall, caller: &Caller) -> Result<Attached, GenerationError> {
        let inner = &self.inner;
        inner.admission.request(caller).await?;
        let not_found = || GenerationError::PlanNotFound(call.plan_id.clone());
        let store = inner.plans.as_ref().ok_or_else(not_found)?;
        let saved = match store.latest(&call.plan_id).await.map_err(GenerationError::PlanStore)? {
            Some(saved) if caller.owns_plan(&saved.summary.owner) => saved,
            _ => return Err(not_found()),
        };
        if !(1..=saved.plan.days.len()).contains(&(call.day as usize)) {
            return Err(GenerationError::DayOutOfRange { day: call.day, days: saved.plan.days.len() });
        }
        // The plan's own request; limits are not the request's business once a plan was made from it.
        let request = PlanRequest::parse(saved.request.clone(), None, RequestLimits::default()).map_err(|e| {
            tracing::warn!(error = %e, "a saved plan's request does not parse");
            not_found()
        })?;
        let destination = inner.destinations.resolve(&request.location).await?;
        let instruction = call.instruction.as_deref().map(str::trim).filter(|i| !i.is_empty()).map(str::to_owned);
        // Identical requests in flight share one run; a reconnect finds its run by this key too.
        let key = format!("regenerate\n{}\n{}\n{}", call.plan_id, call.day, instruction.as_deref().unwrap_or(""));
        let from = call.last_event_id.map_or(0, |id| id.saturating_add(1));
        let scoped = call.idempotency_key.as_deref().map(|k| format!("{}\n{k}", caller.scope()));
        let reattached = self.reattached(&key, scoped.as_deref(), call.last_event_id)?;
        if let Some(run) = reattached {
            return Ok(self.attach(run, caller, Wants::Stream, from, How::Reattached).await);
        }
        let record = StreamRecord {
            request: RawPlanRequest::from(&request),
            regenerate: Some(DayRecord {
                plan_id: call.plan_id.clone(),
                version: saved.version,
                day: call.day,
                instruction: instruction.clone(),
            }),
        };
        let job = DayJob { saved_id: call.plan_id.clone(), plan: saved.plan, day: call.day, instruction };
        let record = serde_json::to_string(&record).unwrap_or_default();
        let start =
            Start { key: &key, request: &request, destination: Some(destination), record, scoped: scoped.as_deref() };
        let (run, joined) = self.join_or_start(start, caller, Job::Regenerate(Box::new(job))).await?;
        let how = if joined { How::Joined } else { How::Started };
        Ok(self.attach(run, caller, Wants::Stream, 0, how).await)
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
                let keeper = self.keeper(credentials.caller, &run.request);
                let events =
                    Events::new(Source::local(listener, self.inner.shared.clone()), Cut::Live(cut), lang, keeper);
                return Ok(self.attached(stream_id, None, run.request.clone(), How::Reattached, events));
            }
            let cut = *handle.cut_at().borrow();
            return self.resume_shared(stream_id, &run.stream_id, from, cut, credentials.caller).await;
        }
        let record = self.shared_handle(stream_id, credentials).await?;
        self.resume_shared(stream_id, &record.stream, from, record.cancelled_at, credentials.caller).await
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
        caller: &Caller,
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
        let keeper = self.keeper(caller, &request);
        let events = Events::new(Source::Shared { reader, ended: false }, Cut::Fixed(cut), request.language, keeper);
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
            if handle.run.is_moved() {
                // Another replica produces the rest of it now.
                return self.cancel_elsewhere(&handle.run.stream_id, stream_id).await;
            }
            let cancelled = self.inner.registry.cancel(&handle);
            if cancelled {
                self.share_handle(&handle).await;
            }
            return Ok(cancelled);
        }
        let record = self.shared_handle(stream_id, credentials).await?;
        if record.cancelled_at.is_some() {
            return Ok(false);
        }
        self.cancel_elsewhere(&record.stream, stream_id).await
    }

    /// Asks the replica producing run `run_id` to cancel the caller's handle `handle_id`; `Ok(false)` if
    /// the run already ended.
    async fn cancel_elsewhere(&self, run_id: &str, handle_id: &str) -> Result<bool, GenerationError> {
        let log = self.inner.shared.as_ref().ok_or_else(|| GenerationError::UnknownStream(handle_id.to_owned()))?;
        if log.last(run_id).await.map_err(GenerationError::SharedLog)?.is_some_and(|e| e.is_done()) {
            return Ok(false);
        }
        log.request_cancel(run_id, handle_id).await.map_err(GenerationError::SharedLog)?;
        Ok(true)
    }

    /// Looks for streams whose producer died, every lease renewal period, until the replica stops; each
    /// one claimed is run again here. Starts the shared log's own background work too.
    pub fn watch(&self) {
        let Some(log) = self.inner.shared.clone() else { return };
        let this = self.clone();
        let stopped = self.inner.stopped.clone();
        if let Some(task) = log.background(stopped.clone()) {
            self.inner.tasks.spawn(task);
        }
        self.inner.tasks.spawn(async move {
            let mut tick = tokio::time::interval(LEASE_RENEW);
            loop {
                tokio::select! {
                    () = stopped.cancelled() => return,
                    _ = tick.tick() => {}
                }
                match log.claim_orphans(&this.inner.replica).await {
                    Ok(claimed) => {
                        for claim in claimed {
                            let span = tracing::info_span!("takeover", run_id = %claim.stream_id);
                            this.inner.tasks.spawn(this.clone().take_over(claim).instrument(span));
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
            let keeper = self.keeper(caller, &run.request);
            let events =
                Events::new(Source::local(listener, self.inner.shared.clone()), Cut::Fixed(None), lang, keeper);
            return self.attached(&run.stream_id, None, run.request.clone(), how, events);
        }
        let token = secret::random_secret("tok_");
        let owner = caller.key_id().map_or(Owner::Anonymous, |id| Owner::Key(id.to_owned()));
        let handle = self.inner.registry.attach(&run, owner, secret::digest(&token), random_id("str_"));
        self.share_handle(&handle).await;
        let keeper = self.keeper(caller, &run.request);
        let source = Source::local(listener, self.inner.shared.clone());
        let events = Events::new(source, Cut::Live(handle.cut_at()), lang, keeper);
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

    /// What saves a delivered plan for `caller` (their key, their page session, or nobody in particular).
    fn keeper(&self, caller: &Caller, request: &PlanRequest) -> Option<Keeper> {
        Some(Keeper {
            plans: self.inner.plans.clone()?,
            owner: caller.plan_owner().unwrap_or_else(|| plans::ANONYMOUS.to_owned()),
            request: RawPlanRequest::from(request),
        })
    }

    /// The id of `caller`'s saved copy of a cached plan they are given as one document: the copy they
    /// already have of this very plan, or a new one.
    pub async fn keep_cached(&self, plan: &Plan, caller: &Caller, request: &PlanRequest) -> Option<String> {
        self.keeper(caller, request)?.save(plan).await
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
        plan: &Plan,
        idempotency_key: Option<&str>,
    ) -> Arc<registry::Run> {
        // Every replay of a plan (as its location was typed) is the same events: made once, shared.
        let replay = async {
            let mut events = Vec::new();
            self.inner.engine.replay(request, plan, &mut events).await;
            Arc::new(events.into_iter().map(Arc::new).collect::<Vec<_>>())
        };
        let shared_events =
            self.inner.replays.get_with((plan.id.clone(), request.location.as_str().into()), replay).await;
        let events: Vec<Arc<StreamEvent>> = shared_events.iter().cloned().collect();
        let stream_id = new_stream_id();
        if let Some(mut shared) = self.open_shared(&stream_id, &StreamRecord::new(request).json(), None).writer {
            for (seq, event) in events.iter().enumerate() {
                shared.append(Entry { seq: seq as u64, event: event.clone() });
            }
        }
        let new = NewRun { key, stream_id, request, idempotency_key, first_seq: 0 };
        self.inner.registry.completed(new, events)
    }

    /// Opens a stream's shared log for a producer here, its writer task on the tracker: a new stream's
    /// (with a new fencing token), or one claimed to take over (with the claim's).
    fn open_shared(&self, stream_id: &str, record: &str, claim: Option<&Claim>) -> SharedStream {
        let (cancels, requested) = mpsc::unbounded_channel();
        let lost = CancellationToken::new();
        let Some(log) = self.inner.shared.as_ref() else {
            return SharedStream { writer: None, cancels: requested, lost };
        };
        let owner = claim.map_or_else(|| fence(&self.inner.replica), |c| c.fence.clone());
        let (writer, background) =
            log.open(OpenStream { stream_id, record, owner: &owner, cancels, lost: lost.clone() });
        if let Some(task) = background {
            self.inner.tasks.spawn(task);
        }
        SharedStream { writer: Some(writer), cancels: requested, lost }
    }

    /// The run a caller reconnects to: the one their Idempotency-Key (`scoped`) names, which must be for
    /// the same request (`key`), or with `Last-Event-ID` alone the one in flight for `key`.
    fn reattached(
        &self,
        key: &str,
        scoped: Option<&str>,
        last_event_id: Option<u64>,
    ) -> Result<Option<Arc<registry::Run>>, GenerationError> {
        let registry = &self.inner.registry;
        Ok(match (scoped, last_event_id) {
            (Some(k), _) => match registry.by_idempotency(k) {
                Some((request_key, _)) if request_key != key => return Err(GenerationError::IdempotencyKeyReused),
                Some((_, run)) => run,
                None => None,
            },
            (None, Some(_)) => registry.by_key(key),
            (None, None) => None,
        })
    }

    /// Joins the run in flight for `start.key`, or starts `job` as a new one with its shared log; whether
    /// it joined. A new run takes a place on this replica and spends from the caller's budget; joining one
    /// in flight takes neither.
    async fn join_or_start(
        &self,
        start: Start<'_>,
        caller: &Caller,
        job: Job,
    ) -> Result<(Arc<registry::Run>, bool), GenerationError> {
        let inner = &self.inner;
        let place = match inner.registry.joinable(start.key) {
            Some(_) => None,
            None => {
                inner.admission.budget(caller).await?;
                Some(inner.admission.generation().await?)
            }
        };
        let Start { key, request, destination, record, scoped } = start;
        let new = NewRun { key, stream_id: new_stream_id(), request, idempotency_key: scoped, first_seq: 0 };
        Ok(inner.registry.join_or_start(new, |run| {
            let shared = self.open_shared(&run.stream_id, &record, None);
            self.launch(Launch {
                request: request.clone(),
                destination,
                key: key.to_owned(),
                sink: RunSink::new(run.clone(), shared.writer, 0),
                cancel: run.cancellation(),
                cancels: shared.cancels,
                lost: shared.lost,
                place,
                payer: caller.key_id().map(str::to_owned),
                job,
            });
        }))
    }

    /// Spawns a generation writing to its sink: the one place a generation starts, for new requests and
    /// takeovers alike. A plan goes into the cache; when the replica stops before the generation ends,
    /// the stream is handed over (with a shared log) or ends with a retryable error; when another replica
    /// took the stream over, its listeners here are told and sent on to the shared log.
    fn launch(&self, launch: Launch) {
        let Launch { request, destination, key, mut sink, cancel, mut cancels, lost, place, payer, job } = launch;
        let cached = matches!(job, Job::Generate);
        let inner = self.inner.clone();
        let span = tracing::info_span!("generation", run_id = %sink.stream_id(), location = %request.location.as_str());
        let generation = async move {
            // Held until the generation ends.
            let _place = place;
            let ended = {
                // Each polled only when it woke the task itself, not on every piece of the model's reply.
                let cancelled = Woken::new(cancel.clone().cancelled_owned());
                let stopped = Woken::new(inner.stopped.clone().cancelled_owned());
                let lost = Woken::new(lost.cancelled_owned());
                let destined = destination.as_ref().map_or(Destined::Lookup(&*inner.destinations), Destined::Known);
                let run = async {
                    match &job {
                        Job::Generate => inner.engine.run_until(&request, destined, &mut sink, cancelled).await,
                        // Boxed: its state is four times a generation's, and every stream's task would
                        // otherwise be as large as the rare one that writes a day again.
                        Job::Regenerate(day) => {
                            Box::pin(regenerate_day(&inner, &request, destined, day, &mut sink, cancelled)).await
                        }
                    }
                };
                tokio::pin!(run, stopped, lost);
                loop {
                    tokio::select! {
                        () = &mut stopped => break Ended::Stopped,
                        () = &mut lost => break Ended::Moved,
                        result = &mut run => break Ended::Ran(result),
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
            match ended {
                Ended::Ran(Ok(plan)) => {
                    let m = &plan.metadata;
                    crate::observe::count_tokens(&m.provider, m.usage.input_tokens, m.usage.output_tokens);
                    if let Some(payer) = &payer {
                        inner.admission.spend(payer, m.usage.input_tokens + m.usage.output_tokens).await;
                    }
                    // The key names the chain's first generator: a plan a fallback wrote is not served
                    // under it (it would pass for the first one's for a day).
                    let first = inner.engine.generator_info();
                    match &inner.cache {
                        // A plan with a day written again answers no request: it is a saved plan's version.
                        Some(_) if !cached => {}
                        Some(cache) if m.provider == first.provider && m.model == first.model => {
                            cache.put(&key, &plan).await;
                        }
                        Some(_) => tracing::info!(provider = %m.provider, "a fallback's plan is not cached"),
                        None => {}
                    }
                }
                Ended::Ran(Err(e)) => {
                    if let Some(payer) = &payer {
                        inner.admission.spend(payer, e.usage.input_tokens + e.usage.output_tokens).await;
                    }
                }
                // Ending the stream here without `done` sends this replica's clients to resume
                // elsewhere, and releases the stream for another replica to take over.
                Ended::Stopped if inner.shared.is_some() => {
                    tracing::warn!("shutdown grace period over; handing the stream over");
                }
                Ended::Stopped => {
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
                // This replica stalled past its lease and another runs the stream now. Its listeners
                // here get a status of their own (never logged: its id is one the other replica skips)
                // and read on from the shared log.
                Ended::Moved => {
                    tracing::warn!("another replica took this stream over; this one stops generating it");
                    sink.move_away(request.language);
                }
            }
        }
        .instrument(span);
        // The stream's first event (the first step's status) is emitted here, in the request's own task,
        // so that it goes out with the response's head: a spawned task runs only after every task queued
        // ahead of it, which in a burst is every other new connection (issue 14). The engine waits for
        // its pacing right after that status, so this first poll stops there. Polled again once spawned,
        // the generation registers its real wake-ups.
        let mut generation = Box::pin(generation);
        let first = generation.as_mut().poll(&mut std::task::Context::from_waker(std::task::Waker::noop()));
        if first.is_pending() {
            self.inner.tasks.spawn(generation);
        }
    }

    /// Runs a stream another replica stopped producing again here, from its logged request, after a
    /// status saying so, with progress never below what it showed. Its events are numbered on from well
    /// past the log's last one ([`TAKEOVER_GAP`]): the replica that stopped may have sent its own clients
    /// events it never logged, and no id may name two events. A stream that cannot run here ends with an
    /// error in the log, so that its readers are not left waiting.
    async fn take_over(self, claim: Claim) {
        let inner = &self.inner;
        let Some(log) = &inner.shared else { return };
        let stream_id = claim.stream_id.clone();
        let (record, last) = match (log.record(&stream_id).await, log.last(&stream_id).await) {
            (Ok(record), Ok(last)) => (record, last),
            (Err(e), _) | (_, Err(e)) => {
                // The lease lapses and the stream is claimed again (up to MAX_CLAIMS times).
                tracing::warn!(error = %e, "cannot take over: the shared log cannot be read");
                return;
            }
        };
        let first_seq = last.as_ref().map_or(0, |entry| entry.seq + 1) + TAKEOVER_GAP;
        let floor = last.as_ref().and_then(|entry| entry.event.progress()).unwrap_or(0);
        let request = record.as_deref().and_then(|record| StreamRecord::parse(record, inner.limits));
        let Some(request) = request else {
            tracing::warn!("cannot take over: the logged request is missing or does not parse");
            return self.give_up(&claim, record.as_deref().unwrap_or("{}"), first_seq, Language::default());
        };
        let record = record.unwrap_or_default();
        let job = match StreamRecord::day_record(&record) {
            None => Job::Generate,
            Some(day) => {
                let saved = match &inner.plans {
                    Some(plans) => plans.version(&day.plan_id, Some(day.version)).await.ok().flatten(),
                    None => None,
                };
                let Some(saved) = saved else {
                    tracing::warn!("cannot take over: the regenerated plan's version cannot be read here");
                    return self.give_up(&claim, &record, first_seq, request.language);
                };
                let (day, instruction) = (day.day, day.instruction);
                Job::Regenerate(Box::new(DayJob {
                    saved_id: saved.summary.plan_id,
                    plan: saved.plan,
                    day,
                    instruction,
                }))
            }
        };
        let destination = match inner.destinations.resolve(&request.location).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "cannot take over: the destination does not resolve here");
                return self.give_up(&claim, &record, first_seq, request.language);
            }
        };
        tracing::warn!(next = first_seq, "the replica producing this stream stopped; running it again here");
        let key = plan_key(&request, &inner.engine.generator_info());
        let new =
            NewRun { key: &key, stream_id: stream_id.clone(), request: &request, idempotency_key: None, first_seq };
        // Its clients may be reading it through any replica: nobody listening here does not cancel it.
        let run = inner.registry.taken_over(new);
        let shared = self.open_shared(&stream_id, &record, Some(&claim));
        let mut sink = RunSink::new(run.clone(), shared.writer, floor);
        sink.emit(StreamEvent::Status(StepMessage {
            message: messages::restarted(request.language),
            progress: floor,
            step: Step::GatherContext,
            iteration: None,
        }));
        let cancel = run.cancellation();
        self.launch(Launch {
            request,
            destination: Some(destination),
            key,
            sink,
            cancel,
            cancels: shared.cancels,
            lost: shared.lost,
            place: None,
            payer: None,
            job,
        });
    }

    /// Ends a claimed stream that cannot run here with a retryable error and `done` in the shared log.
    fn give_up(&self, claim: &Claim, record: &str, seq: u64, language: Language) {
        let Some(mut writer) = self.open_shared(&claim.stream_id, record, Some(claim)).writer else { return };
        let error = StreamEvent::Error(Failure {
            message: messages::error(language, ErrorCode::Unavailable),
            error: ErrorCode::Unavailable,
            retryable: true,
            usage: None,
            partial_days: None,
        });
        writer.append(Entry { seq, event: Arc::new(error) });
        writer.append(Entry { seq: seq + 1, event: Arc::new(StreamEvent::Done) });
    }
}

/// Runs a day regeneration into `sink`, holding its `complete` (and what follows) back until the plan is
/// saved as its saved plan's next version, so that the event names it (`planId`) and a client that reads
/// it finds the version there. A store that fails is logged: the plan is delivered without `planId`.
async fn regenerate_day(
    inner: &Inner,
    request: &PlanRequest,
    destination: Destined<'_>,
    job: &DayJob,
    sink: &mut RunSink,
    cancelled: impl Future<Output = ()>,
) -> Result<Plan, EngineError> {
    let regeneration = Regeneration { plan: &job.plan, day: job.day, instruction: job.instruction.as_deref() };
    let mut held = HoldComplete { sink: &mut *sink, held: Vec::new() };
    let result = inner.engine.regenerate_until(request, destination, &regeneration, &mut held, cancelled).await;
    let mut held = held.held;
    if let (Ok(plan), Some(plans)) = (&result, &inner.plans) {
        match plans.add_version(&job.saved_id, plan).await {
            Ok(Some(version)) => {
                tracing::info!(version, "a day was written again; the plan has a new version");
                for event in &mut held {
                    if let StreamEvent::Complete(c) = event {
                        c.plan_id = Some(job.saved_id.clone());
                    }
                }
            }
            Ok(None) => tracing::warn!("the regenerated plan was deleted meanwhile; it is delivered unsaved"),
            Err(e) => {
                tracing::warn!(error = %e, "the regenerated plan was not saved; it is delivered without a planId")
            }
        }
    }
    for event in held {
        sink.emit(event);
    }
    result
}

/// Passes events on until `complete`, and keeps that one and the rest.
struct HoldComplete<'a> {
    sink: &'a mut RunSink,
    held: Vec<StreamEvent>,
}

impl EventSink for HoldComplete<'_> {
    fn emit(&mut self, event: StreamEvent) {
        if matches!(event, StreamEvent::Complete(_)) || !self.held.is_empty() {
            self.held.push(event);
        } else {
            self.sink.emit(event);
        }
    }
}
