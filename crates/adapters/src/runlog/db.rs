//! The run log's database: SQLite or PostgreSQL, chosen by the URL, migrated with the SQL files under
//! `migrations/` (embedded at build time by `sqlx::migrate!`). The two dialects share every statement but
//! the schema.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Row};

use super::RunRecord;

static SQLITE: Migrator = sqlx::migrate!("../../migrations/sqlite");
static POSTGRES: Migrator = sqlx::migrate!("../../migrations/postgres");

/// Opening or migrating a SQLite file again after a failure (another process doing the same to it).
const SQLITE_START_UP_RETRIES: u32 = 5;

/// Runs `step` of opening a SQLite file, again after a failure, a few times. Processes starting together
/// on one file race: switching it to the write-ahead log answers "database is locked" to all but one
/// without waiting, and migrations take no lock. A lasting failure still fails.
async fn sqlite_start_up<T, E, F>(step: &str, mut run: impl FnMut() -> F) -> Result<T, E>
where
    E: std::fmt::Display,
    F: std::future::Future<Output = Result<T, E>>,
{
    let mut attempt = 0;
    loop {
        match run().await {
            Err(e) if attempt < SQLITE_START_UP_RETRIES => {
                attempt += 1;
                tracing::warn!(error = %e, attempt, "{step} the SQLite run log failed; trying again");
                tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
            }
            result => return result,
        }
    }
}

/// The longest a statement may run on PostgreSQL before the server cancels it.
const STATEMENT_TIMEOUT: &str = "5s";

/// The longest a stats query may run (PostgreSQL's `statement_timeout` on the stats connections; a
/// progress handler in SQLite).
pub(super) const STATS_TIMEOUT: Duration = Duration::from_secs(3);

const COLUMNS: &str = "request_id, stream_id, endpoint, location, start_date, end_date, budget, travelers, \
    language, interests, started_at_ms, duration_ms, first_event_ms, event_count, events_by_type, events_by_step, \
    has_error, error_code, received_complete, client_disconnected, cache_hit, coalesced, provider, model, \
    input_tokens, output_tokens, refine_iterations";

/// The most rows a many-row statement takes: the largest of [`statement_rows`]'s sizes.
const MAX_STATEMENT_ROWS: usize = 128;

/// How many of `n` rows waiting go in the next many-row statement: the largest power of two up to `n`
/// and [`MAX_STATEMENT_ROWS`]. Such a statement's text depends on its row count, and both drivers keep a
/// prepared statement by its text, so eight sizes are each parsed once per connection; a statement for
/// every batch size was parsed anew each time (for SQLite, half of its thread's work).
fn statement_rows(n: usize) -> usize {
    match n.min(MAX_STATEMENT_ROWS) {
        0 => 0,
        n => 1 << n.ilog2(),
    }
}

/// `rows` cut into statements of [`statement_rows`] each, largest first.
pub(crate) fn statement_chunks<T>(mut rows: &[T]) -> impl Iterator<Item = &[T]> {
    std::iter::from_fn(move || {
        let (chunk, rest) = rows.split_at(statement_rows(rows.len()));
        rows = rest;
        (!chunk.is_empty()).then_some(chunk)
    })
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("run log database: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("run log database: migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The URL is never repeated: it may hold a password.
    #[error("DATABASE_URL must start with sqlite: or postgres:// (the URL given starts with {scheme:?})")]
    Scheme { scheme: String },
}

/// The run log's database: SQLite or PostgreSQL, chosen by the URL. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Db {
    pool: Pool,
    /// The stats queries' own connection, so that a long aggregate never holds the run log writer's
    /// (the same pool only for an in-memory SQLite database, which exists per connection).
    stats_pool: Pool,
    /// The schema is up to date: rows can be written and read.
    migrated: Arc<AtomicBool>,
}

/// The connection pool of one dialect. Other stores in the same database (the API keys) reach it through
/// [`Db::pool`] and [`with_pool!`].
#[derive(Clone, Debug)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to the pool of whichever dialect `$db` uses: the statements are the
/// same, but their types differ per database, so the body is compiled once for each.
macro_rules! with_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db.pool() {
            $crate::runlog::Pool::Sqlite($pool) => $body,
            $crate::runlog::Pool::Postgres($pool) => $body,
        }
    };
}
pub(crate) use with_pool;

impl Db {
    /// Opens `url` (`sqlite://path`, `sqlite::memory:`, `postgres://…`) and applies the migrations. A
    /// SQLite file is created if missing.
    pub async fn open(url: &str) -> Result<Db, DbError> {
        let db = Db::connect(url).await?;
        db.migrate().await?;
        Ok(db)
    }

    /// As [`Self::open`] without migrating. PostgreSQL is connected lazily, so a server that is not up
    /// yet is not an error here; SQLite opens its file at once.
    pub async fn connect(url: &str) -> Result<Db, DbError> {
        let (pool, stats_pool) = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let options = PgConnectOptions::from_str(url)?;
            let pool = PgPoolOptions::new()
                .max_connections(4)
                .acquire_timeout(Duration::from_secs(3))
                .connect_lazy_with(options.clone().options([("statement_timeout", STATEMENT_TIMEOUT)]));
            let stats_timeout = format!("{}ms", STATS_TIMEOUT.as_millis());
            let stats_pool = PgPoolOptions::new()
                .max_connections(2)
                .acquire_timeout(Duration::from_secs(3))
                .connect_lazy_with(options.options([("statement_timeout", stats_timeout.as_str())]));
            (Pool::Postgres(pool), Pool::Postgres(stats_pool))
        } else if url.starts_with("sqlite:") {
            // A write-ahead log synced at checkpoints, not at every commit: a power cut may lose the last
            // rows of a log of requests, never corrupt it.
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal);
            // One connection: an in-memory database is per connection, and SQLite writes one at a time.
            // It is in-process, so there is nothing to check before each use.
            let connect = || SqlitePoolOptions::new().max_connections(1).test_before_acquire(false);
            let pool = sqlite_start_up("opening", || connect().connect_with(options.clone())).await?;
            // A second connection reads alongside the writer (the write-ahead log lets it); it is opened
            // when first used, after the writer has created the file.
            let in_memory = url.contains(":memory:") || url.contains("mode=memory");
            let stats_pool = if in_memory { pool.clone() } else { connect().connect_lazy_with(options) };
            (Pool::Sqlite(pool), Pool::Sqlite(stats_pool))
        } else {
            let scheme = url.split_once(':').map_or("", |(scheme, _)| scheme).chars().take(16).collect();
            return Err(DbError::Scheme { scheme });
        };
        Ok(Db { pool, stats_pool, migrated: Arc::new(AtomicBool::new(false)) })
    }

    pub(crate) fn pool(&self) -> &Pool {
        &self.pool
    }

    pub(super) fn stats_pool(&self) -> &Pool {
        &self.stats_pool
    }

    /// `sqlite` or `postgres`.
    pub fn kind(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => "sqlite",
            Pool::Postgres(_) => "postgres",
        }
    }

    /// Applies the migrations under `migrations/` (embedded at build time) that have not been applied.
    pub async fn migrate(&self) -> Result<(), DbError> {
        match &self.pool {
            // PostgreSQL's migrations hold an advisory lock; SQLite's hold none, so replicas starting
            // together on one file race, and the loser fails on a version the winner has just applied.
            // Each migration is a transaction: the loser's rolled back, and running again skips what is
            // applied now.
            Pool::Sqlite(pool) => sqlite_start_up("migrating", || SQLITE.run(pool)).await?,
            Pool::Postgres(pool) => POSTGRES.run(pool).await?,
        }
        self.migrated.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Whether the schema is known to be up to date.
    pub fn is_migrated(&self) -> bool {
        self.migrated.load(Ordering::Relaxed)
    }

    /// Answers when the database does.
    pub async fn ping(&self) -> Result<(), DbError> {
        match &self.pool {
            Pool::Sqlite(pool) => sqlx::query("SELECT 1").execute(pool).await.map(|_| ())?,
            Pool::Postgres(pool) => sqlx::query("SELECT 1").execute(pool).await.map(|_| ())?,
        }
        Ok(())
    }

    /// Inserts `rows` together: in statements of [`statement_rows`] each, in one transaction when they
    /// take more than one.
    pub async fn insert(&self, rows: &[RunRecord]) -> Result<(), DbError> {
        if rows.is_empty() {
            return Ok(());
        }
        macro_rules! push_rows {
            ($builder:expr, $rows:expr) => {{
                let mut b = $builder;
                b.push_values($rows, |mut v, r| {
                    v.push_bind(r.request_id.clone())
                        .push_bind(r.stream_id.clone())
                        .push_bind(r.endpoint.clone())
                        .push_bind(r.location.clone())
                        .push_bind(r.start_date.clone())
                        .push_bind(r.end_date.clone())
                        .push_bind(r.budget.clone())
                        .push_bind(r.travelers as i32)
                        .push_bind(r.language.clone())
                        .push_bind(serde_json::to_string(&r.interests).unwrap_or_default())
                        .push_bind(r.started_at_ms)
                        .push_bind(r.duration_ms)
                        .push_bind(r.first_event_ms)
                        .push_bind(r.event_count as i32)
                        .push_bind(serde_json::to_string(&r.events_by_type).unwrap_or_default())
                        .push_bind(serde_json::to_string(&r.events_by_step).unwrap_or_default())
                        .push_bind(r.has_error)
                        .push_bind(r.error_code.clone())
                        .push_bind(r.received_complete)
                        .push_bind(r.client_disconnected)
                        .push_bind(r.cache_hit)
                        .push_bind(r.coalesced)
                        .push_bind(r.provider.clone())
                        .push_bind(r.model.clone())
                        .push_bind(r.input_tokens as i64)
                        .push_bind(r.output_tokens as i64)
                        .push_bind(r.refine_iterations as i32);
                });
                b
            }};
        }
        let head = format!("INSERT INTO plan_streaming_logs ({COLUMNS}) ");
        macro_rules! insert_all {
            ($database:ty, $pool:expr) => {{
                if statement_rows(rows.len()) == rows.len() {
                    let mut b = push_rows!(QueryBuilder::<$database>::new(head.clone()), rows);
                    b.build().execute($pool).await?;
                } else {
                    let mut tx = $pool.begin().await?;
                    for chunk in statement_chunks(rows) {
                        let mut b = push_rows!(QueryBuilder::<$database>::new(head.clone()), chunk);
                        b.build().execute(&mut *tx).await?;
                    }
                    tx.commit().await?;
                }
            }};
        }
        match &self.pool {
            Pool::Sqlite(pool) => insert_all!(sqlx::Sqlite, pool),
            Pool::Postgres(pool) => insert_all!(sqlx::Postgres, pool),
        }
        Ok(())
    }

    /// Every row that started at or after `since_ms`, oldest first.
    pub async fn rows_since(&self, since_ms: i64) -> Result<Vec<RunRecord>, DbError> {
        let sql =
            format!("SELECT {COLUMNS} FROM plan_streaming_logs WHERE started_at_ms >= $1 ORDER BY started_at_ms, id");
        let sql = sqlx::AssertSqlSafe(sql);
        let rows = match &self.pool {
            Pool::Sqlite(pool) => {
                sqlx::query(sql).bind(since_ms).fetch_all(pool).await?.iter().map(record).collect::<Result<_, _>>()?
            }
            Pool::Postgres(pool) => {
                sqlx::query(sql).bind(since_ms).fetch_all(pool).await?.iter().map(record).collect::<Result<_, _>>()?
            }
        };
        Ok(rows)
    }
}

/// A row of either database as a record.
fn record<'r, R>(r: &'r R) -> Result<RunRecord, sqlx::Error>
where
    R: Row,
    usize: sqlx::ColumnIndex<R>,
    &'r str: sqlx::ColumnIndex<R>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i32: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    bool: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    fn json<T: serde::de::DeserializeOwned + Default>(s: String) -> T {
        serde_json::from_str(&s).unwrap_or_default()
    }
    Ok(RunRecord {
        request_id: r.try_get("request_id")?,
        stream_id: r.try_get("stream_id")?,
        endpoint: r.try_get("endpoint")?,
        location: r.try_get("location")?,
        start_date: r.try_get("start_date")?,
        end_date: r.try_get("end_date")?,
        budget: r.try_get("budget")?,
        travelers: r.try_get::<i32, _>("travelers")? as u32,
        language: r.try_get("language")?,
        interests: json(r.try_get("interests")?),
        started_at_ms: r.try_get("started_at_ms")?,
        duration_ms: r.try_get("duration_ms")?,
        first_event_ms: r.try_get("first_event_ms")?,
        event_count: r.try_get::<i32, _>("event_count")? as u32,
        events_by_type: json(r.try_get("events_by_type")?),
        events_by_step: json(r.try_get("events_by_step")?),
        has_error: r.try_get("has_error")?,
        error_code: r.try_get("error_code")?,
        received_complete: r.try_get("received_complete")?,
        client_disconnected: r.try_get("client_disconnected")?,
        cache_hit: r.try_get("cache_hit")?,
        coalesced: r.try_get("coalesced")?,
        provider: r.try_get("provider")?,
        model: r.try_get("model")?,
        input_tokens: r.try_get::<i64, _>("input_tokens")? as u64,
        output_tokens: r.try_get::<i64, _>("output_tokens")? as u64,
        refine_iterations: r.try_get::<i32, _>("refine_iterations")? as u32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_go_in_statements_of_a_few_sizes_largest_first() {
        let sizes = |n: usize| statement_chunks(&vec![(); n]).map(<[()]>::len).collect::<Vec<_>>();
        assert_eq!(sizes(0), Vec::<usize>::new());
        assert_eq!(sizes(1), [1]);
        assert_eq!(sizes(23), [16, 4, 2, 1]);
        assert_eq!(sizes(128), [128]);
        assert_eq!(sizes(300), [128, 128, 32, 8, 4]);
        let mut seen = std::collections::BTreeSet::new();
        for n in 0..=1_000 {
            let chunks = sizes(n);
            assert_eq!(chunks.iter().sum::<usize>(), n);
            seen.extend(chunks);
        }
        assert_eq!(seen.len(), 8, "one prepared statement per size: {seen:?}");
    }
}
