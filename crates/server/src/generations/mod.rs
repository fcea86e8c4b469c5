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

pub use self::registry::RegistryConfig;
use self::registry::{Listener, NewRun, Registry, RunSink};
pub use self::source::Source;

/// Why a plan request or a stream look-up was not answered with a stream.
#[derive(Debug, thiserror::Error)]
pub enum GenerationError {
    #[error(transparent)]
    Destination(#[from] ResolveError),
    #[error("no stream {0:?}: unknown, or expired")]
    UnknownStream(String),
    #[error("the shared event log cannot be read")]
    SharedLog(#[source] EventLogError),
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
    pub stream_id: String,
    /// What the stream was started for.
    pub request: PlanRequest,
    pub how: How,
    pub events: Source,
}

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

fn new_stream_id() -> String {
    prefixed_id("str_", uuid::Uuid::now_v7().as_u128())
}

impl Generations {
    pub fn new(
        engine: Engine,
        destinations: Arc<dyn Destinations>,
        cache: Option<Arc<Resilient>>,
        shared: Option<Arc<dyn EventLog>>,
        config: GenerationsConfig,
    ) -> Generations {
        let tasks = TaskTracker::new();
        let stopped = CancellationToken::new();
        let registry = Registry::new(config.registry, tasks.clone(), stopped.clone());
        let replica = prefixed_id("rep_", uuid::Uuid::now_v7().as_u128());
        let inner =
            Inner { engine, destinations, cache, registry, shared, limits: config.limits, replica, tasks, stopped };
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
    /// that can be answered with a 4xx is answered here, before a stream opens.
    pub async fn start(&self, call: PlanCall) -> Result<Attached, GenerationError> {
        let inner = &self.inner;
        let destination = inner.destinations.resolve(&call.request.location).await?;
        let key = plan_key(&call.request, &inner.engine.generator_info());
        let from = call.last_event_id.map_or(0, |id| id.saturating_add(1));
        let reattached = match (&call.idempotency_key, call.last_event_id) {
            (Some(k), _) => inner.registry.by_idempotency(k),
            (None, Some(_)) => inner.registry.by_key(&key),
            (None, None) => None,
        };
        if let Some(run) = reattached {
            return Ok(self.local(run, from, How::Reattached));
        }
        if let Some(plan) = self.cached(&key).await {
            if call.wants == Wants::Plan {
                return Ok(Attached::Cached(Box::new(plan)));
            }
            return Ok(self.replay(&key, call.request, &destination, &plan, from).await);
        }
        let new = NewRun {
            key: &key,
            stream_id: new_stream_id(),
            request: &call.request,
            idempotency_key: call.idempotency_key.as_deref(),
            first_seq: 0,
        };
        let (listener, joined) = inner.registry.join_or_start(new, |run| {
            let sink = RunSink::new(run.clone(), self.open_shared(&run.stream_id, &call.request), 0);
            self.launch(call.request.clone(), destination, key.clone(), sink, run.cancellation());
        });
        let how = if joined { How::Joined } else { How::Started };
        let stream_id = listener.run().stream_id.clone();
        Ok(Attached::Stream(Attachment { stream_id, request: call.request, how, events: Source::Local(listener) }))
    }

    /// The rest of a stream after `after`, then live: from this replica's run, or from the shared log
    /// of a stream another replica produces (or produced).
    pub async fn resume(&self, stream_id: &str, after: Option<u64>) -> Result<Attached, GenerationError> {
        let from = after.map_or(0, |id| id.saturating_add(1));
        if let Some(run) = self.inner.registry.run(stream_id)
            && run.holds(from)
        {
            return Ok(self.local(run, from, How::Reattached));
        }
        let unknown = || GenerationError::UnknownStream(stream_id.to_owned());
        let log = self.inner.shared.as_ref().ok_or_else(unknown)?;
        let record = log.record(stream_id).await.map_err(GenerationError::SharedLog)?.ok_or_else(unknown)?;
        let request = StreamRecord::parse(&record, self.inner.limits).ok_or_else(unknown)?;
        if let Some(last) = log.last(stream_id).await.map_err(GenerationError::SharedLog)?
            && from > last.seq
            && last.is_done()
        {
            return Ok(Attached::Finished);
        }
        let reader = log.reader(stream_id, from).await.map_err(GenerationError::SharedLog)?;
        let events = Source::Shared { reader, ended: false };
        Ok(Attached::Stream(Attachment { stream_id: stream_id.to_owned(), request, how: How::Reattached, events }))
    }

    /// Stops a stream's generation now: its listeners get a `cancelled` error with the days drafted so
    /// far and the tokens spent, then `done`. `Ok(false)` if it had already ended.
    pub fn cancel(&self, stream_id: &str) -> Result<bool, GenerationError> {
        let run = self.inner.registry.run(stream_id).ok_or_else(|| GenerationError::UnknownStream(stream_id.into()))?;
        Ok(run.cancel())
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
                            let span = tracing::info_span!("takeover", stream_id = %stream_id);
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

    fn local(&self, run: Arc<registry::Run>, from: u64, how: How) -> Attached {
        let listener = Listener::on(run.clone(), from);
        if listener.is_exhausted() {
            return Attached::Finished;
        }
        let (stream_id, request) = (run.stream_id.clone(), run.request.clone());
        Attached::Stream(Attachment { stream_id, request, how, events: Source::Local(listener) })
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
        request: PlanRequest,
        destination: &Destination,
        plan: &Plan,
        from: u64,
    ) -> Attached {
        let mut events = Vec::new();
        self.inner.engine.replay(&request, destination, plan, &mut events).await;
        let events: Vec<Arc<StreamEvent>> = events.into_iter().map(Arc::new).collect();
        let stream_id = new_stream_id();
        if let Some(mut shared) = self.open_shared(&stream_id, &request) {
            for (seq, event) in events.iter().enumerate() {
                shared.append(tripstream_adapters::eventlog::Entry { seq: seq as u64, event: event.clone() });
            }
        }
        let new = NewRun { key, stream_id, request: &request, idempotency_key: None, first_seq: 0 };
        let run = self.inner.registry.completed(new, events);
        self.local(run, from, How::Replayed)
    }

    /// Opens a stream's shared log for this replica, its writer task on the tracker.
    fn open_shared(&self, stream_id: &str, request: &PlanRequest) -> Option<Box<dyn LogWriter>> {
        self.open_shared_record(stream_id, &StreamRecord::new(request).json())
    }

    fn open_shared_record(&self, stream_id: &str, record: &str) -> Option<Box<dyn LogWriter>> {
        let log = self.inner.shared.as_ref()?;
        let (writer, background) = log.open(OpenStream { stream_id, record, owner: &self.inner.replica });
        if let Some(task) = background {
            self.inner.tasks.spawn(task);
        }
        Some(writer)
    }

    /// Spawns a generation writing to `sink`: the one place a generation starts, for new requests and
    /// takeovers alike. A plan goes into the cache; when the replica stops before the generation ends,
    /// the stream is handed over (with a shared log) or ends with a retryable error.
    fn launch(
        &self,
        request: PlanRequest,
        destination: Destination,
        key: String,
        mut sink: RunSink,
        cancel: CancellationToken,
    ) {
        let inner = self.inner.clone();
        let span =
            tracing::info_span!("generation", stream_id = %sink.stream_id(), location = %request.location.as_str());
        self.inner.tasks.spawn(
            async move {
                let outcome = tokio::select! {
                    () = inner.stopped.cancelled() => None,
                    result = inner.engine.run_until(&request, &destination, &mut sink, cancel.cancelled_owned()) => Some(result),
                };
                match outcome {
                    Some(Ok(plan)) => {
                        let m = &plan.metadata;
                        crate::observe::count_tokens(&m.provider, m.usage.input_tokens, m.usage.output_tokens);
                        if let Some(cache) = &inner.cache {
                            cache.put(&key, &plan).await;
                        }
                    }
                    Some(Err(_)) => {}
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
        let mut sink = RunSink::new(run.clone(), self.open_shared_record(&stream_id, &record), floor);
        sink.emit(StreamEvent::Status(StepMessage {
            message: messages::restarted(request.language),
            progress: floor,
            step: Step::GatherContext,
            iteration: None,
        }));
        self.launch(request, destination, key, sink, run.cancellation());
    }
}
