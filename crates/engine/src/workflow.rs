//! The five steps of a generation and the progress accounting around them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tripstream_domain::checks::{CheckContext, Severity, check, fix::reschedule_day};
use tripstream_domain::event::{Chunk, Complete, DayReady, ErrorCode, Failure, StepMessage, progress};
use tripstream_domain::plan::GeoPoint;
use tripstream_domain::plan::{Day, Metadata, PlanDestination, Usage, plan_id};
use tripstream_domain::repair::{repair, repair_day};
use tripstream_domain::rules::{Finding, ValidationContext, validate};
use tripstream_domain::{BudgetCeilings, Destination, Localized, Plan, PlanRequest, Step, StreamEvent, messages};

use crate::places::PlaceNotes;
use crate::ports::{
    DayRequest, Destined, Draft, DraftSink, GenerateError, GeneratorInfo, Pacing, PlaceVerifier, PlanContext,
    PlanGenerator, Quiet, ResolveError, Weather, WeatherReport,
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

/// One day of a finished plan to write again (`POST /plans/{id}/days/{n}/regenerate`).
#[derive(Debug, Clone, Copy)]
pub struct Regeneration<'a> {
    /// The plan's latest version, made from the request the run is given.
    pub plan: &'a Plan,
    /// The day to write again, 1-based.
    pub day: u32,
    /// What the traveller asked for, at most [`Regeneration::MAX_INSTRUCTION_CHARS`] characters.
    pub instruction: Option<&'a str>,
}

impl Regeneration<'_> {
    pub const MAX_INSTRUCTION_CHARS: usize = 200;

    fn index(&self) -> u32 {
        self.day.saturating_sub(1)
    }
}

/// Runs generations. Cheap to clone and share: it holds only `Arc`s and settings.
#[derive(Clone)]
pub struct Engine {
    generator: Arc<dyn PlanGenerator>,
    weather: Arc<dyn Weather>,
    config: EngineConfig,
    /// Checks a generator's places before the plan keeps them; none: places are taken as written.
    places: Option<Arc<dyn PlaceVerifier>>,
    /// Waited on before the weather look-up and the draft; `None`: only yield once there.
    pacing: Option<Arc<dyn Pacing>>,
}

impl Engine {
    pub fn new(generator: Arc<dyn PlanGenerator>, weather: Arc<dyn Weather>, config: EngineConfig) -> Self {
        Self { generator, weather, config, places: None, pacing: None }
    }

    /// The engine with `verifier` checking every generated plan's places.
    pub fn with_places(self, verifier: Arc<dyn PlaceVerifier>) -> Self {
        Self { places: Some(verifier), ..self }
    }

    /// The same engine, waiting on `pacing` after the status of `gather_context` and of `generate_draft`,
    /// before their work (a replay has none, and does not wait).
    pub fn with_pacing(self, pacing: Arc<dyn Pacing>) -> Self {
        Self { pacing: Some(pacing), ..self }
    }

    async fn paced(&self, source: Source<'_>) {
        match (&self.pacing, source) {
            (_, Source::Replay(_)) => {}
            (Some(pacing), _) => pacing.ready().await,
            // Without pacing the step still yields once after its status, so that a caller polling the
            // run once for its first event (the server does, in the request's own task) stops there.
            (None, _) => tokio::task::yield_now().await,
        }
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
    /// replay from a generation only by `metadata.cached` and by its speed. The plan is all it reads: its
    /// destination comes from the plan too, so a replay never waits for a geocoder.
    pub async fn replay(&self, request: &PlanRequest, plan: &Plan, sink: &mut dyn EventSink) {
        let mut run = RunState::new(sink);
        let source = Source::Replay(plan);
        let destination = replayed_destination(plan);
        // A stored plan has nothing to wait for and nothing to fail on: every step is local.
        if let Err(e) = self.steps(request, Destined::Known(&destination), source, &mut run).await {
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
        destination: impl Into<Destined<'_>>,
        sink: &mut dyn EventSink,
        cancelled: impl Future<Output = ()>,
    ) -> Result<Plan, EngineError> {
        self.run_source(request, destination.into(), Source::Generate, sink, cancelled).await
    }

    /// Writes one day of a finished plan again through the same five steps, with the same events as a
    /// generation: the `day` event is the new day's, `complete` carries the whole plan, whose other days
    /// are exactly those of `regeneration.plan` (its id and title too). The plan is validated and refined
    /// as a whole; refinement and repair change the new day only. `request` is the plan's own.
    pub async fn regenerate_until(
        &self,
        request: &PlanRequest,
        destination: impl Into<Destined<'_>>,
        regeneration: &Regeneration<'_>,
        sink: &mut dyn EventSink,
        cancelled: impl Future<Output = ()>,
    ) -> Result<Plan, EngineError> {
        self.run_source(request, destination.into(), Source::Regenerate(regeneration), sink, cancelled).await
    }

    async fn run_source(
        &self,
        request: &PlanRequest,
        destination: Destined<'_>,
        source: Source<'_>,
        sink: &mut dyn EventSink,
        cancelled: impl Future<Output = ()>,
    ) -> Result<Plan, EngineError> {
        let mut run = RunState::new(sink);
        let steps = tokio::time::timeout(self.config.total_timeout, self.steps(request, destination, source, &mut run));
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
        destination: Destined<'_>,
        source: Source<'_>,
        run: &mut RunState<'_>,
    ) -> Result<Plan, EngineError> {
        let started = Instant::now();
        if let Source::Regenerate(r) = source
            && !(1..=r.plan.days.len()).contains(&(r.day as usize))
        {
            return Err(EngineError::new(ErrorCode::Internal, format!("the plan has no day {}", r.day)));
        }
        let ctx = self.gather_context(request, destination, source, run).await?;
        let draft = self.generate_draft(&ctx, source, run).await?;
        let draft = match source {
            Source::Generate => run.places.verify(self.places.as_deref(), &ctx, draft, None).await,
            Source::Regenerate(r) => {
                run.places.verify(self.places.as_deref(), &ctx, draft, Some(r.index() as usize)).await
            }
            Source::Replay(_) => draft,
        };
        let id = match source {
            Source::Generate => plan_id(uuid::Uuid::now_v7().as_u128()),
            Source::Replay(plan) | Source::Regenerate(&Regeneration { plan, .. }) => plan.id.clone(),
        };
        let checked = self.validate_plan(&ctx, &id, draft, source, run);
        let mut checked = match source {
            Source::Generate | Source::Regenerate(_) => self.refine_plan(&ctx, &id, checked, source, run).await?,
            Source::Replay(_) => checked,
        };
        // A refined draft may name new places: they are checked too (the ones already answered are free).
        if checked.iterations > 1 {
            let only = match source {
                Source::Regenerate(r) => Some(r.index() as usize),
                _ => None,
            };
            let draft = std::mem::take(&mut checked.draft);
            checked.draft = run.places.verify(self.places.as_deref(), &ctx, draft, only).await;
        }
        self.finalize_plan(&ctx, &id, checked, source, started, run)
    }

    /// `gather_context`: the weather for every day of the trip (10 → 20). A plan being changed keeps the
    /// weather it was made with, so that its other days stay as they were.
    #[tracing::instrument(name = "gather_context", skip_all)]
    async fn gather_context(
        &self,
        request: &PlanRequest,
        destination: Destined<'_>,
        source: Source<'_>,
        run: &mut RunState<'_>,
    ) -> Result<PlanContext, EngineError> {
        let lang = request.language;
        let status = messages::gather_status(lang, request.location.as_str());
        run.out.step(false, Step::GatherContext, progress::GATHER_STATUS, status, None);
        self.paced(source).await;
        let looked_up;
        let destination = match destination {
            Destined::Known(destination) => destination,
            Destined::Lookup(destinations) => {
                looked_up = destinations.resolve(&request.location).await.map_err(|e| {
                    let detail = match &e {
                        // Not the list of known places the error's text carries for a 422.
                        ResolveError::Unknown { location, .. } => format!("unknown destination {location:?}"),
                        ResolveError::Unavailable(detail) => detail.clone(),
                    };
                    EngineError::new(e.code(), detail)
                })?;
                &looked_up
            }
        };
        let report = match source {
            Source::Generate => self
                .weather
                .forecast(destination, request)
                .await
                .map_err(|e| EngineError::new(ErrorCode::WeatherUnavailable, e.0))?,
            Source::Replay(plan) | Source::Regenerate(&Regeneration { plan, .. }) => WeatherReport {
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
    /// that cannot be parsed is asked for once more. A regeneration drafts its one day and keeps the rest.
    #[tracing::instrument(name = "generate_draft", skip_all)]
    async fn generate_draft(
        &self,
        ctx: &PlanContext,
        source: Source<'_>,
        run: &mut RunState<'_>,
    ) -> Result<Draft, EngineError> {
        let lang = ctx.request.language;
        let status = match source {
            Source::Regenerate(r) => messages::regenerate_status(lang, r.day),
            _ => messages::draft_status(lang),
        };
        run.out.step(false, Step::GenerateDraft, progress::DRAFT_STATUS, status, None);
        self.paced(source).await;
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
            Source::Regenerate(r) => {
                let current = draft_of(r.plan);
                let ask =
                    DayRequest { current: &current, index: r.index(), instruction: r.instruction, refining: None };
                let first = self.redraft_day(ctx, &ask, &mut DraftProgress::one_day(run, ctx, r.index())).await;
                let day = match run.count(first) {
                    Err(e) if e.code == ErrorCode::LlmBadOutput => {
                        tracing::warn!(detail = %e.detail, "day was unusable; asking once more");
                        let second =
                            self.redraft_day(ctx, &ask, &mut DraftProgress::one_day(run, ctx, r.index())).await;
                        run.count(second)?
                    }
                    other => other?,
                };
                with_day(current, r.index(), day)
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
                draft_of(plan)
            }
        };
        let draft = normalize(draft, ctx);
        let done = match source {
            Source::Regenerate(r) => messages::regenerate_done(lang, r.day),
            _ => messages::draft_done(lang, draft.days.len()),
        };
        run.out.step(true, Step::GenerateDraft, progress::DRAFT_DONE, done, None);
        Ok(draft)
    }

    /// `validate_plan`: the commonsense repairs (route order, times), then rules 1–7 and the commonsense
    /// checks over the draft as the plan it would become (65 → 70). A stored plan was validated when it
    /// was made.
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
        let (draft, findings) = match source {
            Source::Generate => self.repair_and_check(id, ctx, draft, None),
            Source::Regenerate(r) => self.repair_and_check(id, ctx, draft, Some(r.index() as usize)),
            Source::Replay(_) => (draft, Vec::new()),
        };
        run.out.step(true, Step::ValidatePlan, progress::VALIDATE_DONE, messages::validate_done(lang), None);
        Checked { draft, findings, iterations: 1 }
    }

    /// The draft with what needs no judgement repaired (each day's order and times), and every finding
    /// of rules 1–7 and the commonsense checks that remains.
    /// A regeneration (`only`, 0-based) repairs and is told about its one day alone: the others are kept.
    fn repair_and_check(
        &self,
        id: &str,
        ctx: &PlanContext,
        mut draft: Draft,
        only: Option<usize>,
    ) -> (Draft, Vec<Finding>) {
        let cctx = check_context(ctx);
        let origin = GeoPoint { lat: ctx.destination.lat, lon: ctx.destination.lon };
        for (index, day) in draft.days.iter_mut().enumerate() {
            if only.is_some_and(|o| o != index) {
                continue;
            }
            if reschedule_day(day, index, origin, &cctx) {
                day.daily_cost = day.activities_cost();
            }
        }
        let plan = self.assemble(id, ctx, &draft);
        let mut findings = validate(&plan, &validation_context(ctx));
        let about_it = |c: &tripstream_domain::checks::Check| only.is_none_or(|o| c.day() == Some(o as u32 + 1));
        findings.extend(check(&plan, &cctx).into_iter().filter(about_it).map(Finding::Check));
        (draft, findings)
    }

    /// `refine_plan`: while the draft breaks rules, the generator is asked to fix them, up to
    /// `max_refine_iterations` times (70 → 90); each answer is validated again, and one that makes things
    /// worse is not taken. A regeneration asks for its one day again, told what the last one broke.
    #[tracing::instrument(name = "refine_plan", skip_all)]
    async fn refine_plan(
        &self,
        ctx: &PlanContext,
        id: &str,
        mut checked: Checked,
        source: Source<'_>,
        run: &mut RunState<'_>,
    ) -> Result<Checked, EngineError> {
        let lang = ctx.request.language;
        let max = self.config.max_refine_iterations;
        let mut i = 0;
        while needs_work(&checked.findings) && i < max {
            i += 1;
            let (status_at, done_at) = progress::refine(i, max);
            run.out.step(false, Step::RefinePlan, status_at, messages::refine_status(lang, i, max), Some(i));
            tracing::info!(iteration = i, findings = checked.findings.len(), "refining plan");
            let told: Vec<Finding> =
                checked.findings.iter().filter(|f| f.severity() != Severity::Notice).cloned().collect();
            let refined = match source {
                Source::Regenerate(r) => {
                    let current = draft_of(r.plan);
                    let attempt = &checked.draft.days[r.index() as usize];
                    let ask = DayRequest {
                        current: &current,
                        index: r.index(),
                        instruction: r.instruction,
                        refining: Some((attempt, &told)),
                    };
                    let one = self.redraft_day(ctx, &ask, &mut Quiet).await;
                    one.map(|one| with_day(checked.draft.clone(), r.index(), one))
                }
                _ => self.generator.refine_plan(ctx, &checked.draft, &told, &mut Quiet).await,
            };
            let mut stubborn = false;
            match run.count(refined) {
                Ok(refined) => {
                    checked.iterations += 1;
                    let only = match source {
                        Source::Regenerate(r) => Some(r.index() as usize),
                        _ => None,
                    };
                    let (refined, findings) = self.repair_and_check(id, ctx, normalize(refined, ctx), only);
                    stubborn = same_plan(&refined, &checked.draft);
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
            // A model that answers the findings with the plan it had already written will do so again:
            // asking once more would only spend its tokens and the traveller's time.
            if stubborn {
                tracing::info!(iteration = i, "the model sent the same plan again; refining no further");
                break;
            }
        }
        Ok(checked)
    }

    /// `finalize_plan`: the plan assembled and repaired, its metadata, `complete` (95 → 100). A remaining
    /// hard finding (rules 1–4) is never delivered: it is `llm_bad_output`; the rest become warnings. A
    /// regeneration repairs its new day only, and the plan keeps its id.
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
            Source::Generate | Source::Regenerate(_) => {
                let mut plan = self.assemble(id, ctx, &checked.draft);
                let mut remaining = match source {
                    Source::Regenerate(r) => repair_day(&mut plan, r.index() as usize, &validation_context(ctx)),
                    _ => repair(&mut plan, &validation_context(ctx)),
                };
                if let Source::Regenerate(r) = source
                    && !same_other_days(&plan, r)
                {
                    return Err(EngineError::new(ErrorCode::Internal, "a regeneration changed another day"));
                }
                if remaining.iter().any(Finding::is_hard) {
                    let detail = remaining.iter().map(|f| f.message(lang)).collect::<Vec<_>>().join(" ");
                    return Err(EngineError::new(ErrorCode::LlmBadOutput, detail));
                }
                remaining.extend(check(&plan, &check_context(ctx)).into_iter().map(Finding::Check));
                plan.warnings = checked.draft.notes.clone();
                plan.warnings.extend(remaining.iter().map(|f| f.message(lang)));
                plan.warnings.extend(run.places.warnings(ctx, &plan.days));
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
            plan: Arc::new(plan.clone()),
            plan_id: None,
        }));
        Ok(plan)
    }

    /// Asks the generator for day `ask.index`: a draft of exactly that one day.
    async fn redraft_day(
        &self,
        ctx: &PlanContext,
        ask: &DayRequest<'_>,
        sink: &mut dyn DraftSink,
    ) -> Result<Draft, GenerateError> {
        let mut draft = self.generator.regenerate_day(ctx, ask, sink).await?;
        if draft.days.is_empty() {
            let detail = "the answer holds no day".into();
            return Err(GenerateError { code: ErrorCode::LlmBadOutput, detail, usage: draft.usage });
        }
        draft.days.truncate(1);
        Ok(draft)
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
    /// A stored plan with one day written again by the generator.
    Regenerate(&'a Regeneration<'a>),
}

/// A finished plan as the draft it was.
fn draft_of(plan: &Plan) -> Draft {
    Draft { title: Some(plan.title.clone()), days: plan.days.clone(), tips: plan.tips.clone(), ..Draft::default() }
}

/// `draft` with day `index` (0-based) replaced by the day of `one`, and `one`'s cost and author.
fn with_day(mut draft: Draft, index: u32, one: Draft) -> Draft {
    if let (Some(slot), Some(day)) = (draft.days.get_mut(index as usize), one.days.into_iter().next()) {
        *slot = day;
    }
    Draft { usage: one.usage, generator: one.generator, ..draft }
}

/// Whether every day but the regenerated one is the stored plan's, exactly.
fn same_other_days(plan: &Plan, r: &Regeneration<'_>) -> bool {
    let index = r.index() as usize;
    plan.days.len() == r.plan.days.len()
        && plan.days.iter().zip(&r.plan.days).enumerate().all(|(i, (new, old))| i == index || new == old)
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

/// How a day runs at the destination (its data, or common defaults) and the UTC offset of each day.
pub fn check_context(ctx: &PlanContext) -> CheckContext {
    let dest = &ctx.destination;
    let profile = dest.profile.clone().unwrap_or_else(tripstream_domain::DestinationProfile::generic);
    let tz = jiff::tz::TimeZone::get(&dest.timezone).ok();
    let utc_offsets = match tz {
        Some(tz) => ctx
            .request
            .dates
            .iter()
            .filter_map(|date| {
                let noon = tz.to_timestamp(date.at(12, 0, 0, 0)).ok()?;
                Some(tz.to_offset(noon).seconds() / 60)
            })
            .collect(),
        // No time zone database: the checks fall back to the sun's own time at the longitude.
        None => Vec::new(),
    };
    CheckContext { profile, utc_offsets }
}

/// Whether two drafts are the same plan (what each cost to write aside).
fn same_plan(a: &Draft, b: &Draft) -> bool {
    a.days == b.days && a.title == b.title && a.tips == b.tips
}

/// Whether findings call for refinement: anything but notices.
fn needs_work(findings: &[Finding]) -> bool {
    findings.iter().any(|f| f.severity() != Severity::Notice)
}

/// One run on its way through the steps: where its events go and the tokens it has spent, counted once,
/// as each generator call returns (success or failure), so a cancellation at any point reports them all.
struct RunState<'a> {
    out: Emitter<'a>,
    usage: Usage,
    /// What place verification said, pass after pass.
    places: PlaceNotes,
}

impl<'a> RunState<'a> {
    fn new(sink: &'a mut dyn EventSink) -> Self {
        Self {
            out: Emitter { sink, progress: 0, days: Vec::new() },
            usage: Usage::default(),
            places: PlaceNotes::default(),
        }
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

/// Orders findings lists: fewer hard findings first, then fewer that need work.
fn severity(findings: &[Finding]) -> (usize, usize) {
    (
        findings.iter().filter(|f| f.is_hard()).count(),
        findings.iter().filter(|f| f.severity() != Severity::Notice).count(),
    )
}

/// A stored plan's destination as a replay's context holds it. A replay checks, prices and repairs
/// nothing (the plan was checked when it was made), so the ceilings, climate and profile, which only
/// those read, are left empty.
fn replayed_destination(plan: &Plan) -> Destination {
    let d = &plan.destination;
    Destination {
        id: String::new(),
        name: Localized { ko: d.name.clone(), en: d.name.clone() },
        country: d.country.clone(),
        lat: d.lat,
        lon: d.lon,
        timezone: d.timezone.clone(),
        currency: plan.currency.clone(),
        budget: BudgetCeilings { low: 0, medium: 0, high: 0 },
        climate: None,
        profile: None,
    }
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
    /// The trip day (0-based) the first day written is.
    first: u32,
    days_total: u32,
    days_done: u32,
    chars_in_day: usize,
}

impl<'a, 'b> DraftProgress<'a, 'b> {
    /// Text expected per day of draft; only shapes the progress curve.
    const CHARS_PER_DAY: usize = 600;

    fn new(run: &'a mut RunState<'b>, ctx: &'a PlanContext) -> Self {
        let days_total = ctx.request.dates.len().max(1);
        Self { out: &mut run.out, ctx, first: 0, days_total, days_done: 0, chars_in_day: 0 }
    }

    /// For a draft of trip day `index` (0-based) alone.
    fn one_day(run: &'a mut RunState<'b>, ctx: &'a PlanContext, index: u32) -> Self {
        Self { first: index, days_total: 1, ..Self::new(run, ctx) }
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
        let day = normalize_from(draft, self.ctx, self.first + self.days_done).days.remove(0);
        self.days_done += 1;
        self.chars_in_day = 0;
        let progress = self.current();
        self.out.emit(StreamEvent::Day(DayReady { day, progress, step: Step::GenerateDraft }));
    }
}
