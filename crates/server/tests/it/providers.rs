//! The server with a real provider configured: the choice shows in `/health`, and a client that leaves
//! closes the upstream request.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use futures::StreamExt;
use serde_json::json;
use tripstream_server::ServerConfig;
use tripstream_server::config::LlmChoice;

use crate::helpers::*;

/// A Gemini that starts a reply and then trickles whitespace forever, one frame every 50 ms, noting when
/// its response body is dropped (the connection was closed).
async fn slow_gemini() -> (String, Arc<Mutex<Option<Instant>>>) {
    struct Note(Arc<Mutex<Option<Instant>>>);
    impl Drop for Note {
        fn drop(&mut self) {
            *self.0.lock().unwrap() = Some(Instant::now());
        }
    }
    let closed = Arc::new(Mutex::new(None));
    let seen = closed.clone();
    let app = axum::Router::new().fallback(move || {
        let note = Note(seen.clone());
        async move {
            let frame = |text: &str| {
                let f = json!({"candidates": [{"content": {"parts": [{"text": text}], "role": "model"}, "index": 0}]});
                Ok::<_, std::io::Error>(Bytes::from(format!("data: {f}\r\n\r\n")))
            };
            let first = futures::stream::once(async move { frame("{\"title\": \"t\", \"days\": [") });
            let rest = futures::stream::unfold(note, move |note| async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                Some((frame(" "), note))
            });
            axum::response::Response::builder()
                .header("content-type", "text/event-stream")
                .body(Body::from_stream(first.chain(rest)))
                .unwrap()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), closed)
}

fn gemini_config(base: &str) -> ServerConfig {
    let mut config = ServerConfig::default();
    config.engine.llm.gemini_api_key = Some("test-key".into());
    config.engine.llm.gemini_base_url = base.to_owned();
    config
}

#[tokio::test]
async fn health_shows_the_chosen_provider_and_its_fallbacks() {
    let app = spawn_app_with(gemini_config("http://127.0.0.1:9"), None).await;
    let health: serde_json::Value = app.get("/health").await.json().await.unwrap();
    assert_eq!(health["llm"]["provider"], "gemini");
    assert_eq!(health["llm"]["model"], "gemini-2.5-flash-lite");
    assert_eq!(health["llm"]["chain"], json!(["gemini", "offline"]));

    let mut config = gemini_config("http://127.0.0.1:9");
    config.engine.llm.llm_provider = LlmChoice::Offline;
    config.engine.llm.llm_fallback = vec![LlmChoice::None];
    let app = spawn_app_with(config, None).await;
    let health: serde_json::Value = app.get("/health").await.json().await.unwrap();
    assert_eq!(health["llm"]["chain"], json!(["offline"]));
}

#[tokio::test]
async fn an_unreachable_provider_falls_back_to_the_offline_planner() {
    let mut config = gemini_config("http://127.0.0.1:9");
    config.engine.llm.llm_max_attempts = 1;
    let app = spawn_app_with(config, None).await;
    let body = r#"{"location": "Kyoto", "startDate": "2025-11-10", "endDate": "2025-11-11", "budget": "low"}"#;
    let response = app.generate(body).await;
    assert_eq!(response.status(), 200);
    let plan: serde_json::Value = response.json().await.unwrap();
    assert_eq!(plan["metadata"]["provider"], "offline");
    assert_eq!(plan["days"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn the_upstream_request_is_closed_within_a_second_of_the_client_leaving() {
    let (base, closed) = slow_gemini().await;
    let app = spawn_app_with(gemini_config(&base), None).await;
    let body = r#"{"location": "Kyoto", "startDate": "2025-11-10", "endDate": "2025-11-11", "budget": "low"}"#;
    let response = app.stream(body).await;
    assert_eq!(response.status(), 200);
    let mut events = eventsource_stream::Eventsource::eventsource(response.bytes_stream());
    // Read until the draft step has begun: the upstream request is open.
    while let Some(event) = events.next().await {
        if event.unwrap().data.contains("\"step\":\"generate_draft\"") {
            break;
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(closed.lock().unwrap().is_none(), "the upstream is still streaming while the client listens");
    drop(events);
    let left = Instant::now();
    while closed.lock().unwrap().is_none() {
        assert!(left.elapsed() < Duration::from_secs(1), "the upstream request outlived the client");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
