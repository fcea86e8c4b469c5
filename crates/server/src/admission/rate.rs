//! Request rates per caller, by GCRA (the generic cell rate algorithm): each caller has a theoretical
//! arrival time that every admitted request pushes one emission interval further; a request is refused
//! while that time is more than the burst tolerance ahead of now, and told how long until it would not be.
//! In process the state is a bounded cache (a flood of addresses cannot grow it without limit); with Redis
//! the same algorithm runs in one script against Redis's clock, so every replica counts one rate. A Redis
//! that fails is skipped for a while: the replica counts on its own meanwhile.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use redis::aio::ConnectionManager;
use tokio::time::Instant;

/// A rate: `per_minute` requests a minute, `burst` of them at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub per_minute: u32,
    pub burst: u32,
}

impl Rate {
    /// The time between two requests at the rate.
    fn interval(self) -> Duration {
        Duration::from_secs(60) / self.per_minute.max(1)
    }

    /// How far ahead of now the arrival time may run: a burst's worth of intervals.
    fn tolerance(self) -> Duration {
        self.interval() * self.burst.max(1).saturating_sub(1)
    }
}

/// How many callers' states the process keeps (the least recently seen are forgotten first).
const CAPACITY: u64 = 100_000;
/// After a Redis failure, how long the replica counts on its own before trying Redis again.
const REDIS_BACKOFF: Duration = Duration::from_secs(5);

pub struct RateLimiter {
    local: moka::sync::Cache<String, Arc<Mutex<Instant>>>,
    redis: Option<Shared>,
}

struct Shared {
    connection: ConnectionManager,
    prefix: String,
    /// Until when Redis is skipped after a failure, in ms since the limiter started.
    skip_until_ms: AtomicU64,
    started: Instant,
}

/// Applies GCRA to `KEYS[1]` with interval `ARGV[1]` µs and tolerance `ARGV[2]` µs, on Redis's clock:
/// `{1, 0}` when admitted, `{0, µs to wait}` when not.
static GCRA: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local interval, tolerance = tonumber(ARGV[1]), tonumber(ARGV[2])
if tat - now > tolerance then return {0, tat - now - tolerance} end
local new = tat + interval
redis.call('SET', KEYS[1], string.format('%.0f', new), 'PX', math.ceil((new - now) / 1000) + 1000)
return {1, 0}
",
    )
});

impl RateLimiter {
    pub fn new(redis: Option<(ConnectionManager, String)>) -> Self {
        let local = moka::sync::Cache::builder().max_capacity(CAPACITY).time_to_idle(Duration::from_secs(3600)).build();
        let redis = redis.map(|(connection, prefix)| Shared {
            connection,
            prefix,
            skip_until_ms: AtomicU64::new(0),
            started: Instant::now(),
        });
        Self { local, redis }
    }

    /// Admits a request of `who` at `rate`, or says how long until one would be admitted.
    pub async fn check(&self, who: &str, rate: Rate) -> Result<(), Duration> {
        if let Some(shared) = &self.redis
            && let Some(answer) = shared.check(who, rate).await
        {
            return answer;
        }
        self.check_local(who, rate)
    }

    fn check_local(&self, who: &str, rate: Rate) -> Result<(), Duration> {
        let now = Instant::now();
        let state = self.local.get_with_by_ref(who, || Arc::new(Mutex::new(now)));
        let mut tat = state.lock().unwrap_or_else(|p| p.into_inner());
        let start = (*tat).max(now);
        let ahead = start - now;
        if ahead > rate.tolerance() {
            return Err(ahead - rate.tolerance());
        }
        *tat = start + rate.interval();
        Ok(())
    }
}

impl Shared {
    /// Redis's answer, or `None` when Redis cannot be asked now.
    async fn check(&self, who: &str, rate: Rate) -> Option<Result<(), Duration>> {
        let elapsed_ms = self.started.elapsed().as_millis() as u64;
        if elapsed_ms < self.skip_until_ms.load(Ordering::Relaxed) {
            return None;
        }
        let mut connection = self.connection.clone();
        let mut gcra = GCRA.prepare_invoke();
        gcra.key(format!("{}rate:{who}", self.prefix));
        gcra.arg(rate.interval().as_micros() as u64).arg(rate.tolerance().as_micros() as u64);
        let answer = tokio::time::timeout(Duration::from_millis(250), gcra.invoke_async::<(i64, i64)>(&mut connection));
        match answer.await {
            Ok(Ok((1, _))) => Some(Ok(())),
            Ok(Ok((_, wait_us))) => Some(Err(Duration::from_micros(wait_us.max(0) as u64))),
            Ok(Err(e)) => {
                self.skip(elapsed_ms, &e.to_string());
                None
            }
            Err(_) => {
                self.skip(elapsed_ms, "timed out");
                None
            }
        }
    }

    fn skip(&self, elapsed_ms: u64, why: &str) {
        self.skip_until_ms.store(elapsed_ms + REDIS_BACKOFF.as_millis() as u64, Ordering::Relaxed);
        tracing::warn!(error = why, "rate limits: Redis unavailable; counting on this replica for a while");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_burst_is_admitted_then_the_rate_and_the_wait_is_told() {
        let limiter = RateLimiter::new(None);
        let rate = Rate { per_minute: 60, burst: 5 };
        for i in 0..5 {
            assert_eq!(limiter.check("ip:1", rate).await, Ok(()), "request {i} of the burst");
        }
        let wait = limiter.check("ip:1", rate).await.unwrap_err();
        assert_eq!(wait, Duration::from_secs(1), "one interval until the next");
        assert_eq!(limiter.check("ip:2", rate).await, Ok(()), "another caller has a rate of its own");
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(limiter.check("ip:1", rate).await, Ok(()));
        assert!(limiter.check("ip:1", rate).await.is_err());
        // Idle for a while: the whole burst again, never more.
        tokio::time::advance(Duration::from_secs(600)).await;
        for _ in 0..5 {
            assert_eq!(limiter.check("ip:1", rate).await, Ok(()));
        }
        assert!(limiter.check("ip:1", rate).await.is_err());
    }
}
