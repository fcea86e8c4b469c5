//! Plans from real language models. [`LlmPlanner`] is the [`PlanGenerator`] over any [`ChatModel`]
//! (Gemini, OpenAI-compatible): it renders the prompts, streams the reply through the incremental parser
//! so people read activities and days as they are written, and turns the finished JSON into a draft,
//! matched against the bundled places where the destination is known.

pub mod gemini;
pub mod incremental;
pub mod openai;
pub mod prompts;
pub mod schema;
pub mod transport;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use tripstream_domain::event::ErrorCode;
use tripstream_domain::plan::{Activity, GeoPoint, Usage};
use tripstream_domain::rules::Finding;
use tripstream_domain::text::{activity_line, day_heading, day_total_line};
use tripstream_engine::{Draft, DraftSink, GenerateError, GeneratorInfo, PlanContext, PlanGenerator};

pub use gemini::{Gemini, GeminiConfig};
pub use openai::{OpenAi, OpenAiConfig};
pub use prompts::{PromptError, Prompts};
pub use transport::{RetryPolicy, Timeouts};

use crate::catalog::{Catalog, DestinationData, KnownPlace};
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
    /// owned so that it can be dropped once sent: a stream holds memory for its whole length.
    async fn stream(
        &self,
        prompt: Rendered,
        on_text: &mut (dyn for<'t> FnMut(&'t str) + Send),
    ) -> Result<Completion, GenerateError>;
}

pub struct LlmPlanner {
    model: Arc<dyn ChatModel>,
    prompts: Arc<Prompts>,
    catalog: Arc<Catalog>,
}

impl LlmPlanner {
    pub fn new(model: Arc<dyn ChatModel>, prompts: Arc<Prompts>, catalog: Arc<Catalog>) -> Self {
        Self { model, prompts, catalog }
    }

    async fn write(
        &self,
        ctx: &PlanContext,
        prompt: Rendered,
        sink: &mut dyn DraftSink,
    ) -> Result<Draft, GenerateError> {
        let mut known = KnownPlaces::new(self.catalog.get(&ctx.destination.id).map(Arc::as_ref));
        let lang = ctx.request.language;
        let currency = ctx.destination.currency.as_str();
        let mut parser = PlanStream::new();
        let mut on_text = |text: &str| {
            for piece in parser.push(text) {
                match piece {
                    Piece::DayStarted { index, theme } => {
                        let empty = ModelDay { day: index as u32 + 1, theme, activities: Vec::new() };
                        if let Ok(day) = empty.to_day(index, ctx) {
                            let gap = if index > 0 { "\n" } else { "" };
                            sink.text(&format!("{gap}{}\n", day_heading(&day, lang)));
                        }
                    }
                    Piece::Activity { activity, .. } => {
                        if let Some(mut a) = activity.to_activity(ctx.request.travelers) {
                            known.enrich(&mut a, ctx);
                            sink.text(&format!("{}\n", activity_line(&a, currency, lang)));
                        }
                    }
                    Piece::DayClosed { index, day } => {
                        if let Ok(mut day) = day.to_day(index, ctx) {
                            day.activities.iter_mut().for_each(|a| known.enrich(a, ctx));
                            day.daily_cost = day.activities_cost();
                            sink.text(&format!("{}\n", day_total_line(&day, currency, lang)));
                            sink.day(&day);
                        }
                    }
                }
            }
        };
        let completion = self.model.stream(prompt, &mut on_text).await?;
        let usage = completion.usage;
        let bad = |detail: String| GenerateError { code: ErrorCode::LlmBadOutput, detail, usage };
        match completion.finish {
            Finish::Stop => {}
            Finish::MaxTokens => return Err(bad("the reply was cut at the output token limit".into())),
            Finish::Blocked(reason) => return Err(bad(format!("the provider withheld the reply: {reason}"))),
        }
        let plan = parser.finish().map_err(bad)?;
        let days = plan
            .days
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let mut day = d.to_day(i, ctx)?;
                day.activities.iter_mut().for_each(|a| known.enrich(a, ctx));
                Ok(day)
            })
            .collect::<Result<Vec<_>, String>>()
            .map_err(bad)?;
        Ok(Draft {
            title: Some(plan.title).filter(|t| !t.trim().is_empty()),
            days,
            tips: plan.tips,
            usage,
            generator: None,
        })
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
        self.write(ctx, prompt, sink).await
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
        self.write(ctx, prompt, sink).await
    }
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
                        cost_per_person: a.cost / travelers,
                        indoor: a.indoor,
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
        let Some(data) = self.data else { return };
        let place = match self.seen.get(&activity.name) {
            Some(place) => *place,
            None => *self.seen.entry(activity.name.clone()).or_insert_with(|| data.find_place(&activity.name)),
        };
        if let Some(place) = place {
            enrich(activity, place, ctx);
        }
    }
}

fn enrich(activity: &mut Activity, place: KnownPlace, ctx: &PlanContext) {
    activity.location.get_or_insert(GeoPoint { lat: place.lat, lon: place.lon });
    activity.indoor = place.indoor;
    let typical = place.cost.saturating_mul(u64::from(ctx.request.travelers));
    let off = if typical == 0 { activity.cost > 0 } else { activity.cost * 2 < typical || activity.cost > typical * 2 };
    if off {
        tracing::debug!(name = %activity.name, model = activity.cost, typical, "model cost replaced by the known one");
        activity.cost = typical;
    }
}
