//! The abuse suite's hostile upstreams (e): `tripstream serve` with a provider that misbehaves, in each
//! wire format, and no fallback. Every stream ends with `error` (the code API.md gives the failure) and
//! `done`, within a bound; the server logs no panic; nothing hangs (every read has a deadline).

use std::process::Stdio;
use std::time::{Duration, Instant};

use eventsource_stream::Eventsource;
use futures::StreamExt;
use serde_json::Value;
use tripstream_testkit::{Hostile, Scenario};

use crate::process::Served;

/// The longest any scenario may take, from request to `done`: the limits below, retries included,
/// with room for a busy machine.
const BOUND: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy)]
enum Wire {
    Gemini,
    OpenAi,
}

/// The stream's events (`data` as JSON) for one request to a server whose only provider plays
/// `scenario`, and what the server logged.
async fn stream_against(wire: Wire, scenario: Scenario) -> (Vec<Value>, Duration, String, usize) {
    let upstream = Hostile::start(scenario).await.unwrap();
    let log = std::env::temp_dir().join(format!("tripstream-hostile-{}-{wire:?}-{scenario:?}.log", std::process::id()));
    let provider = match wire {
        Wire::Gemini => [
            ("LLM_PROVIDER", "gemini".to_owned()),
            ("GEMINI_API_KEY", "test-key".to_owned()),
            ("GEMINI_BASE_URL", upstream.base_url()),
        ],
        Wire::OpenAi => [
            ("LLM_PROVIDER", "openai".to_owned()),
            ("OPENAI_API_KEY", "test-key".to_owned()),
            ("OPENAI_BASE_URL", upstream.base_url()),
        ],
    };
    let limits = [
        ("LLM_FALLBACK", "none".to_owned()),
        ("LLM_FIRST_BYTE_TIMEOUT_SECS", "2".to_owned()),
        ("LLM_IDLE_TIMEOUT_SECS", "1".to_owned()),
        ("LLM_TOTAL_TIMEOUT_SECS", "3".to_owned()),
        ("LLM_RETRY_BASE_MS", "10".to_owned()),
        ("RUST_LOG", "info".to_owned()),
    ];
    let server =
        Served::start_logging(provider.into_iter().chain(limits), Stdio::from(std::fs::File::create(&log).unwrap()))
            .await;
    let client = tripstream_adapters::http::client(Duration::from_secs(5));
    let body =
        r#"{"location":"Seoul","startDate":"2027-05-10","endDate":"2027-05-10","budget":"medium","language":"en"}"#;
    let started = Instant::now();
    let read = async {
        let response = client
            .post(format!("{}/api/v1/plans/generate/stream", server.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let mut events = Vec::new();
        let mut stream = response.bytes_stream().eventsource();
        while let Some(event) = stream.next().await {
            let event: Value = serde_json::from_str(&event.unwrap().data).unwrap();
            let done = event["type"] == "done";
            events.push(event);
            if done {
                break;
            }
        }
        events
    };
    let events = tokio::time::timeout(BOUND, read)
        .await
        .unwrap_or_else(|_| panic!("{wire:?} {scenario:?}: the stream did not end within {BOUND:?}"));
    let took = started.elapsed();
    server.terminate();
    let logged = std::fs::read_to_string(&log).unwrap();
    let _ = std::fs::remove_file(&log);
    (events, took, logged, upstream.requests())
}

/// Runs `scenario` in both wire formats and checks the stream ends with `error` `code` and `done`, and
/// that the server logged no panic. Returns the upstream requests each took.
async fn ends_with(scenario: Scenario, code: &str, within: Duration) -> Vec<usize> {
    let mut requests = Vec::new();
    for wire in [Wire::Gemini, Wire::OpenAi] {
        let (events, took, logged, upstream) = stream_against(wire, scenario).await;
        let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap_or("?")).collect();
        let [.., error, done] = &events[..] else { panic!("{wire:?} {scenario:?}: {kinds:?}") };
        assert_eq!((error["type"].as_str(), done["type"].as_str()), (Some("error"), Some("done")), "{kinds:?}");
        assert_eq!(error["error"], code, "{wire:?} {scenario:?}: {error}");
        assert_eq!(kinds.iter().filter(|k| **k == "done").count(), 1);
        assert!(!kinds.contains(&"complete"), "{wire:?} {scenario:?}: {kinds:?}");
        assert!(took < within, "{wire:?} {scenario:?}: {took:?}, more than {within:?}");
        assert!(!logged.contains("panicked"), "{wire:?} {scenario:?}: the server panicked:\n{logged}");
        assert!(!logged.contains("test-key"), "{wire:?} {scenario:?}: the key is in the logs");
        requests.push(upstream);
    }
    requests
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ten_megabyte_reply_is_cut_at_the_cap_as_bad_output() {
    ends_with(Scenario::Huge, "llm_bad_output", Duration::from_secs(20)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_of_1e20_fails_fast_as_rate_limited() {
    // One request per draft attempt: nobody waits 1e20 seconds, and nothing panics reading it.
    let requests = ends_with(Scenario::RetryAfterForever, "llm_rate_limited", Duration::from_secs(5)).await;
    assert!(requests.iter().all(|n| (1..=2).contains(n)), "{requests:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_stream_of_whitespace_or_silence_times_out() {
    ends_with(Scenario::EndlessWhitespace, "llm_timeout", Duration::from_secs(20)).await;
    ends_with(Scenario::Silent, "llm_timeout", Duration::from_secs(20)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_sse_and_truncated_json_are_bad_output() {
    ends_with(Scenario::MalformedSse, "llm_bad_output", Duration::from_secs(10)).await;
    ends_with(Scenario::TruncatedJson, "llm_bad_output", Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_429s_is_retried_a_bounded_number_of_times() {
    // LLM_MAX_ATTEMPTS (3) sends per call, and the engine's one call: never a retry loop.
    let requests = ends_with(Scenario::RateLimitStorm, "llm_rate_limited", Duration::from_secs(10)).await;
    assert!(requests.iter().all(|n| (1..=6).contains(n)), "{requests:?}");
}
