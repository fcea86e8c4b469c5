//! The offline planner: the default [`PlanGenerator`]. Not an LLM, and it says so
//! (`metadata.provider = "offline"`); a real planner over the bundled catalog whose drafts pass the
//! same validator as any model's.

mod itinerary;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tripstream_domain::Day;
use tripstream_domain::event::ErrorCode;
use tripstream_domain::rules::Finding;
use tripstream_domain::text::day_lines;
use tripstream_engine::{Draft, DraftSink, GenerateError, GeneratorInfo, PlanContext, PlanGenerator};

pub use itinerary::{Options, Trip, plan_days};

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
    pub const VERSION: &'static str = "offline-v1";

    pub fn new(catalog: Arc<Catalog>, config: OfflineConfig) -> Self {
        Self { catalog, config }
    }

    async fn write(
        &self,
        ctx: &PlanContext,
        options: &Options,
        sink: &mut dyn DraftSink,
    ) -> Result<Draft, GenerateError> {
        let data = self.catalog.get(&ctx.destination.id).ok_or_else(|| {
            GenerateError::new(ErrorCode::UnknownDestination, format!("no bundled data for {}", ctx.destination.id))
        })?;
        let lang = ctx.request.language;
        let trip = Trip { data, request: &ctx.request, weather: &ctx.weather, options };
        let days: Vec<Day> = plan_days(&trip);
        for (i, day) in days.iter().enumerate() {
            for (j, line) in day_lines(day, &data.currency, lang).into_iter().enumerate() {
                let gap = if i > 0 && j == 0 { "\n" } else { "" };
                sink.text(&format!("{gap}{line}\n"));
                if !self.config.chunk_delay.is_zero() {
                    tokio::time::sleep(self.config.chunk_delay).await;
                }
            }
            sink.day(day);
        }
        Ok(Draft { title: None, days, tips: data.tips.get(lang).to_vec(), usage: Default::default(), generator: None })
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
        let total: u64 = current.days.iter().map(|d| d.activities_cost()).sum();
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
        self.write(ctx, &options, sink).await
    }
}
