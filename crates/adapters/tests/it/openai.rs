//! The OpenAI-compatible wire format (OpenAI, vLLM, llama.cpp, Ollama), end to end through the engine.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tripstream_adapters::http::Secret;
use tripstream_adapters::llm::{OpenAi, OpenAiConfig};
use tripstream_domain::ErrorCode;
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::llm_support::*;

const PATH: &str = "/v1/chat/completions";

fn openai(base: &str, key: Option<&str>) -> Arc<OpenAi> {
    let mut config = OpenAiConfig::new(base);
    config.api_key = key.map(Secret::new);
    config.model = "llama3.1:8b".into();
    config.timeouts = fast_timeouts();
    config.retry = fast_retry();
    Arc::new(OpenAi::new(config))
}

fn sse(body: String) -> ResponseTemplate {
    ResponseTemplate::new(200).insert_header("content-type", "text/event-stream").set_body_string(body)
}

fn error(code: u16, message: &str, kind: &str, param: Value, err_code: Value) -> ResponseTemplate {
    ResponseTemplate::new(code)
        .set_body_json(json!({"error": {"message": message, "type": kind, "param": param, "code": err_code}}))
}

async fn valid_reply(days: u32) -> ResponseTemplate {
    sse(openai_sse(&plan_json(days).await.to_string(), "stop"))
}

/// Answers the requests whose body contains `needle` with `response`, expecting `times` of them.
async fn when_sent(server: &MockServer, needle: &str, response: ResponseTemplate, times: u64) {
    Mock::given(method("POST"))
        .and(path(PATH))
        .and(body_string_contains(needle))
        .respond_with(response)
        .expect(times)
        .mount(server)
        .await;
}

async fn server_with(responses: Vec<ResponseTemplate>) -> MockServer {
    let server = MockServer::start().await;
    for r in responses {
        Mock::given(method("POST")).and(path(PATH)).respond_with(r).up_to_n_times(1).mount(&server).await;
    }
    server
}

#[tokio::test]
async fn a_streamed_plan_with_usage_and_done() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(PATH))
        .and(header("authorization", "Bearer sk-test"))
        .respond_with(valid_reply(2).await)
        .expect(1)
        .mount(&server)
        .await;
    // A base URL given with `/v1`, as OpenAI's own SDKs spell it, reaches the same path.
    let (events, result) = run(&engine(openai(&format!("{}/v1", server.uri()), Some("sk-test"))), 2).await;
    let plan = result.unwrap();
    assert_eq!(error_code(&events), None);
    let sent: Value = server.received_requests().await.unwrap()[0].body_json().unwrap();
    assert_eq!(sent["stream"], true);
    assert_eq!(sent["stream_options"]["include_usage"], true);
    assert_eq!(sent["model"], "llama3.1:8b");
    assert_eq!(sent["messages"][0]["role"], "system");
    assert_eq!(sent["response_format"]["type"], "json_schema");
    assert_eq!(sent["response_format"]["json_schema"]["strict"], true);
    assert_eq!(sent["response_format"]["json_schema"]["schema"]["additionalProperties"], false);
    assert_eq!(sent["max_tokens"], 3 * 1024, "the output is limited by the trip's length");

    let text = chunk_text(&events);
    assert!(text.starts_with("1일차 — ") && !text.contains('{'), "{text}");
    assert_eq!(events.iter().filter(|e| e.kind() == "day").count(), 2);
    assert_eq!((plan.metadata.provider.as_str(), plan.metadata.model.as_str()), ("openai", "llama3.1:8b"));
    assert_eq!((plan.metadata.usage.input_tokens, plan.metadata.usage.output_tokens), (700, 1200));
}

#[tokio::test]
async fn a_local_server_needs_no_key() {
    let server = server_with(vec![valid_reply(1).await]).await;
    let (_, result) = run(&engine(openai(&server.uri(), None)), 1).await;
    assert!(result.is_ok());
    let request = &server.received_requests().await.unwrap()[0];
    assert!(request.headers.get("authorization").is_none());
}

#[tokio::test]
async fn a_server_that_rejects_json_schema_gets_json_object_from_then_on() {
    let server = MockServer::start().await;
    when_sent(
        &server,
        "\"json_schema\"",
        error(
            400,
            "Invalid parameter: 'response_format' of type 'json_schema' is not supported with this model.",
            "invalid_request_error",
            json!("response_format"),
            Value::Null,
        ),
        1,
    )
    .await;
    when_sent(&server, "\"json_object\"", valid_reply(1).await, 2).await;
    let engine = engine(openai(&server.uri(), None));
    assert!(run(&engine, 1).await.1.is_ok());
    assert!(run(&engine, 1).await.1.is_ok(), "the second plan goes straight to json_object");
}

/// A 400 `invalid_request_error` about `param`, as OpenAI words it.
fn refused(message: &str, param: &str, code: &str) -> ResponseTemplate {
    error(400, message, "invalid_request_error", json!(param), json!(code))
}

const NO_MAX_TOKENS: &str =
    "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.";
const NO_TEMPERATURE: &str =
    "Unsupported value: 'temperature' does not support 0.7 with this model. Only the default (1) value is supported.";

#[tokio::test]
async fn a_reasoning_model_gets_max_completion_tokens_and_its_default_temperature_from_then_on() {
    // What OpenAI answers for its o-series models, word for word.
    let server = MockServer::start().await;
    when_sent(&server, "\"max_tokens\"", refused(NO_MAX_TOKENS, "max_tokens", "unsupported_parameter"), 1).await;
    when_sent(&server, "\"temperature\"", refused(NO_TEMPERATURE, "temperature", "unsupported_value"), 1).await;
    when_sent(&server, "\"messages\"", valid_reply(1).await, 2).await;
    let engine = engine(openai(&server.uri(), None));
    assert!(run(&engine, 1).await.1.is_ok());
    assert!(run(&engine, 1).await.1.is_ok(), "the second plan is sent as the model takes it at once");
    let last: Value = server.received_requests().await.unwrap().last().unwrap().body_json().unwrap();
    assert_eq!(last["max_completion_tokens"], 2 * 1024, "{last}");
    assert!(last.get("max_tokens").is_none() && last.get("temperature").is_none(), "{last}");
    assert_eq!(last["response_format"]["type"], "json_schema", "the schema was never refused");
}

#[tokio::test]
async fn the_refused_parameter_is_read_from_param_and_only_that_one_is_dropped() {
    // A server that does not know `stream_options`, in words that also name other parameters.
    let server = MockServer::start().await;
    let message = "Unrecognized request argument supplied: stream_options (with max_tokens and temperature)";
    when_sent(&server, "\"stream_options\"", refused(message, "stream_options", "unknown_parameter"), 1).await;
    when_sent(&server, "\"messages\"", valid_reply(1).await, 1).await;
    assert!(run(&engine(openai(&server.uri(), None)), 1).await.1.is_ok());
    let last: Value = server.received_requests().await.unwrap().last().unwrap().body_json().unwrap();
    assert!(last.get("stream_options").is_none(), "{last}");
    assert_eq!((last["max_tokens"].as_u64(), last["temperature"].as_f64().is_some()), (Some(2 * 1024), true));
    assert_eq!(last["response_format"]["type"], "json_schema");
}

#[tokio::test]
async fn a_refusal_of_what_cannot_be_left_out_fails_at_once() {
    // The prompt itself: nothing to send without, so no second call.
    let server = MockServer::start().await;
    let message = "This model's maximum context length is 8192 tokens. However, your messages resulted in 9120 \
                   tokens. Please reduce the length of the messages.";
    when_sent(&server, "\"messages\"", refused(message, "messages", "context_length_exceeded"), 1).await;
    let (events, result) = run(&engine(openai(&server.uri(), None)), 1).await;
    assert!(result.is_err());
    assert_eq!(error_code(&events), Some(ErrorCode::LlmUnavailable));
}

#[tokio::test]
async fn a_parameter_refused_again_fails_as_unavailable_without_looping() {
    let server = MockServer::start().await;
    when_sent(&server, "\"messages\"", refused(NO_MAX_TOKENS, "max_tokens", "unsupported_parameter"), 2).await;
    let (events, result) = run(&engine(openai(&server.uri(), None)), 1).await;
    assert!(result.is_err());
    assert_eq!(error_code(&events), Some(ErrorCode::LlmUnavailable));
}

#[tokio::test]
async fn rate_limits_honour_retry_after_and_quota_fails_fast() {
    let limited = error(429, "Rate limit reached for requests", "requests", Value::Null, json!("rate_limit_exceeded"))
        .insert_header("retry-after", "0.1");
    let server = server_with(vec![limited, valid_reply(1).await]).await;
    assert!(run(&engine(openai(&server.uri(), None)), 1).await.1.is_ok());

    let quota = error(
        429,
        "You exceeded your current quota, please check your plan and billing details.",
        "insufficient_quota",
        Value::Null,
        json!("insufficient_quota"),
    );
    let server = server_with(vec![quota, valid_reply(1).await]).await;
    let (events, result) = run(&engine(openai(&server.uri(), None)), 1).await;
    assert_eq!(result.unwrap_err(), ErrorCode::LlmRateLimited);
    assert_eq!(error_code(&events), Some(ErrorCode::LlmRateLimited));
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn an_absurd_retry_after_fails_fast_and_an_oversized_reply_is_bad_output() {
    for absurd in ["1e20", "Fri, 31 Dec 9999 23:59:59 GMT", "soon"] {
        let limited = error(429, "Rate limit reached", "requests", Value::Null, json!("rate_limit_exceeded"))
            .insert_header("retry-after", absurd);
        let server = server_with(vec![limited, valid_reply(1).await]).await;
        let started = std::time::Instant::now();
        let (events, result) = run(&engine(openai(&server.uri(), None)), 1).await;
        assert_eq!(result.unwrap_err(), ErrorCode::LlmRateLimited, "{absurd}");
        assert_eq!(error_code(&events), Some(ErrorCode::LlmRateLimited));
        assert!(started.elapsed() < Duration::from_secs(5), "{absurd}: no wait");
    }

    // A reply past the cap, in one endless line the SSE parser would otherwise buffer, or in frames.
    let mut config = OpenAiConfig::new(MockServer::start().await.uri());
    config.max_reply_bytes = 64 << 10;
    let endless_line = format!("data: {}", " ".repeat(200 << 10));
    let many_frames = openai_sse(&" ".repeat(200 << 10), "stop");
    for body in [endless_line, many_frames] {
        // The engine asks again once after bad output.
        let server = server_with(vec![sse(body.clone()), sse(body)]).await;
        let mut config = config.clone();
        config.base_url = server.uri();
        config.timeouts = fast_timeouts();
        let (events, result) = run(&engine(Arc::new(OpenAi::new(config))), 1).await;
        assert_eq!(result.unwrap_err(), ErrorCode::LlmBadOutput);
        assert_eq!(error_code(&events), Some(ErrorCode::LlmBadOutput));
    }
}

#[tokio::test]
async fn server_errors_are_retried_then_given_up() {
    let boom = || {
        error(500, "The server had an error while processing your request.", "server_error", Value::Null, Value::Null)
    };
    let server = server_with(vec![boom(), valid_reply(1).await]).await;
    assert!(run(&engine(openai(&server.uri(), None)), 1).await.1.is_ok());

    let server = server_with(vec![boom(), boom(), boom()]).await;
    let (events, result) = run(&engine(openai(&server.uri(), None)), 1).await;
    assert_eq!(result.unwrap_err(), ErrorCode::LlmUnavailable);
    assert_eq!(error_code(&events), Some(ErrorCode::LlmUnavailable));
}

#[tokio::test]
async fn length_is_bad_output_and_a_stalled_stream_is_a_timeout() {
    let whole = plan_json(1).await.to_string();
    let cut: String = whole.chars().take(200).collect();
    let server = server_with(vec![sse(openai_sse(&cut, "length")), sse(openai_sse(&cut, "length"))]).await;
    assert_eq!(run(&engine(openai(&server.uri(), None)), 1).await.1.unwrap_err(), ErrorCode::LlmBadOutput);

    let reply = openai_sse(&whole, "stop");
    let frames: Vec<&str> = reply.split_inclusive("\n\n").collect();
    let upstream = scripted(vec![Step::Send(frames[..6].concat()), Step::Pause(Duration::from_secs(30))]).await;
    let (events, result) = run(&engine(openai(&format!("http://{}", upstream.addr), None)), 1).await;
    assert_eq!(result.unwrap_err(), ErrorCode::LlmTimeout);
    assert_eq!(error_code(&events), Some(ErrorCode::LlmTimeout));

    // Pauses shorter than the idle limit (400 ms) that add up to more than it are no stall.
    let mut script: Vec<Step> =
        frames[..4].iter().flat_map(|f| [Step::Send(f.to_string()), Step::Pause(Duration::from_millis(250))]).collect();
    script.push(Step::Send(frames[4..].concat()));
    let upstream = scripted(script).await;
    assert!(run(&engine(openai(&format!("http://{}", upstream.addr), None)), 1).await.1.is_ok());
}

#[tokio::test]
async fn an_error_chunk_mid_stream_and_a_missing_done_are_failures() {
    let reply = openai_sse(&plan_json(1).await.to_string(), "stop");
    let frames: Vec<&str> = reply.split_inclusive("\n\n").collect();
    let mid = format!(
        "{}data: {}\n\n",
        frames[..4].concat(),
        json!({"error": {"message": "model crashed", "type": "server_error"}})
    );
    let server = server_with(vec![sse(mid)]).await;
    assert_eq!(run(&engine(openai(&server.uri(), None)), 1).await.1.unwrap_err(), ErrorCode::LlmUnavailable);

    // Cut before the finish chunk: the reply never said it was complete.
    let server = server_with(vec![sse(frames[..frames.len() - 3].concat())]).await;
    assert_eq!(run(&engine(openai(&server.uri(), None)), 1).await.1.unwrap_err(), ErrorCode::LlmUnavailable);
}

#[tokio::test]
async fn the_upstream_request_is_closed_when_the_generation_is_dropped() {
    let reply = openai_sse(&plan_json(2).await.to_string(), "stop");
    let frames: Vec<String> = reply.split_inclusive("\n\n").map(str::to_owned).collect();
    // A slow model: one frame every 50 ms.
    let script = frames.into_iter().flat_map(|f| [Step::Send(f), Step::Pause(Duration::from_millis(50))]).collect();
    let upstream = scripted(script).await;
    let engine = engine(openai(&format!("http://{}", upstream.addr), None));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        let mut tx = tx;
        engine.run(&request(2), &destination().await, &mut tx).await
    });
    while let Some(event) = rx.recv().await {
        if event.kind() == "chunk" {
            break;
        }
    }
    assert!(upstream.dropped.lock().unwrap().is_none(), "still streaming");
    task.abort();
    let left = std::time::Instant::now();
    while upstream.dropped.lock().unwrap().is_none() {
        assert!(left.elapsed() < Duration::from_secs(1), "the upstream request outlived its generation");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(*upstream.requests.lock().unwrap(), 1);
}
