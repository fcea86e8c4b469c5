//! Stream event logs shared by replicas, so that any replica can serve, resume and take over a stream
//! another one produces.
//!
//! A producing replica opens a stream's log with [`EventLog::open`], which takes the stream's lease for
//! it, and appends every event in order through the returned [`LogWriter`]. Other replicas read the log
//! from any sequence number with a [`LogReader`], and [`EventLog::claim_orphans`] finds running streams
//! whose producer stopped renewing its lease, so that one replica can run them again. Two
//! implementations: [`RedisEventLog`] (Redis Streams, across processes) and [`MemoryEventLog`] (in one
//! process: replicas in a test).

mod memory;
mod redis;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::future::BoxFuture;
use tokio::sync::mpsc;
use tripstream_domain::StreamEvent;

pub use self::memory::MemoryEventLog;
pub use self::redis::RedisEventLog;

/// How long a producer's claim on a stream lasts without renewal: a replica that dies is noticed within it.
pub const LEASE: Duration = Duration::from_secs(6);
/// How often a live producer renews its claim, and how often replicas look for orphans.
pub const LEASE_RENEW: Duration = Duration::from_secs(2);

/// One logged event and its sequence number (the SSE `id:`).
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub seq: u64,
    pub event: Arc<StreamEvent>,
}

impl Entry {
    /// The stream's last event: nothing follows it.
    pub fn is_done(&self) -> bool {
        matches!(*self.event, StreamEvent::Done)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EventLogError {
    #[error("event log: Redis")]
    Redis(#[from] ::redis::RedisError),
    #[error("event log: an entry of stream {stream_id} is not an event")]
    Corrupt {
        stream_id: String,
        #[source]
        source: serde_json::Error,
    },
}

/// A stream being opened: who produces it and what it was asked for.
#[derive(Debug, Clone)]
pub struct OpenStream<'a> {
    pub stream_id: &'a str,
    /// What the log keeps for replicas that resume or take over the stream: the server's record of the
    /// request (JSON). The log does not read it.
    pub record: &'a str,
    /// The producing replica's name in the lease.
    pub owner: &'a str,
    /// Where the producer hears of cancellations asked for on other replicas ([`EventLog::request_cancel`]):
    /// the handle each names.
    pub cancels: mpsc::UnboundedSender<String>,
}

/// A log that writes in the background gives its task to the caller, which runs it on its task tracker.
pub type Background = BoxFuture<'static, ()>;

#[async_trait]
pub trait EventLog: Send + Sync {
    /// `redis` or `memory`, for `/health` and logs.
    fn name(&self) -> &'static str;

    /// Answers when the log can be reached (readiness).
    async fn ping(&self) -> Result<(), EventLogError>;

    /// Opens a stream's log for `stream.owner`, taking its lease and listing it among the running
    /// streams. Entries appended to the writer are written in order; dropping the writer ends the
    /// stream's production here: after `done` the stream is finished (its log expires after the
    /// retention period), otherwise its lease is released and it stays running, for another replica to
    /// take over at once (a hand-over).
    fn open(&self, stream: OpenStream<'_>) -> (Box<dyn LogWriter>, Option<Background>);

    /// Running streams whose producer stopped renewing its lease, each claimed for `owner` (its lease
    /// taken) if no other replica claimed it first. Streams whose log already ends with `done` are only
    /// tidied away.
    async fn claim_orphans(&self, owner: &str) -> Result<Vec<String>, EventLogError>;

    /// The record a stream was opened with, if its log exists.
    async fn record(&self, stream_id: &str) -> Result<Option<String>, EventLogError>;

    /// The last entry logged for a stream.
    async fn last(&self, stream_id: &str) -> Result<Option<Entry>, EventLogError>;

    /// A reader of a stream's log from sequence number `from`.
    async fn reader(&self, stream_id: &str, from: u64) -> Result<Box<dyn LogReader>, EventLogError>;

    /// Keeps a caller's handle on a stream (the server's record, JSON), so any replica can authorize a
    /// resume or a cancel by it; replaced when written again.
    async fn put_handle(&self, handle_id: &str, record: &str) -> Result<(), EventLogError>;

    /// A handle's record, if it exists.
    async fn handle(&self, handle_id: &str) -> Result<Option<String>, EventLogError>;

    /// Asks the stream's producer, wherever it runs, to cancel the caller's handle `handle_id`; it hears
    /// of it through its [`OpenStream::cancels`] within a lease renewal period.
    async fn request_cancel(&self, stream_id: &str, handle_id: &str) -> Result<(), EventLogError>;
}

/// Where a producer appends a stream's events, in sequence order.
pub trait LogWriter: Send {
    fn append(&mut self, entry: Entry);
}

/// Reads one stream's log in order, each sequence number once, waiting for new entries.
#[async_trait]
pub trait LogReader: Send {
    /// The next entry, waiting up to `wait` for one; `Ok(None)` when none arrived in that time.
    async fn next(&mut self, wait: Duration) -> Result<Option<Entry>, EventLogError>;
}
