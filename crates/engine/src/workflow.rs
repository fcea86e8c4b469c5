//! The five steps of a generation and the progress accounting around them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tripstream_domain::event::{Chunk, Complete, DayReady, ErrorCode, Failure, StepMessage, progress};
use tripstream_domain::plan::{Day, Metadata, PlanDestination, Usage, plan_id};
use tripstream_domain::repair::repair;
use tripstream_domain::rules::{Finding, ValidationContext, validate};
use tripstream_domain::{Destination, Plan, PlanRequest, Step, StreamEvent, messages};

use crate::ports::{Draft, DraftSink, GenerateError, GeneratorInfo, PlanContext, PlanGenerator, Weather};
use crate::sink::EventSink;

#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// How many times the generator may be asked to fix a draft (`MAX_REFINE_ITERATIONS`).
    pub max_refine_iterations: u32,
    /// A whole generation, all steps, ends with `timeout` after this long.
    pub total_timeout: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self { max_refine_iterations: 2, total_timeout: Duration::from_secs(180) }
    }
}

/// Why a generation failed, with the contract's code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code:?}: {detail}")]
pub struct EngineError {
    pub code: ErrorCode,
    pub detail: String,
    pub usage: Usage,
}

impl EngineError {
    fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self { code, detail: detail.into(), usage: Usage::default() }
    }
}

impl From<GenerateError> for EngineError {
    fn from(e: GenerateError) -> Self {
        Self { code: e.code, detail: e.detail, usage: e.usage }
    }
}

/// Runs generations. Cheap to clone and share: it holds only `Arc`s and settings.
#[derive(Clone)]
pub struct Engine {
    generator: Arc<dyn PlanGenerator>,
    weather: Arc<dyn Weather>,
    config: EngineConfig,
}

impl Engine {
    pub fn new(generator: Arc<dyn PlanGenerator>, weather: Arc<dyn Weather>, config: EngineConfig) -> Self {
        Self { generator, weather, config }
    }

    pub fn generator_info(&self) -> GeneratorInfo {
        self.generator.info()
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Streams a finished plan (a cache hit) through the same contract a generation follows: every step's
    /// status and progress, the draft as readable chunks with a `day` event per day, `complete`, `done`.
    /// A client tells a replay from a generation only by `metadata.cached` and by its speed.
    pub fn replay(&self, request: &PlanRequest, plan: &Plan, sink: &mut dyn EventSink) {
        let lang = request.language;
        let mut out = Emitter { sink, progress: 0, spent: Usage::default(), days: Vec::new() };
        out.step(
            false,
            Step::GatherContext,
            progress::GATHER_STATUS,
            messages::gather_status(lang, request.location.as_str()),
            None,
        );
        out.step(true, Step::GatherContext, progress::GATHER_DONE, messages::gather_done(lang), None);
        out.step(false, Step::GenerateDraft, progress::DRAFT_STATUS, messages::draft_status(lang), None);
        let ctx = PlanContext {
            request: request.clone(),
            destination: Destination {
                id: String::new(),
                name: tripstream_domain::Localized {
                    en: plan.destination.name.clone(),
                    ko: plan.destination.name.clone(),
                },
                country: plan.destination.country.clone(),
                lat: plan.destination.lat,
                lon: plan.destination.lon,
                timezone: plan.destination.timezone.clone(),
                currency: plan.currency.clone(),
                budget: tripstream_domain::BudgetCeilings { low: 0, medium: 0, high: 0 },
                climate: None,
                profile: None,
            },
            weather: plan.days.iter().map(|d| d.weather.clone()).collect(),
            weather_source: plan.metadata.weather_source.clone(),
        };
        let mut draft = DraftProgress::new(&mut out, &ctx);
        for (i, day) in plan.days.iter().enumerate() {
            for (j, line) in tripstream_domain::text::day_lines(day, &plan.currency, lang).into_iter().enumerate() {
                let gap = if i > 0 && j == 0 { "\n" } else { "" };
                draft.text(&format!("{gap}{line}\n"));
            }
            draft.day(day);
        }
        out.step(true, Step::GenerateDraft, progress::DRAFT_DONE, messages::draft_done(lang, plan.days.len()), None);
        out.step(false, Step::ValidatePlan, progress::VALIDATE_STATUS, messages::validate_status(lang), None);
        out.step(true, Step::ValidatePlan, progress::VALIDATE_DONE, messages::validate_done(lang), None);
        out.step(false, Step::FinalizePlan, progress::FINALIZE_STATUS, messages::finalize_status(lang), None);
        out.emit(StreamEvent::Complete(Complete {
            message: messages::complete(lang),
            progress: progress::COMPLETE,
            step: Step::FinalizePlan,
            plan: Box::new(plan.clone()),
        }));
        out.emit(StreamEvent::Done);
    }

    /// Runs one generation, reporting every step to `sink`. The last event is always `done`; a failure
    /// is an `error` event just before it. Dropping the returned future stops the generation silently.
    pub async fn run(
        &self,
        request: &PlanRequest,
        destination: &Destination,
        sink: &mut dyn EventSink,
    ) -> Result<Plan, EngineError> {
        self.run_until(request, destination, sink, std::future::pending()).await
    }

    /// As [`Self::run`], ending early when `cancelled` resolves: the stream then ends with a `cancelled`
    /// error carrying the days drafted so far and the tokens spent, then `done`.
    pub async fn run_until(
        &self,
        request: &PlanRequest,
        destination: &Destination,
        sink: &mut dyn EventSink,
        cancelled: impl Future<Output = ()>,
    ) -> Result<Plan, EngineError> {
        let lang = request.language;
        let mut out = Emitter { sink, progress: 0, spent: Usage::default(), days: Vec::new() };
        let steps = tokio::time::timeout(self.config.total_timeout, self.steps(request, destination, &mut out));
        let result = tokio::select! {
            result = steps => result.unwrap_or_else(|_| Err(EngineError::new(
                ErrorCode::Timeout,
                format!("generation took longer than {:?}", self.config.total_timeout),
            ))),
            () = cancelled => Err(EngineError::new(ErrorCode::Cancelled, "cancelled")),
        };
        if let Err(e) = &result {
            let cancelled = e.code == ErrorCode::Cancelled;
            let usage = if cancelled { out.spent } else { e.usage };
            tracing::warn!(code = e.code.as_str(), detail = %e.detail, "generation failed");
            let partial_days = (cancelled && !out.days.is_empty()).then(|| std::mem::take(&mut out.days));
            out.emit(StreamEvent::Error(Failure {
                message: messages::error(lang, e.code),
                error: e.code,
                retryable: e.code.is_retryable(),
                usage: (usage != Usage::default()).then_some(usage),
                partial_days,
            }));
        }
        out.emit(StreamEvent::Done);
        result.map_err(|e| if e.code == ErrorCode::Cancelled { EngineError { usage: out.spent, ..e } } else { e })
    }

    async fn steps(
        &self,
        request: &PlanRequest,
        destination: &Destination,
        out: &mut Emitter<'_>,
    ) -> Result<Plan, EngineError> {
        let started = Instant::now();
        let lang = request.language;
        let days = request.dates.len();

        // gather_context
        out.step(
            false,
            Step::GatherContext,
            progress::GATHER_STATUS,
            messages::gather_status(lang, request.location.as_str()),
            None,
        );
        let report = self
            .weather
            .forecast(destination, request)
            .await
            .map_err(|e| EngineError::new(ErrorCode::WeatherUnavailable, e.0))?;
        if report.days.len() != days as usize {
            return Err(EngineError::new(ErrorCode::Internal, "weather report does not cover every day"));
        }
        let ctx = PlanContext {
            request: request.clone(),
            destination: destination.clone(),
            weather: report.days,
            weather_source: report.source,
        };
        out.step(true, Step::GatherContext, progress::GATHER_DONE, messages::gather_done(lang), None);

        // generate_draft
        out.step(false, Step::GenerateDraft, progress::DRAFT_STATUS, messages::draft_status(lang), None);
        let mut usage = Usage::default();
        let mut draft = self.generate_draft(&ctx, out, &mut usage).await?;
        usage += draft.usage;
        out.spent = usage;
        draft = normalize(draft, &ctx);
        out.step(true, Step::GenerateDraft, progress::DRAFT_DONE, messages::draft_done(lang, draft.days.len()), None);

        // validate_plan
        out.step(false, Step::ValidatePlan, progress::VALIDATE_STATUS, messages::validate_status(lang), None);
        let id = plan_id(uuid::Uuid::now_v7().as_u128());
        let vctx = ValidationContext {
            dates: request.dates,
            budget_ceiling: ctx.budget_ceiling(),
            currency: destination.currency.clone(),
        };
        let mut findings = validate(&self.assemble(&id, &ctx, &draft), &vctx);
        out.step(true, Step::ValidatePlan, progress::VALIDATE_DONE, messages::validate_done(lang), None);

        // refine_plan, only while there is something to fix
        let max = self.config.max_refine_iterations;
        let mut iterations = 1;
        let mut i = 0;
        while !findings.is_empty() && i < max {
            i += 1;
            let (status_at, done_at) = progress::refine(i, max);
            out.step(false, Step::RefinePlan, status_at, messages::refine_status(lang, i, max), Some(i));
            tracing::info!(iteration = i, findings = findings.len(), "refining plan");
            match self.generator.refine_plan(&ctx, &draft, &findings, &mut Discard).await {
                Ok(refined) => {
                    iterations += 1;
                    usage += refined.usage;
                    out.spent = usage;
                    let refined = normalize(refined, &ctx);
                    let refined_findings = validate(&self.assemble(&id, &ctx, &refined), &vctx);
                    // A refinement that makes things worse is not taken.
                    if severity(&refined_findings) <= severity(&findings) {
                        draft = refined;
                        findings = refined_findings;
                    }
                }
                Err(e) if e.code == ErrorCode::LlmBadOutput => {
                    iterations += 1;
                    usage += e.usage;
                    out.spent = usage;
                    tracing::warn!(iteration = i, detail = %e.detail, "refinement was unusable; keeping the previous draft");
                }
                Err(e) => {
                    return Err(EngineError { usage: sum(usage, e.usage), ..e.into() });
                }
            }
            out.step(true, Step::RefinePlan, done_at, messages::refine_done(lang, i, max), Some(i));
        }

        // finalize_plan
        out.step(false, Step::FinalizePlan, progress::FINALIZE_STATUS, messages::finalize_status(lang), None);
        let mut plan = self.assemble(&id, &ctx, &draft);
        let remaining = repair(&mut plan, &vctx);
        if remaining.iter().any(Finding::is_hard) {
            let detail = remaining.iter().map(|f| f.message(lang)).collect::<Vec<_>>().join(" ");
            return Err(EngineError { code: ErrorCode::LlmBadOutput, detail, usage });
        }
        plan.warnings = remaining.iter().map(|f| f.message(lang)).collect();
        let info = draft.generator.clone().unwrap_or_else(|| self.generator.info());
        plan.metadata = Metadata {
            provider: info.provider,
            model: info.model,
            generated_at: jiff::Timestamp::now(),
            iterations,
            prompt_version: info.prompt_version,
            weather_source: ctx.weather_source.clone(),
            duration_ms: started.elapsed().as_millis() as u64,
            cached: false,
            usage,
        };
        out.emit(StreamEvent::Complete(Complete {
            message: messages::complete(lang),
            progress: progress::COMPLETE,
            step: Step::FinalizePlan,
            plan: Box::new(plan.clone()),
        }));
        Ok(plan)
    }

    /// The first draft; output that cannot be parsed is asked for once more.
    async fn generate_draft(
        &self,
        ctx: &PlanContext,
        out: &mut Emitter<'_>,
        usage: &mut Usage,
    ) -> Result<Draft, EngineError> {
        let mut sink = DraftProgress::new(out, ctx);
        match self.generator.generate_draft(ctx, &mut sink).await {
            Err(e) if e.code == ErrorCode::LlmBadOutput => {
                *usage += e.usage;
                tracing::warn!(detail = %e.detail, "draft was unusable; asking once more");
                self.generator
                    .generate_draft(ctx, &mut sink)
                    .await
                    .map_err(|e| EngineError { usage: sum(*usage, e.usage), ..e.into() })
            }
            other => other.map_err(|e| EngineError { usage: sum(*usage, e.usage), ..e.into() }),
        }
    }

    fn assemble(&self, id: &str, ctx: &PlanContext, draft: &Draft) -> Plan {
        let request = &ctx.request;
        let lang = request.language;
        let dest = &ctx.destination;
        let name = dest.name.get(lang).to_owned();
        let title = draft
            .title
            .clone()
            .filter(|t| !t.trim().is_empty())
            .unwrap_or_else(|| messages::plan_title(lang, &name, request.dates.len()));
        let mut plan = Plan {
            id: id.to_owned(),
            title,
            location: request.location.as_str().to_owned(),
            destination: PlanDestination {
                name,
                country: dest.country.clone(),
                lat: dest.lat,
                lon: dest.lon,
                timezone: dest.timezone.clone(),
            },
            start_date: request.dates.start(),
            end_date: request.dates.end(),
            budget: request.budget,
            travelers: request.travelers,
            currency: dest.currency.clone(),
            language: lang,
            days: draft.days.clone(),
            total_cost: 0,
            tips: draft.tips.clone(),
            warnings: Vec::new(),
            metadata: Metadata {
                provider: String::new(),
                model: String::new(),
                generated_at: jiff::Timestamp::UNIX_EPOCH,
                iterations: 0,
                prompt_version: String::new(),
                weather_source: ctx.weather_source.clone(),
                duration_ms: 0,
                cached: false,
                usage: Usage::default(),
            },
        };
        plan.recompute_costs();
        plan
    }
}

fn sum(mut a: Usage, b: Usage) -> Usage {
    a += b;
    a
}

/// Orders findings lists: fewer hard findings first, then fewer findings.
fn severity(findings: &[Finding]) -> (usize, usize) {
    (findings.iter().filter(|f| f.is_hard()).count(), findings.len())
}

/// What is fixed without asking anyone: day numbers and dates, the gathered weather of each date, and
/// each day's cost sum. Refinement is spent only on what needs judgement.
fn normalize(draft: Draft, ctx: &PlanContext) -> Draft {
    normalize_from(draft, ctx, 0)
}

/// [`normalize`] for days that start at trip day `first` (0-based).
fn normalize_from(mut draft: Draft, ctx: &PlanContext, first: u32) -> Draft {
    let dates = ctx.request.dates;
    for (i, day) in draft.days.iter_mut().enumerate() {
        let index = first + i as u32;
        if index >= dates.len() {
            break;
        }
        day.day = index + 1;
        day.date = dates.date(index);
        if let Some(weather) = ctx.weather.get(index as usize) {
            day.weather = weather.clone();
        }
        day.daily_cost = day.activities_cost();
    }
    draft
}

/// The one place events leave the engine; it keeps `progress` from ever going back.
struct Emitter<'a> {
    sink: &'a mut dyn EventSink,
    progress: u8,
    /// Tokens spent so far, for a cancelled run's `error` event.
    spent: Usage,
    /// The days sent as `day` events, for a cancelled run's `error` event.
    days: Vec<Day>,
}

impl Emitter<'_> {
    fn emit(&mut self, event: StreamEvent) {
        if let Some(p) = event.progress() {
            debug_assert!(p >= self.progress, "progress went back from {} to {p}", self.progress);
            self.progress = self.progress.max(p);
        }
        if let StreamEvent::Day(d) = &event {
            self.days.push(d.day.clone());
        }
        self.sink.emit(event);
    }

    /// A `status` (a step started) or, with `reached`, a `progress` (it reached its milestone) event.
    fn step(&mut self, reached: bool, step: Step, progress: u8, message: String, iteration: Option<u32>) {
        let m = StepMessage { message, progress, step, iteration };
        self.emit(if reached { StreamEvent::Progress(m) } else { StreamEvent::Status(m) });
    }
}

/// Turns a generator's draft text and days into `chunk` and `day` events with progress from 31 to 55:
/// each finished day moves it its share of the band, text within a day moves it a little.
struct DraftProgress<'a, 'b> {
    out: &'a mut Emitter<'b>,
    ctx: &'a PlanContext,
    days_total: u32,
    days_done: u32,
    chars_in_day: usize,
}

impl<'a, 'b> DraftProgress<'a, 'b> {
    /// Text expected per day of draft; only shapes the progress curve.
    const CHARS_PER_DAY: usize = 600;

    fn new(out: &'a mut Emitter<'b>, ctx: &'a PlanContext) -> Self {
        Self { out, ctx, days_total: ctx.request.dates.len().max(1), days_done: 0, chars_in_day: 0 }
    }

    fn current(&self) -> u8 {
        let span = u32::from(progress::DRAFT_CHUNK_LAST - progress::DRAFT_CHUNK_FIRST);
        let within = (self.chars_in_day.min(Self::CHARS_PER_DAY) * 9 / Self::CHARS_PER_DAY) as u32;
        let units = (self.days_done.min(self.days_total) * 10 + within).min(self.days_total * 10);
        let p = u32::from(progress::DRAFT_CHUNK_FIRST) + span * units / (self.days_total * 10);
        (p as u8).max(self.out.progress).min(progress::DRAFT_CHUNK_LAST)
    }
}

impl DraftSink for DraftProgress<'_, '_> {
    fn text(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        self.chars_in_day += text.chars().count();
        let progress = self.current();
        self.out.emit(StreamEvent::Chunk(Chunk { content: text.to_owned(), progress, step: Step::GenerateDraft }));
    }

    fn day(&mut self, day: &Day) {
        // The event carries the day as the plan will: numbered, dated, with the gathered weather.
        let draft = Draft { days: vec![day.clone()], ..Draft::default() };
        let day = normalize_from(draft, self.ctx, self.days_done).days.remove(0);
        self.days_done += 1;
        self.chars_in_day = 0;
        let progress = self.current();
        self.out.emit(StreamEvent::Day(DayReady { day, progress, step: Step::GenerateDraft }));
    }
}

/// Refinements are not streamed: the contract's refine step reports status and progress only.
struct Discard;

impl DraftSink for Discard {
    fn text(&mut self, _: &str) {}
    fn day(&mut self, _: &Day) {}
}
