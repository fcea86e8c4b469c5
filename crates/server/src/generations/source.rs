//! Where an attached caller's events come from, with their sequence numbers: a run on this replica, or
//! the shared log of a stream another replica produces; cut off with the caller's own `cancelled` and
//! `done` where they cancelled a run others still read.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tripstream_adapters::eventlog::{EventLog, LogReader};
use tripstream_adapters::plans::SavedPlans;
use tripstream_domain::event::Failure;
use tripstream_domain::plan::Day;
use tripstream_domain::{ErrorCode, Language, RawPlanRequest, StreamEvent, messages};

use super::registry::Listener;

pub enum Source {
    /// A run on this replica; if another replica takes its stream over, the rest is read from `shared`.
    Local {
        listener: Listener,
        shared: Option<Arc<dyn EventLog>>,
    },
    Shared {
        reader: Box<dyn LogReader>,
        ended: bool,
    },
}

impl Source {
    /// A shared log quiet for this long is taken to be abandoned by its producer; the client may retry.
    const SHARED_IDLE_LIMIT: Duration = Duration::from_secs(60);

    pub fn local(listener: Listener, shared: Option<Arc<dyn EventLog>>) -> Self {
        Source::Local { listener, shared }
    }

    /// The next event and its sequence number; `None` after `done`, or when the stream cannot go on.
    async fn next(&mut self) -> Option<(u64, Arc<StreamEvent>)> {
        loop {
            let Source::Local { listener, shared } = self else { return self.next_shared().await };
            if let Some(next) = listener.next().await {
                return Some(next);
            }
            // The run ended here; if it moved to another replica, read on from the shared log.
            let log = shared.as_ref().filter(|_| listener.run().is_moved())?;
            let reader = match log.reader(&listener.run().stream_id, listener.next_seq()).await {
                Ok(reader) => reader,
                Err(e) => {
                    tracing::warn!(error = %e, "the shared event log cannot be read; ending this connection");
                    return None;
                }
            };
            *self = Source::Shared { reader, ended: false };
        }
    }

    async fn next_shared(&mut self) -> Option<(u64, Arc<StreamEvent>)> {
        match self {
            Source::Local { .. } => None,
            Source::Shared { reader, ended } => {
                if *ended {
                    return None;
                }
                let entry = match reader.next(Self::SHARED_IDLE_LIMIT).await {
                    Ok(entry) => entry?,
                    Err(e) => {
                        tracing::warn!(error = %e, "the shared event log cannot be read; ending this connection");
                        return None;
                    }
                };
                *ended = entry.is_done();
                Some((entry.seq, entry.event))
            }
        }
    }
}

/// Where a caller's own stream ends because they cancelled it.
pub enum Cut {
    /// Followed live: the caller may cancel while reading.
    Live(watch::Receiver<Option<u64>>),
    /// As the shared log recorded it when the caller attached.
    Fixed(Option<u64>),
}

impl Cut {
    fn at(&mut self) -> Option<u64> {
        match self {
            Cut::Live(rx) => *rx.borrow_and_update(),
            Cut::Fixed(at) => *at,
        }
    }

    async fn changed(&mut self) {
        if let Cut::Live(rx) = self
            && rx.changed().await.is_ok()
        {
            return;
        }
        std::future::pending().await
    }
}

/// Saves the plan of a `complete` event for the caller who receives it, and names their copy in the event
/// (`planId`), before the event is sent: a client may fetch the plan as soon as it has the id.
pub struct Keeper {
    pub plans: SavedPlans,
    /// `key:…`, `session:…` or `anonymous`.
    pub owner: String,
    pub request: RawPlanRequest,
}

impl Keeper {
    /// `event`, with `planId` when it is a `complete` whose plan could be saved.
    pub async fn keep(&self, event: Arc<StreamEvent>) -> Arc<StreamEvent> {
        let StreamEvent::Complete(complete) = &*event else { return event };
        // A regenerated day's plan was saved as a new version of its plan before the event was logged.
        if complete.plan_id.is_some() {
            return event;
        }
        let Some(id) = self.save(&complete.plan).await else { return event };
        let mut complete = complete.clone();
        complete.plan_id = Some(id);
        Arc::new(StreamEvent::Complete(complete))
    }

    /// The id of the owner's copy of `plan`: the one they have, or a new one. A store that fails is logged;
    /// the plan is still delivered, without an id.
    pub async fn save(&self, plan: &tripstream_domain::Plan) -> Option<String> {
        match self.plans.save(&self.owner, &self.request, plan).await {
            Ok(id) => Some(id),
            Err(e) => {
                tracing::warn!(error = %e, "the plan was not saved; it is delivered without a planId");
                None
            }
        }
    }
}

/// One caller's events: their source, ended at their cut.
pub struct Events {
    source: Source,
    cut: Cut,
    language: Language,
    /// Past the cut: the caller's own `cancelled` and `done`.
    tail: Option<VecDeque<(u64, Arc<StreamEvent>)>>,
    /// Saves the plan for this caller; `None` when plans are not kept.
    keeper: Option<Keeper>,
}

impl Events {
    pub fn new(source: Source, cut: Cut, language: Language, keeper: Option<Keeper>) -> Events {
        Events { source, cut, language, tail: None, keeper }
    }

    /// The next event and its sequence number; `None` after `done`.
    pub async fn next(&mut self) -> Option<(u64, Arc<StreamEvent>)> {
        loop {
            if let Some(tail) = &mut self.tail {
                return tail.pop_front();
            }
            if let Some(at) = self.cut.at() {
                self.tail = Some(self.cancelled_at(at));
                continue;
            }
            tokio::select! {
                next = self.source.next() => {
                    let (seq, event) = next?;
                    match self.cut.at() {
                        Some(at) if seq >= at => self.tail = Some(self.cancelled_at(at)),
                        _ => {
                            let event = match &self.keeper {
                                Some(keeper) => keeper.keep(event).await,
                                None => event,
                            };
                            return Some((seq, event));
                        }
                    }
                }
                () = self.cut.changed() => {}
            }
        }
    }

    /// The end of a stream its caller cancelled while others still read its run: a `cancelled` error
    /// with the days drafted before the cut (when this replica holds them), then `done`.
    fn cancelled_at(&self, at: u64) -> VecDeque<(u64, Arc<StreamEvent>)> {
        let days: Vec<Day> = match &self.source {
            Source::Local { listener, .. } => listener.days_before(at),
            Source::Shared { .. } => Vec::new(),
        };
        let error = StreamEvent::Error(Failure {
            message: messages::error(self.language, ErrorCode::Cancelled),
            error: ErrorCode::Cancelled,
            retryable: false,
            usage: None,
            partial_days: (!days.is_empty()).then_some(days),
        });
        VecDeque::from([(at, Arc::new(error)), (at + 1, Arc::new(StreamEvent::Done))])
    }
}
