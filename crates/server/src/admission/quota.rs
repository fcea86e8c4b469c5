//! LLM tokens spent per key per UTC day: counted in Redis when there is one (every replica adds to one
//! count, kept two days), in process otherwise.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis::AsyncCommands;
use redis::aio::ConnectionManager;

pub struct Quotas {
    local: moka::sync::Cache<String, Arc<AtomicU64>>,
    redis: Option<(ConnectionManager, String)>,
}

/// How long a day's count is kept: past the day's end, for clocks that differ.
const KEEP: Duration = Duration::from_secs(2 * 24 * 3600);

/// Today as a number of UTC days since 1970.
fn today() -> i64 {
    jiff::Timestamp::now().as_second().div_euclid(86_400)
}

/// Until the next UTC midnight, when budgets renew.
pub fn until_next_utc_day() -> Duration {
    let now = jiff::Timestamp::now();
    let since_midnight = now.as_second().rem_euclid(86_400);
    Duration::from_secs((86_400 - since_midnight) as u64)
}

impl Quotas {
    pub fn new(redis: Option<(ConnectionManager, String)>) -> Self {
        let local = moka::sync::Cache::builder().max_capacity(100_000).time_to_live(KEEP).build();
        Self { local, redis }
    }

    fn key(&self, key_id: &str) -> String {
        format!("quota:{key_id}:{}", today())
    }

    pub async fn spent_today(&self, key_id: &str) -> u64 {
        let key = self.key(key_id);
        if let Some((connection, prefix)) = &self.redis {
            let mut c = connection.clone();
            match c.get::<_, Option<u64>>(format!("{prefix}{key}")).await {
                Ok(spent) => return spent.unwrap_or(0),
                Err(e) => tracing::warn!(error = %e, "token budgets: Redis unavailable; this replica's count serves"),
            }
        }
        self.local.get(&key).map_or(0, |n| n.load(Ordering::Relaxed))
    }

    pub async fn add(&self, key_id: &str, tokens: u64) {
        if tokens == 0 {
            return;
        }
        let key = self.key(key_id);
        // Saturating: the counts come from providers, and a wrapped count would read as a budget unspent.
        let count = self.local.get_with_by_ref(&key, || Arc::new(AtomicU64::new(0)));
        let _ = count.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| Some(n.saturating_add(tokens)));
        if let Some((connection, prefix)) = &self.redis {
            let mut c = connection.clone();
            let key = format!("{prefix}{key}");
            let mut pipe = redis::pipe();
            pipe.incr(&key, tokens).ignore().expire(&key, KEEP.as_secs() as i64).ignore();
            if let Err(e) = pipe.query_async::<()>(&mut c).await {
                tracing::warn!(error = %e, "token budgets: a generation's tokens were not counted in Redis");
            }
        }
    }
}
