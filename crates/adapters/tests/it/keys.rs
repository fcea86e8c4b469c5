//! The API key store against SQLite (in memory and a file) and the machine's PostgreSQL
//! (`TEST_DATABASE_URL`, a fresh schema per test, dropped after), and its cache under moved time.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use sha2::{Digest, Sha256};
use sqlx::Connection;
use tripstream_adapters::http::Secret;
use tripstream_adapters::keys::{ApiKey, CachedKeys, KeyError, KeyStore, NewKey};
use tripstream_adapters::runlog::Db;

use crate::db::{drop_schema, postgres_schema, remove_sqlite, sqlite_file};

fn new_key(name: &str) -> NewKey {
    NewKey { name: name.into(), ..NewKey::default() }
}

/// Everything a user does with keys, checked on one store.
async fn lifecycle(store: &KeyStore) -> Vec<Secret> {
    let before = jiff::Timestamp::now().as_millisecond();
    let (ci, ci_key) = store
        .create(NewKey {
            name: "  ci bot ".into(),
            admin: false,
            rate_per_minute: Some(60),
            daily_tokens: Some(200_000),
        })
        .await
        .unwrap();
    let (ops, ops_key) = store.create(NewKey { admin: true, ..new_key("ops") }).await.unwrap();
    assert_eq!((ci.name.as_str(), ci.rate_per_minute, ci.daily_tokens), ("ci bot", Some(60), Some(200_000)));
    assert!(ci.created_at_ms >= before && ci.revoked_at_ms.is_none());
    assert!(ops.admin && ops.rate_per_minute.is_none() && ops.daily_tokens.is_none());
    assert!(ci.id.starts_with("key_") && ci.id.len() == 30, "{}", ci.id);
    assert!(ci_key.expose().starts_with("tsk_") && ci_key.expose().len() == 36);
    assert_eq!(format!("{ci_key:?}"), "Secret(***)");

    // Found by the key, as stored; not found by anything else.
    assert_eq!(store.find(ci_key.expose()).await.unwrap(), Some(ci.clone()));
    assert_eq!(store.find(ops_key.expose()).await.unwrap(), Some(ops.clone()));
    for presented in [another(&ci_key).as_str(), "", "tsk_", &ci.id, &ci_key.expose().to_lowercase()] {
        assert_eq!(store.find(presented).await.unwrap(), None, "{presented}");
    }

    assert_eq!(store.list().await.unwrap(), vec![ci.clone(), ops.clone()]);

    // Revoked: gone for look-ups, still listed, and revoking again says so.
    assert!(store.revoke(&ci.id).await.unwrap());
    assert_eq!(store.find(ci_key.expose()).await.unwrap(), None);
    assert!(!store.revoke(&ci.id).await.unwrap());
    let listed = store.list().await.unwrap();
    assert!(listed[0].revoked_at_ms.is_some_and(|at| at >= ci.created_at_ms), "{listed:?}");
    assert_eq!(listed[1], ops, "the other key is untouched");
    assert_eq!(store.find(ops_key.expose()).await.unwrap(), Some(ops));

    // Bad input: clear, and without repeating a key.
    let unknown = "key_0000000000000000000000000Z";
    assert!(matches!(store.revoke(unknown).await, Err(KeyError::NotFound { id }) if id == unknown));
    let err = store.revoke(ops_key.expose()).await.unwrap_err();
    assert!(matches!(err, KeyError::InvalidId { looks_like_key: true }));
    assert!(!format!("{err} {err:?}").contains(ops_key.expose()));
    for bad in [new_key(""), new_key(" \t "), NewKey { rate_per_minute: Some(0), ..new_key("a") }] {
        assert!(store.create(bad).await.unwrap_err().is_bad_input());
    }
    assert_eq!(store.list().await.unwrap().len(), 2, "refused keys are not stored");
    vec![ci_key, ops_key]
}

/// A key of the same form that differs from `key` in its last character.
fn another(key: &Secret) -> String {
    let mut other = key.expose().to_owned();
    let last = if other.ends_with('0') { "1" } else { "0" };
    other.replace_range(35.., last);
    other
}

/// What a key may not leave in storage: itself, or any run of more than 8 characters of its random part.
fn assert_absent(stored: &str, keys: &[Secret]) {
    for key in keys {
        let random = &key.expose()[4..];
        for start in 0..=random.len() - 9 {
            let piece = &random[start..start + 9];
            assert!(!stored.contains(piece), "the stored data holds {piece:?}, a piece of a key");
        }
    }
}

fn sha256_hex(key: &Secret) -> String {
    Sha256::digest(key.expose().as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn the_store_works_on_sqlite_in_memory() {
    lifecycle(&KeyStore::new(Db::open("sqlite::memory:").await.unwrap())).await;
}

#[tokio::test]
async fn a_sqlite_file_holds_only_hashes() {
    let (path, url) = sqlite_file("keys");
    let db = Db::open(&url).await.unwrap();
    let keys = lifecycle(&KeyStore::new(db.clone())).await;
    // Everything on disk: the database, its write-ahead log and its index, freed pages included.
    let mut stored = Vec::new();
    for suffix in ["", "-wal"] {
        stored.extend(std::fs::read(format!("{}{suffix}", path.display())).unwrap_or_default());
    }
    let stored = String::from_utf8_lossy(&stored);
    assert_absent(&stored, &keys);
    for key in &keys {
        assert!(stored.contains(&sha256_hex(key)), "the key's SHA-256 is what is kept");
    }
    // A second open of the file (as after a restart) finds the same keys.
    let reopened = KeyStore::new(Db::open(&url).await.unwrap());
    assert_eq!(reopened.find(keys[1].expose()).await.unwrap().map(|k| k.name), Some("ops".to_owned()));
    remove_sqlite(&path);
}

#[tokio::test]
async fn postgres_holds_only_hashes() {
    let (schema, url) = postgres_schema("keys").await;
    let keys = lifecycle(&KeyStore::new(Db::open(&url).await.unwrap())).await;
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    let rows: Vec<String> =
        sqlx::query_scalar("SELECT row_to_json(k)::text FROM api_keys k").fetch_all(&mut conn).await.unwrap();
    assert_eq!(rows.len(), 2);
    let stored = rows.join("\n");
    assert_absent(&stored, &keys);
    for key in &keys {
        assert!(stored.contains(&sha256_hex(key)), "the key's SHA-256 is what is kept: {stored}");
    }
    drop_schema(&schema).await;
}

/// Drops the table under a cache, so that any look-up that reaches the database fails.
async fn drop_table(url: &str) {
    if url.starts_with("postgres") {
        let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query("DROP TABLE api_keys").execute(&mut conn).await.unwrap();
    } else {
        let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query("DROP TABLE api_keys").execute(&mut conn).await.unwrap();
    }
}

/// Moves tokio's clock on by `by`. Paused only for the move: the database is queried in real time (a
/// paused clock would jump to the pool's timeouts while a query runs on another thread).
async fn time_passes(by: Duration) {
    tokio::time::pause();
    tokio::time::advance(by).await;
    tokio::time::resume();
}

/// A revoked key keeps working from the cache until the ttl has passed, and no longer; answers, found
/// or not, come from memory in between; what is not of a key's form is never looked up.
async fn cache_lifecycle(url: &str) {
    let ttl = Duration::from_secs(5);
    let store = KeyStore::new(Db::open(url).await.unwrap());
    let cached = CachedKeys::new(store.clone(), ttl, 100);
    let (key, secret): (ApiKey, Secret) = store.create(new_key("cached")).await.unwrap();
    let (_, stranger) = KeyStore::new(Db::open("sqlite::memory:").await.unwrap()).create(new_key("x")).await.unwrap();

    assert_eq!(cached.find(secret.expose()).await.unwrap(), Some(key.clone()));
    assert_eq!(cached.find(stranger.expose()).await.unwrap(), None);
    assert!(store.revoke(&key.id).await.unwrap());
    time_passes(ttl - Duration::from_millis(100)).await;
    assert_eq!(cached.find(secret.expose()).await.unwrap(), Some(key.clone()), "within the ttl: the cached answer");
    time_passes(Duration::from_millis(100)).await;
    assert_eq!(cached.find(secret.expose()).await.unwrap(), None, "after the ttl: revoked");

    // Both answers are served from memory: with the table gone, they stand until the ttl passes.
    let (key2, secret2) = store.create(new_key("second")).await.unwrap();
    assert_eq!(cached.find(secret2.expose()).await.unwrap(), Some(key2.clone()));
    assert_eq!(cached.find(stranger.expose()).await.unwrap(), None);
    drop_table(url).await;
    time_passes(ttl / 2).await;
    assert_eq!(cached.find(secret2.expose()).await.unwrap(), Some(key2));
    assert_eq!(cached.find(stranger.expose()).await.unwrap(), None);
    time_passes(ttl).await;
    let err = cached.find(secret2.expose()).await.unwrap_err();
    assert!(matches!(err, KeyError::Database(_)), "{err:?}");
    assert!(!format!("{err} {err:?}").contains(secret2.expose()));
    assert_eq!(cached.find("tsk_not-a-key").await.unwrap(), None, "no look-up for what is not a key");
    assert_eq!(cached.find(&secret2.expose().to_lowercase()).await.unwrap(), None);
}

#[tokio::test]
async fn the_cache_on_sqlite_serves_for_the_ttl_then_sees_revocations() {
    let (path, url) = sqlite_file("keys");
    cache_lifecycle(&url).await;
    remove_sqlite(&path);
}

#[tokio::test]
async fn the_cache_on_postgres_serves_for_the_ttl_then_sees_revocations() {
    let (schema, url) = postgres_schema("keys").await;
    cache_lifecycle(&url).await;
    drop_schema(&schema).await;
}

#[tokio::test]
async fn concurrent_look_ups_of_one_key_share_its_answer() {
    let store = KeyStore::new(Db::open("sqlite::memory:").await.unwrap());
    let cached = CachedKeys::new(store.clone(), CachedKeys::DEFAULT_TTL, CachedKeys::DEFAULT_CAPACITY);
    let (key, secret) = store.create(new_key("busy")).await.unwrap();
    let answers = futures::future::join_all((0..50).map(|_| cached.find(secret.expose()))).await;
    assert!(answers.iter().all(|a| a.as_ref().unwrap().as_ref() == Some(&key)));
}

/// Every log line of this crate and of sqlx, from every thread of this test binary, in memory.
///
/// A global subscriber, not a per-test one: tracing caches whether a log line is wanted where it is
/// written, and with a single thread-local subscriber, lines first written on another thread (SQLite's
/// worker, or another test) are cached as unwanted everywhere.
fn captured_logs() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Arc::new(Mutex::new(Vec::new()));
        let writer = Captured(logs.clone());
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter("tripstream_adapters=trace,sqlx=trace")
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("no other test sets a global subscriber");
        logs
    })
}

#[derive(Clone)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_key_or_hash_reaches_the_logs() {
    let logs = captured_logs();
    let (schema, postgres) = postgres_schema("keys").await;
    let (path, sqlite) = sqlite_file("keys");
    let mut keys = Vec::new();
    let mut ids = Vec::new();
    for url in [&postgres, &sqlite] {
        let store = KeyStore::new(Db::open(url).await.unwrap());
        keys.extend(lifecycle(&store).await);
        let cached = CachedKeys::new(store.clone(), Duration::from_secs(5), 10);
        let (key, secret) = store.create(new_key("logged")).await.unwrap();
        assert!(cached.find(secret.expose()).await.unwrap().is_some());
        drop_table(url).await;
        assert!(cached.find(&another(&secret)).await.is_err(), "an error, logged by no one here");
        ids.push(key.id);
        keys.push(secret);
    }
    drop_schema(&schema).await;
    remove_sqlite(&path);

    let logs = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    for id in &ids {
        assert!(logs.contains(&format!("API key created key_id={id}")), "the capture works:\n{logs}");
    }
    assert!(logs.contains("SELECT id, name, admin"), "statements are logged too:\n{logs}");
    assert_absent(&logs, &keys);
    for key in &keys {
        assert!(!logs.contains(&sha256_hex(key)), "a hash was logged");
    }
}
