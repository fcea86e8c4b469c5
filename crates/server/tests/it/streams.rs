//! `POST /api/v1/plans/generate/stream`: headers, ids, the event order and progress of API.md, keep-alive,
//! cancellation when the client leaves, and graceful shutdown.

use std::sync::atomic::Ordering;
use std::time::Duration;

use eventsource_stream::Eventsource;
use futures::StreamExt;
use serde_json::Value;
use tripstream_server::ServerConfig;

use crate::helpers::*;

/// `Connection: keep-alive` goes only to an HTTP/1.1 client that keeps the connection: one that asks to
/// close gets `close` alone (not `keep-alive, close`), and an HTTP/1.0 one no `keep-alive`.
#[tokio::test]
async fn keep_alive_is_said_only_to_an_http_1_1_client_that_keeps_the_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app().await;
    let address = app.base.trim_start_matches("http://").to_owned();
    let body = seoul_body();
    for (version, connection, expected) in
        [("1.1", "", vec!["keep-alive"]), ("1.1", "Connection: close\r\n", vec!["close"]), ("1.0", "", vec![])]
    {
        let mut socket = tokio::net::TcpStream::connect(&address).await.unwrap();
        let request = format!(
            "POST /api/v1/plans/generate/stream HTTP/{version}\r\nHost: x\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n{connection}\r\n{body}",
            body.len()
        );
        socket.write_all(request.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
            let mut buf = [0; 4096];
            let n = tokio::time::timeout(Duration::from_secs(10), socket.read(&mut buf)).await.unwrap().unwrap();
            assert!(n > 0, "the connection closed before the headers");
            answer.extend_from_slice(&buf[..n]);
        }
        let head = String::from_utf8_lossy(&answer).to_lowercase();
        let head = &head[..head.find("\r\n\r\n").unwrap()];
        assert!(head.starts_with(&format!("http/{version} 200")), "{head}");
        let values: Vec<&str> = head.lines().filter_map(|l| l.strip_prefix("connection: ")).collect();
        assert_eq!(values, expected, "HTTP/{version} {connection:?}: {head}");
    }
}

#[tokio::test]
async fn the_original_curl_request_streams_the_whole_contract() {
    let app = spawn_app().await;
    let response = app.stream(seoul_body()).await;
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "text/event-stream");
    assert_eq!(headers.get_all("cache-control").iter().collect::<Vec<_>>(), ["no-cache"]);
    assert_eq!(headers["x-accel-buffering"], "no");
    assert_eq!(headers["connection"], "keep-alive");
    let stream_id = headers["x-stream-id"].to_str().unwrap().to_owned();
    assert!(stream_id.starts_with("str_"));

    let messages = messages(response).await;
    // ids are the per-stream sequence; streamId rides on the first event only.
    for (i, m) in messages.iter().enumerate() {
        assert_eq!(m.id, i.to_string());
        assert_eq!(m.data.get("streamId").and_then(Value::as_str), (i == 0).then_some(stream_id.as_str()));
    }
    insta::assert_snapshot!(transcript(&messages));

    let kinds: Vec<&str> = messages.iter().map(Message::kind).collect();
    let progress = |m: &Message| m.data["progress"].as_u64();
    let chunk_progress: Vec<u64> = messages.iter().filter(|m| m.kind() == "chunk").filter_map(progress).collect();
    assert!(chunk_progress.len() > 10 && chunk_progress.iter().all(|p| (31..=55).contains(p)));
    assert!(chunk_progress.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(kinds.iter().filter(|k| **k == "day").count(), 3);
    let milestones: Vec<(String, u64)> = messages
        .iter()
        .filter(|m| matches!(m.kind(), "status" | "progress" | "complete"))
        .map(|m| (m.kind().to_owned(), progress(m).unwrap()))
        .collect();
    let expected = [
        ("status", 10),
        ("progress", 20),
        ("status", 30),
        ("progress", 60),
        ("status", 65),
        ("progress", 70),
        ("status", 95),
        ("complete", 100),
    ];
    assert_eq!(milestones, expected.map(|(k, p)| (k.to_owned(), p)));
    assert_eq!(kinds.last(), Some(&"done"));
    let complete = &messages[messages.len() - 2];
    assert_eq!(complete.data["plan"]["days"].as_array().unwrap().len(), 3);
    assert_eq!(complete.data["message"], "여행 계획 생성 완료!");
}

#[tokio::test]
async fn accept_language_picks_english_when_the_body_does_not_say() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(format!("{}/api/v1/plans/generate/stream", app.base))
        .header("content-type", "application/json")
        .header("accept-language", "en-US,en;q=0.9")
        .body(seoul_body())
        .send()
        .await
        .unwrap();
    let messages = messages(response).await;
    assert_eq!(messages[0].data["message"], "Gathering weather for Seoul...");
    assert_eq!(messages[messages.len() - 2].data["message"], "Your travel plan is ready!");
}

#[tokio::test]
async fn a_quiet_stream_sends_keep_alive_comments() {
    let mut config = ServerConfig { keep_alive_secs: Secs::new(1), ..ServerConfig::for_tests() };
    config.engine.generation_timeout_secs = Secs::new(60);
    let (services, _) = endless_services(&config);
    let app = spawn_app_with(config, Some(services)).await;
    let response = app.stream(seoul_body()).await;
    let mut bytes = response.bytes_stream();
    let mut seen = String::new();
    while !seen.contains(": keep-alive\n") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), bytes.next()).await.expect("a keep-alive in time");
        seen.push_str(&String::from_utf8_lossy(&chunk.unwrap().unwrap()));
    }
}

#[tokio::test]
async fn the_client_leaving_stops_the_generation() {
    let config = ServerConfig::for_tests();
    let (services, dropped) = endless_services(&config);
    let app = spawn_app_with(config, Some(services)).await;
    let response = app.stream(seoul_body()).await;
    let mut events = response.bytes_stream().eventsource();
    // Read until the generator has started writing, then hang up.
    loop {
        let event = events.next().await.unwrap().unwrap();
        if event.data.contains("\"chunk\"") {
            break;
        }
    }
    assert!(!dropped.load(Ordering::SeqCst));
    drop(events);
    for _ in 0..100 {
        if dropped.load(Ordering::SeqCst) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the generation was not cancelled within 2 s of the client leaving");
}

#[tokio::test]
async fn shutdown_ends_unfinished_streams_with_a_retryable_error_then_done() {
    let config = ServerConfig { shutdown_grace_secs: Secs::new(0), ..ServerConfig::for_tests() };
    let (services, dropped) = endless_services(&config);
    let mut app = spawn_app_with(config, Some(services)).await;
    let response = app.stream(seoul_body()).await;
    let mut events = response.bytes_stream().eventsource();
    let first = events.next().await.unwrap().unwrap();
    assert!(first.data.contains("gather_context"));
    app.shutdown.take().unwrap().send(()).unwrap();
    let mut rest = Vec::new();
    while let Some(event) = tokio::time::timeout(Duration::from_secs(10), events.next()).await.expect("the stream ends")
    {
        rest.push(serde_json::from_str::<Value>(&event.unwrap().data).unwrap());
    }
    let n = rest.len();
    assert_eq!(rest[n - 2]["type"], "error");
    assert_eq!(rest[n - 2]["retryable"], true);
    assert_eq!(rest[n - 1]["type"], "done");
    assert!(dropped.load(Ordering::SeqCst));
    tokio::time::timeout(Duration::from_secs(10), &mut app.server).await.expect("the server stops").unwrap();
}
