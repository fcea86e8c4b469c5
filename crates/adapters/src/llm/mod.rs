//! Plans from real language models. [`LlmPlanner`] is the [`PlanGenerator`] over any [`ChatModel`]
//! (Gemini, OpenAI-compatible): it renders the prompts, streams the reply through the incremental parser
//! so people read activities and days as they are written, and turns the finished JSON into a draft,
//! matched against the bundled places where the destination is known.

mod frames;
pub mod gemini;
pub mod incremental;
pub mod openai;
pub mod prompts;
pub mod schema;
mod swap;
pub mod transport;

#[cfg(test)]
mod properties;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use tripstream_domain::Language;
use tripstream_domain::event::ErrorCode;
use tripstream_domain::plan::{Activity, Day, GeoPoint, Usage};
use tripstream_domain::rules::{Finding, normalize_name, sights_elsewhere};
use tripstream_domain::text::{activity_line, day_heading, day_total_line};
use tripstream_engine::{
    DayRequest, Draft, DraftSink, GenerateError, GeneratorInfo, PlanContext, PlanGenerator, Quiet,
};

pub use gemini::{Gemini, GeminiConfig};
pub use openai::{OpenAi, OpenAiConfig};
pub use prompts::{PromptError, Prompts};
pub use transport::{RetryPolicy, Timeouts};

use crate::catalog::{Catalog, DestinationData, KnownPlace};
use crate::offline::{OfflineConfig, OfflinePlanner};
use incremental::{Piece, PlanStream};
use prompts::{ModelPlanJson, Rendered};
use schema::{ModelActivity, ModelCategory, ModelDay, ModelPlan};

/// How a reply ended, as the provider said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finish {
    Stop,
    /// The output token limit cut the reply.
    MaxTokens,
    /// The provider withheld the reply (safety, recitation, a content filter…).
    Blocked(String),
}

/// What a finished call reports besides its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    pub finish: Finish,
    pub usage: Usage,
}

/// One streaming chat call to a provider, in its own wire format.
#[async_trait]
pub trait ChatModel: Send + Sync {
    fn provider(&self) -> &'static str;
    fn model(&self) -> &str;

    /// Sends `prompt` and passes each piece of reply text to `on_text` as it arrives. Transient failures
    /// before the reply starts are retried inside; a failure after it started is returned. The prompt is
    /// owned so that it can be dropped once sent: a stream holds memory for its whole length. The reply
    /// is limited to `max_output_tokens` (or the provider's configured ceiling, if lower).
    async fn stream(
        &self,
        prompt: Rendered,
        max_output_tokens: u32,
        on_text: &mut (dyn for<'t> FnMut(&'t str) + Send),
    ) -> Result<Completion, GenerateError>;
}

pub struct LlmPlanner {
    model: Arc<dyn ChatModel>,
    prompts: Arc<Prompts>,
    catalog: Arc<Catalog>,
    /// Plans the days a model will not write, from the bundled data.
    offline: OfflinePlanner,
}

/// A model's reply read as a draft.
struct Reply {
    draft: Draft,
    /// The token limit cut it: `draft` holds the days finished before the cut.
    cut: bool,
    /// How many days went to the sink as `day`s while the reply streamed.
    streamed: usize,
}

impl LlmPlanner {
    pub fn new(model: Arc<dyn ChatModel>, prompts: Arc<Prompts>, catalog: Arc<Catalog>) -> Self {
        let offline = OfflinePlanner::new(catalog.clone(), OfflineConfig::default());
        Self { model, prompts, catalog, offline }
    }

    /// Streams the reply to `prompt` as days of the trip from day `first` (0-based) on, `days` of them
    /// expected (which bounds the reply's tokens).
    async fn write(
        &self,
        ctx: &PlanContext,
        prompt: Rendered,
        (first, days): (usize, u32),
        sink: &mut dyn DraftSink,
    ) -> Result<Reply, GenerateError> {
        let mut known = KnownPlaces::new(self.catalog.get(&ctx.destination.id).map(Arc::as_ref));
        // The days finished while streaming, kept for a reply the token limit cuts.
        let mut closed: Vec<(ModelDay, Day)> = Vec::new();
        let lang = ctx.request.language;
        let currency = ctx.destination.currency.as_str();
        let mut parser = PlanStream::new();
        let mut on_text = |text: &str| {
            for piece in parser.push(text) {
                // Days past those asked for are not shown (nor kept: see below).
                let (Piece::DayStarted { index, .. } | Piece::Activity { index, .. } | Piece::DayClosed { index, .. }) =
                    &piece;
                if *index >= days as usize {
                    continue;
                }
                match piece {
                    Piece::DayStarted { index, theme } => {
                        let index = first + index;
                        let empty = ModelDay { day: index as u32 + 1, theme, activities: Vec::new() };
                        if let Ok(day) = empty.to_day(index, ctx) {
                            let gap = if index > first { "\n" } else { "" };
                            sink.text(&format!("{gap}{}\n", day_heading(&day, lang)));
                        }
                    }
                    Piece::Activity { activity, .. } => {
                        if let Some(mut a) = activity.to_activity(ctx.request.travelers) {
                            known.enrich(&mut a, ctx);
                            sink.text(&format!("{}\n", activity_line(&a, currency, lang)));
                        }
                    }
                    Piece::DayClosed { index, day: model_day } => {
                        if let Ok(mut day) = model_day.to_day(first + index, ctx) {
                            day.activities.iter_mut().for_each(|a| known.enrich(a, ctx));
                            day.daily_cost = day.activities_cost();
                            sink.text(&format!("{}\n", day_total_line(&day, currency, lang)));
                            sink.day(&day);
                            closed.push((model_day, day));
                        }
                    }
                }
            }
        };
        let max_tokens = output_tokens(days);
        let completion = self.model.stream(prompt, max_tokens, &mut on_text).await?;
        let usage = completion.usage;
        let bad = |detail: String| GenerateError { code: ErrorCode::LlmBadOutput, detail, usage };
        let streamed = closed.len();
        match completion.finish {
            Finish::Stop => {}
            // The days finished before the cut are kept; the rest are asked for again.
            Finish::MaxTokens if !closed.is_empty() => {
                let notes = closed.iter().flat_map(|(m, _)| missing_costs(m, &mut known, lang)).collect();
                let days = closed.into_iter().map(|(_, day)| day).collect();
                let draft = Draft { days, usage, notes, ..Draft::default() };
                return Ok(Reply { draft, cut: true, streamed });
            }
            Finish::MaxTokens => return Err(bad("the reply was cut at the output token limit".into())),
            Finish::Blocked(reason) => return Err(bad(format!("the provider withheld the reply: {reason}"))),
        }
        let plan = parser.finish().map_err(bad)?;
        let notes = plan.days.iter().flat_map(|d| missing_costs(d, &mut known, lang)).collect();
        let days = plan
            .days
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let mut day = d.to_day(first + i, ctx)?;
                day.activities.iter_mut().for_each(|a| known.enrich(a, ctx));
                Ok(day)
            })
            .collect::<Result<Vec<_>, String>>()
            .map_err(bad)?;
        let draft = Draft {
            title: Some(plan.title).filter(|t| !t.trim().is_empty()),
            days,
            tips: plan.tips,
            usage,
            generator: None,
            notes,
        };
        Ok(Reply { draft, cut: false, streamed })
    }

    /// The whole trip from a reply: a day the reply lacks (too few days, an empty day, a reply cut by the
    /// token limit) is asked for again on its own, as a regeneration of that day; a model that will not
    /// write it (no day, an empty one, or one that repeats the other days' places) leaves it to the
    /// offline planner. Each is noted in the plan's warnings. Days past the trip are dropped.
    async fn complete(
        &self,
        ctx: &PlanContext,
        reply: Reply,
        sink: &mut dyn DraftSink,
    ) -> Result<Draft, GenerateError> {
        let mut draft = self.fill(ctx, reply, sink).await?;
        if let Some(data) = self.catalog.get(&ctx.destination.id) {
            let notes = swap::swap_repeats(&mut draft, data, ctx);
            draft.notes.extend(notes);
        }
        Ok(draft)
    }

    /// [`Self::complete`]'s missing days.
    async fn fill(&self, ctx: &PlanContext, reply: Reply, sink: &mut dyn DraftSink) -> Result<Draft, GenerateError> {
        let lang = ctx.request.language;
        let n = ctx.request.dates.len() as usize;
        let mut draft = reply.draft;
        draft.days.truncate(n);
        let missing: Vec<usize> =
            (0..n).filter(|&i| draft.days.get(i).is_none_or(|d| d.activities.is_empty())).collect();
        if missing.is_empty() {
            return Ok(draft);
        }
        if reply.cut {
            draft.notes.push(messages::cut(lang));
        }
        while draft.days.len() < n {
            let empty = ModelDay { day: draft.days.len() as u32 + 1, theme: String::new(), activities: Vec::new() };
            draft.days.push(empty.to_day(draft.days.len(), ctx).map_err(internal)?);
        }
        let mut streamed = reply.streamed;
        let currency = ctx.destination.currency.as_str();
        for index in missing {
            let (day, note) = self.fill_day(ctx, &mut draft, index).await?;
            draft.notes.push(note);
            // A day that follows those already streamed is shown as it would have been.
            if index == streamed {
                for (j, line) in tripstream_domain::text::day_lines(&day, currency, lang).into_iter().enumerate() {
                    let gap = if index > 0 && j == 0 { "\n" } else { "" };
                    sink.text(&format!("{gap}{line}\n"));
                }
                sink.day(&day);
                streamed += 1;
            }
            draft.days[index] = day;
        }
        Ok(draft)
    }

    /// Day `index` of `draft`, asked of the model once and else planned offline, with the note saying
    /// which. The calls' tokens are added to the draft's.
    async fn fill_day(
        &self,
        ctx: &PlanContext,
        draft: &mut Draft,
        index: usize,
    ) -> Result<(Day, String), GenerateError> {
        let lang = ctx.request.language;
        let ask = DayRequest { current: draft, index: index as u32, instruction: None, refining: None };
        let asked = self.regenerate_day(ctx, &ask, &mut Quiet).await;
        let (usage, day) = match asked {
            Ok(one) => (one.usage, one.days.into_iter().next().filter(|d| fresh(d, draft, index))),
            Err(e) => (e.usage, None),
        };
        draft.usage += usage;
        if let Some(day) = day {
            return Ok((day, messages::asked_again(lang, index + 1)));
        }
        let ask = DayRequest { current: draft, index: index as u32, instruction: None, refining: None };
        let planned = self.offline.regenerate_day(ctx, &ask, &mut Quiet).await.map_err(|e| GenerateError {
            code: ErrorCode::LlmBadOutput,
            detail: format!("day {} is missing and could not be planned offline: {}", index + 1, e.detail),
            usage: Usage::default(),
        })?;
        let day = planned.days.into_iter().next().filter(|d| !d.activities.is_empty()).ok_or_else(|| {
            GenerateError::new(ErrorCode::LlmBadOutput, format!("day {} is missing from the reply", index + 1))
        })?;
        Ok((day, messages::planned_offline(lang, index + 1)))
    }
}

/// Whether a day a model wrote for slot `index` is one: it has activities, and no sight of it is one
/// of the other days' (a stubborn model answers with a day it already wrote).
fn fresh(day: &Day, draft: &Draft, index: usize) -> bool {
    let others = sights_elsewhere(&draft.days, index);
    !day.activities.is_empty()
        && !day.activities.iter().filter(|a| !a.is_meal()).any(|a| others.contains(&normalize_name(&a.name)))
}

/// A note for each activity of `day` whose cost the model left out.
fn missing_costs(day: &ModelDay, known: &mut KnownPlaces<'_>, lang: Language) -> Vec<String> {
    day.activities
        .iter()
        .filter(|a| a.cost_per_person.is_none())
        .map(|a| messages::missing_cost(lang, a.name.trim(), known.find(a.name.trim()).is_some()))
        .collect()
}

/// What the model path says in a plan's warnings about what it filled in.
mod messages {
    use tripstream_domain::Language;

    pub fn cut(lang: Language) -> String {
        match lang {
            Language::Ko => "모델의 답변이 출력 한도에서 잘려 빠진 날을 다시 요청했습니다.".into(),
            Language::En => {
                "The model's reply was cut at its output limit; the missing days were asked for again.".into()
            }
        }
    }

    pub fn asked_again(lang: Language, day: usize) -> String {
        match lang {
            Language::Ko => format!("{day}일차는 모델의 답변에 빠져 있어 따로 다시 요청했습니다."),
            Language::En => format!("Day {day} was missing from the model's reply and was asked for on its own."),
        }
    }

    pub fn planned_offline(lang: Language, day: usize) -> String {
        match lang {
            Language::Ko => format!("{day}일차는 모델이 쓰지 않아 내장 여행 데이터로 계획했습니다."),
            Language::En => {
                format!("Day {day} was not written by the model; it was planned from the bundled travel data.")
            }
        }
    }

    pub fn missing_cost(lang: Language, name: &str, known: bool) -> String {
        match (lang, known) {
            (Language::Ko, true) => format!("'{name}'의 비용이 빠져 있어 내장 데이터의 금액을 썼습니다."),
            (Language::Ko, false) => format!("'{name}'의 비용이 빠져 있고 내장 데이터에도 없어 무료로 계산했습니다."),
            (Language::En, true) => format!("'{name}' came without a cost; the bundled figure is used."),
            (Language::En, false) => {
                format!("'{name}' came without a cost and is not in the bundled data; it is counted as free.")
            }
        }
    }
}

#[async_trait]
impl PlanGenerator for LlmPlanner {
    fn info(&self) -> GeneratorInfo {
        GeneratorInfo {
            provider: self.model.provider().into(),
            model: self.model.model().into(),
            prompt_version: self.prompts.version().into(),
        }
    }

    async fn generate_draft(&self, ctx: &PlanContext, sink: &mut dyn DraftSink) -> Result<Draft, GenerateError> {
        let prompt = self.prompts.draft(ctx, Some(&self.catalog)).map_err(internal)?;
        let reply = self.write(ctx, prompt, (0, ctx.request.dates.len()), sink).await?;
        self.complete(ctx, reply, sink).await
    }

    async fn refine_plan(
        &self,
        ctx: &PlanContext,
        current: &Draft,
        findings: &[Finding],
        sink: &mut dyn DraftSink,
    ) -> Result<Draft, GenerateError> {
        let current = ModelPlanJson::of(&model_plan(current, ctx.request.travelers));
        let prompt = self.prompts.refine(ctx, Some(&self.catalog), &current, findings).map_err(internal)?;
        let reply = self.write(ctx, prompt, (0, ctx.request.dates.len()), sink).await?;
        self.complete(ctx, reply, sink).await
    }

    /// The model is shown the other days (so that it repeats none of their places), the day's date and
    /// weather, the budget the other days leave and the traveller's instruction, and answers one day in
    /// the plan's JSON shape, read by the same parser and repairs as a whole plan.
    async fn regenerate_day(
        &self,
        ctx: &PlanContext,
        ask: &DayRequest<'_>,
        sink: &mut dyn DraftSink,
    ) -> Result<Draft, GenerateError> {
        let others = Draft { days: ask.other_days().cloned().collect(), ..Draft::default() };
        let others = model_plan(&others, ctx.request.travelers).days;
        let prompt = self.prompts.regenerate(ctx, Some(&self.catalog), ask, &others).map_err(internal)?;
        let mut draft = self.write(ctx, prompt, (ask.index as usize, 1), sink).await?.draft;
        draft.days.truncate(1);
        Ok(draft)
    }
}

/// The output tokens a plan of `days` days may take: a day of eight activities in Korean is about 700
/// tokens of JSON, the title and tips a few hundred; the rest is headroom. A model that runs on past this
/// is cut (`MAX_TOKENS`, `llm_bad_output`) instead of costing a trip's worth many times over.
pub fn output_tokens(days: u32) -> u32 {
    days.saturating_add(1).saturating_mul(1024)
}

fn internal(detail: String) -> GenerateError {
    GenerateError::new(ErrorCode::Internal, detail)
}

/// A draft in the shape the model answers in, for the refine prompt.
fn model_plan(draft: &Draft, travelers: u32) -> ModelPlan {
    let travelers = u64::from(travelers.max(1));
    ModelPlan {
        title: draft.title.clone().unwrap_or_default(),
        days: draft
            .days
            .iter()
            .map(|d| ModelDay {
                day: d.day,
                theme: d.theme.clone(),
                activities: d
                    .activities
                    .iter()
                    .map(|a| ModelActivity {
                        time: a.time.to_string(),
                        duration_minutes: u32::from(a.duration_minutes),
                        name: a.name.clone(),
                        description: a.description.clone(),
                        category: ModelCategory::from(a.category),
                        area: a.area.clone(),
                        cost_per_person: Some(a.cost / travelers),
                        indoor: Some(a.indoor),
                    })
                    .collect(),
            })
            .collect(),
        tips: draft.tips.clone(),
    }
}

/// The destination's bundled places, each activity name looked up once per draft: an activity is
/// enriched as it streams, again when its day closes, and again in the final plan.
struct KnownPlaces<'a> {
    data: Option<&'a DestinationData>,
    seen: HashMap<String, Option<KnownPlace>>,
}

impl<'a> KnownPlaces<'a> {
    fn new(data: Option<&'a DestinationData>) -> Self {
        Self { data, seen: HashMap::new() }
    }

    /// Where the model names a bundled place, trust the data: its coordinates, whether it is indoors,
    /// and its typical cost when the model's figure is off by more than half.
    fn enrich(&mut self, activity: &mut Activity, ctx: &PlanContext) {
        if let Some(place) = self.find(&activity.name) {
            enrich(activity, place, ctx);
        }
    }

    fn find(&mut self, name: &str) -> Option<KnownPlace> {
        let data = self.data?;
        match self.seen.get(name) {
            Some(place) => *place,
            None => *self.seen.entry(name.to_owned()).or_insert_with(|| data.find_place(name)),
        }
    }
}

fn enrich(activity: &mut Activity, place: KnownPlace, ctx: &PlanContext) {
    activity.location.get_or_insert(GeoPoint { lat: place.lat, lon: place.lon });
    activity.indoor = place.indoor;
    let typical = place.cost.saturating_mul(u64::from(ctx.request.travelers));
    let off = if typical == 0 {
        activity.cost > 0
    } else {
        activity.cost.saturating_mul(2) < typical || activity.cost > typical.saturating_mul(2)
    };
    if off {
        tracing::debug!(name = %activity.name, model = activity.cost, typical, "model cost replaced by the known one");
        activity.cost = typical;
    }
}
