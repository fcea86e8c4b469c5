//! The in-process plan cache: bounded, with a time to live. The default, and what a single replica needs.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use moka::future::Cache;
use tripstream_domain::Plan;

use super::{CacheError, PlanStore};

pub struct MemoryCache {
    plans: Cache<String, Arc<Plan>>,
}

impl MemoryCache {
    pub fn new(capacity: u64, ttl: Duration) -> Self {
        Self { plans: Cache::builder().max_capacity(capacity).time_to_live(ttl).build() }
    }
}

#[async_trait]
impl PlanStore for MemoryCache {
    fn name(&self) -> &'static str {
        "memory"
    }

    async fn get(&self, key: &str) -> Result<Option<Plan>, CacheError> {
        Ok(self.plans.get(key).await.map(|p| (*p).clone()))
    }

    async fn put(&self, key: &str, plan: &Plan) -> Result<(), CacheError> {
        self.plans.insert(key.to_owned(), Arc::new(plan.clone())).await;
        Ok(())
    }
}
