//! Takeovers through Redis under failure: a stream nobody manages to run is given up, resumes share one
//! reader per replica, and a producer cut off from Redis while another replica takes its stream over
//! never lets one id name two different events.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use eventsource_stream::Eventsource;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use tripstream_adapters::eventlog::{EventLog, LEASE, MAX_CLAIMS, RedisEventLog};
use tripstream_server::ServerConfig;

use crate::helpers::*;
use crate::stores::{logged_event, open_stream, running};

async fn redis() -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis_url()).unwrap().get_multiplexed_async_connection().await.unwrap()
}

#[tokio::test]
async fn a_stream_nobody_manages_to_run_is_given_up_after_a_few_claims() {
    let prefix = unique("tripstream-test-") + ":";
    let log = RedisEventLog::new(&redis_url(), prefix.clone(), Duration::from_secs(60)).unwrap();
    let mut redis = redis().await;
    let (mut writer, task) = log.open(open_stream("rep_a#1"));
    let task = tokio::spawn(task.unwrap());
    writer.append(logged_event(0));
    drop(writer); // handed over: the lease is released, the stream stays running
    tokio::time::timeout(Duration::from_secs(10), task).await.unwrap().unwrap();
    assert!(running(&mut redis, &prefix).await);

    let lease = format!("{prefix}stream:s1:lease");
    for n in 1..=MAX_CLAIMS {
        let claims = log.claim_orphans("rep_b").await.unwrap();
        assert_eq!(claims.len(), 1, "claim {n}");
        assert!(claims[0].fence.starts_with("rep_b#"), "{claims:?}");
        // Each claimant dies before it runs the stream: its lease lapses.
        let _: () = redis::cmd("DEL").arg(&lease).query_async(&mut redis).await.unwrap();
    }
    assert_eq!(log.claim_orphans("rep_b").await.unwrap(), vec![], "given up");
    assert!(!running(&mut redis, &prefix).await, "no longer among the running streams");
    assert_eq!(log.claim_orphans("rep_c").await.unwrap(), vec![], "and never claimed again");
}

#[tokio::test]
async fn two_hundred_resumes_on_a_replica_share_one_reader_of_redis() {
    let prefix = unique("tripstream-test-") + ":";
    let writer_log = RedisEventLog::new(&redis_url(), prefix.clone(), Duration::from_secs(60)).unwrap();
    let proxy = Cuttable::start(redis_url().trim_start_matches("redis://").parse().unwrap()).await;
    let log = Arc::new(
        RedisEventLog::new(&format!("redis://127.0.0.1:{}", proxy.port), prefix.clone(), Duration::from_secs(60))
            .unwrap(),
    );
    let stop = CancellationToken::new();
    tokio::spawn(log.background(stop.clone()).expect("the Redis log follows streams in the background"));

    let (mut writer, task) = writer_log.open(open_stream("rep_a#1"));
    let task = tokio::spawn(task.unwrap());
    for seq in 0..10 {
        writer.append(logged_event(seq));
    }
    let mut readers = Vec::new();
    for _ in 0..200 {
        let log = log.clone();
        readers.push(tokio::spawn(async move {
            let mut reader = log.reader("s1", 0).await.unwrap();
            let mut seqs = Vec::new();
            loop {
                let entry = tokio::time::timeout(Duration::from_secs(20), reader.next(Duration::from_secs(1)))
                    .await
                    .expect("no stall")
                    .unwrap();
                let Some(entry) = entry else { continue };
                seqs.push(entry.seq);
                if entry.is_done() {
                    return seqs;
                }
            }
        }));
    }
    for seq in 10..30 {
        writer.append(logged_event(seq));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    drop(writer);
    task.await.unwrap();
    for reader in readers {
        assert_eq!(reader.await.unwrap(), (0..30).collect::<Vec<u64>>(), "every entry once, in order");
    }
    // The connection manager's and the follower's (one blocking read for every stream), and a spare for
    // a reconnect; not one per reader.
    assert!(proxy.accepted() <= 3, "{} connections to Redis for 200 readers", proxy.accepted());
    stop.cancel();
}

/// Reads a stream to its end (or until it stops), each message parsed.
async fn read_all(response: reqwest::Response) -> Vec<Message> {
    let mut events = response.bytes_stream().eventsource();
    let mut out = Vec::new();
    while let Some(Ok(e)) = tokio::time::timeout(Duration::from_secs(60), events.next()).await.expect("no stall") {
        out.push(Message { id: e.id, data: serde_json::from_str(&e.data).unwrap() });
    }
    out
}

fn ids(messages: &[Message]) -> Vec<u64> {
    messages.iter().map(|m| m.id.parse().unwrap()).collect()
}

/// Test (f) of the abuse suite. Replica one produces a stream and reaches Redis through a proxy; the
/// proxy is cut (Redis "pauses" for replica one), its lease lapses and replica two takes the stream over
/// and runs it again, while one, unaware, still sends its own client the old run. When Redis is back,
/// one finds its lease fenced off, tells its client so, and sends it on from the shared log. Neither
/// client ever sees one id name two different events, and both get the same finished plan.
#[tokio::test]
async fn a_takeover_during_a_redis_pause_never_gives_one_id_to_two_events() {
    let prefix = format!("{}:", unique("tripstream_test"));
    let proxy = Cuttable::start(redis_url().trim_start_matches("redis://").parse().unwrap()).await;
    let config = |url: String| {
        let mut c = ServerConfig {
            stream_cancel_grace_secs: Secs::new(30),
            shutdown_grace_secs: Secs::new(0),
            ..ServerConfig::for_tests()
        };
        c.store.redis_url = Some(SecretUrl::new(url));
        c.store.redis_key_prefix = prefix.clone();
        c
    };
    let one_config = config(format!("redis://127.0.0.1:{}", proxy.port));
    // Slow enough on one that it is still running when Redis comes back; quick on two.
    let (services, _) = counting_services(&one_config, Duration::from_millis(300));
    let one = spawn_app_with(one_config, Some(services)).await;
    let two_config = config(redis_url());
    let (services, _) = counting_services(&two_config, Duration::from_millis(20));
    let two = spawn_app_with(two_config, Some(services)).await;

    let body = r#"{"location": "Kyoto", "startDate": "2025-11-10", "endDate": "2025-11-15", "budget": "medium", "language": "en"}"#;
    let response = one.stream(body).await;
    assert_eq!(response.status(), 200);
    let handle = stream_handle(&response);
    let client_a = tokio::spawn(read_all(response));
    // Client B follows the same stream through replica two, from the start, as soon as replica one's
    // writer has put the stream's record in Redis (until then two does not know the stream: 404).
    let resumed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let resumed = two.resume(&handle.0, Some("0"), &handle.1).await;
            if resumed.status() != 404 {
                return resumed;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("replica two finds the stream in Redis");
    assert_eq!(resumed.status(), 200);
    let mut b_events = resumed.bytes_stream().eventsource();
    let mut client_b = Vec::new();
    let next = async |events: &mut _| -> Option<Message> {
        let e: Option<Result<eventsource_stream::Event, _>> =
            tokio::time::timeout(Duration::from_secs(30), StreamExt::next(events)).await.expect("no stall");
        e.and_then(Result::ok).map(|e| Message { id: e.id, data: serde_json::from_str(&e.data).unwrap() })
    };
    while client_b.len() < 3 {
        client_b.push(next(&mut b_events).await.expect("B reads"));
    }

    proxy.cut();
    // Replica one cannot renew its lease; within a lease and a scan, two claims the stream and runs it
    // again. B hears so.
    let restarted = tokio::time::timeout(LEASE * 3, async {
        loop {
            let m = next(&mut b_events).await.expect("B reads on");
            let restart = m.data["message"].as_str().is_some_and(|s| s.contains("starting it again"));
            client_b.push(m);
            if restart {
                return;
            }
        }
    })
    .await;
    assert!(restarted.is_ok(), "replica two took the stream over: {client_b:?}");
    proxy.restore();
    while let Some(m) = next(&mut b_events).await {
        client_b.push(m);
    }
    let client_a = client_a.await.unwrap();

    let kinds = |c: &[Message]| c.iter().map(|m| m.kind().to_owned()).collect::<Vec<_>>();
    for (name, client) in [("A", &client_a), ("B", &client_b)] {
        let ids = ids(client);
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{name}: ids strictly increase: {ids:?}");
        assert_eq!(kinds(client)[client.len() - 2..], ["complete", "done"], "{name}: {:?}", kinds(client));
    }
    assert!(
        client_a.iter().any(|m| m.data["message"].as_str().is_some_and(|s| s.contains("took over"))),
        "A is told its stream moved: {:?}",
        kinds(&client_a)
    );
    let seen_by_b: HashMap<&str, &Message> = client_b.iter().map(|m| (m.id.as_str(), m)).collect();
    let mut shared = 0;
    for a in &client_a {
        if let Some(b) = seen_by_b.get(a.id.as_str()) {
            assert_eq!(shared_part(&a.data), shared_part(&b.data), "id {} names two events", a.id);
            shared += 1;
        }
    }
    assert!(shared > 3, "both read the takeover's events: {shared} in common");
    let plan = |c: &[Message]| c[c.len() - 2].data["plan"]["days"].clone();
    assert_eq!(plan(&client_a), plan(&client_b));
    assert_eq!(plan(&client_a).as_array().unwrap().len(), 6);
}
