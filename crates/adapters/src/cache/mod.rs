//! The plan cache: finished plans by a hash of what determines them. In-process (moka) by default, Redis
//! when `REDIS_URL` is set. Stores report their failures; [`Resilient`] makes sure a failing store never
//! fails a request.

mod memory;
mod redis_store;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use tripstream_domain::{Plan, PlanRequest};
use tripstream_engine::GeneratorInfo;

pub use memory::MemoryCache;
pub use redis_store::RedisCache;

/// Bumped when the cached plan's shape changes, so an old entry is never read as a new plan.
const KEY_VERSION: &str = "v1";

/// What makes two requests the same plan: the normalized request and who would write it. A new model or
/// prompt version is a new key, so a changed prompt never serves an old plan.
pub fn plan_key(request: &PlanRequest, generator: &GeneratorInfo) -> String {
    /// The canonical form: the JSON object keys were first made from, its fields in the same order, without
    /// building a map for it (a key is made for every request).
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Canonical<'a> {
        location: String,
        start: String,
        end: String,
        budget: &'a str,
        travelers: u32,
        language: &'a str,
        // Already lower-cased, deduplicated and sorted by the request parser.
        interests: &'a [String],
        provider: &'a str,
        model: &'a str,
        prompt_version: &'a str,
    }
    let canonical = Canonical {
        location: request.location.as_str().trim().to_lowercase(),
        start: request.dates.start().to_string(),
        end: request.dates.end().to_string(),
        budget: request.budget.as_str(),
        travelers: request.travelers,
        language: request.language.as_str(),
        interests: &request.interests,
        provider: &generator.provider,
        model: &generator.model,
        prompt_version: &generator.prompt_version,
    };
    let json = serde_json::to_vec(&canonical).expect("strings and numbers serialize");
    let digest = Sha256::digest(&json);
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut key = String::with_capacity(8 + 64);
    key.push_str("plan:");
    key.push_str(KEY_VERSION);
    key.push(':');
    for byte in digest {
        key.push(char::from(HEX[usize::from(byte >> 4)]));
        key.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    key
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{store}: {message}")]
pub struct CacheError {
    pub store: &'static str,
    pub message: String,
}

/// A place to keep finished plans.
#[async_trait]
pub trait PlanStore: Send + Sync {
    /// `memory` or `redis`, for logs and `/health`.
    fn name(&self) -> &'static str;
    async fn get(&self, key: &str) -> Result<Option<Plan>, CacheError>;
    async fn put(&self, key: &str, plan: &Plan) -> Result<(), CacheError>;
}

/// A store whose failures are logged (at most once per interval) and counted, and otherwise treated as
/// a miss: a cache is an optimisation, never a reason to fail.
pub struct Resilient {
    store: Arc<dyn PlanStore>,
    log_every: Duration,
    last_logged: std::sync::Mutex<Option<Instant>>,
    errors: AtomicU64,
}

impl Resilient {
    pub fn new(store: Arc<dyn PlanStore>) -> Self {
        Self { store, log_every: Duration::from_secs(30), last_logged: Default::default(), errors: AtomicU64::new(0) }
    }

    pub fn name(&self) -> &'static str {
        self.store.name()
    }

    /// Failures so far.
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    pub async fn get(&self, key: &str) -> Option<Plan> {
        self.store.get(key).await.unwrap_or_else(|e| {
            self.failed(&e);
            None
        })
    }

    pub async fn put(&self, key: &str, plan: &Plan) {
        if let Err(e) = self.store.put(key, plan).await {
            self.failed(&e);
        }
    }

    fn failed(&self, e: &CacheError) {
        let n = self.errors.fetch_add(1, Ordering::Relaxed) + 1;
        metrics::counter!("tripstream_cache_errors_total", "store" => e.store).increment(1);
        let mut last = self.last_logged.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_none_or(|at| at.elapsed() >= self.log_every) {
            *last = Some(Instant::now());
            tracing::warn!(error = %e, failures = n, "plan cache unavailable; serving without it");
        }
    }
}

#[cfg(test)]
mod tests {
    use tripstream_domain::request::{RawPlanRequest, RequestLimits};

    use super::*;

    fn request(location: &str, interests: &[&str]) -> PlanRequest {
        let raw = RawPlanRequest {
            location: Some(location.into()),
            start_date: Some("2025-11-10".into()),
            end_date: Some("2025-11-12".into()),
            budget: Some("medium".into()),
            interests: Some(interests.iter().map(|s| (*s).to_owned()).collect()),
            ..RawPlanRequest::default()
        };
        PlanRequest::parse(raw, None, RequestLimits::default()).unwrap()
    }

    fn info(prompt: &str) -> GeneratorInfo {
        GeneratorInfo { provider: "gemini".into(), model: "m".into(), prompt_version: prompt.into() }
    }

    #[test]
    fn the_key_ignores_spelling_and_order_but_not_what_changes_the_plan() {
        let a = plan_key(&request("Seoul", &["food", "art"]), &info("plan-v1"));
        assert!(a.starts_with("plan:v1:") && a.len() == "plan:v1:".len() + 64);
        assert_eq!(a, plan_key(&request("  seoul ", &["Art", "food"]), &info("plan-v1")));
        assert_ne!(a, plan_key(&request("Seoul", &["food"]), &info("plan-v1")));
        assert_ne!(a, plan_key(&request("Seoul", &["food", "art"]), &info("plan-v2")));
        assert_ne!(a, plan_key(&request("Busan", &["food", "art"]), &info("plan-v1")));
    }

    /// The keys as they were first made (a JSON map printed, hashed, hex by `format!`): a cache written
    /// by an earlier build is read by this one.
    fn first_key(request: &PlanRequest, generator: &GeneratorInfo) -> String {
        let canonical = serde_json::json!({
            "location": request.location.as_str().trim().to_lowercase(),
            "start": request.dates.start().to_string(),
            "end": request.dates.end().to_string(),
            "budget": request.budget.as_str(),
            "travelers": request.travelers,
            "language": request.language.as_str(),
            "interests": request.interests,
            "provider": generator.provider,
            "model": generator.model,
            "promptVersion": generator.prompt_version,
        });
        let digest = Sha256::digest(canonical.to_string().as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        format!("plan:{KEY_VERSION}:{hex}")
    }

    #[test]
    fn keys_are_the_ones_earlier_builds_made() {
        let seoul = plan_key(&request("Seoul", &["food", "art"]), &info("plan-v1"));
        assert_eq!(seoul, "plan:v1:d446e4ede2fb7cbcb04b02abedf5c44a2bbd587cf3e65f9469565e9e1fcf3270");
        let odd = GeneratorInfo {
            provider: "openai".into(),
            model: "qwen \"2.5\" 7b/instruct".into(),
            prompt_version: "p".into(),
        };
        for (place, interests, generator) in [
            ("Seoul", &["food", "art"][..], info("plan-v1")),
            ("  교토 ", &["온천", "맛집"][..], info("plan-v2")),
            ("Saint-Émilion", &[][..], odd),
        ] {
            let request = request(place, interests);
            assert_eq!(plan_key(&request, &generator), first_key(&request, &generator), "{place}");
        }
    }
}
