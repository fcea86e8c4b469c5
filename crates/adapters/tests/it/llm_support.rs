//! What the provider tests share: a valid plan in the model's JSON shape, the wire framing of each
//! provider, an engine over a chat model, and a scripted upstream for what wiremock cannot do (a stream
//! that stalls or breaks mid-body, a connection whose closing must be observed).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use futures::StreamExt;
use serde_json::{Value, json};
use tripstream_adapters::llm::{ChatModel, LlmPlanner, Prompts, RetryPolicy, Timeouts};
use tripstream_adapters::{Catalog, Climatology, OfflineConfig, OfflinePlanner};
use tripstream_domain::request::{RawPlanRequest, RequestLimits};
use tripstream_domain::{Destination, ErrorCode, Plan, PlanRequest, StreamEvent};
use tripstream_engine::{Destinations, Engine, EngineConfig, PlanContext, PlanGenerator};

pub const DEST: &str = "Kyoto";

pub fn request(days: u32) -> PlanRequest {
    let end = 9 + days;
    let raw = RawPlanRequest {
        location: Some(DEST.into()),
        start_date: Some("2025-11-10".into()),
        end_date: Some(format!("2025-11-{end:02}")),
        budget: Some("medium".into()),
        language: Some("ko".into()),
        travelers: Some(2),
        interests: None,
    };
    PlanRequest::parse(raw, None, RequestLimits::default()).unwrap()
}

pub async fn destination() -> Destination {
    tripstream_adapters::BundledDestinations::new(Catalog::bundled()).resolve(&request(1).location).await.unwrap()
}

/// A plan that passes every rule, written as a model would: the offline planner's draft in the model's
/// JSON shape (costs per person).
pub async fn plan_json(days: u32) -> Value {
    let req = request(days);
    let dest = destination().await;
    let weather = tripstream_engine::Weather::forecast(&Climatology, &dest, &req).await.unwrap();
    let ctx =
        PlanContext { request: req.clone(), destination: dest, weather: weather.days, weather_source: weather.source };
    let planner = OfflinePlanner::new(Catalog::bundled(), OfflineConfig::default());
    let draft = planner.generate_draft(&ctx, &mut Discard).await.unwrap();
    json!({
        "title": "교토 단풍 여행",
        "days": draft.days.iter().map(|d| day_json(d, req.travelers)).collect::<Vec<_>>(),
        "tips": ["버스보다 지하철이 빠릅니다."],
    })
}

/// A day in the model's JSON shape (costs per person).
pub fn day_json(d: &tripstream_domain::Day, travelers: u32) -> Value {
    json!({
        "day": d.day,
        "theme": d.theme,
        "activities": d.activities.iter().map(|a| json!({
            "time": a.time.to_string(),
            "durationMinutes": a.duration_minutes,
            "name": a.name,
            "description": a.description,
            "category": a.category,
            "area": a.area,
            "costPerPerson": a.cost / u64::from(travelers),
            "indoor": a.indoor,
        })).collect::<Vec<_>>(),
    })
}

/// The text of every `chunk` event, joined.
pub fn chunk_text(events: &[StreamEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::Chunk(c) => Some(c.content.as_str()),
            _ => None,
        })
        .collect()
}

/// A throwaway draft sink.
pub struct Discard;

impl tripstream_engine::DraftSink for Discard {
    fn text(&mut self, _: &str) {}
    fn day(&mut self, _: &tripstream_domain::Day) {}
}

pub use tripstream_adapters::eval::faults::{gemini_sse, openai_sse};

/// Short limits, so failures show in milliseconds.
pub fn fast_timeouts() -> Timeouts {
    Timeouts {
        connect: Duration::from_millis(300),
        first_byte: Duration::from_secs(2),
        idle: Duration::from_millis(400),
        total: Duration::from_secs(10),
    }
}

pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        backoff_base: Duration::from_millis(10),
        backoff_max: Duration::from_millis(50),
        max_retry_after: Duration::from_secs(1),
    }
}

pub fn engine(model: Arc<dyn ChatModel>) -> Engine {
    let planner = LlmPlanner::new(model, Arc::new(Prompts::embedded().unwrap()), Catalog::bundled());
    Engine::new(Arc::new(planner), Arc::new(Climatology), EngineConfig::default())
}

/// Runs a generation and returns its events and result.
pub async fn run(engine: &Engine, days: u32) -> (Vec<StreamEvent>, Result<Plan, ErrorCode>) {
    let mut events = Vec::new();
    let result = engine.run(&request(days), &destination().await, &mut events).await.map_err(|e| e.code);
    (events, result)
}

pub fn error_code(events: &[StreamEvent]) -> Option<ErrorCode> {
    assert!(matches!(events.last(), Some(StreamEvent::Done)), "every stream ends with done");
    events.iter().find_map(|e| match e {
        StreamEvent::Error(f) => Some(f.error),
        _ => None,
    })
}

/// An upstream that answers every request with `200 text/event-stream` and then plays `script`, and
/// notes when the connection's body was dropped (the client went away or the response ended).
pub struct Scripted {
    pub addr: SocketAddr,
    pub requests: Arc<Mutex<u32>>,
    pub dropped: Arc<Mutex<Option<Instant>>>,
}

#[derive(Clone)]
pub enum Step {
    Send(String),
    Pause(Duration),
    /// Sends nothing more, holding the connection open.
    Stall,
    /// Breaks the connection mid-body.
    Break,
}

struct DropNote(Arc<Mutex<Option<Instant>>>);

impl Drop for DropNote {
    fn drop(&mut self) {
        *self.0.lock().unwrap() = Some(Instant::now());
    }
}

pub async fn scripted(script: Vec<Step>) -> Scripted {
    let requests = Arc::new(Mutex::new(0));
    let dropped = Arc::new(Mutex::new(None));
    let (r, d) = (requests.clone(), dropped.clone());
    let app = axum::Router::new().fallback(move || {
        let script = script.clone();
        *r.lock().unwrap() += 1;
        let note = DropNote(d.clone());
        async move {
            let frames = futures::stream::iter(script).then(|step| async move {
                match step {
                    Step::Send(s) => Some(Ok::<_, std::io::Error>(Bytes::from(s))),
                    Step::Pause(p) => {
                        tokio::time::sleep(p).await;
                        None
                    }
                    Step::Stall => futures::future::pending().await,
                    Step::Break => Some(Err(std::io::Error::other("upstream broke"))),
                }
            });
            let frames = frames.filter_map(futures::future::ready).map(move |f| {
                let _keep = &note;
                f
            });
            axum::response::Response::builder()
                .header("content-type", "text/event-stream")
                .body(Body::from_stream(frames))
                .unwrap()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Scripted { addr, requests, dropped }
}
