//! The Redis plan cache: plans as JSON under `{prefix}plan:v1:<sha256>` with a TTL, shared by every
//! replica. The connection is made lazily and remade by itself after Redis comes back; every command is
//! bounded by a short timeout, so a slow or absent Redis costs a request at most that long.

use std::time::Duration;

use async_trait::async_trait;
use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tripstream_domain::Plan;

use super::{CacheError, PlanStore};

pub struct RedisCache {
    connection: ConnectionManager,
    prefix: String,
    ttl: Duration,
    timeout: Duration,
}

impl RedisCache {
    /// Checks the URL only; nothing is connected until the first command.
    pub fn new(url: &str, prefix: impl Into<String>, ttl: Duration, timeout: Duration) -> Result<Self, CacheError> {
        let err = |e: redis::RedisError| CacheError { store: "redis", message: e.to_string() };
        let client = redis::Client::open(url).map_err(err)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        let connection = ConnectionManager::new_lazy_with_config(client, config).map_err(err)?;
        Ok(Self { connection, prefix: prefix.into(), ttl, timeout })
    }

    async fn bounded<T>(&self, op: impl Future<Output = redis::RedisResult<T>>) -> Result<T, CacheError> {
        match tokio::time::timeout(self.timeout, op).await {
            Ok(result) => result.map_err(|e| CacheError { store: "redis", message: e.to_string() }),
            Err(_) => Err(CacheError { store: "redis", message: format!("no answer within {:?}", self.timeout) }),
        }
    }
}

#[async_trait]
impl PlanStore for RedisCache {
    fn name(&self) -> &'static str {
        "redis"
    }

    async fn get(&self, key: &str) -> Result<Option<Plan>, CacheError> {
        let mut c = self.connection.clone();
        let key = format!("{}{key}", self.prefix);
        let raw: Option<String> = self.bounded(c.get(&key)).await?;
        match raw.map(|json| serde_json::from_str::<Plan>(&json)) {
            Some(Ok(plan)) => Ok(Some(plan)),
            // An entry this version cannot read is a miss; the next generation overwrites it.
            Some(Err(e)) => {
                tracing::warn!(%key, error = %e, "unreadable cached plan ignored");
                Ok(None)
            }
            None => Ok(None),
        }
    }

    async fn put(&self, key: &str, plan: &Plan) -> Result<(), CacheError> {
        let mut c = self.connection.clone();
        let json = serde_json::to_string(plan).map_err(|e| CacheError { store: "redis", message: e.to_string() })?;
        let key = format!("{}{key}", self.prefix);
        self.bounded(c.set_ex::<_, _, ()>(&key, json, self.ttl.as_secs().max(1))).await
    }
}
