//! [`EventLog`] in this process's memory: the same leases, hand-overs and takeovers as the Redis log,
//! for replicas that share a process (tests run two applications against one).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{
    Background, Claim, Cursor, Entry, EventLog, EventLogError, LEASE, LEASE_RENEW, LogReader, LogWriter, MAX_CLAIMS,
    OpenStream, fence,
};

#[derive(Default)]
pub struct MemoryEventLog {
    streams: Mutex<HashMap<String, Arc<Stream>>>,
    handles: Mutex<HashMap<String, String>>,
    /// How long a finished stream's log is kept.
    retention: Duration,
}

/// One stream's log.
struct Stream {
    record: String,
    state: Mutex<StreamState>,
    /// The number of entries, for readers waiting for more.
    grown: watch::Sender<usize>,
}

#[derive(Default)]
struct StreamState {
    entries: Vec<Entry>,
    lease: Option<Lease>,
    /// The producer's ear for cancellations asked for elsewhere.
    cancels: Option<tokio::sync::mpsc::UnboundedSender<String>>,
    /// How often it was claimed.
    claims: u32,
    /// Among the running streams: not finished.
    running: bool,
    finished_at: Option<Instant>,
}

struct Lease {
    owner: String,
    expires: Instant,
}

impl StreamState {
    fn held_by(&self, owner: &str, now: Instant) -> bool {
        self.lease.as_ref().is_some_and(|l| l.owner == owner && l.expires > now)
    }

    fn free(&self, now: Instant) -> bool {
        self.lease.as_ref().is_none_or(|l| l.expires <= now)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl MemoryEventLog {
    pub fn new(retention: Duration) -> Self {
        Self { streams: Mutex::default(), handles: Mutex::default(), retention }
    }

    fn stream(&self, stream_id: &str) -> Option<Arc<Stream>> {
        let now = Instant::now();
        let mut streams = lock(&self.streams);
        streams.retain(|_, s| lock(&s.state).finished_at.is_none_or(|at| at + self.retention > now));
        streams.get(stream_id).cloned()
    }
}

#[async_trait]
impl EventLog for MemoryEventLog {
    fn name(&self) -> &'static str {
        "memory"
    }

    async fn ping(&self) -> Result<(), EventLogError> {
        Ok(())
    }

    fn open(&self, open: OpenStream<'_>) -> (Box<dyn LogWriter>, Option<Background>) {
        let stream = self.stream(open.stream_id).unwrap_or_else(|| {
            let stream = Arc::new(Stream {
                record: open.record.to_owned(),
                state: Mutex::default(),
                grown: watch::channel(0).0,
            });
            lock(&self.streams).insert(open.stream_id.to_owned(), stream.clone());
            stream
        });
        {
            let mut state = lock(&stream.state);
            let now = Instant::now();
            if state.free(now) || state.held_by(open.owner, now) {
                state.lease = Some(Lease { owner: open.owner.to_owned(), expires: now + LEASE });
                state.running = true;
                state.cancels = Some(open.cancels.clone());
            }
        }
        let alive = Arc::new(());
        let renewal = renew(Arc::downgrade(&alive), stream.clone(), open.owner.to_owned(), open.lost.clone());
        let writer = Writer { stream, owner: open.owner.to_owned(), done: false, lost: open.lost, _alive: alive };
        (Box::new(writer), Some(Box::pin(renewal)))
    }

    async fn claim_orphans(&self, replica: &str) -> Result<Vec<Claim>, EventLogError> {
        let now = Instant::now();
        let candidates: Vec<(String, Arc<Stream>)> =
            lock(&self.streams).iter().map(|(id, s)| (id.clone(), s.clone())).collect();
        let mut claimed = Vec::new();
        for (id, stream) in candidates {
            let mut state = lock(&stream.state);
            if !state.running || !state.free(now) {
                continue;
            }
            state.claims += 1;
            if state.entries.last().is_some_and(Entry::is_done) || state.claims > MAX_CLAIMS {
                state.running = false;
                continue;
            }
            let claim = Claim { stream_id: id, fence: fence(replica) };
            state.lease = Some(Lease { owner: claim.fence.clone(), expires: now + LEASE });
            claimed.push(claim);
        }
        Ok(claimed)
    }

    async fn record(&self, stream_id: &str) -> Result<Option<String>, EventLogError> {
        Ok(self.stream(stream_id).map(|s| s.record.clone()))
    }

    async fn last(&self, stream_id: &str) -> Result<Option<Entry>, EventLogError> {
        Ok(self.stream(stream_id).and_then(|s| lock(&s.state).entries.last().cloned()))
    }

    async fn put_handle(&self, handle_id: &str, record: &str) -> Result<(), EventLogError> {
        lock(&self.handles).insert(handle_id.to_owned(), record.to_owned());
        Ok(())
    }

    async fn handle(&self, handle_id: &str) -> Result<Option<String>, EventLogError> {
        Ok(lock(&self.handles).get(handle_id).cloned())
    }

    async fn request_cancel(&self, stream_id: &str, handle_id: &str) -> Result<(), EventLogError> {
        if let Some(stream) = self.stream(stream_id)
            && let Some(cancels) = &lock(&stream.state).cancels
        {
            let _ = cancels.send(handle_id.to_owned());
        }
        Ok(())
    }

    async fn reader(&self, stream_id: &str, from: u64) -> Result<Box<dyn LogReader>, EventLogError> {
        let stream = self.stream(stream_id).unwrap_or_else(|| {
            // Reading a log that does not exist (yet) waits for nothing, like an empty Redis stream.
            Arc::new(Stream { record: String::new(), state: Mutex::default(), grown: watch::channel(0).0 })
        });
        let grown = stream.grown.subscribe();
        Ok(Box::new(Reader { stream, cursor: Cursor::new(from, grown) }))
    }
}

/// Renews the writer's lease while it is alive and holds it; says so when it lost it.
async fn renew(alive: Weak<()>, stream: Arc<Stream>, owner: String, lost: CancellationToken) {
    loop {
        tokio::time::sleep(LEASE_RENEW).await;
        if alive.upgrade().is_none() {
            return;
        }
        let mut state = lock(&stream.state);
        let now = Instant::now();
        if !state.held_by(&owner, now) {
            lost.cancel();
            return;
        }
        state.lease = Some(Lease { owner: owner.clone(), expires: now + LEASE });
    }
}

struct Writer {
    stream: Arc<Stream>,
    owner: String,
    done: bool,
    lost: CancellationToken,
    /// The renewal task stops when this is dropped.
    _alive: Arc<()>,
}

impl LogWriter for Writer {
    fn append(&mut self, entry: Entry) {
        let mut state = lock(&self.stream.state);
        if !state.held_by(&self.owner, Instant::now()) {
            // Another producer took the stream over: this one writes nothing more.
            self.lost.cancel();
            return;
        }
        self.done |= entry.is_done();
        state.entries.push(entry);
        let len = state.entries.len();
        drop(state);
        self.stream.grown.send_replace(len);
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        let mut state = lock(&self.stream.state);
        if !state.held_by(&self.owner, Instant::now()) {
            return;
        }
        state.lease = None;
        if self.done {
            state.running = false;
            state.finished_at = Some(Instant::now());
        }
    }
}

struct Reader {
    stream: Arc<Stream>,
    cursor: Cursor,
}

#[async_trait]
impl LogReader for Reader {
    async fn next(&mut self, wait: Duration) -> Result<Option<Entry>, EventLogError> {
        let stream = &self.stream;
        Ok(self.cursor.next(wait, |i| lock(&stream.state).entries.get(i).cloned()).await)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tripstream_domain::StreamEvent;

    use super::*;

    fn entry(seq: u64, event: StreamEvent) -> Entry {
        Entry { seq, event: Arc::new(event) }
    }

    fn open<'a>(id: &'a str, owner: &'a str) -> OpenStream<'a> {
        let cancels = tokio::sync::mpsc::unbounded_channel().0;
        OpenStream { stream_id: id, record: "{}", owner, cancels, lost: CancellationToken::new() }
    }

    fn claimed(claims: Vec<Claim>) -> Vec<String> {
        claims.into_iter().map(|c| c.stream_id).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn a_hand_over_is_claimed_at_once_and_a_dead_producer_after_its_lease() {
        let log = MemoryEventLog::new(Duration::from_secs(60));
        let tasks = tokio_util::task::TaskTracker::new();
        let (mut a, renewal) = log.open(open("s1", "a"));
        let renewal = tasks.spawn(renewal.unwrap());
        a.append(entry(0, StreamEvent::Done));
        let mut reader = log.reader("s1", 0).await.unwrap();
        assert!(reader.next(Duration::from_secs(1)).await.unwrap().unwrap().is_done());
        assert!(log.claim_orphans("b").await.unwrap().is_empty(), "held, and renewed");
        tokio::time::sleep(LEASE * 3).await;
        assert!(log.claim_orphans("b").await.unwrap().is_empty(), "still held: the producer renews");
        drop(a);
        renewal.await.unwrap();
        assert!(log.claim_orphans("b").await.unwrap().is_empty(), "finished with done: nothing to claim");

        // Handed over (dropped without `done`): claimable at once, and by one replica only.
        let (handed, _) = log.open(open("s2", "a"));
        drop(handed);
        let claim = log.claim_orphans("b").await.unwrap().remove(0);
        assert_eq!(claim.stream_id, "s2");
        assert!(log.claim_orphans("c").await.unwrap().is_empty(), "claimed once");
        // The claimant takes it over with its claim's fence (and renews it from then on).
        let (_taken, renewal) = log.open(open("s2", &claim.fence));
        tasks.spawn(renewal.unwrap());

        // A producer that stops renewing (it died) loses its stream after the lease.
        let (dead, renewal) = log.open(open("s3", "a"));
        drop(renewal);
        std::mem::forget(dead);
        assert!(log.claim_orphans("b").await.unwrap().is_empty());
        tokio::time::sleep(LEASE + Duration::from_millis(1)).await;
        assert_eq!(claimed(log.claim_orphans("b").await.unwrap()), ["s3"]);
        // Claimed again and again without anyone running it: given up after MAX_CLAIMS.
        for _ in 1..MAX_CLAIMS {
            tokio::time::sleep(LEASE + Duration::from_millis(1)).await;
            assert_eq!(claimed(log.claim_orphans("b").await.unwrap()), ["s3"]);
        }
        tokio::time::sleep(LEASE + Duration::from_millis(1)).await;
        assert!(log.claim_orphans("b").await.unwrap().is_empty(), "given up");
    }

    #[tokio::test(start_paused = true)]
    async fn a_producer_that_lost_its_lease_writes_nothing_more() {
        let log = MemoryEventLog::new(Duration::from_secs(60));
        let stale_open = open("s", "a#1");
        let lost = stale_open.lost.clone();
        let (mut stale, _) = log.open(stale_open);
        tokio::time::sleep(LEASE + Duration::from_millis(1)).await;
        // Its own replica claims it back: a new fence, so the stale producer is still shut out.
        let claim = log.claim_orphans("a").await.unwrap().remove(0);
        let (mut taker, _) = log.open(open("s", &claim.fence));
        stale.append(entry(0, StreamEvent::Done));
        assert!(lost.is_cancelled(), "the stale producer is told it lost the stream");
        taker.append(entry(0, StreamEvent::Done));
        let mut reader = log.reader("s", 0).await.unwrap();
        assert!(reader.next(Duration::ZERO).await.unwrap().is_some());
        assert!(reader.next(Duration::from_millis(10)).await.unwrap().is_none(), "one entry: the taker's");
    }
}
