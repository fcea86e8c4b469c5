//! A thousand streams to a provider that speaks HTTP/2 over TLS and allows 100 streams per connection,
//! as Google's front end does. The real binary trusts the mock's CA through `SSL_CERT_FILE`. Every
//! reply is held after its first frame until all the streams are at the provider at once, so a stream
//! queued behind others (one connection, requests beyond its limit waiting in the client) would never
//! get there: none may wait for another stream to finish. And the burst opens a connection per
//! `LLM_STREAMS_PER_CONNECTION` streams, not a TLS handshake per request.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use eventsource_stream::Eventsource;
use futures::StreamExt;
use tripstream_testkit::{Gemini, Protocol, Reply, TestCa, one_day_plan};

use crate::process::Served;

const STREAMS: usize = 1000;
/// The provider's `SETTINGS_MAX_CONCURRENT_STREAMS`, Google's.
const STREAM_LIMIT: u32 = tripstream_testkit::DEFAULT_STREAM_LIMIT;
/// `LLM_STREAMS_PER_CONNECTION`: tripstream opens a connection per this many streams.
const PER_CONNECTION: usize = 90;
/// From opening the streams until every one of them is at the provider. A debug build on a busy
/// 2-core machine prepares a stream (validation, weather, the prompt, the upstream request) in a few
/// milliseconds, so a thousand take seconds; a queued stream never arrives at all.
const ALL_ARRIVE_WITHIN: Duration = Duration::from_secs(40);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_streams_reach_an_http2_provider_together() {
    let ca = TestCa::new().unwrap();
    let dir = std::env::temp_dir().join(format!("tripstream-h2-{}-{}", std::process::id(), uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_file = ca.write_ca(&dir).unwrap();
    let tls = ca.server_config(&[b"h2"]).unwrap();
    let reply = Reply::new(&one_day_plan(), 8, Duration::ZERO).held();
    let gemini = Gemini::start(Protocol::Http2Tls { tls, max_concurrent_streams: STREAM_LIMIT }, reply).await.unwrap();
    let base_url = gemini.base_url();
    let server = Served::start([
        ("SSL_CERT_FILE", ca_file.to_str().unwrap().to_owned()),
        ("GEMINI_API_KEY", "test-key".to_owned()),
        ("GEMINI_BASE_URL", base_url.clone()),
        ("LLM_FALLBACK", "none".to_owned()),
        ("LLM_STREAMS_PER_CONNECTION", PER_CONNECTION.to_string()),
        // What is tested is queueing, not a busy machine's TLS handshakes: a handshake that outlasts the
        // default 5 s (seen at load average 7) would end its stream in an error, not at the provider.
        ("LLM_CONNECT_TIMEOUT_SECS", "30".to_owned()),
        // Every stream at the provider at once: above the process's cap on model calls.
        ("MAX_MODEL_CALLS", (2 * STREAMS).to_string()),
        // Held replies stay quiet until the last stream arrives.
        ("LLM_IDLE_TIMEOUT_SECS", "120".to_owned()),
        ("LLM_TOTAL_TIMEOUT_SECS", "300".to_owned()),
    ])
    .await;

    // HTTP/2 to tripstream as well (100 streams per connection), so the client's sockets are not the limit.
    let clients: Vec<reqwest::Client> =
        (0..10).map(|_| reqwest::Client::builder().http2_prior_knowledge().build().unwrap()).collect();
    let opened = Instant::now();
    let streams: Vec<_> = (0..STREAMS)
        .map(|i| {
            let client = clients[i % clients.len()].clone();
            let url = format!("{}/api/v1/plans/generate/stream", server.base);
            // Distinct requests: each is a generation of its own.
            let body = format!(
                r#"{{"location": "Kyoto", "startDate": "2025-11-10", "endDate": "2025-11-10", "budget": "medium", "interests": ["s{i}"]}}"#
            );
            tokio::spawn(async move {
                let response = client.post(url).header("content-type", "application/json").body(body).send().await;
                let mut events = response.map_err(|e| e.to_string())?.bytes_stream().eventsource();
                let mut kinds = Vec::new();
                while let Some(event) = events.next().await {
                    let data: serde_json::Value =
                        serde_json::from_str(&event.map_err(|e| e.to_string())?.data).map_err(|e| e.to_string())?;
                    kinds.push(data["type"].as_str().unwrap_or("").to_owned());
                }
                Ok::<_, String>(kinds)
            })
        })
        .collect();

    let together = gemini.wait_for_in_flight(STREAMS, ALL_ARRIVE_WITHIN).await;
    let waited = opened.elapsed();
    let at_once = gemini.flight();
    let connections = gemini.connections().accepted.load(Ordering::Relaxed);
    let handshakes = gemini.connections().handshakes.load(Ordering::Relaxed);
    // Either way, let the replies finish so every stream can be checked.
    gemini.release();
    let mut complete = 0;
    let mut endings = std::collections::BTreeMap::<String, usize>::new();
    for stream in streams {
        let kinds = stream.await.unwrap().unwrap_or_else(|e| panic!("a stream failed: {e}"));
        if kinds.ends_with(&["complete".to_owned(), "done".to_owned()]) {
            complete += 1;
        } else {
            *endings.entry(kinds.join(" ")).or_default() += 1;
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(gemini.rejected().is_empty(), "the provider refused requests: {:?}", &gemini.rejected()[..1]);
    assert!(
        together,
        "after {waited:?}, {} of {STREAMS} streams were at the provider (at most {} at once, over {handshakes} TLS \
         connections of {connections} opened): the others waited for streams ahead of them to finish; the \
         streams that did not complete saw {endings:?}",
        at_once.now, at_once.peak
    );
    assert_eq!(complete, STREAMS, "every stream ends with complete and done, not {endings:?}");
    // One handshake per connection used: the first, which tells tripstream the provider speaks HTTP/2,
    // then one per 90 streams; not a handshake per request of the burst (before the pool: 47 to 166, and
    // 1,000 with a client per request). One more is allowed: a client connects again when its connection
    // fails under load (seen once in CI: 14 for 13).
    let needed = 1 + STREAMS.div_ceil(PER_CONNECTION);
    assert!(
        connections <= needed + 1,
        "{connections} connections opened ({handshakes} TLS handshakes) for {STREAMS} streams; {needed} suffice"
    );
    let first = gemini.arrivals()[0];
    let spread = gemini.arrivals().last().map(|last| *last - first);
    eprintln!(
        "{STREAMS} streams at the provider within {waited:?} (arrivals spread over {spread:?}), over \
         {handshakes} TLS connections ({connections} opened)"
    );
}
