//! One reader per replica for every stream it reads from Redis: a task follows all of them with one
//! blocking `XREAD` over one connection, and every resume of a stream on this replica reads the same
//! entries in memory. (A connection per resume would reach Redis's `maxclients` at a few thousand.)
//! A stream is caught up with one `XRANGE` when first read, then followed until nobody reads it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, MultiplexedConnection};
use tokio::sync::{Notify, OnceCell, watch};
use tokio_util::sync::CancellationToken;

use super::redis::{Fields, entry};
use super::{Cursor, Entry, EventLogError, LogReader};
use crate::http::backoff;

/// The longest single blocking read; a stream first read meanwhile joins the next one.
const BLOCK: Duration = Duration::from_millis(250);
/// Entries one read takes per stream at most.
const COUNT: usize = 500;

pub struct Follower {
    client: redis::Client,
    /// For catching a stream up (not the blocking reads).
    connection: ConnectionManager,
    followed: Mutex<HashMap<String, Arc<Followed>>>,
    /// A stream was first read: the follower includes it.
    wake: Notify,
}

/// One stream as this replica has read it.
struct Followed {
    stream_id: String,
    /// Caught up once, by the first reader.
    ready: OnceCell<()>,
    state: Mutex<State>,
    /// The number of entries, for readers waiting for more.
    grown: watch::Sender<usize>,
    readers: AtomicUsize,
}

#[derive(Default)]
struct State {
    /// In order, each sequence number once.
    entries: Vec<Entry>,
    /// The id of the last Redis entry read: where the next read starts.
    last_id: String,
    done: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Followed {
    /// Takes a read's entries: in order, once each (a writer's retry can leave a duplicate behind).
    fn take(&self, read: Vec<(String, Fields)>) -> Result<(), EventLogError> {
        let mut state = lock(&self.state);
        for (id, fields) in read {
            state.last_id = id;
            let Some(entry) = entry(&self.stream_id, &fields)? else { continue };
            if state.entries.last().is_some_and(|last| entry.seq <= last.seq) {
                continue;
            }
            state.done |= entry.is_done();
            state.entries.push(entry);
        }
        let len = state.entries.len();
        drop(state);
        self.grown.send_replace(len);
        Ok(())
    }
}

impl Follower {
    pub fn new(client: redis::Client, connection: ConnectionManager) -> Self {
        Self { client, connection, followed: Mutex::default(), wake: Notify::new() }
    }

    /// A reader of the stream at `key` from sequence number `from`.
    pub async fn read(&self, key: &str, stream_id: &str, from: u64) -> Result<Box<dyn LogReader>, EventLogError> {
        let followed = {
            let mut all = lock(&self.followed);
            let followed = all.entry(key.to_owned()).or_insert_with(|| {
                Arc::new(Followed {
                    stream_id: stream_id.to_owned(),
                    ready: OnceCell::new(),
                    state: Mutex::new(State { last_id: "0-0".into(), ..State::default() }),
                    grown: watch::channel(0).0,
                    readers: AtomicUsize::new(0),
                })
            });
            // Counted under the lock: the follower forgets streams nobody reads, and must not forget this one.
            followed.readers.fetch_add(1, Ordering::SeqCst);
            followed.clone()
        };
        let reader = Reader { cursor: Cursor::new(from, followed.grown.subscribe()), followed };
        reader.followed.ready.get_or_try_init(|| self.catch_up(key, &reader.followed)).await?;
        self.wake.notify_one();
        Ok(Box::new(reader))
    }

    async fn catch_up(&self, key: &str, followed: &Followed) -> Result<(), EventLogError> {
        let mut c = self.connection.clone();
        let read: Vec<(String, Fields)> = redis::cmd("XRANGE").arg(key).arg("-").arg("+").query_async(&mut c).await?;
        followed.take(read)
    }

    /// Follows every stream being read until `stop`: one blocking read over all of them at a time.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        let mut connection: Option<MultiplexedConnection> = None;
        let mut failures = 0u32;
        loop {
            let streams = self.streams();
            if streams.is_empty() {
                tokio::select! {
                    () = self.wake.notified() => continue,
                    () = stop.cancelled() => return,
                }
            }
            let read = async {
                let c = match &mut connection {
                    Some(c) => c,
                    None => connection.insert(self.connect().await?),
                };
                let mut xread = redis::cmd("XREAD");
                xread.arg("COUNT").arg(COUNT).arg("BLOCK").arg(BLOCK.as_millis() as u64).arg("STREAMS");
                for (key, _) in &streams {
                    xread.arg(key);
                }
                for (_, followed) in &streams {
                    xread.arg(lock(&followed.state).last_id.clone());
                }
                xread.query_async::<ReadReply>(c).await.map_err(EventLogError::from)
            };
            let reply = tokio::select! {
                reply = read => reply,
                () = stop.cancelled() => return,
            };
            let result = reply.and_then(|reply| {
                for (key, read) in reply.unwrap_or_default() {
                    if let Some((_, followed)) = streams.iter().find(|(k, _)| *k == key) {
                        followed.take(read)?;
                    }
                }
                Ok(())
            });
            match result {
                Ok(()) => failures = 0,
                Err(e) => {
                    if failures == 0 {
                        tracing::warn!(error = %e, "following shared streams failed; retrying");
                    }
                    failures += 1;
                    connection = None;
                    let wait = backoff(failures, Duration::from_millis(100), Duration::from_secs(2));
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        () = stop.cancelled() => return,
                    }
                }
            }
        }
    }

    /// The streams to follow now; those nobody reads any more are forgotten.
    fn streams(&self) -> Vec<(String, Arc<Followed>)> {
        let mut followed = lock(&self.followed);
        followed.retain(|_, f| f.readers.load(Ordering::SeqCst) > 0);
        followed
            .iter()
            .filter(|(_, f)| f.ready.initialized() && !lock(&f.state).done)
            .map(|(k, f)| (k.clone(), f.clone()))
            .collect()
    }

    async fn connect(&self) -> Result<MultiplexedConnection, EventLogError> {
        // Blocking reads need a connection of their own, without the default reply limit.
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(BLOCK + Duration::from_secs(5)));
        Ok(self.client.get_multiplexed_async_connection_with_config(&config).await?)
    }
}

/// XREAD's reply: per stream, its key and its entries (id, flat field list).
type ReadReply = Option<Vec<(String, Vec<(String, Fields)>)>>;

/// One resume's place in a followed stream.
struct Reader {
    followed: Arc<Followed>,
    cursor: Cursor,
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.followed.readers.fetch_sub(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl LogReader for Reader {
    async fn next(&mut self, wait: Duration) -> Result<Option<Entry>, EventLogError> {
        let followed = &self.followed;
        Ok(self.cursor.next(wait, |i| lock(&followed.state).entries.get(i).cloned()).await)
    }
}
