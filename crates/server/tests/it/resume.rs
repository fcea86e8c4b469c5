//! Streams that survive their connections: resume by stream id after `Last-Event-ID`, re-POST attaching,
//! `Idempotency-Key`, the EventSource GET, the `retry:` hint, cancellation, and a proxy that cuts the
//! connection at random points a hundred times.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use eventsource_stream::Eventsource;
use futures::StreamExt;
use serde_json::Value;
use tripstream_server::ServerConfig;

use crate::helpers::*;

fn kyoto(days: u32) -> String {
    format!(
        r#"{{"location": "Kyoto", "startDate": "2025-11-10", "endDate": "2025-11-{:02}", "budget": "medium"}}"#,
        9 + days
    )
}

/// An app whose offline planner takes `delay` per streamed line, so streams last long enough to cut.
async fn slow_app(delay: Duration, config: ServerConfig) -> TestApp {
    let (services, _) = counting_services(&config, delay);
    spawn_app_with(config, Some(services)).await
}

fn ids(messages: &[Message]) -> Vec<u64> {
    messages.iter().map(|m| m.id.parse().unwrap()).collect()
}

#[tokio::test]
async fn a_dropped_stream_is_resumed_by_id_after_the_last_event_seen() {
    let app = slow_app(
        Duration::from_millis(5),
        ServerConfig { stream_cancel_grace_secs: Secs::new(5), ..ServerConfig::for_tests() },
    )
    .await;
    let response = app.stream(&kyoto(3)).await;
    let (stream_id, token) = stream_handle(&response);
    let head = read_some(response, 7).await;
    assert_eq!(ids(&head), (0..7).collect::<Vec<_>>());

    let resumed = app.resume(&stream_id, Some("6"), &token).await;
    assert_eq!(resumed.status(), 200);
    assert_eq!(resumed.headers()["x-stream-id"], stream_id.as_str());
    let tail = messages(resumed).await;
    assert_eq!(tail.first().map(|m| m.id.as_str()), Some("7"));
    let all: Vec<Message> = head.into_iter().chain(tail).collect();
    assert_eq!(ids(&all), (0..all.len() as u64).collect::<Vec<_>>(), "every event once, in order");
    assert_eq!(all.last().unwrap().kind(), "done");
    assert_eq!(all.iter().filter(|m| m.kind() == "day").count(), 3);

    // Everything delivered: EventSource is told to stop reconnecting. The query form works too.
    let last = all.len() - 1;
    let url = format!("{}/api/v1/plans/streams/{stream_id}/events?lastEventId={last}&token={token}", app.base);
    assert_eq!(app.client.get(&url).send().await.unwrap().status(), 204);
    let unknown = app.get("/api/v1/plans/streams/str_nope/events").await;
    assert_eq!(unknown.status(), 404);
    let body: Value = unknown.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
}

#[tokio::test]
async fn a_re_post_with_last_event_id_attaches_instead_of_generating_again() {
    let config = ServerConfig { stream_cancel_grace_secs: Secs::new(5), ..ServerConfig::for_tests() };
    let (services, drafts) = counting_services(&config, Duration::from_millis(5));
    let app = spawn_app_with(config, Some(services)).await;
    let first = app.stream(&kyoto(2)).await;
    let (stream_id, _) = stream_handle(&first);
    let head = read_some(first, 4).await;

    // react-native-sse reconnects by sending the same POST again with Last-Event-ID.
    let again = app
        .client
        .post(format!("{}/api/v1/plans/generate/stream", app.base))
        .header("content-type", "application/json")
        .header("last-event-id", "3")
        .body(kyoto(2))
        .send()
        .await
        .unwrap();
    // A stream of its own on the same generation: the caller who attaches never learns the first id.
    let (again_id, _) = stream_handle(&again);
    assert_ne!(again_id, stream_id);
    let tail = messages(again).await;
    assert_eq!(tail[0].data["streamId"], again_id.as_str(), "its first event names its own stream");
    let all: Vec<Message> = head.into_iter().chain(tail).collect();
    assert_eq!(ids(&all), (0..all.len() as u64).collect::<Vec<_>>());
    assert_eq!(drafts.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_idempotency_key_seen_before_attaches_to_its_stream() {
    let config = ServerConfig { stream_cancel_grace_secs: Secs::new(5), ..ServerConfig::for_tests() };
    let (services, drafts) = counting_services(&config, Duration::from_millis(5));
    let app = spawn_app_with(config, Some(services)).await;
    let post = |key: &'static str| {
        app.client
            .post(format!("{}/api/v1/plans/generate/stream", app.base))
            .header("content-type", "application/json")
            .header("idempotency-key", key)
            .body(kyoto(2))
            .send()
    };
    let a = post("k-1").await.unwrap();
    let b = post("k-1").await.unwrap();
    assert_ne!(stream_handle(&a), stream_handle(&b), "each attachment is a stream of its own");
    let (a, b) = tokio::join!(messages(a), messages(b));
    assert_eq!(ids(&a), ids(&b));
    let shared = |ms: &[Message]| ms.iter().map(|m| shared_part(&m.data)).collect::<Vec<_>>();
    assert_eq!(shared(&a), shared(&b), "the same events");
    assert_eq!(drafts.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn eventsource_can_get_the_stream_with_the_request_in_the_query() {
    let app = spawn_app().await;
    let url = format!(
        "{}/api/v1/plans/generate/stream?location=Seoul&startDate=2025-11-10&endDate=2025-11-12&budget=medium&language=en",
        app.base
    );
    let response = app.client.get(&url).header("accept", "text/event-stream").send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let body = response.text().await.unwrap();
    assert!(
        body.starts_with("retry: 3000\n") || body.contains("\nretry: 3000\n") || body.contains("retry: 3000"),
        "{body}"
    );
    let first_message = body.split("\n\n").next().unwrap();
    assert!(first_message.contains("retry: 3000") && first_message.contains("id: 0"), "{first_message}");
    assert!(body.contains(r#""message":"Gathering weather for Seoul...""#));
    assert!(body.trim_end().ends_with(r#"data: {"type":"done"}"#));

    for (query, field) in [
        ("location=Seoul&startDate=2025-11-12&endDate=2025-11-10&budget=medium", "endDate"),
        ("location=Seoul&startDate=2025-11-10&endDate=2025-11-12&budget=cheap", "budget"),
        ("location=Seoul&startDate=2025-11-10&endDate=2025-11-12&budget=low&travelers=two", "travelers"),
        ("location=Seoul&startDate=2025-11-10&endDate=2025-11-12&budget=low&budgett=low", "budgett"),
    ] {
        let response = app.get(&format!("/api/v1/plans/generate/stream?{query}")).await;
        assert_eq!(response.status(), 422, "{query}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["field"], field, "{query}: {body}");
    }
}

#[tokio::test]
async fn cancel_ends_every_listener_with_cancelled_and_the_days_so_far() {
    let app = slow_app(Duration::from_millis(20), ServerConfig::for_tests()).await;
    let response = app.stream(&kyoto(5)).await;
    let (stream_id, token) = stream_handle(&response);
    let mut events = response.bytes_stream().eventsource();
    let mut seen = Vec::new();
    // Read until the first day is drafted, then cancel.
    while let Some(Ok(e)) = events.next().await {
        let data: Value = serde_json::from_str(&e.data).unwrap();
        let is_day = data["type"] == "day";
        seen.push(data);
        if is_day {
            break;
        }
    }
    let cancel = app.cancel(&stream_id, &token).await;
    assert_eq!(cancel.status(), 202);
    while let Some(Ok(e)) = events.next().await {
        seen.push(serde_json::from_str(&e.data).unwrap());
    }
    let n = seen.len();
    assert_eq!(seen[n - 1]["type"], "done");
    let error = &seen[n - 2];
    assert_eq!((error["type"].as_str(), error["error"].as_str()), (Some("error"), Some("cancelled")));
    assert_eq!(error["retryable"], false);
    assert!(!error["partialDays"].as_array().unwrap().is_empty(), "{error}");
    assert!(seen.iter().all(|e| e["type"] != "complete"));
    // Cancelling again changes nothing; an unknown stream is 404.
    assert_eq!(app.cancel(&stream_id, &token).await.status(), 200);
    let unknown = app.client.post(format!("{}/api/v1/plans/streams/str_x/cancel", app.base)).send().await.unwrap();
    assert_eq!(unknown.status(), 404);
}

/// A proxy that forwards each connection for a random number of bytes, then cuts it.
async fn cutting_proxy(to: String, cuts: Arc<AtomicUsize>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let target = to.trim_start_matches("http://").to_owned();
    tokio::spawn(async move {
        let mut seed = 7u64;
        while let Ok((client, _)) = listener.accept().await {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let budget = 300 + (seed >> 33) as usize % 20_000;
            let target = target.clone();
            let cuts = cuts.clone();
            tokio::spawn(async move {
                let Ok(server) = tokio::net::TcpStream::connect(&target).await else { return };
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let up = tokio::spawn(async move { tokio::io::copy(&mut cr, &mut sw).await });
                // Downstream: forward `budget` bytes, then cut both ways.
                let mut left = budget;
                let mut buf = vec![0u8; 512];
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                loop {
                    let n = match sr.read(&mut buf[..left.min(512)]).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    if cw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                    left -= n;
                    if left == 0 {
                        cuts.fetch_add(1, Ordering::SeqCst);
                        break;
                    }
                }
                up.abort();
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn a_hundred_random_cuts_lose_and_repeat_nothing() {
    let config = ServerConfig { stream_cancel_grace_secs: Secs::new(10), ..ServerConfig::for_tests() };
    let app = slow_app(Duration::ZERO, config).await;
    let cuts = Arc::new(AtomicUsize::new(0));
    let proxy = cutting_proxy(app.base.clone(), cuts.clone()).await;
    let client = tripstream_adapters::http::client(Duration::from_secs(5));
    let mut rounds = 0;
    while cuts.load(Ordering::SeqCst) < 100 {
        rounds += 1;
        // A three-day trip, different each round, so never from the cache.
        let travelers = 1 + rounds % 20;
        let body = format!(
            r#"{{"location": "Tokyo", "startDate": "2025-11-01", "endDate": "2025-11-03", "budget": "medium", "travelers": {travelers}, "interests": ["r{rounds}"]}}"#
        );
        let mut received: Vec<Message> = Vec::new();
        let mut stream_id: Option<String> = None;
        let mut token = String::new();
        for attempt in 0..500 {
            assert!(attempt < 499, "the stream never completed");
            let request = match &stream_id {
                None => client
                    .post(format!("{proxy}/api/v1/plans/generate/stream"))
                    .header("content-type", "application/json")
                    .body(body.clone()),
                Some(id) => {
                    let mut r = client
                        .get(format!("{proxy}/api/v1/plans/streams/{id}/events"))
                        .header("x-resume-token", &token);
                    if let Some(last) = received.last() {
                        r = r.header("last-event-id", last.id.clone());
                    }
                    r
                }
            };
            let Ok(response) = request.send().await else { continue };
            if response.status() == 204 {
                break;
            }
            if stream_id.is_none() {
                match (response.headers().get("x-stream-id"), response.headers().get("x-resume-token")) {
                    (Some(id), Some(t)) => {
                        stream_id = Some(id.to_str().unwrap().to_owned());
                        token = t.to_str().unwrap().to_owned();
                    }
                    _ => continue,
                }
            }
            let mut events = response.bytes_stream().eventsource();
            while let Some(Ok(e)) = events.next().await {
                received.push(Message { id: e.id, data: serde_json::from_str(&e.data).unwrap() });
            }
            if received.last().is_some_and(|m| m.kind() == "done") {
                break;
            }
        }
        assert_eq!(ids(&received), (0..received.len() as u64).collect::<Vec<_>>(), "round {rounds}");
        assert_eq!(received.last().unwrap().kind(), "done");
        assert_eq!(received[received.len() - 2].kind(), "complete");
    }
    assert!(rounds >= 2);
}

#[tokio::test]
async fn with_redis_a_stream_started_on_one_replica_is_resumed_on_another() {
    let prefix = format!("{}:", unique("tripstream_resume"));
    let config = || {
        let mut c = ServerConfig { stream_cancel_grace_secs: Secs::new(10), ..ServerConfig::for_tests() };
        c.store.redis_url =
            Some(SecretUrl::new(std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())));
        c.store.redis_key_prefix = prefix.clone();
        c
    };
    let one = slow_app(Duration::from_millis(10), config()).await;
    let two = slow_app(Duration::from_millis(10), config()).await;
    let response = one.stream(&kyoto(3)).await;
    let (stream_id, token) = stream_handle(&response);
    let head = read_some(response, 5).await;

    // The client's connection dropped; the load balancer sends the resume to the other replica.
    let resumed = two.resume(&stream_id, Some("4"), &token).await;
    assert_eq!(resumed.status(), 200);
    let tail = messages(resumed).await;
    let all: Vec<Message> = head.into_iter().chain(tail).collect();
    assert_eq!(ids(&all), (0..all.len() as u64).collect::<Vec<_>>(), "every event once, in order, across replicas");
    assert_eq!(all.last().unwrap().kind(), "done");
    assert_eq!(all[all.len() - 2].kind(), "complete");

    // Fully delivered: 204 from either replica; a stream neither knows: 404.
    let last = all.len() - 1;
    for app in [&one, &two] {
        assert_eq!(app.resume(&stream_id, Some(&last.to_string()), &token).await.status(), 204);
        let url = format!("{}/api/v1/plans/streams/{stream_id}/events?lastEventId={last}", app.base);
        assert_eq!(app.client.get(&url).send().await.unwrap().status(), 404, "not without its token");
    }
    assert_eq!(two.get("/api/v1/plans/streams/str_unknown/events").await.status(), 404);
}
