//! Taking over the streams of a replica that died. With Redis, every replica looks every couple of
//! seconds for running streams whose producer stopped renewing its lease; the one that claims such a
//! stream runs its generation again from the logged request and appends to the same log, after a status
//! event saying so, with progress never below what the stream already showed. Clients reading the
//! stream from any replica receive the rest, then `complete` and `done`.

use tracing::Instrument;
use tripstream_adapters::cache::plan_key;
use tripstream_adapters::eventlog::{Entry, LEASE_RENEW};
use tripstream_domain::event::StepMessage;
use tripstream_domain::{PlanRequest, RawPlanRequest, Step, StreamEvent, messages};
use tripstream_engine::EventSink;

use crate::state::AppState;

/// Looks for orphaned streams until the application stops.
pub fn watch(state: AppState) {
    if state.hub.shared_log().is_none() {
        return;
    }
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(LEASE_RENEW);
        loop {
            tokio::select! {
                _ = state.hard_stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            let Some(log) = state.hub.shared_log() else { return };
            match log.claim_orphans(&state.hub.replica).await {
                Ok(claimed) => {
                    for stream_id in claimed {
                        let span = tracing::info_span!("takeover", stream_id = %stream_id);
                        tokio::spawn(take_over(state.clone(), stream_id).instrument(span));
                    }
                }
                Err(e) => tracing::debug!(error = %e, "takeover scan failed"),
            }
        }
    });
}

async fn take_over(state: AppState, stream_id: String) {
    let Some(log) = state.hub.shared_log() else { return };
    let (Ok(Some(raw)), Ok(last)) = (log.request(&stream_id).await, log.last(&stream_id).await) else { return };
    let Some(request) = serde_json::from_str::<RawPlanRequest>(&raw)
        .ok()
        .and_then(|raw| PlanRequest::parse(raw, None, state.limits).ok())
    else {
        return;
    };
    let (next, floor) = match &last {
        Some((seq, json)) => {
            let progress = serde_json::from_str::<StreamEvent>(json).ok().and_then(|e| e.progress()).unwrap_or(0);
            (seq + 1, progress)
        }
        None => (0, 0),
    };
    tracing::warn!(next, "the replica producing this stream stopped; running it again here");
    let mut sink = Continuation { mirror: log.writer(&stream_id, raw, &state.hub.replica), next, floor };
    sink.emit(StreamEvent::Status(StepMessage {
        message: messages::restarted(request.language),
        progress: floor,
        step: Step::GatherContext,
        iteration: None,
    }));
    let destination = match state.destinations.resolve(&request.location).await {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "cannot take over: the destination does not resolve here");
            return;
        }
    };
    if let Ok(plan) = state.engine.run(&request, &destination, &mut sink).await
        && let Some(cache) = &state.cache
    {
        cache.put(&plan_key(&request, &state.engine.generator_info()), &plan).await;
    }
    // The sink goes out of scope here, which ends the log's writer: it releases the lease and marks the
    // stream finished.
}

/// Appends a restarted generation's events to the stream's log, numbering on from where it stopped and
/// keeping progress from going back.
struct Continuation {
    mirror: tokio::sync::mpsc::UnboundedSender<Entry>,
    next: usize,
    floor: u8,
}

impl EventSink for Continuation {
    fn emit(&mut self, mut event: StreamEvent) {
        event.raise_progress(self.floor);
        if let Some(p) = event.progress() {
            self.floor = p;
        }
        let _ = self.mirror.send((self.next, serde_json::to_string(&event).unwrap_or_default()));
        self.next += 1;
    }
}
