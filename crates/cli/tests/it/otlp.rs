//! Traces over OTLP/HTTP: `tripstream serve` with an OpenAI-compatible upstream (a mock here) and an
//! OTLP receiver written below, which decodes each protobuf export request. One request's trace holds its
//! generation, the five workflow steps and each provider call, with the request and stream ids; without
//! `OTEL_EXPORTER_OTLP_ENDPOINT` nothing is exported.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use eventsource_stream::Eventsource;
use futures::StreamExt;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::common::v1::{AnyValue as Any, KeyValue};
use prost::Message;
use serde_json::{Value, json};

use crate::process::Served;

const API_KEY: &str = "sk-otlp-test-secret-0123456789";
const MODEL: &str = "mock-planner-1";

/// One exported span, flattened.
#[derive(Debug, Clone)]
struct Span {
    name: String,
    trace_id: Vec<u8>,
    span_id: Vec<u8>,
    parent_span_id: Vec<u8>,
    attributes: HashMap<String, String>,
    /// Every attribute value of the span and of its events, for the secrets check.
    text: String,
    service_name: String,
}

fn text(value: &Option<Any>) -> String {
    match value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(AnyValue::StringValue(s)) => s.clone(),
        Some(AnyValue::IntValue(i)) => i.to_string(),
        Some(AnyValue::BoolValue(b)) => b.to_string(),
        Some(AnyValue::DoubleValue(d)) => d.to_string(),
        other => format!("{other:?}"),
    }
}

fn pairs(attributes: &[KeyValue]) -> HashMap<String, String> {
    attributes.iter().map(|kv| (kv.key.clone(), text(&kv.value))).collect()
}

/// An OTLP/HTTP receiver: `POST /v1/traces` with an `ExportTraceServiceRequest` in protobuf.
async fn receiver() -> (SocketAddr, Arc<Mutex<Vec<Span>>>, Arc<AtomicUsize>) {
    let spans = Arc::new(Mutex::new(Vec::new()));
    let posts = Arc::new(AtomicUsize::new(0));
    let (store, count) = (spans.clone(), posts.clone());
    let app = Router::new().route(
        "/v1/traces",
        post(move |headers: HeaderMap, body: Bytes| async move {
            count.fetch_add(1, Ordering::SeqCst);
            if headers.get("content-type").and_then(|v| v.to_str().ok()) != Some("application/x-protobuf") {
                return (StatusCode::UNSUPPORTED_MEDIA_TYPE, Vec::new());
            }
            let Ok(request) = ExportTraceServiceRequest::decode(body) else {
                return (StatusCode::BAD_REQUEST, Vec::new());
            };
            for resource_spans in request.resource_spans {
                let resource = resource_spans.resource.map(|r| pairs(&r.attributes)).unwrap_or_default();
                let service_name = resource.get("service.name").cloned().unwrap_or_default();
                for scope in resource_spans.scope_spans {
                    for s in scope.spans {
                        let attributes = pairs(&s.attributes);
                        let mut text: Vec<String> = attributes.values().cloned().collect();
                        for event in &s.events {
                            text.push(event.name.clone());
                            text.extend(pairs(&event.attributes).into_values());
                        }
                        store.lock().unwrap().push(Span {
                            name: s.name,
                            trace_id: s.trace_id,
                            span_id: s.span_id,
                            parent_span_id: s.parent_span_id,
                            attributes,
                            text: text.join("\n"),
                            service_name: service_name.clone(),
                        });
                    }
                }
            }
            // An empty ExportTraceServiceResponse.
            (StatusCode::OK, Vec::new())
        }),
    );
    (serve(app).await, spans, posts)
}

async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// A plan that passes every rule, in the model's JSON shape: the offline planner's, from the binary.
fn valid_reply() -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_tripstream"))
        .args(["plan", "Kyoto", "--from", "2025-11-10", "--to", "2025-11-12", "--json"])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    let days: Vec<Value> = plan["days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let activities: Vec<Value> = d["activities"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| {
                    json!({
                        "time": a["time"], "durationMinutes": a["durationMinutes"], "name": a["name"],
                        "description": a["description"], "category": a["category"], "area": a["area"],
                        "costPerPerson": a["cost"], "indoor": a["indoor"],
                    })
                })
                .collect();
            json!({"day": d["day"], "theme": d["theme"], "activities": activities})
        })
        .collect();
    json!({"title": plan["title"], "days": days, "tips": plan["tips"]})
}

/// An OpenAI-compatible upstream: the first call (the draft) gets a plan whose first day has too few
/// activities, so the engine refines it; later calls (the refinement) get the valid plan.
async fn upstream() -> SocketAddr {
    let valid = valid_reply();
    let mut broken = valid.clone();
    broken["days"][0]["activities"].as_array_mut().unwrap().truncate(2);
    let calls = Arc::new(AtomicUsize::new(0));
    let app = Router::new().route(
        "/v1/chat/completions",
        post(move |headers: HeaderMap| async move {
            assert_eq!(headers["authorization"], format!("Bearer {API_KEY}"));
            let reply = if calls.fetch_add(1, Ordering::SeqCst) == 0 { &broken } else { &valid };
            let content = reply.to_string();
            let mut body = String::new();
            for piece in content.as_bytes().chunks(200).map(|c| String::from_utf8_lossy(c).into_owned()) {
                let frame = json!({"choices": [{"delta": {"content": piece}, "finish_reason": null}]});
                body.push_str(&format!("data: {frame}\n\n"));
            }
            let last = json!({"choices": [{"delta": {}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 900, "completion_tokens": 700}});
            body.push_str(&format!("data: {last}\n\ndata: [DONE]\n\n"));
            ([("content-type", "text/event-stream")], body)
        }),
    );
    serve(app).await
}

struct Server(Served);

impl Server {
    async fn start(upstream: SocketAddr, otel: &[(&str, String)]) -> Server {
        let env = [
            ("LLM_PROVIDER", "openai".to_owned()),
            ("LLM_FALLBACK", "none".into()),
            ("OPENAI_BASE_URL", format!("http://{upstream}")),
            ("OPENAI_API_KEY", API_KEY.into()),
            ("OPENAI_MODEL", MODEL.into()),
            ("WEATHER_SOURCES", "none".into()),
            ("SHUTDOWN_GRACE_SECS", "1".into()),
        ];
        Server(Served::start(env.into_iter().chain(otel.iter().cloned())).await)
    }

    /// Streams a plan with the given request id; returns the stream id and the event types.
    async fn stream(&self, request_id: &str) -> (String, Vec<String>) {
        let client = tripstream_adapters::http::client(Duration::from_secs(2));
        let response = client
            .post(format!("{}/api/v1/plans/generate/stream", self.0.base))
            .header("content-type", "application/json")
            .header("x-request-id", request_id)
            .body(r#"{"location":"Kyoto","startDate":"2025-11-10","endDate":"2025-11-12","budget":"medium"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let stream_id = response.headers()["x-stream-id"].to_str().unwrap().to_owned();
        let mut events = response.bytes_stream().eventsource();
        let mut types = Vec::new();
        while let Some(event) = tokio::time::timeout(Duration::from_secs(30), events.next()).await.unwrap() {
            let event: Value = serde_json::from_str(&event.unwrap().data).unwrap();
            types.push(event["type"].as_str().unwrap().to_owned());
        }
        (stream_id, types)
    }

    /// SIGTERM, then the exit: the exporter flushes what it holds before the process ends.
    fn stop(self) {
        self.0.terminate();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_is_one_trace_with_its_generation_steps_and_provider_calls() {
    let (collector, spans, _) = receiver().await;
    let upstream = upstream().await;
    let server = Server::start(
        upstream,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{collector}")),
            // Spans leave only when the server stops, so what arrives is exactly what it flushed then.
            ("OTEL_BSP_SCHEDULE_DELAY", "600000".into()),
        ],
    )
    .await;
    let (stream_id, types) = server.stream("req-otlp-1").await;
    assert_eq!(&types[types.len() - 2..], ["complete", "done"], "{types:?}");
    server.stop();

    let spans = spans.lock().unwrap().clone();
    let request = spans
        .iter()
        .find(|s| s.name == "request" && s.attributes.get("request_id").map(String::as_str) == Some("req-otlp-1"))
        .unwrap_or_else(|| panic!("no request span among {:?}", spans.iter().map(|s| &s.name).collect::<Vec<_>>()));
    assert!(request.parent_span_id.is_empty(), "a request starts its own trace");
    assert_eq!(request.attributes["path"], "/api/v1/plans/generate/stream");
    assert_eq!(request.service_name, "tripstream");
    let trace: Vec<&Span> = spans.iter().filter(|s| s.trace_id == request.trace_id).collect();
    let child_of = |parent: &Span, name: &str| -> Vec<&Span> {
        trace.iter().copied().filter(|s| s.name == name && s.parent_span_id == parent.span_id).collect()
    };

    let generation = child_of(request, "generation");
    assert_eq!(generation.len(), 1, "one generation under the request: {trace:#?}");
    let generation = generation[0];
    assert_eq!(request.attributes["stream_id"], stream_id, "the caller's stream on the request");
    assert!(generation.attributes["run_id"].starts_with("run_"), "the generation's run: {generation:?}");
    for step in ["gather_context", "generate_draft", "validate_plan", "refine_plan", "finalize_plan"] {
        assert_eq!(child_of(generation, step).len(), 1, "{step} under the generation");
    }
    let draft = child_of(generation, "generate_draft")[0];
    let refine = child_of(generation, "refine_plan")[0];
    for (step, calls) in [(draft, child_of(draft, "provider_call")), (refine, child_of(refine, "provider_call"))] {
        assert_eq!(calls.len(), 1, "one provider call under {}", step.name);
        let a = &calls[0].attributes;
        assert_eq!((a["provider"].as_str(), a["model"].as_str(), a["attempts"].as_str()), ("openai", MODEL, "1"));
        assert!(!a.contains_key("error_code"));
    }
    // Nothing in the trace carries the key or the prompt.
    for span in &trace {
        assert!(!span.text.contains(API_KEY), "{span:#?}");
        assert!(!span.text.contains("expert local travel planner"), "no prompt text in {span:#?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_endpoint_nothing_is_exported() {
    let (collector, spans, posts) = receiver().await;
    let upstream = upstream().await;
    // Other OpenTelemetry variables alone do not turn export on.
    let server =
        Server::start(upstream, &[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", format!("http://{collector}/v1/traces"))])
            .await;
    let (_, types) = server.stream("req-otlp-2").await;
    assert_eq!(types.last().map(String::as_str), Some("done"));
    server.stop();
    assert_eq!(posts.load(Ordering::SeqCst), 0);
    assert!(spans.lock().unwrap().is_empty());
}
