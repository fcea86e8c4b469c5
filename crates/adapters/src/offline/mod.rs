//! The offline planner: the default [`PlanGenerator`]. Not an LLM, and it says so
//! (`metadata.provider = "offline"`); a real planner over the bundled catalog whose drafts pass the
//! same validator as any model's.

mod intent;
mod itinerary;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tripstream_domain::Day;
use tripstream_domain::event::ErrorCode;
use tripstream_domain::rules::{Finding, normalize_name};
use tripstream_domain::text::day_lines;
use tripstream_engine::{DayRequest, Draft, DraftSink, GenerateError, GeneratorInfo, PlanContext, PlanGenerator};

pub use intent::{Interest, Preferences, preferences};
pub use itinerary::{Options, Trip, plan_day, plan_days};

use crate::catalog::Catalog;

#[derive(Debug, Clone, Default)]
pub struct OfflineConfig {
    /// A pause between streamed lines (`OFFLINE_CHUNK_DELAY_MS`), for demos of the streaming UI.
    /// Zero by default: the offline planner answers as fast as it can.
    pub chunk_delay: Duration,
}

pub struct OfflinePlanner {
    catalog: Arc<Catalog>,
    config: OfflineConfig,
}

impl OfflinePlanner {
    /// Bumped whenever the algorithm changes what it plans, so cached plans of an older one are not served.
    pub const VERSION: &'static str = "offline-v4";

    pub fn new(catalog: Arc<Catalog>, config: OfflineConfig) -> Self {
        Self { catalog, config }
    }

    fn data(&self, ctx: &PlanContext) -> Result<&Arc<crate::catalog::DestinationData>, GenerateError> {
        self.catalog.get(&ctx.destination.id).ok_or_else(|| {
            GenerateError::new(ErrorCode::UnknownDestination, format!("no bundled data for {}", ctx.destination.id))
        })
    }

    async fn write(
        &self,
        ctx: &PlanContext,
        options: &Options,
        sink: &mut dyn DraftSink,
    ) -> Result<Draft, GenerateError> {
        let data = self.data(ctx)?;
        let lang = ctx.request.language;
        let checks = tripstream_engine::check_context(ctx);
        let trip = Trip { data, request: &ctx.request, weather: &ctx.weather, options, checks: &checks };
        let days: Vec<Day> = plan_days(&trip);
        self.stream(ctx, &days, sink).await;
        Ok(Draft {
            title: None,
            days,
            tips: data.tips.get(lang).to_vec(),
            usage: Default::default(),
            generator: None,
            notes: Vec::new(),
        })
    }

    /// Each day as readable lines, then its `day`.
    async fn stream(&self, ctx: &PlanContext, days: &[Day], sink: &mut dyn DraftSink) {
        for (i, day) in days.iter().enumerate() {
            for (j, line) in day_lines(day, &ctx.destination.currency, ctx.request.language).into_iter().enumerate() {
                let gap = if i > 0 && j == 0 { "\n" } else { "" };
                sink.text(&format!("{gap}{line}\n"));
                if !self.config.chunk_delay.is_zero() {
                    tokio::time::sleep(self.config.chunk_delay).await;
                }
            }
            sink.day(day);
        }
    }
}

/// The knobs that answer a validator's findings: spend less when over budget, plan indoors where rain
/// broke the rule.
fn answer(findings: &[Finding], total: u64, options: &mut Options) {
    for finding in findings {
        match finding {
            Finding::OverBudget { ceiling, .. } if total > 0 => {
                options.budget_factor = options.budget_factor.min(*ceiling as f64 / total as f64 * 0.9);
            }
            Finding::RainyDayOutdoors { day, .. } => {
                options.indoor_days.insert(*day);
            }
            _ => {}
        }
    }
}

#[async_trait]
impl PlanGenerator for OfflinePlanner {
    fn info(&self) -> GeneratorInfo {
        GeneratorInfo {
            provider: "offline".into(),
            model: "tripstream-offline-planner".into(),
            prompt_version: Self::VERSION.into(),
        }
    }

    async fn generate_draft(&self, ctx: &PlanContext, sink: &mut dyn DraftSink) -> Result<Draft, GenerateError> {
        self.write(ctx, &Options::default(), sink).await
    }

    async fn refine_plan(
        &self,
        ctx: &PlanContext,
        current: &Draft,
        findings: &[Finding],
        sink: &mut dyn DraftSink,
    ) -> Result<Draft, GenerateError> {
        let mut options = Options::default();
        let total = current.days.iter().fold(0u64, |sum, d| sum.saturating_add(d.activities_cost()));
        answer(findings, total, &mut options);
        self.write(ctx, &options, sink).await
    }

    /// The day planned on its own from the catalog: none of its old places or the other days' (its old
    /// restaurants only when nothing else fits), within what the other days leave of the budget, and the
    /// instruction read as preferences (food, indoors, less walking, museums, nature, shopping, night…).
    async fn regenerate_day(
        &self,
        ctx: &PlanContext,
        ask: &DayRequest<'_>,
        sink: &mut dyn DraftSink,
    ) -> Result<Draft, GenerateError> {
        let data = self.data(ctx)?;
        let prefs = ask.instruction.map(preferences).unwrap_or_default();
        let mut options = Options::default();
        let day_number = ask.index + 1;
        if prefs.indoors {
            options.indoor_days.insert(day_number);
        }
        // What one day may cost at this level, all travellers together, against what the others left.
        let travelers = u64::from(ctx.request.travelers.max(1));
        let allowance = data.budget.per_traveler_per_day(ctx.request.budget).saturating_mul(travelers);
        if allowance > 0 {
            options.budget_factor = (ask.budget_left(ctx) as f64 / allowance as f64).min(1.0);
        }
        if let Some((attempt, findings)) = ask.refining {
            let others = ask.other_days().fold(0u64, |sum, d| sum.saturating_add(d.activities_cost()));
            answer(findings, others.saturating_add(attempt.activities_cost()), &mut options);
        }
        let avoid: HashSet<String> =
            ask.current.days.iter().flat_map(|d| &d.activities).map(|a| normalize_name(&a.name)).collect();
        let checks = tripstream_engine::check_context(ctx);
        let trip = Trip { data, request: &ctx.request, weather: &ctx.weather, options: &options, checks: &checks };
        let day = plan_day(&trip, ask.index, &avoid, &prefs);
        self.stream(ctx, std::slice::from_ref(&day), sink).await;
        Ok(Draft { days: vec![day], ..Draft::default() })
    }
}
