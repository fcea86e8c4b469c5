//! A cap on a model's calls in flight: a provider's concurrency quota is the process's, whatever the
//! number of generations. A call waits for its turn (inside the generation's own time limit).

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::Semaphore;
use tripstream_domain::Finding;
use tripstream_engine::{DayRequest, Draft, DraftSink, GenerateError, GeneratorInfo, PlanContext, PlanGenerator};

pub struct Limited {
    inner: Arc<dyn PlanGenerator>,
    calls: Arc<Semaphore>,
}

impl Limited {
    /// `inner`, at most `calls` of whose calls (of every `Limited` sharing them) run at once.
    pub fn new(inner: Arc<dyn PlanGenerator>, calls: Arc<Semaphore>) -> Self {
        Self { inner, calls }
    }

    async fn turn(&self) -> tokio::sync::SemaphorePermit<'_> {
        if self.calls.available_permits() == 0 {
            metrics::counter!("tripstream_model_calls_waited_total").increment(1);
        }
        self.calls.acquire().await.expect("the semaphore is never closed")
    }
}

#[async_trait]
impl PlanGenerator for Limited {
    fn info(&self) -> GeneratorInfo {
        self.inner.info()
    }

    async fn generate_draft(&self, ctx: &PlanContext, sink: &mut dyn DraftSink) -> Result<Draft, GenerateError> {
        let _turn = self.turn().await;
        self.inner.generate_draft(ctx, sink).await
    }

    async fn refine_plan(
        &self,
        ctx: &PlanContext,
        current: &Draft,
        findings: &[Finding],
        sink: &mut dyn DraftSink,
    ) -> Result<Draft, GenerateError> {
        let _turn = self.turn().await;
        self.inner.refine_plan(ctx, current, findings, sink).await
    }

    async fn regenerate_day(
        &self,
        ctx: &PlanContext,
        day: &DayRequest<'_>,
        sink: &mut dyn DraftSink,
    ) -> Result<Draft, GenerateError> {
        let _turn = self.turn().await;
        self.inner.regenerate_day(ctx, day, sink).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    /// Counts the calls in flight at once.
    struct Slow {
        now: AtomicUsize,
        most: AtomicUsize,
    }

    #[async_trait]
    impl PlanGenerator for Slow {
        fn info(&self) -> GeneratorInfo {
            GeneratorInfo { provider: "slow".into(), model: "m".into(), prompt_version: "v".into() }
        }
        async fn generate_draft(&self, _: &PlanContext, _: &mut dyn DraftSink) -> Result<Draft, GenerateError> {
            let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
            self.most.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(10)).await;
            self.now.fetch_sub(1, Ordering::SeqCst);
            Ok(Draft::default())
        }
        async fn refine_plan(
            &self,
            ctx: &PlanContext,
            _: &Draft,
            _: &[Finding],
            sink: &mut dyn DraftSink,
        ) -> Result<Draft, GenerateError> {
            self.generate_draft(ctx, sink).await
        }
    }

    struct Quiet;
    impl DraftSink for Quiet {
        fn text(&mut self, _: &str) {}
        fn day(&mut self, _: &tripstream_domain::Day) {}
    }

    #[tokio::test(start_paused = true)]
    async fn no_more_calls_than_the_cap_run_at_once() {
        let slow = Arc::new(Slow { now: AtomicUsize::new(0), most: AtomicUsize::new(0) });
        let limited = Arc::new(Limited::new(slow.clone(), Arc::new(Semaphore::new(3))));
        let raw = tripstream_domain::RawPlanRequest {
            location: Some("Seoul".into()),
            start_date: Some("2025-11-10".into()),
            end_date: Some("2025-11-10".into()),
            budget: Some("low".into()),
            ..Default::default()
        };
        let request = tripstream_domain::PlanRequest::parse(raw, None, Default::default()).unwrap();
        let destination = crate::Catalog::bundled().find("Seoul").unwrap().destination();
        let ctx = PlanContext { request, destination, weather: Vec::new(), weather_source: "none".into() };
        let calls = (0..10).map(|_| {
            let (limited, ctx) = (limited.clone(), ctx.clone());
            async move { limited.generate_draft(&ctx, &mut Quiet).await }
        });
        for result in futures::future::join_all(calls).await {
            assert!(result.is_ok());
        }
        assert_eq!(slow.most.load(Ordering::SeqCst), 3);
    }
}
