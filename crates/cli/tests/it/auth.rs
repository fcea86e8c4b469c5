//! Keys across real processes: a revoked key stops working on two replicas that share Redis and
//! PostgreSQL within the key cache's time, and no key or resume token ever reaches a log line.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use eventsource_stream::Eventsource;
use futures::StreamExt;
use sqlx::Connection;

use crate::process::Served;

fn tripstream_keys(args: &[&str], database_url: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tripstream"))
        .arg("keys")
        .args(args)
        .args(["--database-url", database_url])
        .env_remove("RUST_LOG")
        .output()
        .expect("the binary runs");
    assert!(out.status.success(), "keys {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A new key, made with the command line: (id, key).
fn create_key(database_url: &str, admin: bool) -> (String, String) {
    let mut args = vec!["create", "--name", "test", "--json"];
    if admin {
        args.push("--admin");
    }
    let made: serde_json::Value = serde_json::from_str(&tripstream_keys(&args, database_url)).unwrap();
    (made["id"].as_str().unwrap().to_owned(), made["key"].as_str().unwrap().to_owned())
}

async fn postgres_schema() -> (String, String) {
    let base = std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let schema = format!("cli_auth_{}", uuid::Uuid::now_v7().simple());
    let mut conn = sqlx::PgConnection::connect(&base).await.expect("PostgreSQL is running");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).execute(&mut conn).await.unwrap();
    (format!("{base}?options=-c%20search_path%3D{schema}"), schema)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_key_stops_working_on_every_replica_within_the_key_cache_time() {
    let (url, _) = postgres_schema().await;
    let redis = std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let prefix = format!("tripstream_auth_{}:", uuid::Uuid::now_v7().simple());
    let env = || {
        [
            ("DATABASE_URL", url.clone()),
            ("REDIS_URL", redis.clone()),
            ("REDIS_KEY_PREFIX", prefix.clone()),
            ("AUTH_MODE", "required".to_owned()),
            ("KEY_CACHE_SECS", "1".to_owned()),
        ]
    };
    let replicas = [Served::start(env()).await, Served::start(env()).await];
    // The schema is migrated by the replicas; the command then makes the key in it.
    let client = tripstream_adapters::http::client(Duration::from_secs(2));
    for replica in &replicas {
        let started = Instant::now();
        while client.get(format!("{}/health/ready", replica.base)).send().await.unwrap().status() != 200 {
            assert!(started.elapsed() < Duration::from_secs(20), "never ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let (id, key) = create_key(&url, false);
    let status = async |replica: &Served| {
        let url = format!("{}/api/v1/plans/generate", replica.base);
        let body = r#"{"location":"Seoul","startDate":"2025-11-10","endDate":"2025-11-10","budget":"low"}"#;
        let request = client.post(url).header("content-type", "application/json").bearer_auth(&key).body(body);
        request.send().await.unwrap().status().as_u16()
    };
    for replica in &replicas {
        assert_eq!(status(replica).await, 200, "the key works on both replicas");
    }
    tripstream_keys(&["revoke", &id], &url);
    let revoked = Instant::now();
    for replica in &replicas {
        while status(replica).await != 401 {
            assert!(revoked.elapsed() < Duration::from_secs(3), "still accepted 3 s after it was revoked");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // KEY_CACHE_SECS=1: gone everywhere within about a second.
    assert!(revoked.elapsed() < Duration::from_millis(2500), "{:?}", revoked.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_key_or_resume_token_reaches_the_logs() {
    let dir = std::env::temp_dir().join(format!("tripstream-cli-auth-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let database_url = format!("sqlite://{}", dir.join("runlog.db").display());
    let log = dir.join("serve.log");
    let env = [
        ("DATABASE_URL", database_url.clone()),
        ("RUST_LOG", "debug,sqlx=trace,tower_http=trace".to_owned()),
        ("OFFLINE_CHUNK_DELAY_MS", "20".to_owned()),
        ("STREAM_CANCEL_GRACE_SECS", "30".to_owned()),
    ];
    let server = Served::start_logging(env, Stdio::from(std::fs::File::create(&log).unwrap())).await;
    let (_, key) = create_key(&database_url, true);
    let client = tripstream_adapters::http::client(Duration::from_secs(10));
    let body = r#"{"location":"Kyoto","startDate":"2025-11-10","endDate":"2025-11-12","budget":"medium"}"#;
    let response = client
        .post(format!("{}/api/v1/plans/generate/stream", server.base))
        .header("content-type", "application/json")
        .bearer_auth(&key)
        .body(body)
        .send()
        .await
        .unwrap();
    let stream_id = response.headers()["x-stream-id"].to_str().unwrap().to_owned();
    let token = response.headers()["x-resume-token"].to_str().unwrap().to_owned();
    let mut events = response.bytes_stream().eventsource();
    for _ in 0..4 {
        events.next().await.unwrap().unwrap();
    }
    drop(events);
    // The token in a header, then in the query (as EventSource sends it), then the cancel.
    let resume = format!("{}/api/v1/plans/streams/{stream_id}/events", server.base);
    let resumed = client.get(&resume).header("x-resume-token", &token).header("last-event-id", "3").send().await;
    assert_eq!(resumed.unwrap().status(), 200);
    let resumed = client.get(format!("{resume}?token={token}&lastEventId=3")).send().await.unwrap();
    assert_eq!(resumed.status(), 200);
    drop(resumed);
    let cancel = format!("{}/api/v1/plans/streams/{stream_id}/cancel?token={token}", server.base);
    assert_eq!(client.post(cancel).send().await.unwrap().status(), 202);
    let stats = client.get(format!("{}/api/v1/stats", server.base)).bearer_auth(&key).send().await.unwrap();
    assert_eq!(stats.status(), 200);
    let bad = client.get(format!("{}/health", server.base)).bearer_auth(format!("{key}x")).send().await.unwrap();
    assert_eq!(bad.status(), 401);
    server.terminate();

    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.lines().count() > 20, "the server logged at debug:\n{logged}");
    assert!(!logged.contains('\x1b'), "a log written to a file carries no terminal colour codes:\n{logged}");
    let secret_part = |s: &str| s[4..].to_owned();
    for (what, secret) in [("the key", secret_part(&key)), ("the resume token", secret_part(&token))] {
        assert!(!logged.contains(&secret), "{what} is in the logs");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
