//! Admission: what a replica takes on, decided before any stream opens. Each caller has a request rate
//! (anonymous callers by address, key holders by key, a key's own rate where it names one) and a rate of
//! look-ups of places beyond the bundled data; each key may have a daily budget of LLM tokens; and the
//! replica runs at most so many generations at once, with a short, bounded wait for a place. What is
//! refused is `429 rate_limited` / `429 quota_exceeded` / `503 overloaded`, each with `Retry-After`.
//! Cached replays and joins of a generation in flight take no place.

mod quota;
mod rate;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use redis::aio::ConnectionManager;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tripstream_domain::ErrorCode;

use self::quota::Quotas;
pub use self::rate::Rate;
use self::rate::RateLimiter;
use crate::auth::Caller;

#[derive(Debug, Clone, Copy)]
pub struct AdmissionSettings {
    pub anonymous: Rate,
    /// For a key that names no rate of its own.
    pub key: Rate,
    pub lookups: Rate,
    pub max_generations: usize,
    /// How long a new generation waits for a place.
    pub wait: Duration,
    /// How many may wait at once.
    pub queue: usize,
}

/// Why a request was not admitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: ErrorCode,
    pub retry_after: Duration,
    pub message: String,
}

pub struct Admission {
    settings: AdmissionSettings,
    rates: RateLimiter,
    quotas: Quotas,
    generations: Arc<Semaphore>,
    waiting: AtomicUsize,
}

impl Admission {
    pub fn new(settings: AdmissionSettings, redis: Option<(ConnectionManager, String)>) -> Admission {
        Admission {
            settings,
            rates: RateLimiter::new(redis.clone()),
            quotas: Quotas::new(redis),
            generations: Arc::new(Semaphore::new(settings.max_generations.max(1))),
            waiting: AtomicUsize::new(0),
        }
    }

    /// A plan request of `caller`, at their rate.
    pub async fn request(&self, caller: &Caller) -> Result<(), Refusal> {
        let rate = match &caller.key {
            Some(key) => {
                Rate { per_minute: key.rate_per_minute.unwrap_or(self.settings.key.per_minute), ..self.settings.key }
            }
            None => self.settings.anonymous,
        };
        self.rates.check(&caller.scope(), rate).await.map_err(|wait| {
            refused(ErrorCode::RateLimited, wait, "too many requests; try again after the time in Retry-After")
        })
    }

    /// A look-up of a place beyond the bundled data (a geocoder's quota) for `caller`.
    pub async fn lookup(&self, caller: &Caller) -> Result<(), Refusal> {
        let who = format!("lookup:{}", caller.scope());
        self.rates.check(&who, self.settings.lookups).await.map_err(|wait| {
            refused(ErrorCode::RateLimited, wait, "too many places beyond the bundled list; try again later")
        })
    }

    /// Whether `caller`'s key may spend more LLM tokens today.
    pub async fn budget(&self, caller: &Caller) -> Result<(), Refusal> {
        let Some(key) = &caller.key else { return Ok(()) };
        let Some(daily) = key.daily_tokens else { return Ok(()) };
        if self.quotas.spent_today(&key.id).await < daily {
            return Ok(());
        }
        let midnight = quota::until_next_utc_day();
        Err(refused(ErrorCode::QuotaExceeded, midnight, "this key's LLM tokens for today are spent"))
    }

    /// Counts tokens a generation `key_id` started spent.
    pub async fn spend(&self, key_id: &str, tokens: u64) {
        self.quotas.add(key_id, tokens).await;
    }

    /// A place for a new generation, held until it ends: at once, or after a short wait, or refused.
    pub async fn generation(&self) -> Result<OwnedSemaphorePermit, Refusal> {
        if let Ok(permit) = self.generations.clone().try_acquire_owned() {
            return Ok(permit);
        }
        let overloaded = || {
            metrics::counter!("tripstream_refused_total", "code" => "overloaded").increment(1);
            refused(ErrorCode::Overloaded, RETRY_OVERLOADED, "this server is at capacity; try again shortly")
        };
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.settings.queue {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(overloaded());
        }
        let permit = tokio::time::timeout(self.settings.wait, self.generations.clone().acquire_owned()).await;
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        match permit {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(overloaded()),
        }
    }

    /// No place for a new generation now.
    pub fn saturated(&self) -> bool {
        self.generations.available_permits() == 0
    }
}

/// What an overloaded replica tells clients to wait.
const RETRY_OVERLOADED: Duration = Duration::from_secs(2);

fn refused(code: ErrorCode, retry_after: Duration, message: &str) -> Refusal {
    if code != ErrorCode::Overloaded {
        metrics::counter!("tripstream_refused_total", "code" => code.as_str()).increment(1);
    }
    Refusal { code, retry_after, message: message.to_owned() }
}
