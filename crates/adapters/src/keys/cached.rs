//! Key look-ups answered from memory, so that a request does not wait on the database. Both answers are
//! kept, the key found and "no such key", for `ttl`: a key revoked in the database stops working on every
//! replica at most `ttl` later. Entries are keyed by the key's hash, never by the key, and bounded in
//! number.

use std::time::Duration;

use moka::future::Cache;
use moka::ops::compute::{CompResult, Op};
use tokio::time::Instant;

use super::{ApiKey, KeyError, KeyHash, KeyStore};

/// One answer of the store, and when it was given.
#[derive(Clone)]
struct Answer {
    key: Option<ApiKey>,
    /// On tokio's clock, so that tests can move time on (moka's own expiry runs on the real clock, and
    /// only frees memory here).
    at: Instant,
}

/// [`KeyStore::find`], cached. Cheap to clone; clones share the cache.
#[derive(Clone)]
pub struct CachedKeys {
    store: KeyStore,
    ttl: Duration,
    cache: Cache<KeyHash, Answer>,
}

impl CachedKeys {
    /// How long an answer is reused by default: the most a revocation waits to take effect everywhere.
    pub const DEFAULT_TTL: Duration = Duration::from_secs(5);
    /// Answers held by default, found and not found together.
    pub const DEFAULT_CAPACITY: u64 = 10_000;

    pub fn new(store: KeyStore, ttl: Duration, capacity: u64) -> Self {
        let cache = Cache::builder().max_capacity(capacity).time_to_live(ttl.max(Duration::from_millis(1))).build();
        CachedKeys { store, ttl, cache }
    }

    pub fn store(&self) -> &KeyStore {
        &self.store
    }

    /// As [`KeyStore::find`], from memory when the store answered within `ttl`. Concurrent look-ups of
    /// one key that is not in memory wait for one database query between them.
    pub async fn find(&self, presented: &str) -> Result<Option<ApiKey>, KeyError> {
        let Some(hash) = KeyHash::of_presented(presented) else { return Ok(None) };
        let fresh = |answer: &Answer| answer.at.elapsed() < self.ttl;
        if let Some(answer) = self.cache.get(&hash).await
            && fresh(&answer)
        {
            return Ok(answer.key);
        }
        let result = self
            .cache
            .entry(hash)
            .and_try_compute_with(|current| async move {
                match current {
                    // Another look-up of the same key answered while this one waited its turn.
                    Some(entry) if fresh(entry.value()) => Ok(Op::Nop),
                    _ => {
                        let key = self.store.find_hash(&hash).await?;
                        Ok::<_, KeyError>(Op::Put(Answer { key, at: Instant::now() }))
                    }
                }
            })
            .await?;
        Ok(match result {
            CompResult::Inserted(entry) | CompResult::ReplacedWith(entry) | CompResult::Unchanged(entry) => {
                entry.into_value().key
            }
            CompResult::Removed(_) | CompResult::StillNone(_) => None,
        })
    }
}
