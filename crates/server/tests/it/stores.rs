//! The plan cache (in-process and real Redis), coalescing, the run log (SQLite and real PostgreSQL),
//! `/api/v1/stats` and `/metrics`. Redis and PostgreSQL are the machine's (`TEST_REDIS_URL`,
//! `TEST_DATABASE_URL`); every test has its own key prefix or schema. The tests that stop a service run
//! their own Redis, or put a proxy in front of PostgreSQL, so they disturb no one else.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::Value;
use sqlx::Connection;
use tripstream_adapters::eventlog::{Entry, EventLog, OpenStream, RedisEventLog};
use tripstream_domain::StreamEvent;
use tripstream_server::ServerConfig;

use crate::helpers::*;

fn postgres_url() -> String {
    std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A fresh schema in the test database, and a URL whose connections use it.
async fn postgres_schema() -> String {
    let schema = unique("t");
    let mut conn = sqlx::PgConnection::connect(&postgres_url()).await.expect("PostgreSQL is running");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).execute(&mut conn).await.unwrap();
    format!("{}?options=-c%20search_path%3D{schema}", postgres_url())
}

async fn count_rows(url: &str) -> i64 {
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::query_scalar("SELECT count(*) FROM plan_streaming_logs").fetch_one(&mut conn).await.unwrap()
}

fn kyoto(start: &str, end: &str) -> String {
    format!(r#"{{"location": "Kyoto", "startDate": "{start}", "endDate": "{end}", "budget": "low"}}"#)
}

#[tokio::test]
async fn a_second_request_is_a_cache_hit_on_both_endpoints_and_replays_the_contract() {
    let config = ServerConfig::for_tests();
    let (services, drafts) = counting_services(&config, Duration::ZERO);
    let app = spawn_app_with(config, Some(services)).await;

    let first = app.stream(seoul_body()).await;
    assert_eq!(first.headers()["x-cache"], "MISS");
    let generated = messages(first).await;
    let generated_plan = &generated[generated.len() - 2].data["plan"];
    assert_eq!(generated_plan["metadata"]["cached"], false);

    let json = app.generate(seoul_body()).await;
    assert_eq!((json.status().as_u16(), json.headers()["x-cache"].to_str().unwrap()), (200, "HIT"));
    let cached: Value = json.json().await.unwrap();
    assert_eq!(cached["metadata"]["cached"], true);
    assert_eq!(cached["days"], generated_plan["days"]);

    let stream = app.stream(seoul_body()).await;
    assert_eq!(stream.headers()["x-cache"], "HIT");
    let replay = messages(stream).await;
    assert_eq!(drafts.load(Ordering::SeqCst), 1, "only the first request generated");
    // A replay follows the contract exactly as the generation did: milestones, chunks, day events, done.
    assert_eq!(transcript(&replay), transcript(&generated));
    let chunks = |ms: &[Message]| -> Vec<Value> {
        ms.iter().filter(|m| matches!(m.kind(), "chunk" | "day")).map(|m| m.data.clone()).collect()
    };
    assert_eq!(chunks(&replay), chunks(&generated), "the same text and days, with the same progress");
    for (i, m) in replay.iter().enumerate() {
        assert_eq!(m.id, i.to_string());
    }
    assert_eq!(replay[replay.len() - 2].data["plan"]["metadata"]["cached"], true);
}

#[tokio::test]
async fn identical_streams_in_flight_share_one_generation() {
    let config = ServerConfig::for_tests();
    let (services, drafts) = counting_services(&config, Duration::from_millis(10));
    let app = Arc::new(spawn_app_with(config, Some(services)).await);
    let body = kyoto("2025-11-10", "2025-11-12");
    let (a, b) = tokio::join!(async { messages(app.stream(&body).await).await }, async {
        tokio::time::sleep(Duration::from_millis(40)).await;
        messages(app.stream(&body).await).await
    });
    assert_eq!(drafts.load(Ordering::SeqCst), 1, "one upstream generation");
    let data = |ms: &[Message]| ms.iter().map(|m| (m.id.clone(), shared_part(&m.data))).collect::<Vec<_>>();
    assert_eq!(data(&a), data(&b), "the second client got every event of the first, from the start");
    assert_ne!(a[0].data["streamId"], b[0].data["streamId"], "each on a stream of its own");
    assert_eq!(a.last().unwrap().kind(), "done");
    assert_eq!(a.iter().filter(|m| m.kind() == "day").count(), 3);
}

#[tokio::test]
async fn plans_are_shared_through_redis_between_replicas() {
    let prefix = format!("{}:", unique("tripstream_test"));
    let config = || {
        let mut c = ServerConfig::for_tests();
        c.store.redis_url = Some(SecretUrl::new(redis_url()));
        c.store.redis_key_prefix = prefix.clone();
        c
    };
    let (services, first_drafts) = counting_services(&config(), Duration::ZERO);
    let one = spawn_app_with(config(), Some(services)).await;
    let (services, second_drafts) = counting_services(&config(), Duration::ZERO);
    let two = spawn_app_with(config(), Some(services)).await;
    let body = kyoto("2025-11-10", "2025-11-11");
    assert_eq!(one.generate(&body).await.headers()["x-cache"], "MISS");
    let hit = two.generate(&body).await;
    assert_eq!(hit.headers()["x-cache"], "HIT");
    assert_eq!((first_drafts.load(Ordering::SeqCst), second_drafts.load(Ordering::SeqCst)), (1, 0));
    let health: Value = two.admin_get("/health").await.json().await.unwrap();
    assert_eq!(health["cache"], "redis");
}

/// A Redis of this test's own, on a free port, that can be stopped and started again.
struct OwnRedis {
    port: u16,
    child: Option<std::process::Child>,
}

impl OwnRedis {
    fn start(port: u16) -> OwnRedis {
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server is installed (.ci/run installs it)");
        let redis = OwnRedis { port, child: Some(child) };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(5), "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        redis
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

#[tokio::test]
async fn redis_going_away_never_fails_a_request_and_caching_resumes_when_it_returns() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut redis = OwnRedis::start(port);
    let mut config = ServerConfig::for_tests();
    config.store.redis_url = Some(SecretUrl::new(format!("redis://127.0.0.1:{}", redis.port)));
    config.store.redis_timeout_ms = Millis::new(200);
    let app = spawn_app_with(config, None).await;
    let body = |day: u32| kyoto(&format!("2025-11-{day:02}"), &format!("2025-11-{day:02}"));

    assert_eq!(app.generate(&body(10)).await.headers()["x-cache"], "MISS");
    assert_eq!(app.generate(&body(10)).await.headers()["x-cache"], "HIT");

    redis.stop();
    for day in [10, 11] {
        let started = Instant::now();
        let response = app.generate(&body(day)).await;
        assert_eq!((response.status().as_u16(), response.headers()["x-cache"].to_str().unwrap()), (200, "MISS"));
        assert!(started.elapsed() < Duration::from_secs(3), "a down Redis costs at most its timeout");
        let streamed = messages(app.stream(&body(day)).await).await;
        assert_eq!(streamed.last().unwrap().kind(), "done");
        assert_eq!(streamed[streamed.len() - 2].kind(), "complete");
    }

    let _redis = OwnRedis::start(port);
    let resumed = eventually(Duration::from_secs(10), async || {
        app.generate(&body(12)).await;
        app.generate(&body(12)).await.headers()["x-cache"] == "HIT"
    })
    .await;
    assert!(resumed, "caching resumed once Redis came back");
}

#[tokio::test]
async fn every_request_leaves_one_row_in_postgres_and_stats_agree_with_the_rows() {
    let url = postgres_schema().await;
    let mut config = ServerConfig::for_tests();
    config.store.database_url = SecretUrl::new(url.clone());
    let app = Arc::new(spawn_app_with(config, None).await);

    // 200 concurrent requests: JSON and streams, some identical (coalesced or cached), one invalid date range
    // is refused before it becomes a request of the log.
    let mut tasks = Vec::new();
    for i in 0..200u32 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            let day = 10 + (i % 5);
            let body = kyoto(&format!("2025-11-{day:02}"), &format!("2025-11-{day:02}"));
            if i % 2 == 0 {
                assert_eq!(app.generate(&body).await.status(), 200);
            } else {
                assert_eq!(messages(app.stream(&body).await).await.last().unwrap().kind(), "done");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert!(eventually(Duration::from_secs(10), async || count_rows(&url).await == 200).await, "one row each");

    let stats: Value = app.admin_get("/api/v1/stats?since=0").await.json().await.unwrap();
    assert_eq!((stats["requests"].as_u64(), stats["streams"].as_u64()), (Some(200), Some(100)));
    assert_eq!(stats["completionRate"], 1.0);
    assert_eq!(stats["errorRate"], 0.0);
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    let (hits, generations): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE cache_hit), count(*) FILTER (WHERE NOT cache_hit AND NOT coalesced) \
         FROM plan_streaming_logs",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(stats["cacheHitRate"].as_f64().unwrap(), hits as f64 / 200.0);
    assert_eq!(generations, 5, "five distinct trips: every other request hit the cache or joined a run");
    let avg: Option<f64> =
        sqlx::query_scalar("SELECT avg(duration_ms)::float8 FROM plan_streaming_logs WHERE endpoint = 'stream'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert!((stats["avgStreamDurationMs"].as_f64().unwrap() - avg.unwrap()).abs() < 1e-6);
    assert_eq!(stats["byProvider"]["offline"], 200);
    let bad = app.admin_get("/api/v1/stats?since=yesterday").await;
    assert_eq!(bad.status(), 422);
}

#[tokio::test]
async fn rows_written_during_a_database_outage_arrive_when_it_returns() {
    let url = postgres_schema().await;
    let proxy = Cuttable::start("127.0.0.1:5432".parse().unwrap()).await;
    let proxied = url.replace("127.0.0.1:5432", &format!("127.0.0.1:{}", proxy.port));
    let mut config = ServerConfig::for_tests();
    config.store.database_url = SecretUrl::new(proxied);
    config.store.cache_ttl_secs = Secs::new(0);
    let app = spawn_app_with(config, None).await;

    assert_eq!(app.generate(&kyoto("2025-11-10", "2025-11-10")).await.status(), 200);
    assert!(eventually(Duration::from_secs(5), async || count_rows(&url).await == 1).await);

    proxy.cut();
    for day in 11..=20 {
        let response = app.generate(&kyoto(&format!("2025-11-{day}"), &format!("2025-11-{day}"))).await;
        assert_eq!(response.status(), 200, "the outage does not touch requests");
    }
    proxy.refused_a_connection().await;
    assert_eq!(count_rows(&url).await, 1, "nothing could be written during the outage");

    proxy.restore();
    assert!(
        eventually(Duration::from_secs(15), async || count_rows(&url).await == 11).await,
        "every row buffered during the outage was written"
    );
}

#[tokio::test]
async fn metrics_are_prometheus_text_with_the_service_numbers() {
    let app = spawn_app().await;
    assert_eq!(app.generate(seoul_body()).await.status(), 200);
    messages(app.stream(seoul_body()).await).await;
    let response = app.admin_get("/metrics").await;
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
    let text = response.text().await.unwrap();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(comment) = line.strip_prefix('#') {
            assert!(comment.starts_with(" TYPE ") || comment.starts_with(" HELP "), "{line}");
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value: {line}"));
        assert!(value.parse::<f64>().is_ok() || ["+Inf", "-Inf", "NaN"].contains(&value), "{line}");
        let name = series.split('{').next().unwrap();
        assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'), "{line}");
        if let Some(labels) = series.strip_prefix(name) {
            assert!(labels.is_empty() || (labels.starts_with('{') && labels.ends_with('}')), "{line}");
        }
    }
    for name in [
        "tripstream_requests_total",
        "tripstream_active_streams",
        "tripstream_time_to_first_event_seconds_bucket",
        "tripstream_stream_duration_seconds_bucket",
        "tripstream_cache_total",
        "tripstream_runlog_queue_depth",
    ] {
        assert!(text.contains(name), "{name} missing from\n{text}");
    }
}

#[tokio::test]
async fn the_sqlite_run_log_is_created_with_its_schema_on_first_start() {
    let path = std::env::temp_dir().join(format!("{}.db", unique("tripstream")));
    let mut config = ServerConfig::for_tests();
    config.store.database_url = SecretUrl::new(format!("sqlite://{}", path.display()));
    let app = spawn_app_with(config, None).await;
    assert_eq!(app.generate(seoul_body()).await.status(), 200);
    let ok = eventually(Duration::from_secs(5), async || {
        let stats: Value = app.admin_get("/api/v1/stats?since=0").await.json().await.unwrap();
        stats["requests"] == 1
    })
    .await;
    assert!(ok && path.exists());
    let _ = std::fs::remove_file(&path);
}

/// Event `seq` of a test stream: chunks, and `done` at 29.
pub fn logged_event(seq: u64) -> Entry {
    let event = match seq {
        29 => StreamEvent::Done,
        n => StreamEvent::Chunk(tripstream_domain::event::Chunk {
            content: n.to_string(),
            progress: 31,
            step: tripstream_domain::Step::GenerateDraft,
        }),
    };
    Entry { seq, event: Arc::new(event) }
}

/// Whether stream `s1` is among the running streams of `prefix`.
pub async fn running(redis: &mut redis::aio::MultiplexedConnection, prefix: &str) -> bool {
    redis::cmd("SISMEMBER").arg(format!("{prefix}streams:running")).arg("s1").query_async(redis).await.unwrap()
}

pub fn open_stream<'a>(owner: &'a str) -> OpenStream<'a> {
    let cancels = tokio::sync::mpsc::unbounded_channel().0;
    OpenStream { stream_id: "s1", record: "{}", owner, cancels, lost: tokio_util::sync::CancellationToken::new() }
}

#[tokio::test]
async fn events_logged_while_redis_is_unreachable_reach_the_shared_log_in_order_once_it_returns() {
    use redis::AsyncCommands;

    let prefix = unique("tripstream-test-") + ":";
    let proxy = Cuttable::start("127.0.0.1:6379".parse().unwrap()).await;
    let direct = RedisEventLog::new(&redis_url(), prefix.clone(), Duration::from_secs(60)).unwrap();
    let proxied =
        RedisEventLog::new(&format!("redis://127.0.0.1:{}", proxy.port), prefix.clone(), Duration::from_secs(60))
            .unwrap();
    let key = format!("{prefix}stream:s1");
    let mut redis = redis::Client::open(redis_url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let logged = async |redis: &mut redis::aio::MultiplexedConnection| {
        redis::cmd("XLEN").arg(&key).query_async::<usize>(redis).await.unwrap()
    };

    let (mut writer, task) = proxied.open(open_stream("rep_a"));
    let task = tokio::spawn(task.expect("the Redis log writes in the background"));
    for seq in 0..10 {
        writer.append(logged_event(seq));
    }
    assert!(eventually(Duration::from_secs(5), async || logged(&mut redis).await == 10).await);
    // What a retry leaves behind when Redis applied a write whose answer was lost: the same entries again.
    for seq in [8, 9] {
        let json = serde_json::to_string(&*logged_event(seq).event).unwrap();
        let add = redis::cmd("XADD").arg(&key).arg("*").arg("seq").arg(seq).arg("event").arg(json).clone();
        let _: String = add.query_async(&mut redis).await.unwrap();
    }

    proxy.cut();
    for seq in 10..20 {
        writer.append(logged_event(seq));
    }
    proxy.refused_a_connection().await;
    assert_eq!(logged(&mut redis).await, 12, "nothing could be written while Redis was unreachable");
    proxy.restore();
    for seq in 20..30 {
        writer.append(logged_event(seq));
    }
    drop(writer);
    tokio::time::timeout(Duration::from_secs(30), task).await.expect("the writer finishes").unwrap();
    assert_eq!(logged(&mut redis).await, 32);

    let mut reader = direct.reader("s1", 0).await.unwrap();
    let mut read = Vec::new();
    while let Some(entry) = reader.next(Duration::from_secs(2)).await.unwrap() {
        assert_eq!(entry, logged_event(entry.seq));
        read.push(entry.seq);
        if entry.is_done() {
            break;
        }
    }
    assert_eq!(read, (0..30).collect::<Vec<_>>(), "every event once, in order");
    let ttl: i64 = redis.ttl(&key).await.unwrap();
    assert!((0..=60).contains(&ttl), "finished, so it expires with the retention: {ttl}");
    assert!(!running(&mut redis, &prefix).await, "no longer among the running streams");
}

#[tokio::test]
async fn a_producer_whose_stream_another_replica_took_over_stops_writing_it() {
    let prefix = unique("tripstream-test-") + ":";
    let log = RedisEventLog::new(&redis_url(), prefix.clone(), Duration::from_secs(60)).unwrap();
    let (key, lease) = (format!("{prefix}stream:s1"), format!("{prefix}stream:s1:lease"));
    let mut redis = redis::Client::open(redis_url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let logged = async |redis: &mut redis::aio::MultiplexedConnection| {
        redis::cmd("XLEN").arg(&key).query_async::<usize>(redis).await.unwrap()
    };

    let open = open_stream("rep_a#1");
    let lost = open.lost.clone();
    let (mut writer, task) = log.open(open);
    let task = tokio::spawn(task.expect("the Redis log writes in the background"));
    for seq in 0..5 {
        writer.append(logged_event(seq));
    }
    assert!(eventually(Duration::from_secs(5), async || logged(&mut redis).await == 5).await);
    // rep_a stalled past its lease and rep_b claimed the stream.
    let _: () = redis::cmd("SET").arg(&lease).arg("rep_b#2").query_async(&mut redis).await.unwrap();
    for seq in 5..10 {
        writer.append(logged_event(seq));
    }
    tokio::time::timeout(Duration::from_secs(10), lost.cancelled())
        .await
        .expect("the producer is told it lost the stream");
    writer.append(logged_event(29));
    drop(writer);
    tokio::time::timeout(Duration::from_secs(30), task).await.expect("the writer finishes").unwrap();
    assert_eq!(logged(&mut redis).await, 5, "nothing written into a stream another replica produces");
    let holder: Option<String> = redis::cmd("GET").arg(&lease).query_async(&mut redis).await.unwrap();
    assert_eq!(holder.as_deref(), Some("rep_b#2"), "and its lease left alone");
    assert!(running(&mut redis, &prefix).await, "still rep_b's to finish");
}

#[tokio::test]
async fn a_replica_whose_database_is_down_at_start_up_serves_and_is_ready_once_it_answers() {
    let url = postgres_schema().await;
    let keys = tripstream_adapters::keys::KeyStore::new(tripstream_adapters::runlog::Db::open(&url).await.unwrap());
    let admin =
        keys.create(tripstream_adapters::keys::NewKey { name: "ops".into(), admin: true, ..Default::default() });
    let admin = admin.await.unwrap().1.expose().to_owned();
    let proxy = Cuttable::start("127.0.0.1:5432".parse().unwrap()).await;
    proxy.cut();
    let mut config = ServerConfig::for_tests();
    config.store.database_url = SecretUrl::new(url.replace("127.0.0.1:5432", &format!("127.0.0.1:{}", proxy.port)));
    let app = spawn_app_unready(config, None, None).await;

    proxy.refused_a_connection().await;
    let ready = app.get("/health/ready").await;
    assert_eq!(ready.status(), 503);
    let body: Value = ready.json().await.unwrap();
    assert_eq!((body["status"].as_str(), body["runLog"].as_str()), (Some("starting"), Some("down")), "{body}");
    assert_eq!(app.get("/health/live").await.status(), 200);
    // Plans are served meanwhile; their rows wait.
    assert_eq!(app.generate(&kyoto("2025-11-10", "2025-11-10")).await.status(), 200);
    let stats = app.client.get(format!("{}/api/v1/stats", app.base)).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(stats.status(), 503);
    let body: Value = stats.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unavailable");
    assert!(!body.to_string().contains("127.0.0.1"), "no internal detail: {body}");

    proxy.restore();
    let ready = eventually(Duration::from_secs(30), async || app.get("/health/ready").await.status() == 200).await;
    assert!(ready, "ready once the database answers and the migrations applied");
    assert!(eventually(Duration::from_secs(15), async || count_rows(&url).await == 1).await, "the waiting row written");
}

/// Abuse suite (d): a year of a million run-log rows in PostgreSQL, made in one statement. `/api/v1/stats`
/// aggregates its window (the last 31 days) in the database in well under a second, on its own
/// connections, and a stream that runs meanwhile is neither stalled nor kept from its run-log row.
#[tokio::test]
async fn stats_over_a_year_of_a_million_rows_answer_in_under_a_second_without_stalling_a_stream() {
    let url = postgres_schema().await;
    let mut config = ServerConfig::for_tests();
    config.store.database_url = SecretUrl::new(url.clone());
    let app = Arc::new(spawn_app_with(config, None).await);
    assert!(eventually(Duration::from_secs(20), async || app.admin_get("/api/v1/stats").await.status() == 200).await);

    let now_ms = jiff::Timestamp::now().as_millisecond();
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query(
        "INSERT INTO plan_streaming_logs (endpoint, location, start_date, end_date, budget, travelers, language, \
           interests, started_at_ms, duration_ms, event_count, events_by_type, events_by_step, has_error, error_code, \
           received_complete, client_disconnected, cache_hit, coalesced, provider) \
         SELECT CASE WHEN i % 2 = 0 THEN 'stream' ELSE 'json' END, 'Seoul', '2026-05-10', '2026-05-12', 'low', 1, 'ko', \
           '[]', $1 - i * 31536, (i * 7919) % 60000, 15, '{\"chunk\": 9}', \
           '{\"generate_draft\": 12, \"finalize_plan\": 2}', i % 50 = 0, \
           CASE WHEN i % 50 = 0 THEN 'llm_timeout' END, i % 50 <> 0, i % 97 = 0, i % 4 = 0, i % 10 = 0, \
           CASE i % 3 WHEN 0 THEN 'gemini' WHEN 1 THEN 'openai' ELSE NULL END \
         FROM generate_series(1::bigint, 1000000::bigint) AS g(i)",
    )
    .bind(now_ms)
    .execute(&mut conn)
    .await
    .unwrap();
    sqlx::query("ANALYZE plan_streaming_logs").execute(&mut conn).await.unwrap();

    // A stream starts while stats are asked for again and again.
    let streaming = {
        let app = app.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let messages = messages(app.stream(&kyoto("2025-11-10", "2025-11-12")).await).await;
            (messages.last().map(|m| m.kind().to_owned()), started.elapsed())
        })
    };
    let mut took = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        let response = app.admin_get("/api/v1/stats?since=0").await;
        took.push(started.elapsed());
        assert_eq!(response.status(), 200);
    }
    let (last, stream_took) = streaming.await.unwrap();
    assert_eq!(last.as_deref(), Some("done"));
    assert!(stream_took < Duration::from_secs(5), "the stream took {stream_took:?} beside the stats queries");
    eprintln!("stats over a million rows took {took:?}; the stream beside them {stream_took:?}");
    assert!(took.iter().min().unwrap() < &Duration::from_secs(1), "stats took {took:?}");
    assert!(took.iter().all(|t| *t < Duration::from_secs(3)), "stats took {took:?}");
    assert!(eventually(Duration::from_secs(10), async || count_rows(&url).await == 1_000_001).await, "the writer ran");
    // Asked again now that the stream's own row is in (the run log writes it just after `done`), so that
    // both counts below see the same rows.
    let answer: Value = app.admin_get("/api/v1/stats?since=0").await.json().await.unwrap();

    // `since=0` is moved up to 31 days back, and the numbers are the database's own over that window.
    let since = answer["sinceMs"].as_i64().unwrap();
    let window = jiff::Timestamp::now().as_millisecond() - since;
    assert!((31 * 86_400_000..31 * 86_400_000 + 60_000).contains(&window), "window {window} ms");
    let (requests, errors, p50, p95): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE has_error), \
           percentile_disc(0.5) WITHIN GROUP (ORDER BY duration_ms), \
           percentile_disc(0.95) WITHIN GROUP (ORDER BY duration_ms) \
         FROM plan_streaming_logs WHERE started_at_ms >= $1",
    )
    .bind(since)
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert!(requests > 80_000, "about a twelfth of the year: {requests}");
    assert_eq!(answer["requests"].as_i64(), Some(requests));
    assert_eq!(answer["errorsByCode"]["llm_timeout"].as_i64(), Some(errors));
    assert_eq!((answer["p50DurationMs"].as_i64(), answer["p95DurationMs"].as_i64()), (Some(p50), Some(p95)));
    // Every synthetic stream had 12 draft events; the one real stream, a few more.
    assert!((answer["avgEventsByStep"]["generate_draft"].as_f64().unwrap() - 12.0).abs() < 0.01, "{answer}");
    assert!(answer["byProvider"]["none"].as_i64().unwrap() > 0 && answer["byProvider"]["gemini"].as_i64().unwrap() > 0);
    let schema = url.rsplit("search_path%3D").next().unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE"))).execute(&mut conn).await.unwrap();
}
