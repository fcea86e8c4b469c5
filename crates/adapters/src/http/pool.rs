//! Enough HTTP/2 connections to one provider for every stream in flight.
//!
//! hyper puts every request to a host on one HTTP/2 connection and never opens a second one: a request
//! beyond the peer's `SETTINGS_MAX_CONCURRENT_STREAMS` (100 at Google's front end) waits inside the
//! client until another stream finishes (hyperium/hyper#2197). A [`Pool`] holds several clients of one
//! provider, each with one HTTP/2 connection, gives each call the first client with fewer than
//! `streams_per_connection` streams in flight, and adds a client when all are that busy.
//!
//! Which protocol the provider speaks is learned from the first connection's ALPN. Until then one
//! request (the probe) connects and the others wait for it, at most the connect timeout: a burst on a
//! cold pool would otherwise race a TLS handshake per request and keep one. After it, each new client
//! speaks HTTP/2 from the start (its requests share one handshake); a provider on HTTP/1.1 (every
//! `http://` one, and HTTPS servers without h2) gets one client, which opens a connection per request
//! in flight as it always has.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::client::legacy::connect::Connection;
use tokio::sync::Notify;

/// How far a pool grows (`LLM_STREAMS_PER_CONNECTION`, `LLM_MAX_CONNECTIONS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolLimits {
    /// Streams one HTTP/2 connection carries before the pool opens another: below the peer's limit,
    /// since a stream beyond it waits in the client for another to finish.
    pub streams_per_connection: usize,
    /// HTTP/2 connections at most; beyond `streams_per_connection` × this, streams share the least busy
    /// connection (and may queue there), counted in `tripstream_llm_pool_full_total`.
    pub max_connections: usize,
}

impl Default for PoolLimits {
    fn default() -> Self {
        Self { streams_per_connection: 64, max_connections: 256 }
    }
}

const UNKNOWN: u8 = 0;
const HTTP1: u8 = 1;
const HTTP2: u8 = 2;

/// The clients of one provider. Cheap to clone; clones share the clients.
#[derive(Clone)]
pub struct Pool {
    inner: Arc<Inner>,
}

struct Inner {
    /// Names the pool in metrics and logs.
    provider: &'static str,
    limits: PoolLimits,
    connect_timeout: Duration,
    /// Negotiates the protocol: it carries the probe, and every request when the provider speaks
    /// HTTP/1.1.
    negotiating: reqwest::Client,
    learned: Arc<Learned>,
    /// Whether a probe is connecting now.
    probing: AtomicBool,
    /// HTTP/2-only clients, one connection each, in the order they were added.
    http2: Mutex<Vec<Arc<Slot>>>,
}

struct Slot {
    client: reqwest::Client,
    in_flight: AtomicUsize,
}

/// The protocol the provider's first connection negotiated, and the wake-up for calls waiting on it.
struct Learned {
    protocol: AtomicU8,
    known: Notify,
}

impl Learned {
    fn learn(&self, protocol: u8) {
        if self.protocol.swap(protocol, Ordering::AcqRel) != protocol {
            self.known.notify_waiters();
        }
    }
}

/// A client to send one call with; the call counts as in flight until this is dropped, so hold it until
/// the response body is read.
pub struct Lease {
    client: reqwest::Client,
    slot: Option<Arc<Slot>>,
    /// Set on the probe: dropping it lets a waiting call probe in its place if nothing was learned.
    probe: Option<Arc<Inner>>,
}

impl Lease {
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(slot) = &self.slot {
            slot.in_flight.fetch_sub(1, Ordering::Relaxed);
        }
        if let Some(pool) = &self.probe {
            pool.probing.store(false, Ordering::Release);
            pool.learned.known.notify_waiters();
        }
    }
}

impl Pool {
    /// A pool for `base_url`'s provider, connecting within `connect_timeout`.
    pub fn new(provider: &'static str, base_url: &str, connect_timeout: Duration, limits: PoolLimits) -> Self {
        let learned = Arc::new(Learned { protocol: AtomicU8::new(UNKNOWN), known: Notify::new() });
        // Plain http:// is HTTP/1.1: reqwest speaks HTTP/2 in the clear only when told to.
        if !base_url.trim_start().to_ascii_lowercase().starts_with("https://") {
            learned.protocol.store(HTTP1, Ordering::Release);
        }
        let negotiating = super::builder(connect_timeout, super::Alpn::Negotiate)
            .connector_layer(LearnLayer(learned.clone()))
            .build()
            .expect("the HTTP client builds with a crypto provider installed");
        let inner = Inner {
            provider,
            limits: PoolLimits {
                streams_per_connection: limits.streams_per_connection.max(1),
                max_connections: limits.max_connections.max(1),
            },
            connect_timeout,
            negotiating,
            learned,
            probing: AtomicBool::new(false),
            http2: Mutex::new(Vec::new()),
        };
        Self { inner: Arc::new(inner) }
    }

    /// The client for the next call: on HTTP/2 the first with room, or a new one.
    pub async fn lease(&self) -> Lease {
        let inner = &self.inner;
        let give_up = tokio::time::Instant::now() + inner.connect_timeout;
        loop {
            // Registered before the protocol is read, so a wake-up in between is not missed.
            let known = inner.learned.known.notified();
            match inner.learned.protocol.load(Ordering::Acquire) {
                HTTP2 => return self.http2_lease(),
                HTTP1 => return Lease { client: inner.negotiating.clone(), slot: None, probe: None },
                _ if !inner.probing.swap(true, Ordering::AcqRel) => {
                    return Lease { client: inner.negotiating.clone(), slot: None, probe: Some(inner.clone()) };
                }
                // The probe is connecting: wait for what it learns, not longer than a connect may take.
                // A provider that never answers must not hold calls back twice over.
                _ if tokio::time::timeout_at(give_up, known).await.is_err() => {
                    return Lease { client: inner.negotiating.clone(), slot: None, probe: None };
                }
                _ => {}
            }
        }
    }

    fn http2_lease(&self) -> Lease {
        let inner = &self.inner;
        let limits = inner.limits;
        let mut slots = inner.http2.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // The first with room: load gathers on the oldest connections, and ones left idle after a peak
        // close by themselves (the client's idle timeout).
        let room = slots.iter().find(|s| s.in_flight.load(Ordering::Relaxed) < limits.streams_per_connection);
        let slot = match room {
            Some(slot) => slot.clone(),
            None if slots.len() < limits.max_connections => {
                let client = super::builder(inner.connect_timeout, super::Alpn::Http2Only)
                    .http2_prior_knowledge()
                    .build()
                    .expect("the HTTP client builds with a crypto provider installed");
                let slot = Arc::new(Slot { client, in_flight: AtomicUsize::new(0) });
                slots.push(slot.clone());
                metrics::gauge!("tripstream_llm_connections", "provider" => inner.provider).set(slots.len() as f64);
                slot
            }
            None => {
                metrics::counter!("tripstream_llm_pool_full_total", "provider" => inner.provider).increment(1);
                let least = slots.iter().min_by_key(|s| s.in_flight.load(Ordering::Relaxed));
                least.expect("a full pool has clients").clone()
            }
        };
        slot.in_flight.fetch_add(1, Ordering::Relaxed);
        Lease { client: slot.client.clone(), slot: Some(slot), probe: None }
    }

    /// HTTP/2 clients made so far.
    pub fn http2_clients(&self) -> usize {
        self.inner.http2.lock().map_or(0, |slots| slots.len())
    }
}

/// Wraps the negotiating client's connector to note the protocol each new connection negotiated.
#[derive(Clone)]
struct LearnLayer(Arc<Learned>);

impl<S> tower_layer::Layer<S> for LearnLayer {
    type Service = Learn<S>;

    fn layer(&self, inner: S) -> Learn<S> {
        Learn { inner, learned: self.0.clone() }
    }
}

#[derive(Clone)]
struct Learn<S> {
    inner: S,
    learned: Arc<Learned>,
}

impl<S, R> tower_service::Service<R> for Learn<S>
where
    S: tower_service::Service<R>,
    S::Response: Connection + Send + 'static,
    S::Error: 'static,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        let learned = self.learned.clone();
        let connecting = self.inner.call(request);
        Box::pin(async move {
            let connection = connecting.await?;
            learned.learn(if connection.connected().is_negotiated_h2() { HTTP2 } else { HTTP1 });
            Ok(connection)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: PoolLimits = PoolLimits { streams_per_connection: 2, max_connections: 3 };

    fn pool(base_url: &str) -> Pool {
        Pool::new("test", base_url, Duration::from_secs(5), LIMITS)
    }

    fn in_flight(pool: &Pool) -> Vec<usize> {
        pool.inner.http2.lock().unwrap().iter().map(|s| s.in_flight.load(Ordering::Relaxed)).collect()
    }

    #[tokio::test]
    async fn plain_http_is_one_client_and_never_waits() {
        let pool = pool("http://127.0.0.1:9");
        let leases: Vec<Lease> = futures::future::join_all((0..10).map(|_| pool.lease())).await;
        assert!(leases.iter().all(|l| l.slot.is_none() && l.probe.is_none()));
        assert_eq!(pool.http2_clients(), 0);
    }

    #[tokio::test]
    async fn http2_fills_a_connection_then_adds_one_then_shares_the_least_busy() {
        let pool = pool("https://provider.example");
        pool.inner.learned.learn(HTTP2);
        let mut leases = Vec::new();
        for _ in 0..6 {
            leases.push(pool.lease().await);
        }
        assert_eq!(in_flight(&pool), [2, 2, 2]);
        // Full: the seventh shares, on the least busy connection.
        drop(leases.remove(3));
        leases.push(pool.lease().await);
        assert_eq!(in_flight(&pool), [2, 2, 2]);
        leases.push(pool.lease().await);
        assert_eq!(in_flight(&pool), [3, 2, 2]);
        // A finished stream makes room on its own connection, which the next call takes.
        drop(leases.remove(0));
        drop(leases.remove(0));
        assert_eq!(in_flight(&pool), [1, 2, 2]);
        leases.push(pool.lease().await);
        assert_eq!((in_flight(&pool), pool.http2_clients()), (vec![2, 2, 2], 3));
    }

    #[tokio::test]
    async fn calls_wait_for_the_probe_to_learn_the_protocol() {
        let pool = pool("https://provider.example");
        let probe = pool.lease().await;
        assert!(probe.probe.is_some());
        let waiting = tokio::spawn({
            let pool = pool.clone();
            async move { pool.lease().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        pool.inner.learned.learn(HTTP2);
        let lease = waiting.await.unwrap();
        assert!(lease.slot.is_some(), "the waiting call goes to an HTTP/2 connection");
        assert_eq!(pool.http2_clients(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_probe_hands_over_and_no_call_waits_past_the_connect_timeout() {
        let pool = pool("https://provider.example");
        let probe = pool.lease().await;
        let next = tokio::spawn({
            let pool = pool.clone();
            async move { pool.lease().await }
        });
        tokio::task::yield_now().await;
        // The probe failed without connecting: the waiting call probes next.
        drop(probe);
        let next = next.await.unwrap();
        assert!(next.probe.is_some());
        // A provider that never answers: the others go ahead after the connect timeout, each on its own.
        let started = tokio::time::Instant::now();
        let late = pool.lease().await;
        assert_eq!(started.elapsed(), Duration::from_secs(5));
        assert!(late.probe.is_none() && late.slot.is_none());
    }
}
