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

    /// A writer for one stream: entries sent to it are appended in order by a background task, which
    /// sets the expiry once the sender is dropped (the run finished).
    pub fn writer(&self, stream_id: &str, request_json: String) -> mpsc::UnboundedSender<Entry> {
        let (tx, mut rx) = mpsc::unbounded_channel::<Entry>();
        let (key, log) = (self.key(stream_id), self.clone());
        tokio::spawn(async move {
            let mut c = log.connection.clone();
            let ttl = log.ttl.as_secs().max(1) as i64;
            let request_key = format!("{key}:request");
            // Unfinished streams keep a generous expiry, in case this replica dies without finishing.
            let _: Result<(), _> = c.set_ex(&request_key, request_json, (ttl as u64).max(3600)).await;
            let mut failed = false;
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                while let Ok(more) = rx.try_recv() {
                    batch.push(more);
                }
                let mut pipe = redis::pipe();
                for (seq, json) in &batch {
                    pipe.cmd("XADD").arg(&key).arg("*").arg("seq").arg(*seq).arg("event").arg(json).ignore();
                }
                pipe.cmd("EXPIRE").arg(&key).arg(3600).ignore();
                if let Err(e) = pipe.query_async::<()>(&mut c).await
                    && !failed
                {
                    failed = true;
                    tracing::warn!(%key, error = %e, "event log write failed; other replicas cannot resume this stream");
                }
            }
            let mut pipe = redis::pipe();
            pipe.cmd("EXPIRE").arg(&key).arg(ttl).ignore();
            pipe.cmd("EXPIRE").arg(&request_key).arg(ttl).ignore();
            let _: Result<(), _> = pipe.query_async(&mut c).await;
        });
        tx
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
        // Blocking reads need a connection of their own.
        let connection = self.client.get_multiplexed_async_connection().await?;
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

impl LogReader {
    /// The next entry at or after the starting sequence number, waiting up to `wait` for one; `Ok(None)`
    /// when none arrived in that time.
    pub async fn next(&mut self, wait: Duration) -> Result<Option<Entry>, EventLogError> {
        loop {
            if !self.buffered.is_empty() {
                return Ok(Some(self.buffered.remove(0)));
            }
            let reply: Option<Vec<(String, Vec<(String, Fields)>)>> = redis::cmd("XREAD")
                .arg("COUNT")
                .arg(500)
                .arg("BLOCK")
                .arg(wait.as_millis() as u64)
                .arg("STREAMS")
                .arg(&self.key)
                .arg(&self.last_id)
                .query_async(&mut self.connection)
                .await?;
            let Some(streams) = reply else { return Ok(None) };
            for (_, entries) in streams {
                for (id, fields) in entries {
                    self.last_id = id;
                    if let Some((seq, event)) = entry(&fields)
                        && seq >= self.from
                    {
                        self.buffered.push((seq, event));
                    }
                }
            }
        }
    }
}

/// `seq` and `event` out of an entry's flat field list.
fn entry(fields: &[String]) -> Option<Entry> {
    let field = |name: &str| fields.chunks(2).find(|kv| kv[0] == name).and_then(|kv| kv.get(1).cloned());
    Some((field("seq")?.parse().ok()?, field("event")?))
}
