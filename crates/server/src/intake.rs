//! What goes first on a busy replica: each request's own work up to its first response bytes (parsing,
//! admission, resolving the place, starting or joining its run, the stream's first event), before the
//! heavy work of generations already running (weather look-ups, prompts, the provider's requests).
//!
//! The connection loop counts a request from the moment hyper hands it over until its response's first
//! bytes are ready: for a stream, its first event. Generations wait at the engine's [`Pacing`] points
//! until that count is zero, at most `FIRST_EVENT_PRIORITY_MS` each time, so a burst of new streams gets
//! its first events before the streams already running go on, and a steady flow of arrivals cannot
//! starve them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use tokio::sync::Notify;
use tokio::time::Instant;
use tripstream_engine::Pacing;

/// Requests between their arrival and their first response bytes.
pub struct Intake {
    arriving: AtomicUsize,
    quiet: Notify,
    /// The longest a generation's step waits for them.
    max_defer: Duration,
}

impl Intake {
    pub fn new(max_defer: Duration) -> Arc<Intake> {
        Arc::new(Intake { arriving: AtomicUsize::new(0), quiet: Notify::new(), max_defer })
    }

    /// Whether generations wait for arriving requests at all.
    pub fn paces(&self) -> bool {
        !self.max_defer.is_zero()
    }

    /// A request arrived; it counts until the returned guard is dropped.
    pub fn arrive(self: &Arc<Self>) -> Arrival {
        self.arriving.fetch_add(1, Ordering::SeqCst);
        Arrival { intake: self.clone(), at: Instant::now() }
    }

    /// Requests on their way to their first bytes.
    pub fn arriving(&self) -> usize {
        self.arriving.load(Ordering::SeqCst)
    }

    /// Resolves once no request is on its way to its first bytes, or after `at_most`. Yields to the
    /// scheduler first in any case, so that the event a generation has just emitted (a stream's first) is
    /// written before the work that follows it.
    pub async fn settled(&self, at_most: Duration) {
        tokio::task::yield_now().await;
        if self.arriving() == 0 {
            return;
        }
        let deadline = tokio::time::sleep(at_most);
        tokio::pin!(deadline);
        loop {
            let notified = self.quiet.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.arriving() == 0 {
                return;
            }
            tokio::select! {
                () = &mut notified => {}
                () = &mut deadline => return,
            }
        }
    }
}

#[async_trait]
impl Pacing for Intake {
    async fn ready(&self) {
        self.settled(self.max_defer).await;
    }
}

/// One request on its way to its first bytes.
pub struct Arrival {
    intake: Arc<Intake>,
    /// When it reached the server: what its time to first event counts from.
    pub at: Instant,
}

impl Drop for Arrival {
    fn drop(&mut self) {
        if self.intake.arriving.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.intake.quiet.notify_waiters();
        }
    }
}

/// A request's [`Arrival`], in its extensions. The connection loop ends it when the response is ready;
/// a handler that answers late (a stream, whose first bytes are its first event; the plan as one
/// document, answered when it is complete) takes it, as the [`Arriving`] extractor, to end it itself.
#[derive(Clone)]
pub struct ArrivalSlot(Arc<Mutex<Option<Arrival>>>);

impl ArrivalSlot {
    pub fn new(arrival: Arrival) -> Self {
        ArrivalSlot(Arc::new(Mutex::new(Some(arrival))))
    }

    /// The arrival, unless a handler took it.
    pub fn take(&self) -> Option<Arrival> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// The request's arrival, taken from the connection loop (`None` for a request that came another way,
/// such as a test calling the router directly).
pub struct Arriving(pub Option<Arrival>);

impl<S: Send + Sync> FromRequestParts<S> for Arriving {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Arriving(parts.extensions.get::<ArrivalSlot>().and_then(ArrivalSlot::take)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_step_waits_until_every_arrival_has_its_first_bytes_or_at_most_the_limit() {
        let intake = Intake::new(Duration::from_secs(60));
        let (first, second) = (intake.arrive(), intake.arrive());
        let waiting = tokio::spawn({
            let intake = intake.clone();
            async move { intake.settled(Duration::from_secs(60)).await }
        });
        drop(first);
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "one request is still arriving");
        drop(second);
        waiting.await.unwrap();
        assert_eq!(intake.arriving(), 0);
        // Never longer than the limit.
        let _held = intake.arrive();
        let started = tokio::time::Instant::now();
        intake.settled(Duration::from_millis(50)).await;
        assert_eq!(started.elapsed(), Duration::from_millis(50));
    }
}
