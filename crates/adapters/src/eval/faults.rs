//! The fault-injected model corpus (`tripstream eval --faults`): replies with the errors models make —
//! a missing or mistyped field, a wrong number of days, an empty day, overlapping times, places that do
//! not exist, over budget, repeats, nightlife in the morning, a park after dark, an early dinner, a
//! zig-zag across the city, a reply cut by the token limit, prose around the JSON, unknown categories —
//! each served by a stubborn mock model (the same reply to every request, refinements included) in the
//! exact wire format of Gemini and of OpenAI-compatible servers, read by the real adapters and run
//! through the engine. The scorecard counts what is delivered and what of it passes every check.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tripstream_domain::checks::{Severity, check};
use tripstream_domain::request::{RawPlanRequest, RequestLimits};
use tripstream_domain::rules::{Finding, ValidationContext, validate};
use tripstream_domain::{Plan, PlanRequest, StreamEvent};
use tripstream_engine::{Destinations, Engine, EngineConfig, PlanContext, check_context};

use super::Metric;
use crate::http::Secret;
use crate::llm::{ChatModel, Gemini, GeminiConfig, LlmPlanner, OpenAi, OpenAiConfig, Prompts};
use crate::{BundledDestinations, Catalog, Climatology};

/// One faulty reply: what a model sent for a three-day trip to Seoul (12–14 May 2026, two travellers,
/// medium budget, Korean), and whether the token limit cut it.
#[derive(Debug, Clone, Copy)]
pub struct Fault {
    pub name: &'static str,
    pub reply: &'static str,
    /// The provider said the reply was cut at the output token limit (Gemini `MAX_TOKENS`, OpenAI
    /// `length`).
    pub truncated: bool,
}

macro_rules! fault {
    ($name:literal, $ext:literal) => {
        fault!($name, $ext, false)
    };
    ($name:literal, $ext:literal, $truncated:literal) => {
        Fault {
            name: $name,
            reply: include_str!(concat!("../../fixtures/faults/", $name, ".", $ext)),
            truncated: $truncated,
        }
    };
}

/// The corpus, one reply per fault (`crates/adapters/fixtures/faults/`).
pub const CORPUS: &[Fault] = &[
    fault!("missing_cost", "json"),
    fault!("cost_as_string", "json"),
    fault!("two_days_for_three", "json"),
    fault!("empty_day", "json"),
    fault!("overlapping_times", "json"),
    fault!("nonexistent_places", "json"),
    fault!("over_budget", "json"),
    fault!("repeats_across_days", "json"),
    fault!("nightlife_morning", "json"),
    fault!("park_after_dark", "json"),
    fault!("dinner_too_early", "json"),
    fault!("zigzag_87km", "json"),
    fault!("truncated_max_tokens", "txt", true),
    fault!("prose_around_json", "txt"),
    fault!("unknown_categories", "json"),
];

/// The corpus's fault named `name`.
pub fn fault(name: &str) -> Option<Fault> {
    CORPUS.iter().copied().find(|f| f.name == name)
}

/// The provider wire formats the corpus is served in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    Gemini,
    OpenAi,
}

impl Wire {
    pub const ALL: [Wire; 2] = [Wire::Gemini, Wire::OpenAi];

    pub fn name(self) -> &'static str {
        match self {
            Wire::Gemini => "gemini",
            Wire::OpenAi => "openai",
        }
    }

    /// The whole SSE body of a reply of `text`, cut by the token limit or not.
    pub fn sse(self, text: &str, truncated: bool) -> String {
        match self {
            Wire::Gemini => gemini_sse(text, if truncated { "MAX_TOKENS" } else { "STOP" }),
            Wire::OpenAi => openai_sse(text, if truncated { "length" } else { "stop" }),
        }
    }

    fn path_ok(self, path: &str) -> bool {
        match self {
            Wire::Gemini => {
                path.starts_with("/v1beta/models/")
                    && path.contains(":streamGenerateContent?")
                    && path.split(['?', '&']).any(|p| p == "alt=sse")
            }
            Wire::OpenAi => path == "/v1/chat/completions",
        }
    }
}

/// `text` in pieces of about `size` characters, never splitting a character.
pub fn pieces(text: &str, size: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    chars.chunks(size.max(1)).map(|c| c.iter().collect()).collect()
}

/// A Gemini `streamGenerateContent?alt=sse` body: one `GenerateContentResponse` per piece, the last with
/// `finishReason` and the full `usageMetadata`, as the API sends them.
pub fn gemini_sse(text: &str, finish: &str) -> String {
    let parts = pieces(text, 60);
    let n = parts.len();
    let mut body = String::new();
    for (i, part) in parts.iter().enumerate() {
        let mut candidate = json!({"content": {"parts": [{"text": part}], "role": "model"}, "index": 0});
        let mut frame = json!({"modelVersion": "gemini-2.5-flash-lite", "responseId": "mock-1"});
        if i + 1 == n {
            candidate["finishReason"] = json!(finish);
            frame["usageMetadata"] =
                json!({"promptTokenCount": 812, "candidatesTokenCount": 1403, "totalTokenCount": 2215});
        } else {
            frame["usageMetadata"] = json!({"promptTokenCount": 812, "totalTokenCount": 812});
        }
        frame["candidates"] = json!([candidate]);
        body.push_str(&format!("data: {frame}\r\n\r\n"));
        if i == 0 {
            // Gemini 2.5 may send a part that carries only a thought signature.
            let sig = json!({"candidates": [{"content": {"parts": [{"thoughtSignature": "c2ln"}], "role": "model"}, "index": 0}]});
            body.push_str(&format!("data: {sig}\r\n\r\n"));
        }
    }
    body
}

/// An OpenAI chat-completions stream: a role chunk, content chunks, a finish chunk, the usage chunk
/// (`stream_options.include_usage`) and `[DONE]`.
pub fn openai_sse(text: &str, finish: &str) -> String {
    let chunk = |choices: Value, usage: Value| {
        json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1762754400, "model": "gpt-4o-mini",
               "system_fingerprint": "fp_1", "choices": choices, "usage": usage})
    };
    let mut body = String::new();
    let mut push = |v: Value| body.push_str(&format!("data: {v}\n\n"));
    push(chunk(
        json!([{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": null, "finish_reason": null}]),
        Value::Null,
    ));
    for part in pieces(text, 40) {
        push(chunk(
            json!([{"index": 0, "delta": {"content": part}, "logprobs": null, "finish_reason": null}]),
            Value::Null,
        ));
    }
    push(chunk(json!([{"index": 0, "delta": {}, "logprobs": null, "finish_reason": finish}]), Value::Null));
    push(chunk(json!([]), json!({"prompt_tokens": 700, "completion_tokens": 1200, "total_tokens": 1900})));
    body.push_str("data: [DONE]\n\n");
    body
}

/// A stubborn model on 127.0.0.1: every request in its wire format gets the same reply (HTTP/1.1,
/// `text/event-stream`); anything else a 404. It counts the requests and keeps their bodies. Given
/// several replies ([`Stubborn::script`]), it sends them in turn, the last one from then on.
pub struct Stubborn {
    pub addr: SocketAddr,
    requests: Arc<AtomicU32>,
    prompts: Arc<std::sync::Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Stubborn {
    pub async fn start(wire: Wire, sse: String) -> std::io::Result<Self> {
        Self::script(wire, vec![sse]).await
    }

    pub async fn script(wire: Wire, replies: Vec<String>) -> std::io::Result<Self> {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let addr = listener.local_addr()?;
        let requests = Arc::new(AtomicU32::new(0));
        let prompts = Arc::new(std::sync::Mutex::new(Vec::new()));
        let replies: Arc<Vec<String>> = Arc::new(replies);
        let (count, seen) = (requests.clone(), prompts.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (replies, count, seen) = (replies.clone(), count.clone(), seen.clone());
                tokio::spawn(async move {
                    let _ = serve(stream, wire, &replies, &count, &seen).await;
                });
            }
        });
        Ok(Self { addr, requests, prompts, task })
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// How many well-formed requests it answered.
    pub fn requests(&self) -> u32 {
        self.requests.load(Ordering::Relaxed)
    }

    /// The bodies of the requests it answered, in order.
    pub fn bodies(&self) -> Vec<String> {
        self.prompts.lock().map(|p| p.clone()).unwrap_or_default()
    }
}

impl Drop for Stubborn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One request on one connection, then the connection is closed.
async fn serve(
    mut stream: TcpStream,
    wire: Wire,
    replies: &[String],
    count: &AtomicU32,
    seen: &std::sync::Mutex<Vec<String>>,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 1 << 16 {
            return Ok(());
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let length = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&buf[head_end..]).into_owned();
    let mut request_line = head.lines().next().unwrap_or_default().split(' ');
    let (method, path) = (request_line.next().unwrap_or_default(), request_line.next().unwrap_or_default());
    let json_body = serde_json::from_str::<Value>(&body).is_ok();
    let (status, content_type, reply) = if method == "POST" && wire.path_ok(path) && json_body {
        let n = count.fetch_add(1, Ordering::Relaxed) as usize;
        if let Ok(mut seen) = seen.lock() {
            seen.push(body);
        }
        let sse = replies.get(n).or(replies.last()).cloned().unwrap_or_default();
        ("200 OK", "text/event-stream", sse)
    } else {
        ("404 Not Found", "application/json", json!({"error": {"code": 404, "message": "not found"}}).to_string())
    };
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{reply}",
        reply.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

/// The trip every reply of the corpus answers.
pub fn request() -> PlanRequest {
    let raw = RawPlanRequest {
        location: Some("Seoul".into()),
        start_date: Some("2026-05-12".into()),
        end_date: Some("2026-05-14".into()),
        budget: Some("medium".into()),
        language: Some("ko".into()),
        travelers: Some(2),
        interests: None,
    };
    #[allow(clippy::expect_used)]
    PlanRequest::parse(raw, None, RequestLimits::default()).expect("the corpus's request is valid")
}

/// What one faulty reply came to.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub fault: &'static str,
    pub wire: Wire,
    pub plan: Option<Plan>,
    /// The error code and detail of a run that delivered nothing.
    pub error: Option<String>,
    /// The findings of rules 1–7 and the commonsense checks that a delivered plan still has (notices
    /// aside), as messages.
    pub failing: Vec<String>,
    /// Requests the model answered.
    pub requests: u32,
    /// Their bodies, in order.
    pub bodies: Vec<String>,
    pub events: Vec<StreamEvent>,
}

impl Outcome {
    pub fn delivered(&self) -> bool {
        self.plan.is_some()
    }

    pub fn passing(&self) -> bool {
        self.plan.is_some() && self.failing.is_empty()
    }
}

/// The chat model of `wire` against a server at `base_url`.
pub fn model(wire: Wire, base_url: String) -> Arc<dyn ChatModel> {
    match wire {
        Wire::Gemini => {
            let mut config = GeminiConfig::new(Secret::new("mock-key"));
            config.base_url = base_url;
            Arc::new(Gemini::new(config))
        }
        Wire::OpenAi => Arc::new(OpenAi::new(OpenAiConfig::new(base_url))),
    }
}

/// Runs `fault` served in `wire` through the real adapter and the engine.
pub async fn run_one(fault: Fault, wire: Wire) -> Outcome {
    run_script(fault, wire, Vec::new()).await
}

/// [`run_one`] with a model that answers `then` (each in turn, the last from then on) to the requests
/// after the first, which gets the faulty reply.
pub async fn run_script(fault: Fault, wire: Wire, then: Vec<&str>) -> Outcome {
    let outcome = |plan, error: Option<String>, failing, (requests, bodies), events| Outcome {
        fault: fault.name,
        wire,
        plan,
        error,
        failing,
        requests,
        bodies,
        events,
    };
    let none = || (0, Vec::new());
    let mut replies = vec![wire.sse(fault.reply, fault.truncated)];
    replies.extend(then.iter().map(|r| wire.sse(r, false)));
    let server = match Stubborn::script(wire, replies).await {
        Ok(server) => server,
        Err(e) => return outcome(None, Some(format!("mock server: {e}")), Vec::new(), none(), Vec::new()),
    };
    let catalog = Catalog::bundled();
    let prompts = match Prompts::embedded() {
        Ok(p) => Arc::new(p),
        Err(e) => return outcome(None, Some(format!("prompts: {e}")), Vec::new(), none(), Vec::new()),
    };
    let planner = LlmPlanner::new(model(wire, server.base_url()), prompts, catalog.clone());
    let engine = Engine::new(Arc::new(planner), Arc::new(Climatology), EngineConfig::default());
    let request = request();
    let destination = match BundledDestinations::new(catalog).resolve(&request.location).await {
        Ok(d) => d,
        Err(e) => return outcome(None, Some(format!("destination: {e:?}")), Vec::new(), none(), Vec::new()),
    };
    let mut events = Vec::new();
    let result = engine.run(&request, &destination, &mut events).await;
    let requests = (server.requests(), server.bodies());
    match result {
        Ok(plan) => {
            let weather = plan.days.iter().map(|d| d.weather.clone()).collect();
            let ctx = PlanContext {
                request: request.clone(),
                destination,
                weather,
                weather_source: plan.metadata.weather_source.clone(),
            };
            let failing = failing(&plan, &ctx);
            outcome(Some(plan), None, failing, requests, events)
        }
        Err(e) => outcome(None, Some(format!("{:?}: {}", e.code, e.detail)), Vec::new(), requests, events),
    }
}

/// What a delivered plan still breaks: rules 1–7 and the commonsense checks, notices aside.
pub fn failing(plan: &Plan, ctx: &PlanContext) -> Vec<String> {
    let vctx = ValidationContext {
        dates: ctx.request.dates,
        budget_ceiling: ctx.budget_ceiling(),
        currency: ctx.destination.currency.clone(),
    };
    let lang = ctx.request.language;
    let mut findings = validate(plan, &vctx);
    findings.extend(check(plan, &check_context(ctx)).into_iter().map(Finding::Check));
    findings.iter().filter(|f| f.severity() != Severity::Notice).map(|f| f.message(lang)).collect()
}

/// Every fault in every wire format.
pub async fn run() -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    for fault in CORPUS {
        for wire in Wire::ALL {
            outcomes.push(run_one(*fault, wire).await);
        }
    }
    outcomes
}

/// The scorecard's lines for the corpus: delivery and passing per wire format.
pub fn metrics(outcomes: &[Outcome]) -> Vec<Metric> {
    let mut lines = Vec::new();
    for wire in Wire::ALL {
        let of: Vec<&Outcome> = outcomes.iter().filter(|o| o.wire == wire).collect();
        let delivered = of.iter().filter(|o| o.delivered()).count();
        let passing = of.iter().filter(|o| o.passing()).count();
        let (delivered_name, passing_name) = match wire {
            Wire::Gemini => (
                "fault corpus, Gemini format: delivered",
                "fault corpus, Gemini format: delivered plans passing every check",
            ),
            Wire::OpenAi => (
                "fault corpus, OpenAI format: delivered",
                "fault corpus, OpenAI format: delivered plans passing every check",
            ),
        };
        lines.push(Metric {
            name: delivered_name,
            value: format!("{delivered}/{} ({})", of.len(), percent(delivered, of.len())),
            target: "100 %",
            met: Some(delivered == of.len()),
        });
        lines.push(Metric {
            name: passing_name,
            value: format!("{passing}/{delivered} ({})", percent(passing, delivered)),
            target: "100 %",
            met: Some(passing == delivered && delivered > 0),
        });
    }
    lines
}

fn percent(n: usize, of: usize) -> String {
    if of == 0 { "—".into() } else { format!("{:.0} %", n as f64 * 100.0 / of as f64) }
}

/// One line per fault and wire format: delivered, passing, requests, and what is left.
pub fn render_details(outcomes: &[Outcome]) -> String {
    let mut out = String::from(
        "| fault | format | delivered | passes every check | model requests | left |\n|---|---|---|---|---|---|\n",
    );
    for o in outcomes {
        let left = match (&o.error, o.failing.is_empty()) {
            (Some(e), _) => e.chars().take(120).collect(),
            (None, true) => String::new(),
            (None, false) => o.failing.join("; ").chars().take(160).collect(),
        };
        let yes = |b: bool| if b { "yes" } else { "no" };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            o.fault,
            o.wire.name(),
            yes(o.delivered()),
            yes(o.passing()),
            o.requests,
            left.replace('|', "/")
        ));
    }
    out
}
