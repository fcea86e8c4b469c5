//! Where finished plans, the run log, saved plans and shared streams are kept.

use super::defaults as d;
use super::values::{Millis, SecretUrl, Secs};

#[derive(Debug, Clone, clap::Args)]
pub struct StoreSettings {
    /// Redis for the plan cache and the streams shared by replicas; in-process when unset.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<SecretUrl>,
    /// Prefix of every Redis key, so several deployments (or tests) can share one Redis.
    #[arg(long, env = "REDIS_KEY_PREFIX", default_value = d::REDIS_KEY_PREFIX)]
    pub redis_key_prefix: String,
    /// Milliseconds a Redis command may take before the request goes on without the cache.
    #[arg(long, env = "REDIS_TIMEOUT_MS", default_value_t = d::REDIS_TIMEOUT)]
    pub redis_timeout_ms: Millis,
    /// How long a finished plan is served from the cache; 0 turns caching off.
    #[arg(long, env = "CACHE_TTL_SECS", default_value_t = d::CACHE_TTL)]
    pub cache_ttl_secs: Secs,
    /// Plans the in-process cache holds.
    #[arg(long, env = "CACHE_CAPACITY", default_value_t = d::CACHE_CAPACITY)]
    pub cache_capacity: u64,
    /// The run log: `sqlite://tripstream.db` (created on first start), `sqlite::memory:`, or `postgres://…`.
    #[arg(long, env = "DATABASE_URL", default_value = d::DATABASE_URL, hide_env_values = true)]
    pub database_url: SecretUrl,
    /// Rows the run log keeps while its database is unreachable; beyond it the oldest are dropped and counted.
    #[arg(long, env = "RUNLOG_BUFFER", default_value_t = d::RUNLOG_BUFFER)]
    pub runlog_buffer: usize,
    /// Days a saved plan is kept after its latest version; 0 keeps plans for good.
    #[arg(long, env = "PLAN_RETENTION_DAYS", default_value_t = d::PLAN_RETENTION_DAYS)]
    pub plan_retention_days: u32,
}

impl StoreSettings {
    /// The configured Redis, if any (an empty `REDIS_URL` is none).
    pub fn redis(&self) -> Option<&str> {
        self.redis_url.as_ref().map(SecretUrl::expose).filter(|u| !u.is_empty())
    }
}

impl Default for StoreSettings {
    /// The command line's defaults: no Redis, the run log in a SQLite file.
    fn default() -> Self {
        Self {
            redis_url: None,
            redis_key_prefix: d::REDIS_KEY_PREFIX.into(),
            redis_timeout_ms: d::REDIS_TIMEOUT,
            cache_ttl_secs: d::CACHE_TTL,
            cache_capacity: d::CACHE_CAPACITY,
            database_url: SecretUrl::new(d::DATABASE_URL),
            runlog_buffer: d::RUNLOG_BUFFER,
            plan_retention_days: d::PLAN_RETENTION_DAYS,
        }
    }
}
