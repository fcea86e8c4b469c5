//! [`EventLog`] in Redis Streams, so that any replica can serve a stream another replica produces.
//!
//! A stream's events go to `{prefix}stream:{streamId}` (entry fields `seq` and `event`, the event's
//! JSON), its record to `{prefix}stream:{streamId}:request` and its lease to `…:lease`; running streams
//! are members of `{prefix}streams:running`. Everything expires a while after the stream finishes. A
//! producer writes only while it holds the lease: the check, the renewal and the append are one script.

use std::collections::VecDeque;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use async_trait::async_trait;
use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tripstream_domain::StreamEvent;

use super::follow::Follower;
use super::{
    Background, Claim, Entry, EventLog, EventLogError, LEASE, LEASE_RENEW, LogReader, LogWriter, MAX_CLAIMS,
    OpenStream, fence,
};
use crate::http::backoff;

/// How long an unfinished stream's log is kept: long enough for any takeover, short enough that a stream
/// nobody finishes does not stay forever.
const UNFINISHED_TTL: Duration = Duration::from_secs(3600);

/// Tries to write a finished run's last unwritten entries before giving up on them.
const FINAL_ATTEMPTS: u32 = 5;

/// Renews the lease `KEYS[1]` for `ARGV[1]` for `ARGV[2]` ms and appends the entries (`ARGV[6..]`,
/// sequence number and JSON in turn) to the stream `KEYS[2]`, unless another producer holds the lease or
/// owns the stream (`KEYS[6]`, the last fencing token that took it: kept after the lease lapses, a
/// hand-over and the end, so a producer cut off from Redis while another ran the stream, even to its
/// end, never writes into it again): then `{0}`. The first call of a stream also stores its record (`ARGV[4]`, non-empty) under `KEYS[3]`
/// and adds its id (`ARGV[5]`) to the running set `KEYS[4]`; unfinished logs expire after `ARGV[3]` s.
/// Returns `{1, …}` with the handles whose cancellation other replicas asked for (the list `KEYS[5]`,
/// emptied).
static APPEND: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local owner = redis.call('GET', KEYS[6])
if owner and owner ~= ARGV[1] then return {0} end
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return {0} end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SET', KEYS[6], ARGV[1], 'EX', ARGV[3])
if ARGV[4] ~= '' then
  redis.call('SET', KEYS[3], ARGV[4], 'EX', ARGV[3])
  redis.call('SADD', KEYS[4], ARGV[5])
end
for i = 6, #ARGV, 2 do
  redis.call('XADD', KEYS[2], '*', 'seq', ARGV[i], 'event', ARGV[i + 1])
end
if #ARGV > 5 then redis.call('EXPIRE', KEYS[2], ARGV[3]) end
local cancels = redis.call('LRANGE', KEYS[5], 0, -1)
if #cancels > 0 then redis.call('DEL', KEYS[5]) end
return {1, unpack(cancels)}
",
    )
});

/// Deletes the lease `KEYS[1]` if `ARGV[1]` holds it. With `ARGV[2]` = `1` the stream is finished: its
/// log `KEYS[2]` and record `KEYS[3]` expire after `ARGV[3]` s and its id `ARGV[4]` leaves the running set
/// `KEYS[4]`, and its owner `KEYS[5]` expires with them.
static RELEASE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
if ARGV[2] == '1' then
  redis.call('EXPIRE', KEYS[2], ARGV[3])
  redis.call('EXPIRE', KEYS[3], ARGV[3])
  redis.call('SREM', KEYS[4], ARGV[4])
  redis.call('EXPIRE', KEYS[5], ARGV[3])
end
return 1
",
    )
});

#[derive(Clone)]
pub struct RedisEventLog {
    connection: ConnectionManager,
    prefix: String,
    /// How long a finished stream's log is kept.
    ttl: Duration,
    /// The one reader of every stream this replica reads.
    follower: Arc<Follower>,
}

/// Takes the lapsed lease `KEYS[1]` for the fencing token `ARGV[1]` for `ARGV[2]` ms, makes it the
/// stream's owner `KEYS[4]` and counts the claim in `KEYS[2]` (both kept `ARGV[5]` s): `1`. `0` when another replica claimed it first; `-1`, with the
/// stream `ARGV[3]` taken out of the running set `KEYS[3]`, past `ARGV[4]` claims.
static CLAIM: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local claims = redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[5])
if claims > tonumber(ARGV[4]) then
  redis.call('SREM', KEYS[3], ARGV[3])
  return -1
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SET', KEYS[4], ARGV[1], 'EX', ARGV[5])
return 1
",
    )
});

/// The keys of one stream.
#[derive(Debug, Clone)]
struct Keys {
    log: String,
    record: String,
    lease: String,
    /// The fencing token of the stream's last producer.
    owner: String,
    running: String,
    /// Handles whose cancellation other replicas asked for, until the producer takes them.
    cancels: String,
}

impl RedisEventLog {
    /// Checks the URL only; connects on first use.
    pub fn new(url: &str, prefix: impl Into<String>, ttl: Duration) -> Result<Self, EventLogError> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(2)));
        let connection = ConnectionManager::new_lazy_with_config(client.clone(), config)?;
        let follower = Arc::new(Follower::new(client, connection.clone()));
        Ok(Self { connection, prefix: prefix.into(), ttl, follower })
    }

    fn keys(&self, stream_id: &str) -> Keys {
        let log = format!("{}stream:{stream_id}", self.prefix);
        Keys {
            record: format!("{log}:request"),
            lease: format!("{log}:lease"),
            owner: format!("{log}:owner"),
            cancels: format!("{log}:cancels"),
            running: self.running_set(),
            log,
        }
    }

    fn handle_key(&self, handle_id: &str) -> String {
        format!("{}handle:{handle_id}", self.prefix)
    }

    fn running_set(&self) -> String {
        format!("{}streams:running", self.prefix)
    }
}

#[async_trait]
impl EventLog for RedisEventLog {
    fn name(&self) -> &'static str {
        "redis"
    }

    async fn ping(&self) -> Result<(), EventLogError> {
        let mut c = self.connection.clone();
        Ok(redis::cmd("PING").query_async::<()>(&mut c).await?)
    }

    fn open(&self, stream: OpenStream<'_>) -> (Box<dyn LogWriter>, Option<Background>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let writer = Writer {
            entries: rx,
            cancels: stream.cancels,
            lost: stream.lost,
            connection: self.connection.clone(),
            keys: self.keys(stream.stream_id),
            stream_id: stream.stream_id.to_owned(),
            owner: stream.owner.to_owned(),
            record: Some(stream.record.to_owned()),
            ttl: self.ttl,
            pending: VecDeque::new(),
            received_done: false,
            state: State::Writing,
        };
        (Box::new(Sender(tx)), Some(Box::pin(writer.run())))
    }

    async fn claim_orphans(&self, replica: &str) -> Result<Vec<Claim>, EventLogError> {
        let mut c = self.connection.clone();
        let running: Vec<String> = c.smembers(self.running_set()).await?;
        // Every replica scans every couple of seconds, with thousands of streams running: the leases are
        // read a few hundred to a round trip, not one by one.
        let mut orphans = Vec::new();
        for ids in running.chunks(500) {
            let keys: Vec<String> = ids.iter().map(|id| self.keys(id).lease).collect();
            let holders: Vec<Option<String>> = redis::cmd("MGET").arg(&keys).query_async(&mut c).await?;
            orphans.extend(ids.iter().zip(holders).filter(|(_, holder)| holder.is_none()).map(|(id, _)| id.clone()));
        }
        let mut claimed = Vec::new();
        for id in orphans {
            if self.last(&id).await?.is_some_and(|entry| entry.is_done()) {
                let _: () = c.srem(self.running_set(), &id).await?;
                continue;
            }
            let keys = self.keys(&id);
            let fence = fence(replica);
            let mut claim = CLAIM.prepare_invoke();
            claim.key(&keys.lease).key(format!("{}:claims", keys.log)).key(&keys.running).key(&keys.owner);
            claim.arg(&fence).arg(LEASE.as_millis() as u64).arg(&id).arg(MAX_CLAIMS).arg(UNFINISHED_TTL.as_secs());
            match claim.invoke_async::<i64>(&mut c).await? {
                1 => claimed.push(Claim { stream_id: id, fence }),
                -1 => {
                    tracing::warn!(stream_id = %id, claims = MAX_CLAIMS, "a stream nobody managed to run is given up")
                }
                _ => {}
            }
        }
        Ok(claimed)
    }

    fn background(&self, stop: CancellationToken) -> Option<Background> {
        Some(Box::pin(self.follower.clone().run(stop)))
    }

    async fn record(&self, stream_id: &str) -> Result<Option<String>, EventLogError> {
        let mut c = self.connection.clone();
        Ok(c.get(self.keys(stream_id).record).await?)
    }

    async fn last(&self, stream_id: &str) -> Result<Option<Entry>, EventLogError> {
        let mut c = self.connection.clone();
        let entries: Vec<(String, Fields)> = redis::cmd("XREVRANGE")
            .arg(self.keys(stream_id).log)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query_async(&mut c)
            .await?;
        entries.into_iter().next().map(|(_, fields)| entry(stream_id, &fields)).transpose().map(Option::flatten)
    }

    async fn put_handle(&self, handle_id: &str, record: &str) -> Result<(), EventLogError> {
        let mut c = self.connection.clone();
        let ttl = UNFINISHED_TTL.max(self.ttl).as_secs();
        Ok(c.set_ex(self.handle_key(handle_id), record, ttl).await?)
    }

    async fn handle(&self, handle_id: &str) -> Result<Option<String>, EventLogError> {
        let mut c = self.connection.clone();
        Ok(c.get(self.handle_key(handle_id)).await?)
    }

    async fn request_cancel(&self, stream_id: &str, handle_id: &str) -> Result<(), EventLogError> {
        let mut c = self.connection.clone();
        let key = self.keys(stream_id).cancels;
        let mut pipe = redis::pipe();
        pipe.rpush(&key, handle_id).ignore().expire(&key, UNFINISHED_TTL.as_secs() as i64).ignore();
        Ok(pipe.query_async(&mut c).await?)
    }

    async fn reader(&self, stream_id: &str, from: u64) -> Result<Box<dyn LogReader>, EventLogError> {
        self.follower.read(&self.keys(stream_id).log, stream_id, from).await
    }
}

/// The producer's end: entries go to the writer task in order.
struct Sender(mpsc::UnboundedSender<Entry>);

impl LogWriter for Sender {
    fn append(&mut self, entry: Entry) {
        // The writer task ends only after this sender is dropped.
        let _ = self.0.send(entry);
    }
}

/// What a stream's writer is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Holding the lease; entries are written as they arrive.
    Writing,
    /// A write failed: entries are kept and written, in order, with the ones that follow, at `retry_at`.
    Retrying { failures: u32, retry_at: Instant },
    /// Another replica holds the lease (it took the stream over): this one writes nothing more.
    Lost,
}

/// Writes one stream's entries in order while its run goes on, renewing the lease; then finishes or
/// hands the stream over.
struct Writer {
    entries: mpsc::UnboundedReceiver<Entry>,
    /// Where cancellations asked for on other replicas go.
    cancels: mpsc::UnboundedSender<String>,
    /// Told when another producer holds the lease.
    lost: CancellationToken,
    connection: ConnectionManager,
    keys: Keys,
    stream_id: String,
    owner: String,
    /// The stream's record, until a write has stored it (with the lease and the running-set entry).
    record: Option<String>,
    ttl: Duration,
    /// Received, not yet written, oldest first: sequence number and JSON.
    pending: VecDeque<(u64, String)>,
    /// `done` was received: once nothing is pending, the stream is finished.
    received_done: bool,
    state: State,
}

impl Writer {
    async fn run(mut self) {
        // The first write takes the lease; renewals are due one period after it.
        let mut renew = tokio::time::interval_at(Instant::now() + LEASE_RENEW, LEASE_RENEW);
        self.write().await;
        loop {
            let retry_at = match self.state {
                State::Retrying { retry_at, .. } => Some(retry_at),
                State::Writing | State::Lost => None,
            };
            let retry = async {
                match retry_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                entry = self.entries.recv() => match entry {
                    Some(entry) => {
                        self.hold(entry);
                        if self.state != State::Writing {
                            continue;
                        }
                    }
                    None => break,
                },
                () = retry => {}
                _ = renew.tick(), if self.state == State::Writing => {}
            }
            while let Ok(more) = self.entries.try_recv() {
                self.hold(more);
            }
            self.write().await;
        }
        self.finish().await;
    }

    fn hold(&mut self, entry: Entry) {
        if self.state == State::Lost {
            return;
        }
        self.received_done |= entry.is_done();
        match serde_json::to_string(&*entry.event) {
            Ok(json) => self.pending.push_back((entry.seq, json)),
            Err(e) => {
                tracing::error!(stream_id = %self.stream_id, error = %e, "an event does not serialize; not logged")
            }
        }
    }

    /// One attempt to write what is pending (or, with nothing pending, to renew the lease), and the
    /// state it leaves.
    async fn write(&mut self) {
        let mut append = APPEND.prepare_invoke();
        let keys = &self.keys;
        append.key(&keys.lease).key(&keys.log).key(&keys.record).key(&keys.running).key(&keys.cancels).key(&keys.owner);
        append.arg(&self.owner).arg(LEASE.as_millis() as u64).arg(UNFINISHED_TTL.max(self.ttl).as_secs());
        append.arg(self.record.as_deref().unwrap_or("")).arg(&self.stream_id);
        for (seq, json) in &self.pending {
            append.arg(*seq).arg(json);
        }
        let result: Result<Vec<String>, _> = append.invoke_async(&mut self.connection).await;
        match result {
            Ok(reply) if reply.first().is_some_and(|held| held == "1") => {
                for handle in reply.into_iter().skip(1) {
                    let _ = self.cancels.send(handle);
                }
                if let State::Retrying { failures, .. } = self.state {
                    tracing::info!(stream_id = %self.stream_id, failures, "event log writes resumed; the entries kept meanwhile are written");
                }
                self.pending.clear();
                self.record = None;
                self.state = State::Writing;
            }
            Ok(_) => {
                tracing::warn!(stream_id = %self.stream_id, "another producer took this stream over; this one stops writing its log");
                self.pending.clear();
                self.state = State::Lost;
                self.lost.cancel();
            }
            Err(e) => {
                let failures = match self.state {
                    State::Retrying { failures, .. } => failures + 1,
                    _ => {
                        tracing::warn!(stream_id = %self.stream_id, error = %e, "event log write failed; keeping the entries and retrying");
                        1
                    }
                };
                let wait = backoff(failures - 1, Duration::from_millis(100), Duration::from_secs(2));
                self.state = State::Retrying { failures, retry_at: Instant::now() + wait };
            }
        }
    }

    /// The run has ended: a last few tries for what is left, then the lease is released. After `done`
    /// the stream is finished and its log set to expire; otherwise (a hand-over as this replica shuts
    /// down) it stays running, for another replica to take over at once.
    async fn finish(mut self) {
        for attempt in 0..FINAL_ATTEMPTS {
            if self.state == State::Lost || (self.pending.is_empty() && self.record.is_none()) {
                break;
            }
            if attempt > 0 {
                tokio::time::sleep(backoff(attempt, Duration::from_millis(100), Duration::from_secs(2))).await;
            }
            self.write().await;
        }
        if self.state == State::Lost {
            return;
        }
        if !self.pending.is_empty() {
            tracing::warn!(stream_id = %self.stream_id, lost = self.pending.len(), "event log unreachable; other replicas cannot resume this stream's end");
        }
        let finished = self.received_done && self.pending.is_empty();
        let mut release = RELEASE.prepare_invoke();
        let keys = &self.keys;
        release.key(&keys.lease).key(&keys.log).key(&keys.record).key(&keys.running).key(&keys.owner);
        release.arg(&self.owner).arg(u8::from(finished)).arg(self.ttl.as_secs().max(1)).arg(&self.stream_id);
        if let Err(e) = release.invoke_async::<i64>(&mut self.connection).await {
            tracing::warn!(stream_id = %self.stream_id, finished, error = %e, "event log: releasing the stream failed; its lease lapses by itself");
        }
    }
}

/// An entry's flat field list.
pub(super) type Fields = Vec<String>;

/// `seq` and `event` out of an entry's flat field list; `None` for an entry without them.
pub(super) fn entry(stream_id: &str, fields: &[String]) -> Result<Option<Entry>, EventLogError> {
    let field = |name: &str| fields.chunks(2).find(|kv| kv[0] == name).and_then(|kv| kv.get(1));
    let (Some(seq), Some(json)) = (field("seq").and_then(|s| s.parse().ok()), field("event")) else {
        return Ok(None);
    };
    let event: StreamEvent = serde_json::from_str(json)
        .map_err(|source| EventLogError::Corrupt { stream_id: stream_id.to_owned(), source })?;
    Ok(Some(Entry { seq, event: Arc::new(event) }))
}
