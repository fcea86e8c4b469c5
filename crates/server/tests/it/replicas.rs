//! Two replicas in one process sharing the in-process event log: a stream started on one is resumed on
//! the other, and a replica that shuts down mid-stream hands it over to the other, which runs it again
//! and finishes it for a client that resumes there.

use std::sync::Arc;
use std::time::{Duration, Instant};

use eventsource_stream::Eventsource;
use futures::StreamExt;
use tripstream_adapters::eventlog::{EventLog, MemoryEventLog};
use tripstream_server::ServerConfig;

use crate::helpers::*;

/// A replica whose offline planner takes `delay` per streamed line, sharing `log`.
async fn replica(log: &Arc<MemoryEventLog>, delay: Duration, config: ServerConfig) -> TestApp {
    let (services, _) = counting_services(&config, delay);
    let shared: Arc<dyn EventLog> = log.clone();
    spawn_app_unready(config, Some(services), Some(shared)).await
}

fn config() -> ServerConfig {
    ServerConfig {
        stream_cancel_grace_secs: Secs::new(30),
        shutdown_grace_secs: Secs::new(0),
        ..ServerConfig::for_tests()
    }
}

const BODY: &str = r#"{"location": "Kyoto", "startDate": "2025-11-10", "endDate": "2025-11-13", "budget": "medium", "language": "en"}"#;

/// Up to `limit` messages, or all of them.
async fn read(response: reqwest::Response, limit: Option<usize>) -> Vec<Message> {
    let mut events = response.bytes_stream().eventsource();
    let mut out = Vec::new();
    while limit.is_none_or(|n| out.len() < n) {
        match tokio::time::timeout(Duration::from_secs(30), events.next()).await.expect("no stall") {
            Some(Ok(e)) => out.push(Message { id: e.id, data: serde_json::from_str(&e.data).unwrap() }),
            _ => break,
        }
    }
    out
}

async fn resume(app: &TestApp, (stream_id, token): &(String, String), after: &str) -> reqwest::Response {
    app.resume(stream_id, Some(after), token).await
}

fn ids(messages: &[Message]) -> Vec<u64> {
    messages.iter().map(|m| m.id.parse().unwrap()).collect()
}

#[tokio::test]
async fn a_stream_started_on_one_replica_is_resumed_on_the_other() {
    let log = Arc::new(MemoryEventLog::new(Duration::from_secs(60)));
    let one = replica(&log, Duration::from_millis(5), config()).await;
    let two = replica(&log, Duration::from_millis(5), config()).await;
    let response = one.stream(BODY).await;
    let stream_id = stream_handle(&response);
    let head = read(response, Some(5)).await;

    let resumed = resume(&two, &stream_id, &head.last().unwrap().id).await;
    assert_eq!(resumed.status(), 200);
    let tail = read(resumed, None).await;
    let all: Vec<Message> = head.into_iter().chain(tail).collect();
    assert_eq!(ids(&all), (0..all.len() as u64).collect::<Vec<_>>(), "every event once, in order");
    assert_eq!(all.last().unwrap().kind(), "done");
    assert_eq!(all[all.len() - 2].kind(), "complete");

    // Read to the end on the other replica: nothing is left, and EventSource is told to stop.
    assert_eq!(resume(&two, &stream_id, &all.last().unwrap().id).await.status(), 204);
    assert_eq!(resume(&two, &("str_unknown".into(), stream_id.1.clone()), "0").await.status(), 404);
    assert_eq!(
        resume(&two, &(stream_id.0.clone(), "tok_wrong".into()), "0").await.status(),
        404,
        "not without its token"
    );
}

#[tokio::test]
async fn a_replica_that_shuts_down_mid_stream_hands_it_over_and_the_other_finishes_it() {
    let log = Arc::new(MemoryEventLog::new(Duration::from_secs(60)));
    let mut one = replica(&log, Duration::from_millis(40), config()).await;
    let two = replica(&log, Duration::from_millis(40), config()).await;
    let response = one.stream(BODY).await;
    let stream_id = stream_handle(&response);
    let mut events = response.bytes_stream().eventsource();
    let mut head = Vec::new();
    while head.len() < 6 {
        let e = events.next().await.unwrap().unwrap();
        head.push(Message { id: e.id, data: serde_json::from_str(&e.data).unwrap() });
    }

    let stopped = Instant::now();
    one.shutdown.take().unwrap().send(()).unwrap();
    // The first replica's stream ends without `done`: its client is to resume elsewhere.
    let mut rest = Vec::new();
    while let Some(Ok(e)) = events.next().await {
        rest.push(Message { id: e.id, data: serde_json::from_str(&e.data).unwrap() });
    }
    assert!(rest.iter().all(|m| m.kind() != "done"), "handed over, not ended: {rest:?}");
    head.extend(rest);
    (&mut one.server).await.unwrap();

    let resumed = resume(&two, &stream_id, &head.last().unwrap().id).await;
    assert_eq!(resumed.status(), 200);
    let mut events = resumed.bytes_stream().eventsource();
    let e = tokio::time::timeout(Duration::from_secs(30), events.next()).await.unwrap().unwrap().unwrap();
    let restart = Message { id: e.id, data: serde_json::from_str(&e.data).unwrap() };
    // A hand-over is claimed at the other replica's next scan, not after the lease runs out.
    let taken_over = stopped.elapsed();
    assert!(taken_over < tripstream_adapters::eventlog::LEASE, "taken over after {taken_over:?}");
    assert!(restart.data["message"].as_str().unwrap().contains("starting it again"), "{restart:?}");
    let mut tail = vec![restart];
    while let Some(Ok(e)) = tokio::time::timeout(Duration::from_secs(30), events.next()).await.expect("no stall") {
        tail.push(Message { id: e.id, data: serde_json::from_str(&e.data).unwrap() });
    }
    let all: Vec<Message> = head.into_iter().chain(tail).collect();
    // Contiguous up to the hand-over; the rerun numbers on from past a gap, so that no id it sends can
    // name an event the first replica sent but never logged; contiguous after.
    let ids = ids(&all);
    let restart = all.iter().position(|m| m.data["message"].as_str().is_some_and(|s| s.contains("starting it again")));
    let restart = restart.unwrap();
    assert_eq!(ids[..restart], (0..restart as u64).collect::<Vec<_>>(), "{ids:?}");
    let first = restart as u64 + tripstream_adapters::eventlog::TAKEOVER_GAP;
    assert_eq!(ids[restart..], (first..first + (all.len() - restart) as u64).collect::<Vec<_>>(), "{ids:?}");
    let kinds: Vec<&str> = all.iter().map(Message::kind).collect();
    assert_eq!(&kinds[kinds.len() - 2..], ["complete", "done"], "{kinds:?}");
    let progress: Vec<u64> = all.iter().filter_map(|m| m.data["progress"].as_u64()).collect();
    assert!(progress.windows(2).all(|w| w[0] <= w[1]), "progress never goes back: {progress:?}");
    assert_eq!(all[all.len() - 2].data["plan"]["days"].as_array().unwrap().len(), 4);
}

/// A stream taken over is cancelled from any replica: here a third one, which may or may not be the one
/// that took it over; the cancel reaches whichever runs it.
#[tokio::test]
async fn a_stream_taken_over_is_cancelled_from_any_replica() {
    let log = Arc::new(MemoryEventLog::new(Duration::from_secs(60)));
    let mut one = replica(&log, Duration::from_millis(40), config()).await;
    let two = replica(&log, Duration::from_millis(40), config()).await;
    let three = replica(&log, Duration::from_millis(40), config()).await;
    let response = one.stream(BODY).await;
    let handle = stream_handle(&response);
    let head = read(response, Some(4)).await;
    one.shutdown.take().unwrap().send(()).unwrap();
    (&mut one.server).await.unwrap();

    let resumed = resume(&two, &handle, &head.last().unwrap().id).await;
    assert_eq!(resumed.status(), 200);
    let mut events = resumed.bytes_stream().eventsource();
    let mut tail = Vec::new();
    loop {
        let e = tokio::time::timeout(Duration::from_secs(30), events.next()).await.unwrap().unwrap().unwrap();
        let m = Message { id: e.id, data: serde_json::from_str(&e.data).unwrap() };
        let restarted = m.data["message"].as_str().is_some_and(|s| s.contains("starting it again"));
        tail.push(m);
        if restarted {
            break;
        }
    }
    assert_eq!(three.cancel(&handle.0, &handle.1).await.status(), 202);
    while let Some(Ok(e)) = tokio::time::timeout(Duration::from_secs(30), events.next()).await.expect("no stall") {
        tail.push(Message { id: e.id, data: serde_json::from_str(&e.data).unwrap() });
    }
    let kinds: Vec<&str> = tail.iter().map(Message::kind).collect();
    assert_eq!(&kinds[kinds.len() - 2..], ["error", "done"], "{kinds:?}");
    assert_eq!(tail[tail.len() - 2].data["error"], "cancelled");
    assert!(!kinds.contains(&"complete"));
}
