//! The monitoring numbers of the run log: the original service's four (average streaming duration,
//! average event count by step, error rate, completion rate) and p50/p95 duration, cache hit rate and
//! requests by provider. Shared by `GET /api/v1/stats` and `tripstream stats`.
//!
//! Everything is aggregated in the database, by grouped queries over the `started_at_ms` index: no row
//! is brought into memory. Percentiles are nearest-rank: PostgreSQL's `percentile_disc`, and in SQLite
//! the row at that rank (`ORDER BY duration_ms LIMIT 1 OFFSET rank - 1`). The queries run on the
//! database's stats connection (see [`Db`]), never the run log writer's, under a statement timeout.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;
use sqlx::Row;

use super::db::{Db, DbError, Pool, STATS_TIMEOUT};

/// The widest window `GET /api/v1/stats` aggregates over: an older `since` is moved up to this far back
/// (the answer's `sinceMs` says from when it counted).
pub const MAX_WINDOW: Duration = Duration::from_secs(31 * 24 * 60 * 60);

/// `since_ms`, moved up to at most [`MAX_WINDOW`] before `now_ms`.
pub fn bounded_since(since_ms: i64, now_ms: i64) -> i64 {
    since_ms.max(now_ms.saturating_sub(MAX_WINDOW.as_millis() as i64))
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    pub since_ms: i64,
    pub requests: u64,
    pub streams: u64,
    /// Mean duration of streamed requests, milliseconds.
    pub avg_stream_duration_ms: Option<f64>,
    /// Per step, the mean number of events a streamed request received.
    pub avg_events_by_step: BTreeMap<String, f64>,
    /// Share of requests that ended with an `error` event or error response.
    pub error_rate: Option<f64>,
    /// Share of requests that received `complete`.
    pub completion_rate: Option<f64>,
    pub p50_duration_ms: Option<i64>,
    pub p95_duration_ms: Option<i64>,
    pub cache_hit_rate: Option<f64>,
    pub coalesced: u64,
    pub client_disconnects: u64,
    pub by_provider: BTreeMap<String, u64>,
    pub errors_by_code: BTreeMap<String, u64>,
}

const COUNTS: &str = "SELECT COUNT(*) AS requests, \
    COALESCE(SUM(CASE WHEN endpoint = 'stream' THEN 1 ELSE 0 END), 0) AS streams, \
    CAST(AVG(CASE WHEN endpoint = 'stream' THEN duration_ms END) AS DOUBLE PRECISION) AS avg_stream_ms, \
    COALESCE(SUM(CASE WHEN has_error THEN 1 ELSE 0 END), 0) AS errors, \
    COALESCE(SUM(CASE WHEN received_complete THEN 1 ELSE 0 END), 0) AS completed, \
    COALESCE(SUM(CASE WHEN cache_hit THEN 1 ELSE 0 END), 0) AS cache_hits, \
    COALESCE(SUM(CASE WHEN coalesced THEN 1 ELSE 0 END), 0) AS coalesced, \
    COALESCE(SUM(CASE WHEN client_disconnected THEN 1 ELSE 0 END), 0) AS disconnects \
    FROM plan_streaming_logs WHERE started_at_ms >= $1";

const BY_PROVIDER: &str = "SELECT COALESCE(provider, 'none') AS name, COUNT(*) AS n FROM plan_streaming_logs \
    WHERE started_at_ms >= $1 GROUP BY COALESCE(provider, 'none')";

const BY_ERROR: &str = "SELECT error_code AS name, COUNT(*) AS n FROM plan_streaming_logs \
    WHERE started_at_ms >= $1 AND error_code IS NOT NULL GROUP BY error_code";

/// Events per step summed over streams; the JSON object of each row is expanded by the dialect's own
/// function.
const EVENTS_BY_STEP_PG: &str = "SELECT j.key AS name, CAST(SUM(CAST(j.value AS BIGINT)) AS DOUBLE PRECISION) AS n \
    FROM plan_streaming_logs l CROSS JOIN LATERAL jsonb_each_text(CAST(l.events_by_step AS jsonb)) AS j(key, value) \
    WHERE l.started_at_ms >= $1 AND l.endpoint = 'stream' GROUP BY j.key";
const EVENTS_BY_STEP_SQLITE: &str = "SELECT j.key AS name, CAST(SUM(j.value) AS DOUBLE PRECISION) AS n \
    FROM plan_streaming_logs l, json_each(l.events_by_step) AS j \
    WHERE l.started_at_ms >= $1 AND l.endpoint = 'stream' GROUP BY j.key";

const PERCENTILES_PG: &str = "SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY duration_ms) AS p50, \
    percentile_disc(0.95) WITHIN GROUP (ORDER BY duration_ms) AS p95 \
    FROM plan_streaming_logs WHERE started_at_ms >= $1";
const RANKED_SQLITE: &str =
    "SELECT duration_ms FROM plan_streaming_logs WHERE started_at_ms >= $1 ORDER BY duration_ms LIMIT 1 OFFSET $2";

/// The counts of one window, as the database sums them.
struct Counts {
    requests: i64,
    streams: i64,
    avg_stream_ms: Option<f64>,
    errors: i64,
    completed: i64,
    cache_hits: i64,
    coalesced: i64,
    disconnects: i64,
}

/// The 1-based rank of percentile `p` among `n` values (nearest rank).
fn rank(p: f64, n: i64) -> i64 {
    ((p * n as f64).ceil() as i64).clamp(1, n.max(1))
}

/// The grouped queries both dialects share, run on `$conn`; `$events` and the percentiles differ.
macro_rules! shared_queries {
    ($conn:expr, $since:expr, $events:expr) => {{
        let row = sqlx::query(COUNTS).bind($since).fetch_one(&mut *$conn).await?;
        let counts = Counts {
            requests: row.try_get("requests")?,
            streams: row.try_get("streams")?,
            avg_stream_ms: row.try_get("avg_stream_ms")?,
            errors: row.try_get("errors")?,
            completed: row.try_get("completed")?,
            cache_hits: row.try_get("cache_hits")?,
            coalesced: row.try_get("coalesced")?,
            disconnects: row.try_get("disconnects")?,
        };
        let mut groups: [BTreeMap<String, u64>; 2] = Default::default();
        for (sql, into) in [BY_PROVIDER, BY_ERROR].into_iter().zip(groups.iter_mut()) {
            for row in sqlx::query(sql).bind($since).fetch_all(&mut *$conn).await? {
                into.insert(row.try_get("name")?, row.try_get::<i64, _>("n")?.max(0) as u64);
            }
        }
        let mut steps = BTreeMap::new();
        for row in sqlx::query($events).bind($since).fetch_all(&mut *$conn).await? {
            steps.insert(row.try_get::<String, _>("name")?, row.try_get::<Option<f64>, _>("n")?.unwrap_or(0.0));
        }
        let [by_provider, errors_by_code] = groups;
        (counts, by_provider, errors_by_code, steps)
    }};
}

impl Db {
    /// The numbers of every row that started at or after `since_ms`, aggregated in the database on its
    /// stats connection, within [`STATS_TIMEOUT`].
    pub async fn stats(&self, since_ms: i64) -> Result<Stats, DbError> {
        let (counts, by_provider, errors_by_code, steps, (p50, p95)) = match self.stats_pool() {
            Pool::Postgres(pool) => {
                // The pool's connections carry their own `statement_timeout`.
                let mut conn = pool.acquire().await?;
                let (counts, by_provider, errors, steps) = shared_queries!(conn, since_ms, EVENTS_BY_STEP_PG);
                let row = sqlx::query(PERCENTILES_PG).bind(since_ms).fetch_one(&mut *conn).await?;
                let percentiles = (row.try_get("p50")?, row.try_get("p95")?);
                (counts, by_provider, errors, steps, percentiles)
            }
            Pool::Sqlite(pool) => {
                let mut conn = pool.acquire().await?;
                // SQLite has no statement timeout: a progress handler interrupts whatever runs past it.
                let deadline = Instant::now() + STATS_TIMEOUT;
                conn.lock_handle().await?.set_progress_handler(10_000, move || Instant::now() < deadline);
                let result = async {
                    let (counts, by_provider, errors, steps) = shared_queries!(conn, since_ms, EVENTS_BY_STEP_SQLITE);
                    let mut percentiles = [None, None];
                    if counts.requests > 0 {
                        for (p, slot) in [0.5, 0.95].into_iter().zip(percentiles.iter_mut()) {
                            let offset = rank(p, counts.requests) - 1;
                            *slot = sqlx::query_scalar(RANKED_SQLITE)
                                .bind(since_ms)
                                .bind(offset)
                                .fetch_optional(&mut *conn)
                                .await?;
                        }
                    }
                    let [p50, p95] = percentiles;
                    Ok::<_, DbError>((counts, by_provider, errors, steps, (p50, p95)))
                }
                .await;
                conn.lock_handle().await?.remove_progress_handler();
                result?
            }
        };
        let share = |n: i64| (counts.requests > 0).then(|| n as f64 / counts.requests as f64);
        let streams = counts.streams.max(0) as u64;
        let avg_events_by_step = if streams == 0 {
            BTreeMap::new()
        } else {
            steps.into_iter().map(|(k, v)| (k, v / streams as f64)).collect()
        };
        Ok(Stats {
            since_ms,
            requests: counts.requests.max(0) as u64,
            streams,
            avg_stream_duration_ms: counts.avg_stream_ms,
            avg_events_by_step,
            error_rate: share(counts.errors),
            completion_rate: share(counts.completed),
            p50_duration_ms: p50,
            p95_duration_ms: p95,
            cache_hit_rate: share(counts.cache_hits),
            coalesced: counts.coalesced.max(0) as u64,
            client_disconnects: counts.disconnects.max(0) as u64,
            by_provider,
            errors_by_code,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runlog::RunRecord;

    fn row(endpoint: &str, duration_ms: i64, error: bool, cache_hit: bool) -> RunRecord {
        RunRecord {
            endpoint: endpoint.into(),
            started_at_ms: 1_000 + duration_ms,
            duration_ms,
            has_error: error,
            error_code: error.then(|| "llm_timeout".into()),
            received_complete: !error,
            cache_hit,
            provider: Some("offline".into()),
            events_by_step: [("generate_draft".to_owned(), 10), ("finalize_plan".to_owned(), 3)].into(),
            ..RunRecord::default()
        }
    }

    #[tokio::test]
    async fn the_numbers_of_a_known_set_of_rows_aggregated_in_sqlite() {
        let db = Db::open("sqlite::memory:").await.unwrap();
        let empty = db.stats(0).await.unwrap();
        assert_eq!((empty.requests, empty.error_rate, empty.p95_duration_ms), (0, None, None));
        assert!(empty.avg_events_by_step.is_empty() && empty.by_provider.is_empty());

        let mut rows: Vec<RunRecord> =
            (1..=20).map(|i| row(if i % 2 == 0 { "stream" } else { "json" }, i * 100, i == 20, i <= 5)).collect();
        rows[0].provider = None;
        rows[1].coalesced = true;
        db.insert(&rows).await.unwrap();
        let s = db.stats(0).await.unwrap();
        assert_eq!((s.requests, s.streams), (20, 10));
        assert_eq!(s.avg_stream_duration_ms, Some(1100.0));
        assert_eq!(s.avg_events_by_step["generate_draft"], 10.0);
        assert_eq!(s.avg_events_by_step["finalize_plan"], 3.0);
        assert_eq!((s.error_rate, s.completion_rate), (Some(0.05), Some(0.95)));
        assert_eq!((s.p50_duration_ms, s.p95_duration_ms), (Some(1000), Some(1900)));
        assert_eq!(s.cache_hit_rate, Some(0.25));
        assert_eq!((s.by_provider["offline"], s.by_provider["none"]), (19, 1));
        assert_eq!(s.errors_by_code["llm_timeout"], 1);
        assert_eq!((s.coalesced, s.client_disconnects), (1, 0));

        // `since` counts from a row's start: the first ten (started before 2,100) are left out.
        let later = db.stats(2_100).await.unwrap();
        assert_eq!((later.requests, later.p50_duration_ms, later.p95_duration_ms), (10, Some(1500), Some(2000)));
    }

    #[test]
    fn since_is_bounded_to_the_window() {
        let now = 100 * 24 * 3_600_000;
        assert_eq!(bounded_since(0, now), now - MAX_WINDOW.as_millis() as i64);
        assert_eq!(bounded_since(now - 1000, now), now - 1000);
        assert_eq!(bounded_since(i64::MIN, i64::MIN + 5), i64::MIN);
    }
}
