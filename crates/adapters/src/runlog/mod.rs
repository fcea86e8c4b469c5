//! The run log: one row per plan request in `plan_streaming_logs`, in SQLite (the default, a file) or
//! PostgreSQL (`DATABASE_URL`). Requests never wait for it: rows go into a bounded queue, a writer task
//! inserts them in batches (what arrives within [`RunLogConfig::linger`] of the first row goes in one
//! insert), and while the database is away it keeps them (up to a bound, counting any it has to drop)
//! and retries, so an outage shorter than the buffer loses nothing. Closing flushes.

mod db;
mod stats;

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use db::{Db, DbError};
pub(crate) use db::{Pool, statement_chunks, with_pool};
pub use stats::{MAX_WINDOW, Stats, bounded_since};

/// One request, as it went.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub request_id: Option<String>,
    pub stream_id: Option<String>,
    /// `stream` or `json`.
    pub endpoint: String,
    pub location: String,
    pub start_date: String,
    pub end_date: String,
    pub budget: String,
    pub travelers: u32,
    pub language: String,
    pub interests: Vec<String>,
    pub started_at_ms: i64,
    pub duration_ms: i64,
    pub first_event_ms: Option<i64>,
    pub event_count: u32,
    pub events_by_type: std::collections::BTreeMap<String, u32>,
    pub events_by_step: std::collections::BTreeMap<String, u32>,
    pub has_error: bool,
    pub error_code: Option<String>,
    pub received_complete: bool,
    pub client_disconnected: bool,
    pub cache_hit: bool,
    pub coalesced: bool,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub refine_iterations: u32,
}

#[derive(Debug, Clone, Copy)]
pub struct RunLogConfig {
    /// Rows waiting for the writer; beyond it `record` drops and counts.
    pub queue: usize,
    /// Rows the writer holds while the database is away.
    pub buffer: usize,
    pub batch: usize,
    /// How long the writer waits for more rows before an insert that is not yet a full batch: rows
    /// arrive one per request, and one insert per request would be a database round trip each.
    pub linger: Duration,
    /// First wait before retrying a failed write; doubles up to 10 s.
    pub retry_base: Duration,
}

impl Default for RunLogConfig {
    fn default() -> Self {
        Self {
            queue: 10_000,
            buffer: 100_000,
            batch: 200,
            linger: Duration::from_millis(100),
            retry_base: Duration::from_millis(200),
        }
    }
}

/// The handle requests record through. Cheap to clone.
#[derive(Clone)]
pub struct RunLog {
    tx: mpsc::Sender<RunRecord>,
    counters: Arc<Counters>,
    closing: CancellationToken,
    writer: Arc<tokio::sync::Mutex<Option<tokio::task::JoinHandle<()>>>>,
    db: Db,
}

#[derive(Debug, Default)]
struct Counters {
    dropped: AtomicU64,
    written: AtomicU64,
    queued: AtomicU64,
}

impl RunLog {
    /// Starts the writer, on `tasks`, over a database (rows wait, buffered, while it is away or not yet
    /// migrated).
    pub fn start(db: Db, config: RunLogConfig, tasks: &TaskTracker) -> RunLog {
        let (tx, rx) = mpsc::channel(config.queue.max(1));
        let counters = Arc::new(Counters::default());
        let closing = CancellationToken::new();
        let writer = tasks.spawn(write_loop(db.clone(), rx, config, counters.clone(), closing.clone()));
        RunLog { tx, counters, closing, writer: Arc::new(tokio::sync::Mutex::new(Some(writer))), db }
    }

    /// Queues a row; never waits. A full queue drops the row and counts it.
    pub fn record(&self, row: RunRecord) {
        match self.tx.try_send(row) {
            Ok(()) => {
                self.counters.queued.fetch_add(1, Ordering::Relaxed);
                metrics::gauge!("tripstream_runlog_queue_depth").increment(1.0);
            }
            Err(_) => self.dropped(1),
        }
    }

    fn dropped(&self, n: u64) {
        self.counters.dropped.fetch_add(n, Ordering::Relaxed);
        metrics::counter!("tripstream_runlog_dropped_total").increment(n);
    }

    /// Rows dropped so far (queue or buffer full).
    pub fn dropped_rows(&self) -> u64 {
        self.counters.dropped.load(Ordering::Relaxed)
    }

    /// Rows written so far.
    pub fn written_rows(&self) -> u64 {
        self.counters.written.load(Ordering::Relaxed)
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Writes what is queued and stops the writer, waiting at most `deadline`.
    pub async fn close(&self, deadline: Duration) {
        self.closing.cancel();
        let Some(writer) = self.writer.lock().await.take() else { return };
        if tokio::time::timeout(deadline, writer).await.is_err() {
            tracing::warn!(?deadline, "run log not flushed in time; unwritten rows are lost");
        }
    }
}

async fn write_loop(
    db: Db,
    mut rx: mpsc::Receiver<RunRecord>,
    config: RunLogConfig,
    counters: Arc<Counters>,
    closing: CancellationToken,
) {
    let mut pending: VecDeque<RunRecord> = VecDeque::new();
    let mut failures = 0u32;
    let mut last_logged: Option<Instant> = None;
    let hold = |pending: &mut VecDeque<RunRecord>, row: RunRecord| {
        metrics::gauge!("tripstream_runlog_queue_depth").decrement(1.0);
        if pending.len() >= config.buffer.max(1) {
            pending.pop_front();
            counters.dropped.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("tripstream_runlog_dropped_total").increment(1);
        }
        pending.push_back(row);
    };
    loop {
        if pending.is_empty() {
            tokio::select! {
                row = rx.recv() => match row {
                    Some(row) => hold(&mut pending, row),
                    None => return,
                },
                _ = closing.cancelled() => {
                    while let Ok(row) = rx.try_recv() {
                        hold(&mut pending, row);
                    }
                    if pending.is_empty() {
                        return;
                    }
                }
            }
        }
        if !closing.is_cancelled() {
            let until = tokio::time::sleep(config.linger);
            tokio::pin!(until);
            while pending.len() < config.batch {
                tokio::select! {
                    _ = &mut until => break,
                    _ = closing.cancelled() => break,
                    row = rx.recv() => match row {
                        Some(row) => hold(&mut pending, row),
                        None => break,
                    },
                }
            }
        }
        while let Ok(row) = rx.try_recv() {
            hold(&mut pending, row);
        }
        let n = pending.len().min(config.batch.max(1));
        let batch: Vec<RunRecord> = pending.iter().take(n).cloned().collect();
        match db.insert(&batch).await {
            Ok(()) => {
                pending.drain(..n);
                counters.written.fetch_add(n as u64, Ordering::Relaxed);
                if failures > 0 {
                    tracing::info!(after_failures = failures, "run log database is back; buffered rows written");
                    failures = 0;
                }
            }
            Err(e) => {
                failures += 1;
                if last_logged.is_none_or(|at| at.elapsed() >= Duration::from_secs(30)) {
                    last_logged = Some(Instant::now());
                    tracing::warn!(error = %e, buffered = pending.len(), "run log database unavailable; keeping rows and retrying");
                }
                let wait = config.retry_base.saturating_mul(1 << failures.min(6)).min(Duration::from_secs(10));
                // Keep taking rows while waiting, so requests never block on the outage.
                let until = tokio::time::sleep(wait);
                tokio::pin!(until);
                loop {
                    tokio::select! {
                        _ = &mut until => break,
                        row = rx.recv() => match row {
                            Some(row) => hold(&mut pending, row),
                            None => break,
                        },
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(n: u32) -> RunRecord {
        RunRecord { endpoint: "stream".into(), location: format!("city {n}"), ..RunRecord::default() }
    }

    #[tokio::test]
    async fn rows_that_arrive_together_go_in_one_insert_and_closing_does_not_wait_to_gather_more() {
        let db = Db::open("sqlite::memory:").await.unwrap();
        let config = RunLogConfig { linger: Duration::from_secs(1), ..RunLogConfig::default() };
        let tasks = TaskTracker::new();
        let log = RunLog::start(db.clone(), config, &tasks);
        log.record(row(1));
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(log.written_rows(), 0, "the first row waits for company");
        log.record(row(2));
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while log.written_rows() < 2 {
            assert!(Instant::now() < deadline, "the rows were never written: {seen:?}");
            seen.push(log.written_rows());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(seen.iter().all(|&n| n == 0), "both rows in one insert, not one after the other: {seen:?}");

        log.close(Duration::from_secs(5)).await;
        assert_eq!(db.rows_since(0).await.unwrap().len(), 2);

        // Closing writes at once: with a minute's linger, a close that waited would miss its deadline.
        let config = RunLogConfig { linger: Duration::from_secs(60), ..RunLogConfig::default() };
        let log = RunLog::start(db.clone(), config, &tasks);
        log.record(row(3));
        log.close(Duration::from_secs(5)).await;
        assert_eq!(log.written_rows(), 1);
        assert_eq!(db.rows_since(0).await.unwrap().len(), 3);
    }

    #[tokio::test]
    async fn a_batch_of_several_statements_is_written_whole_or_not_at_all() {
        // 23 rows go as statements of 16, 4, 2 and 1 (see `statement_rows`), in one transaction: a row
        // the table refuses in the last statement leaves none of them written, so a retry adds no copies.
        let db = Db::open("sqlite::memory:").await.unwrap();
        let mut rows: Vec<RunRecord> = (1..=23).map(row).collect();
        db.insert(&rows).await.unwrap();
        assert_eq!(db.rows_since(0).await.unwrap().len(), 23);
        rows[22].endpoint = "refused".into();
        let Pool::Sqlite(pool) = db.pool() else { unreachable!("a SQLite URL") };
        let trigger = "CREATE TRIGGER refuse BEFORE INSERT ON plan_streaming_logs WHEN NEW.endpoint = 'refused' \
                       BEGIN SELECT RAISE(ABORT, 'refused'); END";
        sqlx::query(trigger).execute(pool).await.unwrap();
        assert!(db.insert(&rows).await.is_err());
        assert_eq!(db.rows_since(0).await.unwrap().len(), 23, "nothing of the failed batch stays");
    }
}
