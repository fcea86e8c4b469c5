//! Databases for the store tests: a SQLite file in the temporary directory, or a fresh schema in the
//! machine's PostgreSQL (`TEST_DATABASE_URL`), each removed after its test.

use sqlx::Connection;

pub fn postgres_url() -> String {
    std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A fresh PostgreSQL schema: its name, and a URL whose connections use it.
pub async fn postgres_schema(prefix: &str) -> (String, String) {
    let schema = format!("{prefix}_{}_{:016x}", std::process::id(), fastrand::u64(..));
    let mut conn = sqlx::PgConnection::connect(&postgres_url()).await.expect("PostgreSQL is running");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).execute(&mut conn).await.unwrap();
    let url = format!("{}?options=-c%20search_path%3D{schema}", postgres_url());
    (schema, url)
}

pub async fn drop_schema(schema: &str) {
    let mut conn = sqlx::PgConnection::connect(&postgres_url()).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE"))).execute(&mut conn).await.unwrap();
}

pub fn sqlite_file(prefix: &str) -> (std::path::PathBuf, String) {
    let path =
        std::env::temp_dir().join(format!("tripstream-{prefix}-{}-{:016x}.db", std::process::id(), fastrand::u64(..)));
    let url = format!("sqlite://{}", path.display());
    (path, url)
}

pub fn remove_sqlite(path: &std::path::Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

/// Replicas starting together on one SQLite file (the deployment test's shape) all migrate it: SQLite has
/// no migration lock, so the ones that lose the race run again.
#[tokio::test]
async fn replicas_migrating_one_sqlite_file_together_all_start() {
    for round in 0..10 {
        let (path, url) = sqlite_file("migrate-race");
        let opens = (0..4).map(|_| {
            let url = url.clone();
            tokio::spawn(async move { tripstream_adapters::runlog::Db::open(&url).await.map(|_| ()) })
        });
        for open in futures::future::join_all(opens).await {
            open.unwrap().unwrap_or_else(|e| panic!("round {round}: {e}"));
        }
        remove_sqlite(&path);
    }
}
