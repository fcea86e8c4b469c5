//! Two `tripstream serve` processes sharing Redis, as two replicas behind a load balancer: a stream
//! started on one and resumed on the other, and a replica killed with SIGKILL mid-stream whose stream
//! the other takes over, so the client still receives `complete` and `done`.

use std::process::Command;
use std::time::{Duration, Instant};

use eventsource_stream::Eventsource;
use futures::StreamExt;
use serde_json::Value;
use tripstream_adapters::eventlog::TAKEOVER_GAP;

use crate::process::Served;

type Replica = Served;

async fn replica(prefix: &str) -> Replica {
    replica_with(prefix, &[]).await
}

async fn replica_with(prefix: &str, extra: &[(&str, &str)]) -> Replica {
    let env = [
        ("REDIS_URL", std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())),
        ("REDIS_KEY_PREFIX", prefix.to_owned()),
        ("OFFLINE_CHUNK_DELAY_MS", "40".into()),
        ("STREAM_CANCEL_GRACE_SECS", "30".into()),
    ];
    Served::start(env.into_iter().chain(extra.iter().map(|(k, v)| (*k, (*v).to_owned())))).await
}

async fn read(response: reqwest::Response, limit: Option<usize>) -> Vec<(u64, Value)> {
    let mut events = response.bytes_stream().eventsource();
    let mut out = Vec::new();
    while limit.is_none_or(|n| out.len() < n) {
        match tokio::time::timeout(Duration::from_secs(30), events.next()).await {
            Ok(Some(Ok(e))) => out.push((e.id.parse().unwrap(), serde_json::from_str(&e.data).unwrap())),
            Ok(_) => break,
            Err(_) => panic!("the stream stalled"),
        }
    }
    out
}

/// Starts a stream on `one`, reads its first events, lets `stop` end that replica, resumes on `two`, and
/// checks the client ends up with the whole stream, and that `two` restarted it within `within` of the
/// stop.
async fn survives(mut one: Replica, two: Replica, stop: impl FnOnce(&mut Replica), within: Duration) {
    let client = tripstream_adapters::http::client(Duration::from_secs(2));
    let body = r#"{"location": "Kyoto", "startDate": "2025-11-10", "endDate": "2025-11-13", "budget": "medium", "language": "en"}"#;
    let response = client
        .post(format!("{}/api/v1/plans/generate/stream", one.base))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let stream_id = response.headers()["x-stream-id"].to_str().unwrap().to_owned();
    let token = response.headers()["x-resume-token"].to_str().unwrap().to_owned();
    let head = read(response, Some(6)).await;
    // Let the first replica's log catch up with what its client saw, then stop it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop(&mut one);
    let stopped = Instant::now();

    let last = head.last().unwrap().0;
    let resumed = client
        .get(format!("{}/api/v1/plans/streams/{stream_id}/events", two.base))
        .header("last-event-id", last.to_string())
        .header("x-resume-token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(resumed.status(), 200);
    // What the first replica logged before it stopped, then the restart: when that arrives is when the
    // second replica took the stream over.
    let mut events = resumed.bytes_stream().eventsource();
    let mut tail: Vec<(u64, Value)> = Vec::new();
    let mut restarted_after = None;
    while let Some(Ok(e)) = tokio::time::timeout(Duration::from_secs(30), events.next()).await.expect("no stall") {
        let event: Value = serde_json::from_str(&e.data).unwrap();
        if event["message"].as_str().is_some_and(|m| m.contains("starting it again")) {
            restarted_after.get_or_insert(stopped.elapsed());
        }
        tail.push((e.id.parse().unwrap(), event));
    }
    let restarted_after = restarted_after.unwrap_or_else(|| {
        let seen: Vec<String> = head
            .iter()
            .chain(&tail)
            .map(|(id, e)| format!("{id} {} {}", e["type"].as_str().unwrap_or(""), e["message"].as_str().unwrap_or("")))
            .collect();
        panic!("a status event says the generation restarted; the client saw {seen:#?}")
    });
    assert!(restarted_after < within, "restarted {restarted_after:?} after the stop, not within {within:?}");
    let all: Vec<(u64, Value)> = head.into_iter().chain(tail).collect();

    let ids: Vec<u64> = all.iter().map(|(id, _)| *id).collect();
    // Contiguous up to the takeover; the rerun numbers on from past a gap (the stopped replica may have
    // sent events it never logged, and no id may name two events); contiguous after.
    let restart = all.iter().position(|(_, e)| e["message"].as_str().is_some_and(|m| m.contains("starting it again")));
    let restart = restart.unwrap();
    assert_eq!(ids[..restart], (0..restart as u64).collect::<Vec<_>>(), "{ids:?}");
    let first = restart as u64 + TAKEOVER_GAP;
    assert_eq!(ids[restart..], (first..first + (all.len() - restart) as u64).collect::<Vec<_>>(), "{ids:?}");
    let kinds: Vec<&str> = all.iter().map(|(_, e)| e["type"].as_str().unwrap()).collect();
    assert_eq!(&kinds[kinds.len() - 2..], ["complete", "done"], "{kinds:?}");
    let progress: Vec<u64> = all.iter().filter_map(|(_, e)| e["progress"].as_u64()).collect();
    assert!(progress.windows(2).all(|w| w[0] <= w[1]), "progress never goes back: {progress:?}");
    let plan = &all[all.len() - 2].1["plan"];
    assert_eq!(plan["days"].as_array().unwrap().len(), 4);
}

fn prefix() -> String {
    format!("tripstream_replicas_{}_{}:", std::process::id(), uuid::Uuid::now_v7().simple())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_mid_stream_is_taken_over_and_the_client_gets_its_plan() {
    let prefix = prefix();
    let (one, two) = (replica(&prefix).await, replica(&prefix).await);
    // Noticed when the lease lapses (6 s), at the next scan (2 s).
    survives(
        one,
        two,
        |one| {
            let _ = one.child.kill();
            let _ = one.child.wait();
        },
        Duration::from_secs(12),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_shutting_down_hands_its_streams_over() {
    let prefix = prefix();
    let one = replica_with(&prefix, &[("SHUTDOWN_GRACE_SECS", "1"), ("OFFLINE_CHUNK_DELAY_MS", "120")]).await;
    let two = replica(&prefix).await;
    // Slower lines, so the stream is still running when the 1 s grace period is over (at 40 ms a line it
    // could finish inside it, and nothing would be handed over). Handed over when the grace period is
    // over, and claimed at the next scan (2 s): well inside the 6 s lease, which a takeover after the
    // lease lapsed could not be.
    survives(
        one,
        two,
        |one| {
            let status = Command::new("kill").args(["-TERM", &one.child.id().to_string()]).status().unwrap();
            assert!(status.success());
        },
        Duration::from_secs(5),
    )
    .await;
}
