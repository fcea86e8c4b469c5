//! Gemini's wire format, end to end through the engine, against mocks that speak it exactly.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tripstream_adapters::http::Secret;
use tripstream_adapters::llm::{Gemini, GeminiConfig, Timeouts};
use tripstream_domain::{ErrorCode, StreamEvent};
use wiremock::matchers::{body_string_contains, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::llm_support::*;

const PATH: &str = "/v1beta/models/gemini-2.5-flash-lite:streamGenerateContent";

fn gemini(base: &str) -> Arc<Gemini> {
    let mut config = GeminiConfig::new(Secret::new("test-key"));
    config.base_url = base.to_owned();
    config.timeouts = fast_timeouts();
    config.retry = fast_retry();
    Arc::new(Gemini::new(config))
}

fn sse(body: String) -> ResponseTemplate {
    ResponseTemplate::new(200).insert_header("content-type", "text/event-stream").set_body_string(body)
}

fn status(code: u16, status: &str, message: &str, details: Value) -> ResponseTemplate {
    ResponseTemplate::new(code).set_body_json(json!({
        "error": {"code": code, "message": message, "status": status, "details": details}
    }))
}

fn rate_limited(delay: &str) -> ResponseTemplate {
    status(
        429,
        "RESOURCE_EXHAUSTED",
        "You exceeded your current quota, please check your plan and billing details.",
        json!([
            {"@type": "type.googleapis.com/google.rpc.QuotaFailure",
             "violations": [{"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                             "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"}]},
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay}
        ]),
    )
}

async fn server_with(responses: Vec<ResponseTemplate>) -> MockServer {
    let server = MockServer::start().await;
    for r in responses {
        Mock::given(method("POST")).and(path(PATH)).respond_with(r).up_to_n_times(1).mount(&server).await;
    }
    server
}

async fn valid_reply(days: u32) -> String {
    gemini_sse(&plan_json(days).await.to_string(), "STOP")
}

fn complete_plan(events: &[StreamEvent]) -> &tripstream_domain::Plan {
    events
        .iter()
        .find_map(|e| match e {
            StreamEvent::Complete(c) => Some(&*c.plan),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no complete event in {events:#?}"))
}

#[tokio::test]
async fn a_streamed_plan_reads_as_text_with_days_before_complete_and_carries_usage() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(PATH))
        .and(query_param("alt", "sse"))
        .and(header("x-goog-api-key", "test-key"))
        .respond_with(sse(valid_reply(3).await))
        .expect(1)
        .mount(&server)
        .await;
    let (events, result) = run(&engine(gemini(&server.uri())), 3).await;
    let plan = result.unwrap();
    assert_eq!(error_code(&events), None);

    // The request is the documented one: system instruction, JSON mime type, the derived schema.
    let sent: Value = server.received_requests().await.unwrap()[0].body_json().unwrap();
    assert!(sent["systemInstruction"]["parts"][0]["text"].as_str().unwrap().contains("ONE JSON object"));
    let prompt = sent["contents"][0]["parts"][0]["text"].as_str().unwrap();
    assert!(prompt.contains("Plan a 3-day trip to 교토"), "{prompt}");
    // The bundled places are listed, in the request's language, so the model can name them.
    assert!(prompt.contains("- 기요미즈데라 — "), "{prompt}");
    // With when each can be visited: hours unless open all day, and the time of day it is best in.
    assert!(
        prompt.contains("- 킨카쿠지(금각사) — 킨카쿠지 일대 — 500 JPY — outdoor — 09:00–17:00, best in the morning"),
        "{prompt}"
    );
    assert!(prompt.contains("- 후시미 이나리 신사 — 후시미 — 0 JPY — outdoor — best in the morning\n"), "{prompt}");
    assert!(
        prompt.contains("- 교토 국립박물관 — 히가시야마 — 700 JPY — indoor — 09:30–17:00, closed Mon\n"),
        "{prompt}"
    );
    assert_eq!(sent["generationConfig"]["responseMimeType"], "application/json");
    assert_eq!(sent["generationConfig"]["responseSchema"]["type"], "OBJECT");
    assert_eq!(sent["generationConfig"]["maxOutputTokens"], 4 * 1024, "limited by the trip's three days");

    // Chunks are readable text, never JSON; each day arrives as a `day` event before `complete`.
    let chunks: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::Chunk(c) => Some(c.content.as_str()),
            _ => None,
        })
        .collect();
    let text = chunks.concat();
    assert!(chunks.len() >= 3 * 4, "{chunks:?}");
    assert!(!text.contains('{') && !text.contains("\"time\"") && !text.contains("costPerPerson"), "{text}");
    assert!(text.starts_with("1일차 — "), "{text}");
    assert!(text.contains("하루 비용: ¥"), "{text}");
    let first_activity = &plan.days[0].activities[0];
    assert!(text.contains(&format!("{} ", first_activity.time)) && text.contains(&first_activity.name), "{text}");
    let kinds: Vec<&str> = events.iter().map(StreamEvent::kind).collect();
    let days_at: Vec<usize> = kinds.iter().enumerate().filter(|(_, k)| **k == "day").map(|(i, _)| i).collect();
    let complete_at = kinds.iter().position(|k| *k == "complete").unwrap();
    assert_eq!(days_at.len(), 3);
    assert!(days_at.iter().all(|&i| i < complete_at));
    // A day event follows the chunks of its own day, not the end of the stream.
    let first_chunk_of_day2 = kinds.iter().enumerate().position(|(i, k)| *k == "chunk" && i > days_at[0]).unwrap();
    assert!(first_chunk_of_day2 < days_at[1]);

    assert_eq!(plan.days.len(), 3);
    assert_eq!(plan.title, "교토 단풍 여행");
    assert_eq!((plan.metadata.provider.as_str(), plan.metadata.model.as_str()), ("gemini", "gemini-2.5-flash-lite"));
    assert_eq!(plan.metadata.prompt_version, "plan-v2");
    assert_eq!((plan.metadata.usage.input_tokens, plan.metadata.usage.output_tokens), (812, 1403));
    assert_eq!(plan.metadata.iterations, 1);
    assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
    // Places the model names that the catalog knows get their coordinates.
    assert!(plan.days.iter().flat_map(|d| &d.activities).all(|a| a.location.is_some()));
}

#[tokio::test]
async fn a_thinking_budget_is_sent_and_the_answer_keeps_its_own_room() {
    let server = server_with(vec![sse(valid_reply(3).await)]).await;
    let mut config = GeminiConfig::new(Secret::new("test-key"));
    config.base_url = server.uri();
    config.timeouts = fast_timeouts();
    config.thinking_budget = Some(2048);
    let (_, result) = run(&engine(Arc::new(Gemini::new(config))), 3).await;
    result.unwrap();
    let sent: Value = server.received_requests().await.unwrap()[0].body_json().unwrap();
    assert_eq!(sent["generationConfig"]["thinkingConfig"], json!({"thinkingBudget": 2048}));
    // Thoughts count against maxOutputTokens: the three days' 4,096 tokens, plus the budget.
    assert_eq!(sent["generationConfig"]["maxOutputTokens"], 4 * 1024 + 2048);
}

#[tokio::test]
async fn thoughts_a_reply_reports_are_left_room_in_the_calls_after_it() {
    // Gemini 2.5 Flash thinks by default, and its usage says how much.
    let thinking = valid_reply(3)
        .await
        .replace(r#""candidatesTokenCount":1403"#, r#""candidatesTokenCount":1403,"thoughtsTokenCount":1500"#);
    assert!(thinking.contains("thoughtsTokenCount"), "the reply's usage is where the test expects it");
    let server = server_with(vec![sse(thinking), sse(valid_reply(3).await)]).await;
    let model = gemini(&server.uri());
    let (_, first) = run(&engine(model.clone()), 3).await;
    assert_eq!(first.unwrap().metadata.usage.output_tokens, 1403 + 1500, "thoughts are billed as output");
    let (_, second) = run(&engine(model), 3).await;
    second.unwrap();

    let sent: Vec<Value> = server.received_requests().await.unwrap().iter().map(|r| r.body_json().unwrap()).collect();
    // Nothing configured: no thinkingConfig, and no room for thoughts until a reply has shown some.
    assert!(sent.iter().all(|s| s["generationConfig"].get("thinkingConfig").is_none()));
    assert_eq!(sent[0]["generationConfig"]["maxOutputTokens"], 4 * 1024);
    assert_eq!(sent[1]["generationConfig"]["maxOutputTokens"], 4 * 1024 + 1500);
}

#[tokio::test]
async fn markdown_fences_and_a_leading_sentence_are_tolerated() {
    let wrapped = format!("Here is your plan:\n```json\n{}\n```\n", plan_json(2).await);
    let server = server_with(vec![sse(gemini_sse(&wrapped, "STOP"))]).await;
    let (events, result) = run(&engine(gemini(&server.uri())), 2).await;
    assert_eq!(result.map(|p| p.days.len()), Ok(2), "{events:#?}");
}

#[tokio::test]
async fn a_short_retry_delay_is_honoured_then_the_plan_arrives() {
    let server = server_with(vec![rate_limited("0.2s"), sse(valid_reply(1).await)]).await;
    let started = Instant::now();
    let (_, result) = run(&engine(gemini(&server.uri())), 1).await;
    assert!(result.is_ok());
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_long_retry_delay_fails_fast_as_rate_limited() {
    let server = server_with(vec![rate_limited("38s")]).await;
    let started = Instant::now();
    let (events, result) = run(&engine(gemini(&server.uri())), 1).await;
    assert_eq!(result.unwrap_err(), ErrorCode::LlmRateLimited);
    assert_eq!(error_code(&events), Some(ErrorCode::LlmRateLimited));
    assert!(started.elapsed() < Duration::from_secs(2));
    let StreamEvent::Error(failure) = &events[events.len() - 2] else { panic!("{events:#?}") };
    assert!(failure.retryable);
}

#[tokio::test]
async fn a_server_error_is_retried_with_backoff() {
    let server = server_with(vec![
        status(500, "INTERNAL", "An internal error has occurred.", json!([])),
        sse(valid_reply(1).await),
    ])
    .await;
    let (_, result) = run(&engine(gemini(&server.uri())), 1).await;
    assert!(result.is_ok());
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn unavailable_three_times_is_llm_unavailable() {
    let overloaded = || status(503, "UNAVAILABLE", "The model is overloaded. Please try again later.", json!([]));
    let server = server_with(vec![overloaded(), overloaded(), overloaded(), sse(valid_reply(1).await)]).await;
    let (events, result) = run(&engine(gemini(&server.uri())), 1).await;
    assert_eq!(result.unwrap_err(), ErrorCode::LlmUnavailable);
    assert_eq!(error_code(&events), Some(ErrorCode::LlmUnavailable));
    assert_eq!(server.received_requests().await.unwrap().len(), 3, "bounded: three attempts");
}

#[tokio::test]
async fn a_bad_key_is_not_retried() {
    let server = server_with(vec![status(
        400,
        "INVALID_ARGUMENT",
        "API key not valid. Please pass a valid API key.",
        json!([{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}]),
    )])
    .await;
    let (_, result) = run(&engine(gemini(&server.uri())), 1).await;
    assert_eq!(result.unwrap_err(), ErrorCode::LlmUnavailable);
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_server_that_never_answers_is_a_timeout() {
    // Accepts connections and never writes a byte.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let mut config = GeminiConfig::new(Secret::new("k"));
    config.base_url = format!("http://{addr}");
    config.timeouts = fast_timeouts();
    config.timeouts.first_byte = Duration::from_millis(300);
    let started = Instant::now();
    let (events, result) = run(&engine(Arc::new(Gemini::new(config))), 1).await;
    assert_eq!(result.unwrap_err(), ErrorCode::LlmTimeout);
    assert_eq!(error_code(&events), Some(ErrorCode::LlmTimeout));
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn a_connection_that_cannot_be_made_is_unavailable_after_bounded_retries() {
    // A port nothing listens on: connection refused, retried, then given up.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let started = Instant::now();
    let (events, result) = run(&engine(gemini(&format!("http://127.0.0.1:{port}"))), 1).await;
    assert_eq!(result.unwrap_err(), ErrorCode::LlmUnavailable);
    assert_eq!(error_code(&events), Some(ErrorCode::LlmUnavailable));
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn a_stream_that_stalls_mid_way_is_a_timeout_not_a_hang() {
    let reply = valid_reply(2).await;
    let frames: Vec<&str> = reply.split_inclusive("\r\n\r\n").collect();
    let upstream = scripted(vec![Step::Send(frames[..4].concat()), Step::Stall]).await;
    let started = Instant::now();
    let (events, result) = run(&engine(gemini(&format!("http://{}", upstream.addr))), 2).await;
    assert_eq!(result.unwrap_err(), ErrorCode::LlmTimeout);
    assert_eq!(error_code(&events), Some(ErrorCode::LlmTimeout));
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn a_stream_cut_mid_body_is_unavailable() {
    let reply = valid_reply(2).await;
    let frames: Vec<&str> = reply.split_inclusive("\r\n\r\n").collect();
    let upstream = scripted(vec![Step::Send(frames[..5].concat()), Step::Break]).await;
    let (events, result) = run(&engine(gemini(&format!("http://{}", upstream.addr))), 2).await;
    assert_eq!(result.unwrap_err(), ErrorCode::LlmUnavailable);
    assert_eq!(error_code(&events), Some(ErrorCode::LlmUnavailable));
}

#[tokio::test]
async fn a_stream_that_ends_without_a_finish_reason_is_unavailable() {
    let reply = valid_reply(2).await;
    let frames: Vec<&str> = reply.split_inclusive("\r\n\r\n").collect();
    let server = server_with(vec![sse(frames[..frames.len() - 1].concat())]).await;
    let (_, result) = run(&engine(gemini(&server.uri())), 2).await;
    assert_eq!(result.unwrap_err(), ErrorCode::LlmUnavailable);
}

#[tokio::test]
async fn malformed_json_is_asked_for_once_more() {
    let broken = gemini_sse(r#"{"title": "x", "days": [{"day": 1, "theme": "t", "activities": [}]}"#, "STOP");
    let server = server_with(vec![sse(broken.clone()), sse(valid_reply(1).await)]).await;
    let (_, result) = run(&engine(gemini(&server.uri())), 1).await;
    assert!(result.is_ok());

    let server = server_with(vec![sse(broken.clone()), sse(broken)]).await;
    let (events, result) = run(&engine(gemini(&server.uri())), 1).await;
    assert_eq!(result.unwrap_err(), ErrorCode::LlmBadOutput);
    assert_eq!(error_code(&events), Some(ErrorCode::LlmBadOutput));
}

#[tokio::test]
async fn max_tokens_keeps_the_finished_days_and_a_reply_with_none_is_bad_output() {
    // Cut in day 2: day 1 is kept, day 2 asked for alone (cut again: the offline planner writes it).
    let whole: String = plan_json(2).await.to_string();
    let half: String = whole.chars().take(whole.chars().count() * 3 / 4).collect();
    let cut = gemini_sse(&half, "MAX_TOKENS");
    let server = server_with(vec![sse(cut.clone()); 6]).await;
    let (_, result) = run(&engine(gemini(&server.uri())), 2).await;
    let plan = result.unwrap();
    assert_eq!(plan.days.len(), 2);
    assert!(plan.warnings.iter().any(|w| w.contains("잘려")), "{:?}", plan.warnings);

    // Cut before any day is finished: nothing to keep.
    let cut: String = whole.chars().take(200).collect();
    let cut = gemini_sse(&cut, "MAX_TOKENS");
    let server = server_with(vec![sse(cut.clone()), sse(cut)]).await;
    let (events, result) = run(&engine(gemini(&server.uri())), 2).await;
    assert_eq!(result.unwrap_err(), ErrorCode::LlmBadOutput);
    let StreamEvent::Error(failure) = &events[events.len() - 2] else { panic!() };
    assert_eq!(failure.usage.map(|u| u.output_tokens), Some(2 * 1403), "tokens spent are reported");
}

#[tokio::test]
async fn an_error_frame_mid_stream_ends_the_stream_with_its_code() {
    let reply = valid_reply(2).await;
    let frames: Vec<&str> = reply.split_inclusive("\r\n\r\n").collect();
    let error = json!({"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}});
    let server = server_with(vec![sse(format!("{}data: {error}\r\n\r\n", frames[..3].concat()))]).await;
    let (_, result) = run(&engine(gemini(&server.uri())), 2).await;
    assert_eq!(result.unwrap_err(), ErrorCode::LlmUnavailable);
}

#[tokio::test]
async fn a_plan_short_of_a_day_gets_that_day_asked_for_alone() {
    let full = plan_json(3).await;
    let mut two = full.clone();
    two["days"].as_array_mut().unwrap().truncate(2);
    let day3 = json!({"title": "", "days": [full["days"][2]], "tips": []});
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(PATH))
        .and(body_string_contains("Write day 3 again"))
        .respond_with(sse(gemini_sse(&day3.to_string(), "STOP")))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(PATH))
        .respond_with(sse(gemini_sse(&two.to_string(), "STOP")))
        .expect(1)
        .mount(&server)
        .await;
    let (events, result) = run(&engine(gemini(&server.uri())), 3).await;
    let plan = result.unwrap();
    assert_eq!((plan.days.len(), plan.metadata.iterations), (3, 1));
    assert_eq!(complete_plan(&events).warnings, ["3일차는 모델의 답변에 빠져 있어 따로 다시 요청했습니다."]);
    let names = |d: &Value| d["activities"].as_array().unwrap().iter().map(|a| a["name"].clone()).collect::<Vec<_>>();
    let got: Vec<Value> = plan.days[2].activities.iter().map(|a| json!(a.name)).collect();
    assert_eq!(got, names(&full["days"][2]), "day 3 is the model's");
    // Day 3 went out as a `day` event after days 1 and 2.
    let days: Vec<u32> =
        events.iter().filter_map(|e| if let StreamEvent::Day(d) = e { Some(d.day.day) } else { None }).collect();
    assert_eq!(days, [1, 2, 3]);
    assert_eq!(plan.metadata.usage.output_tokens, 2 * 1403);
}

#[tokio::test]
async fn a_connect_timeout_is_a_timeout() {
    // A listener that never accepts, its accept queue filled: new connections get no answer to their SYN.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(1).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut held = Vec::new();
    loop {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(100)) {
            Ok(stream) => held.push(stream),
            Err(_) => break,
        }
        assert!(held.len() < 64, "the accept queue never filled");
    }
    let mut config = GeminiConfig::new(Secret::new("k"));
    config.base_url = format!("http://{addr}");
    // The connect deadline, not the first byte's, ends it: the two far apart, so a busy machine's delays
    // cannot blur them.
    config.timeouts =
        Timeouts { first_byte: Duration::from_secs(20), total: Duration::from_secs(30), ..fast_timeouts() };
    let started = Instant::now();
    let (events, result) = run(&engine(Arc::new(Gemini::new(config))), 1).await;
    assert_eq!(result.unwrap_err(), ErrorCode::LlmTimeout, "{events:#?}");
    assert!(started.elapsed() < Duration::from_secs(8), "{:?}", started.elapsed());
    drop((listener, held));
}

#[tokio::test]
async fn a_bundled_place_on_its_closing_day_is_sent_back_to_the_model() {
    // 2025-11-10 is a Monday, when Kyoto National Museum is closed (its data says so).
    let good = plan_json(3).await;
    let mut closed = good.clone();
    let sight = closed["days"][0]["activities"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|a| a["category"] != "food" && a["category"] != "cafe" && a["category"] != "rest")
        .unwrap();
    sight["name"] = json!("교토 국립박물관");
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(PATH))
        .and(body_string_contains("It breaks these rules"))
        .respond_with(sse(gemini_sse(&good.to_string(), "STOP")))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(PATH))
        .respond_with(sse(gemini_sse(&closed.to_string(), "STOP")))
        .expect(1)
        .mount(&server)
        .await;
    let (_, result) = run(&engine(gemini(&server.uri())), 3).await;
    let plan = result.unwrap();
    let refine: Value = server.received_requests().await.unwrap()[1].body_json().unwrap();
    let prompt = refine["contents"][0]["parts"][0]["text"].as_str().unwrap();
    assert!(prompt.contains("- 1일차에는 '교토 국립박물관'이 문을 닫습니다."), "{prompt}");
    assert_eq!(plan.metadata.iterations, 2);
    assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
    assert!(plan.days[0].activities.iter().all(|a| a.name != "교토 국립박물관"));
}
