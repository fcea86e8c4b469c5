//! A chain of generators: when one is unavailable before it has streamed anything, the next one plans.
//! Once text has reached the client, a failure is the client's to see — switching providers mid-draft
//! would mix two plans in one stream.

use std::sync::Arc;

use async_trait::async_trait;
use tripstream_domain::Day;
use tripstream_domain::event::ErrorCode;
use tripstream_domain::rules::Finding;
use tripstream_engine::{DayRequest, Draft, DraftSink, GenerateError, GeneratorInfo, PlanContext, PlanGenerator};

pub struct FallbackChain {
    links: Vec<Arc<dyn PlanGenerator>>,
}

impl FallbackChain {
    /// `links` in order of preference; must not be empty.
    pub fn new(links: Vec<Arc<dyn PlanGenerator>>) -> Self {
        assert!(!links.is_empty(), "a fallback chain needs at least one generator");
        Self { links }
    }

    /// The providers in order, for logs and `/health`.
    pub fn providers(&self) -> Vec<String> {
        self.links.iter().map(|l| l.info().provider).collect()
    }

    async fn run(
        &self,
        from: usize,
        ctx: &PlanContext,
        call: Call<'_>,
        sink: &mut dyn DraftSink,
    ) -> Result<Draft, GenerateError> {
        let mut first_error: Option<GenerateError> = None;
        let mut spent = tripstream_domain::plan::Usage::default();
        for (i, link) in self.links.iter().enumerate().skip(from) {
            let mut watch = Watch { inner: &mut *sink, touched: false };
            let result = match call {
                Call::Draft => link.generate_draft(ctx, &mut watch).await,
                Call::Refine { current, findings } => link.refine_plan(ctx, current, findings, &mut watch).await,
                Call::Day(day) => link.regenerate_day(ctx, day, &mut watch).await,
            };
            let touched = watch.touched;
            match result {
                Ok(mut draft) => {
                    draft.usage += spent;
                    if i > 0 {
                        draft.generator = Some(link.info());
                    }
                    return Ok(draft);
                }
                Err(e) if !touched && falls_through(e.code) && i + 1 < self.links.len() => {
                    let next = self.links[i + 1].info().provider;
                    tracing::warn!(provider = %link.info().provider, code = e.code.as_str(), detail = %e.detail, next = %next, "provider unavailable; falling back");
                    spent += e.usage;
                    first_error.get_or_insert(e);
                }
                // A later link that cannot plan this destination at all (the offline planner for a place it
                // does not know) says less than the failure that sent us to it.
                Err(e) if e.code == ErrorCode::UnknownDestination && first_error.is_some() => {
                    let first = first_error.take().unwrap_or(e);
                    return Err(GenerateError { usage: spent, ..first });
                }
                Err(mut e) => {
                    e.usage += spent;
                    return Err(e);
                }
            }
        }
        Err(first_error.unwrap_or_else(|| GenerateError::new(ErrorCode::Internal, "empty fallback chain")))
    }
}

#[derive(Clone, Copy)]
enum Call<'a> {
    Draft,
    Refine { current: &'a Draft, findings: &'a [Finding] },
    Day(&'a DayRequest<'a>),
}

fn falls_through(code: ErrorCode) -> bool {
    matches!(code, ErrorCode::LlmUnavailable | ErrorCode::LlmRateLimited | ErrorCode::LlmTimeout)
}

/// Notes whether anything reached the client.
struct Watch<'s> {
    inner: &'s mut dyn DraftSink,
    touched: bool,
}

impl DraftSink for Watch<'_> {
    fn text(&mut self, text: &str) {
        self.touched = true;
        self.inner.text(text);
    }

    fn day(&mut self, day: &Day) {
        self.touched = true;
        self.inner.day(day);
    }
}

#[async_trait]
impl PlanGenerator for FallbackChain {
    fn info(&self) -> GeneratorInfo {
        self.links[0].info()
    }

    async fn generate_draft(&self, ctx: &PlanContext, sink: &mut dyn DraftSink) -> Result<Draft, GenerateError> {
        self.run(0, ctx, Call::Draft, sink).await
    }

    async fn refine_plan(
        &self,
        ctx: &PlanContext,
        current: &Draft,
        findings: &[Finding],
        sink: &mut dyn DraftSink,
    ) -> Result<Draft, GenerateError> {
        // The link that wrote the draft refines it.
        let from = current
            .generator
            .as_ref()
            .and_then(|g| self.links.iter().position(|l| l.info().provider == g.provider))
            .unwrap_or(0);
        self.run(from, ctx, Call::Refine { current, findings }, sink).await
    }

    /// A day is written by the first link that can, as a draft is: the plan's other days were perhaps
    /// written by another, but they stay as they are.
    async fn regenerate_day(
        &self,
        ctx: &PlanContext,
        day: &DayRequest<'_>,
        sink: &mut dyn DraftSink,
    ) -> Result<Draft, GenerateError> {
        self.run(0, ctx, Call::Day(day), sink).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use tripstream_domain::request::{RawPlanRequest, RequestLimits};
    use tripstream_domain::{PlanRequest, Usage};

    use super::*;
    use crate::catalog::Catalog;

    /// Fails with `code` after streaming `text` (if any), or succeeds.
    struct Scripted {
        name: &'static str,
        fail: Option<ErrorCode>,
        text: bool,
        calls: AtomicU32,
    }

    fn link(name: &'static str, fail: Option<ErrorCode>, text: bool) -> Arc<Scripted> {
        Arc::new(Scripted { name, fail, text, calls: AtomicU32::new(0) })
    }

    #[async_trait]
    impl PlanGenerator for Scripted {
        fn info(&self) -> GeneratorInfo {
            GeneratorInfo { provider: self.name.into(), model: "m".into(), prompt_version: "v".into() }
        }

        async fn generate_draft(&self, _: &PlanContext, sink: &mut dyn DraftSink) -> Result<Draft, GenerateError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if self.text {
                sink.text("Day 1\n");
            }
            match self.fail {
                Some(code) => Err(GenerateError {
                    usage: Usage { input_tokens: 5, output_tokens: 1 },
                    ..GenerateError::new(code, self.name)
                }),
                None => Ok(Draft { tips: vec![self.name.into()], ..Draft::default() }),
            }
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

    fn ctx() -> PlanContext {
        let raw = RawPlanRequest {
            location: Some("Kyoto".into()),
            start_date: Some("2025-11-10".into()),
            end_date: Some("2025-11-10".into()),
            budget: Some("low".into()),
            ..RawPlanRequest::default()
        };
        let request = PlanRequest::parse(raw, None, RequestLimits::default()).unwrap();
        let destination = Catalog::bundled().find("Kyoto").unwrap().destination();
        PlanContext { request, destination, weather: Vec::new(), weather_source: "climatology".into() }
    }

    struct Text(String);

    impl DraftSink for Text {
        fn text(&mut self, text: &str) {
            self.0.push_str(text);
        }
        fn day(&mut self, _: &Day) {}
    }

    #[tokio::test]
    async fn an_unavailable_provider_hands_over_before_it_streamed_and_says_who_planned() {
        let (a, b) = (link("gemini", Some(ErrorCode::LlmRateLimited), false), link("offline", None, false));
        let chain = FallbackChain::new(vec![a.clone(), b.clone()]);
        let draft = chain.generate_draft(&ctx(), &mut Text(String::new())).await.unwrap();
        assert_eq!(draft.generator.map(|g| g.provider), Some("offline".into()));
        assert_eq!(draft.usage, Usage { input_tokens: 5, output_tokens: 1 }, "tokens of the failed try are counted");
        // The refinement goes to the link that wrote the draft.
        let refined = chain
            .refine_plan(
                &ctx(),
                &Draft { generator: Some(b.info()), ..Draft::default() },
                &[],
                &mut Text(String::new()),
            )
            .await
            .unwrap();
        assert_eq!(refined.tips, ["offline"]);
        assert_eq!((a.calls.load(Ordering::SeqCst), b.calls.load(Ordering::SeqCst)), (1, 2));
    }

    #[tokio::test]
    async fn after_text_reached_the_client_a_failure_is_final() {
        let (a, b) = (link("gemini", Some(ErrorCode::LlmTimeout), true), link("offline", None, false));
        let chain = FallbackChain::new(vec![a, b.clone()]);
        let mut sink = Text(String::new());
        let err = chain.generate_draft(&ctx(), &mut sink).await.unwrap_err();
        assert_eq!((err.code, sink.0.as_str()), (ErrorCode::LlmTimeout, "Day 1\n"));
        assert_eq!(b.calls.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn bad_output_does_not_fall_through_and_an_unknown_place_reports_the_first_failure() {
        let chain = FallbackChain::new(vec![
            link("gemini", Some(ErrorCode::LlmBadOutput), false),
            link("offline", None, false),
        ]);
        assert_eq!(
            chain.generate_draft(&ctx(), &mut Text(String::new())).await.unwrap_err().code,
            ErrorCode::LlmBadOutput
        );
        let chain = FallbackChain::new(vec![
            link("gemini", Some(ErrorCode::LlmUnavailable), false),
            link("offline", Some(ErrorCode::UnknownDestination), false),
        ]);
        let err = chain.generate_draft(&ctx(), &mut Text(String::new())).await.unwrap_err();
        assert_eq!((err.code, err.detail.as_str()), (ErrorCode::LlmUnavailable, "gemini"));
    }
}
