//! The abuse suite, black box against the real binary on loopback, bounded in count and time: a flood
//! of unique requests from one address, slow-loris connections, and an oversized request id.

use std::io::{Read, Write};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::process::Served;

/// The server's resident memory, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// The default rates (30 a minute, 10 at once), not the test harness's.
fn with_default_rates() -> [(&'static str, String); 2] {
    [("RATE_LIMIT_ANONYMOUS", "30".into()), ("RATE_LIMIT_BURST", "10".into())]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_unique_requests_from_one_address_is_held_to_its_rate() {
    let server = Served::start(with_default_rates()).await;
    let before = rss_kib(server.child.id());
    let client = tripstream_adapters::http::client(Duration::from_secs(10));
    let started = Instant::now();
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    let mut retry_after = None;
    // 2,000 unique requests (every one a different trip), 50 at a time.
    for batch in 0..40 {
        let requests = (0..50).map(|i| {
            let n = batch * 50 + i;
            let body = format!(
                r#"{{"location":"Seoul","startDate":"2026-0{m}-{d:02}","endDate":"2026-0{m}-{d:02}","budget":"low","travelers":{t}}}"#,
                m = 1 + n % 9,
                d = 1 + n % 28,
                t = 1 + n % 20
            );
            client
                .post(format!("{}/api/v1/plans/generate", server.base))
                .header("content-type", "application/json")
                .body(body)
                .send()
        });
        for response in futures::future::join_all(requests).await {
            let response = response.expect("every request is answered");
            if response.status() == 429 && retry_after.is_none() {
                retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
                let body: serde_json::Value = response.json().await.unwrap();
                assert_eq!(body["error"]["code"], "rate_limited");
                *statuses.entry(429).or_default() += 1;
                continue;
            }
            *statuses.entry(response.status().as_u16()).or_default() += 1;
        }
    }
    // A burst of 10, then one every 2 s (30 a minute) for as long as the flood lasted (about 10 s on a
    // quiet machine; longer on a busy one, which admits a few more).
    let took = started.elapsed();
    let admitted = statuses.get(&200).copied().unwrap_or(0);
    let most = 10 + took.as_secs() as usize / 2 + 1;
    assert!((10..=most).contains(&admitted), "{admitted} admitted in {took:?}, at most {most}: {statuses:?}");
    assert_eq!(statuses.get(&429).copied().unwrap_or(0), 2000 - admitted, "{statuses:?}");
    assert!(statuses.keys().all(|s| *s < 500), "no 5xx: {statuses:?}");
    let wait: u64 = retry_after.expect("429 says when to come back").parse().unwrap();
    assert!((1..=2).contains(&wait), "one request every 2 s: {wait}");
    let grown = rss_kib(server.child.id()).saturating_sub(before);
    assert!(grown < 64 * 1024, "resident memory grew by {grown} KiB for 2,000 refused or served requests");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_loris_connections_are_closed_and_do_not_starve_anyone() {
    let server = Served::start([("HEADER_READ_TIMEOUT_SECS", "1".to_owned())]).await;
    let addr = server.base.trim_start_matches("http://").to_owned();
    // 500 connections: half send part of a request's headers and stop, half send nothing at all.
    let mut lorises: Vec<std::net::TcpStream> = (0..500)
        .map(|i| {
            let mut tcp = std::net::TcpStream::connect(&addr).unwrap();
            if i % 2 == 0 {
                tcp.write_all(b"POST /api/v1/plans/generate HTTP/1.1\r\nHost: x\r\nX-Slow: ").unwrap();
            }
            tcp
        })
        .collect();
    let client = tripstream_adapters::http::client(Duration::from_secs(5));
    let mut took = Vec::new();
    for _ in 0..11 {
        let asked = Instant::now();
        assert_eq!(client.get(format!("{}/health", server.base)).send().await.unwrap().status(), 200);
        took.push(asked.elapsed());
    }
    // The median, so that one scheduling hiccup of a busy test machine is not taken for starvation.
    took.sort();
    assert!(took[5] < Duration::from_millis(100), "/health took {took:?} beside 500 slow connections");
    // Past the header timeout every one of them has been closed by the server.
    let closed_by = Instant::now() + Duration::from_secs(5);
    for tcp in &mut lorises {
        tcp.set_read_timeout(Some(closed_by.saturating_duration_since(Instant::now()).max(Duration::from_millis(1))))
            .unwrap();
        let mut buf = [0u8; 512];
        // The server closes (0 bytes) or answers 408 and closes: either way the read ends, not times out.
        loop {
            match tcp.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
                Err(e) => panic!("a slow connection was still open after the header timeout: {e}"),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_request_id_is_replaced_and_the_row_stays_small() {
    let dir = std::env::temp_dir().join(format!("tripstream-abuse-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("runlog.db");
    let url = format!("sqlite://{}", db.display());
    let server = Served::start_logging([("DATABASE_URL", url.clone())], Stdio::null()).await;
    let huge = "r".repeat(300 * 1024);
    let client = tripstream_adapters::http::client(Duration::from_secs(10));
    let response = client
        .post(format!("{}/api/v1/plans/generate", server.base))
        .header("content-type", "application/json")
        .header("x-request-id", &huge)
        .body(r#"{"location":"Seoul","startDate":"2025-11-10","endDate":"2025-11-10","budget":"low"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let echoed = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(echoed.len() <= 128 && !echoed.starts_with("rrr"), "replaced: {echoed}");
    server.terminate();
    let rows = tokio::runtime::Handle::current()
        .spawn(async move {
            let db = tripstream_adapters::runlog::Db::open(&url).await.unwrap();
            db.rows_since(0).await.unwrap()
        })
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].request_id.as_deref(), Some(echoed.as_str()));
    // Nothing of the header is kept anywhere in the database, its WAL included (a size bound would move
    // with every table the database gains).
    let mut bytes = std::fs::read(&db).unwrap();
    bytes.extend(std::fs::read(dir.join("runlog.db-wal")).unwrap_or_default());
    let run = "r".repeat(1024);
    assert!(
        !bytes.windows(run.len()).any(|w| w == run.as_bytes()),
        "the oversized request id reached the database ({} bytes)",
        bytes.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
