//! What the service knows about its own work: a [`Recorder`] per plan request that watches the events
//! the client received and, when the request is over (or the client gone), writes the run-log row and
//! the Prometheus metrics; and the one Prometheus recorder of the process.

use std::sync::OnceLock;
use std::time::Instant;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tripstream_adapters::runlog::{RunLog, RunRecord};
use tripstream_domain::{Plan, PlanRequest, StreamEvent};

use crate::generations::{Attachment, How};

/// The process's metrics registry; installed once, shared by every application in the process (tests
/// build several).
pub fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let seconds = [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0];
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &seconds)
            .expect("bucket list is not empty");
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        // Another recorder installed first (a test harness) only means ours is not the global one.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// Which endpoint a request came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Json,
    Stream,
    /// A reconnection to a stream by id.
    Resume,
}

impl Endpoint {
    fn as_str(self) -> &'static str {
        match self {
            Endpoint::Json => "json",
            Endpoint::Stream => "stream",
            Endpoint::Resume => "resume",
        }
    }
}

/// Watches one request's events; records it when dropped.
pub struct Recorder {
    row: RunRecord,
    endpoint: Endpoint,
    started: Instant,
    first_event: Option<Instant>,
    saw_done: bool,
    runlog: RunLog,
}

impl Recorder {
    /// A recorder for a request that reached the server at `arrived` (now, if not known): its duration
    /// and time to first event count from then, so time spent waiting to be read and handled shows.
    pub fn new(
        runlog: RunLog,
        endpoint: Endpoint,
        request: &PlanRequest,
        request_id: Option<String>,
        arrived: Option<Instant>,
    ) -> Self {
        if endpoint != Endpoint::Json {
            metrics::gauge!("tripstream_active_streams").increment(1.0);
        }
        let row = RunRecord {
            request_id,
            endpoint: endpoint.as_str().into(),
            location: request.location.as_str().into(),
            start_date: request.dates.start().to_string(),
            end_date: request.dates.end().to_string(),
            budget: request.budget.as_str().into(),
            travelers: request.travelers,
            language: request.language.as_str().into(),
            interests: request.interests.clone(),
            started_at_ms: jiff::Timestamp::now().as_millisecond(),
            ..RunRecord::default()
        };
        let started = arrived.unwrap_or_else(Instant::now);
        Self { row, endpoint, started, first_event: None, saw_done: false, runlog }
    }

    /// The stream the request was given, and how.
    pub fn attached(&mut self, attachment: &Attachment) {
        self.row.stream_id = Some(attachment.stream_id.clone());
        match attachment.how {
            How::Started => {}
            How::Joined | How::Reattached => self.row.coalesced = true,
            How::Replayed => self.row.cache_hit = true,
        }
    }

    pub fn cache_hit(&mut self) {
        self.row.cache_hit = true;
    }

    /// One event reached the client.
    pub fn saw(&mut self, event: &StreamEvent) {
        self.first_event.get_or_insert_with(Instant::now);
        self.row.event_count += 1;
        bump(&mut self.row.events_by_type, event.kind());
        if let Some(step) = event.step() {
            bump(&mut self.row.events_by_step, step.as_str());
        }
        match event {
            StreamEvent::Complete(c) => self.delivered(&c.plan),
            StreamEvent::Error(f) => {
                self.row.has_error = true;
                self.row.error_code = Some(f.error.as_str().to_owned());
                if let Some(u) = f.usage {
                    self.row.input_tokens = u.input_tokens;
                    self.row.output_tokens = u.output_tokens;
                }
            }
            StreamEvent::Done => self.saw_done = true,
            _ => {}
        }
    }

    /// The plan reached the client.
    pub fn delivered(&mut self, plan: &Plan) {
        let m = &plan.metadata;
        self.row.received_complete = true;
        self.row.provider = Some(m.provider.clone());
        self.row.model = Some(m.model.clone());
        self.row.input_tokens = m.usage.input_tokens;
        self.row.output_tokens = m.usage.output_tokens;
        self.row.refine_iterations = m.iterations.saturating_sub(1);
    }

    /// The generator, for rows of requests that failed before `complete`.
    pub fn generator(&mut self, provider: &str, model: &str) {
        self.row.provider.get_or_insert_with(|| provider.to_owned());
        self.row.model.get_or_insert_with(|| model.to_owned());
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        let mut row = std::mem::take(&mut self.row);
        let elapsed = self.started.elapsed();
        row.duration_ms = elapsed.as_millis() as i64;
        row.first_event_ms = self.first_event.map(|t| t.duration_since(self.started).as_millis() as i64);
        row.client_disconnected = self.endpoint != Endpoint::Json && !self.saw_done;
        let endpoint = self.endpoint.as_str();
        let outcome = match (&row.error_code, row.received_complete, row.client_disconnected) {
            (_, true, _) => "complete",
            (Some(_), _, _) => "error",
            (None, false, true) => "disconnected",
            _ => "incomplete",
        };
        metrics::counter!("tripstream_requests_total", "endpoint" => endpoint, "outcome" => outcome).increment(1);
        metrics::counter!("tripstream_cache_total", "result" => if row.cache_hit { "hit" } else { "miss" })
            .increment(1);
        if let Some(code) = &row.error_code {
            metrics::counter!("tripstream_errors_total", "code" => code.clone()).increment(1);
        }
        metrics::histogram!("tripstream_request_duration_seconds", "endpoint" => endpoint)
            .record(elapsed.as_secs_f64());
        if let Some(ms) = row.first_event_ms {
            metrics::histogram!("tripstream_time_to_first_event_seconds", "endpoint" => endpoint)
                .record(ms as f64 / 1000.0);
        }
        if self.endpoint != Endpoint::Json {
            metrics::gauge!("tripstream_active_streams").decrement(1.0);
            metrics::histogram!("tripstream_stream_duration_seconds").record(elapsed.as_secs_f64());
        }
        self.runlog.record(row);
    }
}

/// Counts of a finished generation's tokens, once per generation (not per listener).
pub fn count_tokens(provider: &str, input: u64, output: u64) {
    let provider = provider.to_owned();
    metrics::counter!("tripstream_llm_tokens_total", "provider" => provider.clone(), "direction" => "input")
        .increment(input);
    metrics::counter!("tripstream_llm_tokens_total", "provider" => provider, "direction" => "output").increment(output);
}

/// Counts one more `key`, allocating the key only the first time it is seen (this runs for every event).
fn bump(counts: &mut std::collections::BTreeMap<String, u32>, key: &str) {
    match counts.get_mut(key) {
        Some(n) => *n += 1,
        None => {
            counts.insert(key.to_owned(), 1);
        }
    }
}
