//! Stream event logs shared by replicas, so that any replica can serve, resume and take over a stream
//! another one produces.
//!
//! A producing replica opens a stream's log with [`EventLog::open`], which takes the stream's lease for
//! it, and appends every event in order through the returned [`LogWriter`]. Other replicas read the log
//! from any sequence number with a [`LogReader`], and [`EventLog::claim_orphans`] finds running streams
//! whose producer stopped renewing its lease, so that one replica can run them again. Two
//! implementations: [`RedisEventLog`] (Redis Streams, across processes) and [`MemoryEventLog`] (in one
//! process: replicas in a test).

mod follow;
mod memory;
mod redis;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::future::BoxFuture;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
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
    /// The producer's fencing token, what its lease holds: a new stream's [`fence`], or the one
    /// [`EventLog::claim_orphans`] claimed it with. Unique to this producer, so that one that stalled and
    /// lost the stream never writes into it again, even when its own replica took it back meanwhile.
    pub owner: &'a str,
    /// Where the producer hears of cancellations asked for on other replicas ([`EventLog::request_cancel`]):
    /// the handle each names.
    pub cancels: mpsc::UnboundedSender<String>,
    /// Cancelled when the producer finds that another holds its lease: it must stop, and send its own
    /// listeners to the shared log.
    pub lost: CancellationToken,
}

/// A fencing token for a new producer on `replica`: the replica's name and a random part.
pub fn fence(replica: &str) -> String {
    format!("{replica}#{:016x}", fastrand::u64(..))
}

/// A stream a replica claimed to take over, and the fencing token its lease now holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub stream_id: String,
    pub fence: String,
}

/// How often a stream may be claimed before it is given up: a stream no replica manages to run (its
/// request no longer resolves, or every claimant dies) leaves the running set instead of being claimed
/// every few seconds forever.
pub const MAX_CLAIMS: u32 = 5;

/// A takeover numbers its events from here past the log's last one: more than any run ever emits, so an
/// event its predecessor delivered to its own listeners but never logged (Redis was away) never shares an
/// id with one of the takeover's.
pub const TAKEOVER_GAP: u64 = 100_000;

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

    /// Running streams whose producer stopped renewing its lease, each claimed for `replica` (its lease
    /// taken with a new fencing token) if no other replica claimed it first. Streams whose log already ends
    /// with `done`, or that were claimed [`MAX_CLAIMS`] times, are only tidied away.
    async fn claim_orphans(&self, replica: &str) -> Result<Vec<Claim>, EventLogError>;

    /// A task the log needs running for as long as the replica lives (the Redis log's one reader that
    /// follows every stream read here); the caller spawns it on its tracker, once.
    fn background(&self, _stop: CancellationToken) -> Option<Background> {
        None
    }

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

/// A reader's place in entries kept in memory in sequence order (the in-process log, or a Redis stream
/// as this replica's follower read it), whose count `grown` announces.
struct Cursor {
    /// The next entry to look at.
    index: usize,
    /// The next sequence number wanted.
    from: u64,
    grown: watch::Receiver<usize>,
}

impl Cursor {
    fn new(from: u64, grown: watch::Receiver<usize>) -> Self {
        Self { index: 0, from, grown }
    }

    /// The next entry from `from` on, `entry_at` giving the entry at an index; `None` when none arrived
    /// within `wait`.
    async fn next(&mut self, wait: Duration, entry_at: impl Fn(usize) -> Option<Entry>) -> Option<Entry> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let len = *self.grown.borrow_and_update();
            while self.index < len {
                let entry = entry_at(self.index);
                self.index += 1;
                if let Some(entry) = entry
                    && entry.seq >= self.from
                {
                    self.from = entry.seq + 1;
                    return Some(entry);
                }
            }
            match tokio::time::timeout_at(deadline, self.grown.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => return None,
            }
        }
    }
}
