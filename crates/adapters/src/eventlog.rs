//! Stream event logs in Redis Streams, so that any replica can serve a stream another replica produces.
//!
//! The producing replica mirrors each event of a run, in order, to `{prefix}stream:{streamId}` (entry fields
//! `seq` and `event`, the event's JSON), with the request under `{prefix}stream:{streamId}:request`; both
//! expire a while after the stream finishes. A replica that does not hold the run reads the log from any
//! sequence number and then follows it with blocking reads until `done`.

use std::time::Duration;

use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::mpsc;

use crate::http::backoff;

/// How long a producer's claim on a stream lasts without renewal: a replica that dies is noticed within it.
pub const LEASE: Duration = Duration::from_secs(6);
/// How often a live producer renews its claim.
pub const LEASE_RENEW: Duration = Duration::from_secs(2);

/// The longest single blocking read.
const READ_BLOCK: Duration = Duration::from_secs(5);

/// Appends entries (`ARGV[3..]`, sequence number and JSON in turn) to the stream `KEYS[2]` and renews the
/// lease `KEYS[1]` for `ARGV[1]`, for `ARGV[2]` ms, unless another replica holds the lease: then 0.
const APPEND_SCRIPT: &str = r"
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
for i = 3, #ARGV, 2 do
  redis.call('XADD', KEYS[2], '*', 'seq', ARGV[i], 'event', ARGV[i + 1])
end
if #ARGV > 2 then redis.call('EXPIRE', KEYS[2], 3600) end
return 1
";

/// Deletes the lease `KEYS[1]` if `ARGV[1]` holds it.
const RELEASE_SCRIPT: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

/// Tries to write a finished run's last unwritten entries before giving up on them.
const FINAL_ATTEMPTS: u32 = 5;

/// One logged event: its sequence number and JSON.
pub type Entry = (usize, String);

#[derive(Clone)]
pub struct RedisEventLog {
    client: redis::Client,
    connection: ConnectionManager,
    prefix: String,
    /// How long a finished stream's log is kept.
    ttl: Duration,
}

#[derive(Debug, thiserror::Error)]
#[error("event log: {0}")]
pub struct EventLogError(String);

impl From<redis::RedisError> for EventLogError {
    fn from(e: redis::RedisError) -> Self {
        EventLogError(e.to_string())
    }
}

impl RedisEventLog {
    /// Checks the URL only; connects on first use.
    pub fn new(url: &str, prefix: impl Into<String>, ttl: Duration) -> Result<Self, EventLogError> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(2)));
        let connection = ConnectionManager::new_lazy_with_config(client.clone(), config)?;
        Ok(Self { client, connection, prefix: prefix.into(), ttl })
    }

    fn key(&self, stream_id: &str) -> String {
        format!("{}stream:{stream_id}", self.prefix)
    }

    fn running_set(&self) -> String {
        format!("{}streams:running", self.prefix)
    }

    fn lease_key(&self, stream_id: &str) -> String {
        format!("{}:lease", self.key(stream_id))
    }

    /// A writer for one stream: entries sent to it are appended in order by a background task, which
    /// holds the stream's lease (renewed every [`LEASE_RENEW`]) while the run goes on. When Redis cannot
    /// be written, the entries are kept and written again, after a backoff, with the ones that follow
    /// (in order: a reader sees no gap, and skips the duplicates a retry may leave). When the sender is
    /// dropped it writes what is left and releases the lease; if `done` was written the stream is
    /// finished and its log set to expire, otherwise it stays running for another replica to take
    /// over. `owner` names this replica.
    pub fn writer(&self, stream_id: &str, request_json: String, owner: &str) -> mpsc::UnboundedSender<Entry> {
        let (tx, mut rx) = mpsc::unbounded_channel::<Entry>();
        let (key, log, id, owner) = (self.key(stream_id), self.clone(), stream_id.to_owned(), owner.to_owned());
        tokio::spawn(async move {
            let mut c = log.connection.clone();
            let ttl = log.ttl.as_secs().max(1) as i64;
            let request_key = format!("{key}:request");
            let lease = log.lease_key(&id);
            let lease_ms = LEASE.as_millis() as u64;
            // Unfinished streams keep a generous expiry, in case this replica dies without finishing.
            let mut pipe = redis::pipe();
            pipe.cmd("SET").arg(&request_key).arg(&request_json).arg("EX").arg(ttl.max(3600)).ignore();
            pipe.cmd("SET").arg(&lease).arg(&owner).arg("PX").arg(lease_ms).ignore();
            pipe.cmd("SADD").arg(log.running_set()).arg(&id).ignore();
            let _: Result<(), _> = pipe.query_async(&mut c).await;
            // Appends (and renews the lease) only while this replica holds the stream: one that lost
            // its lease (it stalled, and another replica took the stream over) must not write into it.
            let append = |entries: &[Entry]| {
                let mut eval = redis::cmd("EVAL");
                eval.arg(APPEND_SCRIPT).arg(2).arg(&lease).arg(&key).arg(&owner).arg(lease_ms);
                for (seq, json) in entries {
                    eval.arg(*seq).arg(json);
                }
                eval
            };
            let mut unwritten: Vec<Entry> = Vec::new();
            // Entries are written in order, a whole batch at a time: the stream is finished once `done`
            // has been received and nothing is left unwritten.
            let mut received_done = false;
            // Another replica took the stream over: this one stops writing to it.
            let mut lost = false;
            let lose = || tracing::warn!(%key, "another replica took this stream over; this one stops writing its log");
            let mut failures = 0u32;
            // While failing, the next attempt waits for this; new entries only queue.
            let mut retry_at: Option<tokio::time::Instant> = None;
            // The lease was just taken; the first renewal is due one period from now.
            let mut renew = tokio::time::interval_at(tokio::time::Instant::now() + LEASE_RENEW, LEASE_RENEW);
            loop {
                let retry = async {
                    match retry_at {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    entry = rx.recv() => match entry {
                        Some(_) if lost => continue,
                        Some(entry) => {
                            hold(&mut unwritten, &mut received_done, entry);
                            if retry_at.is_some() {
                                continue;
                            }
                        }
                        None => break,
                    },
                    () = retry => {}
                    _ = renew.tick(), if !lost => {
                        if let Ok(0) = append(&[]).query_async::<i64>(&mut c).await {
                            lost = true;
                            lose();
                        }
                        continue;
                    }
                }
                while let Ok(more) = rx.try_recv() {
                    hold(&mut unwritten, &mut received_done, more);
                }
                match append(&unwritten).query_async::<i64>(&mut c).await {
                    Ok(0) => {
                        lost = true;
                        lose();
                        unwritten.clear();
                        retry_at = None;
                    }
                    Ok(_) => {
                        unwritten.clear();
                        if failures > 0 {
                            tracing::info!(%key, failures, "event log writes resumed; the entries kept meanwhile are written");
                        }
                        failures = 0;
                        retry_at = None;
                    }
                    Err(e) => {
                        if failures == 0 {
                            tracing::warn!(%key, error = %e, "event log write failed; keeping the entries and retrying");
                        }
                        failures += 1;
                        let wait = backoff(failures - 1, Duration::from_millis(100), Duration::from_secs(2));
                        retry_at = Some(tokio::time::Instant::now() + wait);
                    }
                }
            }
            // The run has ended: a last few tries for what is left.
            for attempt in 0..FINAL_ATTEMPTS {
                if unwritten.is_empty() {
                    break;
                }
                if attempt > 0 {
                    tokio::time::sleep(backoff(attempt, Duration::from_millis(100), Duration::from_secs(2))).await;
                }
                match append(&unwritten).query_async::<i64>(&mut c).await {
                    Ok(0) => {
                        lose();
                        return;
                    }
                    Ok(_) => unwritten.clear(),
                    Err(_) => {}
                }
            }
            if lost {
                return;
            }
            if !unwritten.is_empty() {
                tracing::warn!(%key, lost = unwritten.len(), "event log unreachable; other replicas cannot resume this stream's end");
            }
            let mut pipe = redis::pipe();
            pipe.cmd("EVAL").arg(RELEASE_SCRIPT).arg(1).arg(&lease).arg(&owner).ignore();
            if received_done && unwritten.is_empty() {
                pipe.cmd("EXPIRE").arg(&key).arg(ttl).ignore();
                pipe.cmd("EXPIRE").arg(&request_key).arg(ttl).ignore();
                pipe.cmd("SREM").arg(log.running_set()).arg(&id).ignore();
            }
            // Unfinished (this replica is handing the stream over as it shuts down): releasing the lease
            // and leaving the stream among the running ones lets another replica take it over at once.
            let _: Result<(), _> = pipe.query_async(&mut c).await;
        });
        tx
    }

    /// Streams still running whose producer stopped renewing its lease (it died), each claimed for
    /// `owner` if no other replica claimed it first. A stream whose log already ends with `done` is
    /// only tidied away.
    pub async fn claim_orphans(&self, owner: &str) -> Result<Vec<String>, EventLogError> {
        let mut c = self.connection.clone();
        let running: Vec<String> = c.smembers(self.running_set()).await?;
        // Every replica scans every couple of seconds, with thousands of streams running: the leases are
        // read a few hundred to a round trip, not one by one.
        let mut orphans = Vec::new();
        for ids in running.chunks(500) {
            let keys: Vec<String> = ids.iter().map(|id| self.lease_key(id)).collect();
            let holders: Vec<Option<String>> = redis::cmd("MGET").arg(&keys).query_async(&mut c).await?;
            orphans.extend(ids.iter().zip(holders).filter(|(_, holder)| holder.is_none()).map(|(id, _)| id.clone()));
        }
        let mut claimed = Vec::new();
        for id in orphans {
            if self.last(&id).await?.is_some_and(|(_, event)| event.contains(r#""type":"done""#)) {
                let _: () = c.srem(self.running_set(), &id).await?;
                continue;
            }
            let won: Option<String> = redis::cmd("SET")
                .arg(self.lease_key(&id))
                .arg(owner)
                .arg("NX")
                .arg("PX")
                .arg(LEASE.as_millis() as u64)
                .query_async(&mut c)
                .await?;
            if won.is_some() {
                claimed.push(id);
            }
        }
        Ok(claimed)
    }

    /// The request a stream was started for, if the log exists.
    pub async fn request(&self, stream_id: &str) -> Result<Option<String>, EventLogError> {
        let mut c = self.connection.clone();
        Ok(c.get(format!("{}:request", self.key(stream_id))).await?)
    }

    /// The last entry logged for `stream_id`.
    pub async fn last(&self, stream_id: &str) -> Result<Option<Entry>, EventLogError> {
        let mut c = self.connection.clone();
        let entries: Vec<(String, Fields)> = redis::cmd("XREVRANGE")
            .arg(self.key(stream_id))
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query_async(&mut c)
            .await?;
        Ok(entries.into_iter().next().and_then(|(_, fields)| entry(&fields)))
    }

    /// A reader of `stream_id` from sequence number `from`.
    pub async fn reader(&self, stream_id: &str, from: usize) -> Result<LogReader, EventLogError> {
        // Blocking reads need a connection of their own, without the default half-second reply limit
        // (each read is bounded by its own BLOCK time, plus this margin).
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(READ_BLOCK + Duration::from_secs(5)));
        let connection = self.client.get_multiplexed_async_connection_with_config(&config).await?;
        Ok(LogReader { connection, key: self.key(stream_id), from, last_id: "0-0".into(), buffered: Vec::new() })
    }
}

/// Reads one stream's log in order, waiting for new entries.
pub struct LogReader {
    connection: redis::aio::MultiplexedConnection,
    key: String,
    from: usize,
    last_id: String,
    buffered: Vec<Entry>,
}

type Fields = Vec<String>;
/// XREAD's reply: per stream, its key and its entries (id, flat field list).
type ReadReply = Option<Vec<(String, Vec<(String, Fields)>)>>;

impl LogReader {
    /// The next entry at or after the starting sequence number, waiting up to `wait` for one; `Ok(None)`
    /// when none arrived in that time.
    pub async fn next(&mut self, wait: Duration) -> Result<Option<Entry>, EventLogError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if !self.buffered.is_empty() {
                return Ok(Some(self.buffered.remove(0)));
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            let reply: ReadReply = redis::cmd("XREAD")
                .arg("COUNT")
                .arg(500)
                .arg("BLOCK")
                .arg(left.min(READ_BLOCK).as_millis().max(1) as u64)
                .arg("STREAMS")
                .arg(&self.key)
                .arg(&self.last_id)
                .query_async(&mut self.connection)
                .await?;
            let Some(streams) = reply else { continue };
            for (_, entries) in streams {
                for (id, fields) in entries {
                    self.last_id = id;
                    // In order, once each: a writer's retry can leave a duplicate behind.
                    if let Some((seq, event)) = entry(&fields)
                        && seq >= self.from
                    {
                        self.from = seq + 1;
                        self.buffered.push((seq, event));
                    }
                }
            }
        }
    }
}

/// Queues an entry for writing, noting whether it is the stream's `done`.
fn hold(unwritten: &mut Vec<Entry>, received_done: &mut bool, entry: Entry) {
    *received_done |= entry.1.contains(r#""type":"done""#);
    unwritten.push(entry);
}

/// `seq` and `event` out of an entry's flat field list.
fn entry(fields: &[String]) -> Option<Entry> {
    let field = |name: &str| fields.chunks(2).find(|kv| kv[0] == name).and_then(|kv| kv.get(1).cloned());
    Some((field("seq")?.parse().ok()?, field("event")?))
}
