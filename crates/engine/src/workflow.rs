//! The five steps of a generation and the progress accounting around them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tripstream_domain::event::{Chunk, Complete, DayReady, ErrorCode, Failure, StepMessage, progress};
use tripstream_domain::plan::{Day, Metadata, PlanDestination, Usage, plan_id};
use tripstream_domain::repair::repair;
use tripstream_domain::rules::{Finding, ValidationContext, validate};
use tripstream_domain::{Destination, Plan, PlanRequest, Step, StreamEvent, messages};

use crate::ports::{
    Draft, DraftSink, GenerateError, GeneratorInfo, PlanContext, PlanGenerator, Weather, WeatherReport,
};
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

    /// Streams a finished plan (a cache hit) through the same five steps a generation takes, with the
    /// stored plan as their source: every step's status and progress, the draft as readable chunks with a
    /// `day` event per day, `complete` (the stored plan, `metadata.cached` set), `done`. A client tells a
    /// replay from a generation only by `metadata.cached` and by its speed.
    pub async fn replay(
        &self,
        request: &PlanRequest,
        destination: &Destination,
        plan: &Plan,
        sink: &mut dyn EventSink,
    ) {
        let mut run = RunState::new(sink);
        let source = Source::Replay(plan);
        // A stored plan has nothing to wait for and nothing to fail on: every step is local.
        if let Err(e) = self.steps(request, destination, source, &mut run).await {
            run.fail(request.language, &e);
        }
        run.out.emit(StreamEvent::Done);
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
        let mut run = RunState::new(sink);
        let steps = tokio::time::timeout(
            self.config.total_timeout,
            self.steps(request, destination, Source::Generate, &mut run),
        );
        let result = tokio::select! {
            result = steps => result.unwrap_or_else(|_| Err(EngineError::new(
                ErrorCode::Timeout,
                format!("generation took longer than {:?}", self.config.total_timeout),
            ))),
            () = cancelled => Err(EngineError::new(ErrorCode::Cancelled, "cancelled")),
        };
        // Every call's tokens were counted as it returned, so the run's usage is the whole of it.
        let result = result.map_err(|e| EngineError { usage: run.usage, ..e });
        if let Err(e) = &result {
            tracing::warn!(code = e.code.as_str(), detail = %e.detail, "generation failed");
            run.fail(request.language, e);
        }
        run.out.emit(StreamEvent::Done);
        result
    }

    /// The five steps in order; a step's `Err` ends the run.
    async fn steps(
        &self,
        request: &PlanRequest,
        destination: &Destination,
        source: Source<'_>,
        run: &mut RunState<'_>,
    ) -> Result<Plan, EngineError> {
        let started = Instant::now();
        let ctx = self.gather_context(request, destination, source, run).await?;
        let draft = self.generate_draft(&ctx, source, run).await?;
        let id = match source {
            Source::Generate => plan_id(uuid::Uuid::now_v7().as_u128()),
            Source::Replay(plan) => plan.id.clone(),
        };
        let checked = self.validate_plan(&ctx, &id, draft, source, run);
        let checked = match source {
            Source::Generate => self.refine_plan(&ctx, &id, checked, run).await?,
            Source::Replay(_) => checked,
        };
        self.finalize_plan(&ctx, &id, checked, source, started, run)
    }

    /// `gather_context`: the weather for every day of the trip (10 → 20).
    #[tracing::instrument(name = "gather_context", skip_all)]
    async fn gather_context(
        &self,
        request: &PlanRequest,
        destination: &Destination,
        source: Source<'_>,
        run: &mut RunState<'_>,
    ) -> Result<PlanContext, EngineError> {
        let lang = request.language;
        let status = messages::gather_status(lang, request.location.as_str());
        run.out.step(false, Step::GatherContext, progress::GATHER_STATUS, status, None);
        let report = match source {
            Source::Generate => self
                .weather
                .forecast(destination, request)
                .await
                .map_err(|e| EngineError::new(ErrorCode::WeatherUnavailable, e.0))?,
            Source::Replay(plan) => WeatherReport {
                days: plan.days.iter().map(|d| d.weather.clone()).collect(),
                source: plan.metadata.weather_source.clone(),
            },
        };
        if report.days.len() != request.dates.len() as usize {
            return Err(EngineError::new(ErrorCode::Internal, "weather report does not cover every day"));
        }
        let ctx = PlanContext {
            request: request.clone(),
            destination: destination.clone(),
            weather: report.days,
            weather_source: report.source,
        };
        run.out.step(true, Step::GatherContext, progress::GATHER_DONE, messages::gather_done(lang), None);
        Ok(ctx)
    }

    /// `generate_draft`: the first draft, streamed as readable chunks and `day` events (30 → 60). Output
    /// that cannot be parsed is asked for once more.
    #[tracing::instrument(name = "generate_draft", skip_all)]
    async fn generate_draft(
        &self,
        ctx: &PlanContext,
        source: Source<'_>,
        run: &mut RunState<'_>,
    ) -> Result<Draft, EngineError> {
        let lang = ctx.request.language;
        run.out.step(false, Step::GenerateDraft, progress::DRAFT_STATUS, messages::draft_status(lang), None);
        let draft = match source {
            Source::Generate => {
                let first = self.generator.generate_draft(ctx, &mut DraftProgress::new(run, ctx)).await;
                match run.count(first) {
                    Err(e) if e.code == ErrorCode::LlmBadOutput => {
                        tracing::warn!(detail = %e.detail, "draft was unusable; asking once more");
                        let second = self.generator.generate_draft(ctx, &mut DraftProgress::new(run, ctx)).await;
                        run.count(second)?
                    }
                    other => other?,
                }
            }
            Source::Replay(plan) => {
                let mut sink = DraftProgress::new(run, ctx);
                for (i, day) in plan.days.iter().enumerate() {
                    for (j, line) in
                        tripstream_domain::text::day_lines(day, &plan.currency, lang).into_iter().enumerate()
                    {
                        let gap = if i > 0 && j == 0 { "\n" } else { "" };
                        sink.text(&format!("{gap}{line}\n"));
                    }
                    sink.day(day);
                }
                Draft {
                    title: Some(plan.title.clone()),
                    days: plan.days.clone(),
                    tips: plan.tips.clone(),
                    ..Draft::default()
                }
            }
        };
        let draft = normalize(draft, ctx);
        let done = messages::draft_done(lang, draft.days.len());
        run.out.step(true, Step::GenerateDraft, progress::DRAFT_DONE, done, None);
        Ok(draft)
    }

    /// `validate_plan`: rules 1–7 over the draft as the plan it would become (65 → 70). A stored plan
    /// was validated when it was made.
    #[tracing::instrument(name = "validate_plan", skip_all)]
    fn validate_plan(
        &self,
        ctx: &PlanContext,
        id: &str,
        draft: Draft,
        source: Source<'_>,
        run: &mut RunState<'_>,
    ) -> Checked {
        let lang = ctx.request.language;
        run.out.step(false, Step::ValidatePlan, progress::VALIDATE_STATUS, messages::validate_status(lang), None);
        let findings = match source {
            Source::Generate => validate(&self.assemble(id, ctx, &draft), &validation_context(ctx)),
            Source::Replay(_) => Vec::new(),
        };
        run.out.step(true, Step::ValidatePlan, progress::VALIDATE_DONE, messages::validate_done(lang), None);
        Checked { draft, findings, iterations: 1 }
    }

    /// `refine_plan`: while the draft breaks rules, the generator is asked to fix them, up to
    /// `max_refine_iterations` times (70 → 90); each answer is validated again, and one that makes things
    /// worse is not taken.
    #[tracing::instrument(name = "refine_plan", skip_all)]
    async fn refine_plan(
        &self,
        ctx: &PlanContext,
        id: &str,
        mut checked: Checked,
        run: &mut RunState<'_>,
    ) -> Result<Checked, EngineError> {
        let lang = ctx.request.language;
        let vctx = validation_context(ctx);
        let max = self.config.max_refine_iterations;
        let mut i = 0;
        while !checked.findings.is_empty() && i < max {
            i += 1;
            let (status_at, done_at) = progress::refine(i, max);
            run.out.step(false, Step::RefinePlan, status_at, messages::refine_status(lang, i, max), Some(i));
            tracing::info!(iteration = i, findings = checked.findings.len(), "refining plan");
            let refined = self.generator.refine_plan(ctx, &checked.draft, &checked.findings, &mut Discard).await;
            match run.count(refined) {
                Ok(refined) => {
                    checked.iterations += 1;
                    let refined = normalize(refined, ctx);
                    let findings = validate(&self.assemble(id, ctx, &refined), &vctx);
                    if severity(&findings) <= severity(&checked.findings) {
                        checked.draft = refined;
                        checked.findings = findings;
                    }
                }
                Err(e) if e.code == ErrorCode::LlmBadOutput => {
                    checked.iterations += 1;
                    tracing::warn!(iteration = i, detail = %e.detail, "refinement was unusable; keeping the previous draft");
                }
                Err(e) => return Err(e),
            }
            run.out.step(true, Step::RefinePlan, done_at, messages::refine_done(lang, i, max), Some(i));
        }
        Ok(checked)
    }

    /// `finalize_plan`: the plan assembled and repaired, its metadata, `complete` (95 → 100). A remaining
    /// hard finding (rules 1–4) is never delivered: it is `llm_bad_output`; the rest become warnings.
    #[tracing::instrument(name = "finalize_plan", skip_all)]
    fn finalize_plan(
        &self,
        ctx: &PlanContext,
        id: &str,
        checked: Checked,
        source: Source<'_>,
        started: Instant,
        run: &mut RunState<'_>,
    ) -> Result<Plan, EngineError> {
        let lang = ctx.request.language;
        run.out.step(false, Step::FinalizePlan, progress::FINALIZE_STATUS, messages::finalize_status(lang), None);
        let plan = match source {
            Source::Replay(plan) => {
                let mut plan = plan.clone();
                plan.metadata.cached = true;
                plan
            }
            Source::Generate => {
                let mut plan = self.assemble(id, ctx, &checked.draft);
                let remaining = repair(&mut plan, &validation_context(ctx));
                if remaining.iter().any(Finding::is_hard) {
                    let detail = remaining.iter().map(|f| f.message(lang)).collect::<Vec<_>>().join(" ");
                    return Err(EngineError::new(ErrorCode::LlmBadOutput, detail));
                }
                plan.warnings = remaining.iter().map(|f| f.message(lang)).collect();
                let info = checked.draft.generator.clone().unwrap_or_else(|| self.generator.info());
                plan.metadata = Metadata {
                    provider: info.provider,
                    model: info.model,
                    generated_at: jiff::Timestamp::now(),
                    iterations: checked.iterations,
                    prompt_version: info.prompt_version,
                    weather_source: ctx.weather_source.clone(),
                    duration_ms: started.elapsed().as_millis() as u64,
                    cached: false,
                    usage: run.usage,
                };
                plan
            }
        };
        run.out.emit(StreamEvent::Complete(Complete {
            message: messages::complete(lang),
            progress: progress::COMPLETE,
            step: Step::FinalizePlan,
            plan: Box::new(plan.clone()),
        }));
        Ok(plan)
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

/// Where a run's steps take their material from.
#[derive(Clone, Copy)]
enum Source<'a> {
    /// The weather port and the generator: a new plan.
    Generate,
    /// A stored plan (a cache hit), streamed again.
    Replay(&'a Plan),
}

/// A draft and what `validate_plan` found in it, with how many generator calls it took.
struct Checked {
    draft: Draft,
    findings: Vec<Finding>,
    /// The draft plus each refinement asked for (`metadata.iterations`).
    iterations: u32,
}

fn validation_context(ctx: &PlanContext) -> ValidationContext {
    ValidationContext {
        dates: ctx.request.dates,
        budget_ceiling: ctx.budget_ceiling(),
        currency: ctx.destination.currency.clone(),
    }
}

/// One run on its way through the steps: where its events go and the tokens it has spent, counted once,
/// as each generator call returns (success or failure), so a cancellation at any point reports them all.
struct RunState<'a> {
    out: Emitter<'a>,
    usage: Usage,
}

impl<'a> RunState<'a> {
    fn new(sink: &'a mut dyn EventSink) -> Self {
        Self { out: Emitter { sink, progress: 0, days: Vec::new() }, usage: Usage::default() }
    }

    /// Counts a generator call's tokens and turns its failure into the engine's.
    fn count(&mut self, result: Result<Draft, GenerateError>) -> Result<Draft, EngineError> {
        match result {
            Ok(draft) => {
                self.usage += draft.usage;
                Ok(draft)
            }
            Err(e) => {
                self.usage += e.usage;
                Err(EngineError::new(e.code, e.detail))
            }
        }
    }

    /// The `error` event of a failed run: a cancelled one carries the days drafted so far.
    fn fail(&mut self, lang: tripstream_domain::Language, e: &EngineError) {
        let cancelled = e.code == ErrorCode::Cancelled;
        let partial_days = (cancelled && !self.out.days.is_empty()).then(|| std::mem::take(&mut self.out.days));
        self.out.emit(StreamEvent::Error(Failure {
            message: messages::error(lang, e.code),
            error: e.code,
            retryable: e.code.is_retryable(),
            usage: (self.usage != Usage::default()).then_some(self.usage),
            partial_days,
        }));
    }
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

    fn new(run: &'a mut RunState<'b>, ctx: &'a PlanContext) -> Self {
        Self { out: &mut run.out, ctx, days_total: ctx.request.dates.len().max(1), days_done: 0, chars_in_day: 0 }
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
