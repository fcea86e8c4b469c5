//! The provider traits (ports) the engine drives, and the values that cross them.

use async_trait::async_trait;
use tripstream_domain::event::ErrorCode;
use tripstream_domain::plan::{Day, DayWeather, Usage};
use tripstream_domain::{Destination, Finding, Location, PlanRequest};

/// Everything a generator knows about the trip it plans.
#[derive(Debug, Clone)]
pub struct PlanContext {
    pub request: PlanRequest,
    pub destination: Destination,
    /// One entry per trip day, in order.
    pub weather: Vec<DayWeather>,
    /// Where the weather came from (`climatology`, `openweathermap`, …), for `metadata.weatherSource`.
    pub weather_source: String,
}

impl PlanContext {
    /// The budget ceiling for the whole trip and all travellers.
    pub fn budget_ceiling(&self) -> u64 {
        self.destination.budget.for_trip(self.request.budget, self.request.dates.len(), self.request.travelers)
    }
}

/// A generator's proposal: days, tips, an optional title and what it cost.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Draft {
    pub title: Option<String>,
    pub days: Vec<Day>,
    pub tips: Vec<String>,
    pub usage: Usage,
    /// Who wrote it, when that is not the engine's generator itself (a fallback chain's later link).
    pub generator: Option<GeneratorInfo>,
}

/// Who generates, for `metadata` and `/health`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratorInfo {
    pub provider: String,
    pub model: String,
    pub prompt_version: String,
}

/// Where a generator reports its draft as it is written.
pub trait DraftSink: Send {
    /// A piece of human-readable draft text (never raw JSON).
    fn text(&mut self, text: &str);
    /// One day of the draft is complete and parsed.
    fn day(&mut self, day: &Day);
}

/// A generator failure, with the contract's code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code:?}: {detail}")]
pub struct GenerateError {
    pub code: ErrorCode,
    /// For logs, not for people: may name the upstream status or the parse error.
    pub detail: String,
    /// Tokens spent before the failure.
    pub usage: Usage,
}

impl GenerateError {
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self { code, detail: detail.into(), usage: Usage::default() }
    }
}

/// Makes plans: an LLM or the offline planner.
#[async_trait]
pub trait PlanGenerator: Send + Sync {
    fn info(&self) -> GeneratorInfo;

    /// Writes a first draft, streaming it to `sink` as it goes.
    async fn generate_draft(&self, ctx: &PlanContext, sink: &mut dyn DraftSink) -> Result<Draft, GenerateError>;

    /// Writes a new draft that fixes `findings` in `current`.
    async fn refine_plan(
        &self,
        ctx: &PlanContext,
        current: &Draft,
        findings: &[Finding],
        sink: &mut dyn DraftSink,
    ) -> Result<Draft, GenerateError>;
}

/// Weather for every day of a trip.
#[derive(Debug, Clone, PartialEq)]
pub struct WeatherReport {
    pub days: Vec<DayWeather>,
    /// `climatology`, `openweathermap`, `open-meteo`, or a mix such as `openweathermap+climatology`.
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("weather unavailable: {0}")]
pub struct WeatherError(pub String);

#[async_trait]
pub trait Weather: Send + Sync {
    async fn forecast(&self, destination: &Destination, request: &PlanRequest) -> Result<WeatherReport, WeatherError>;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("unknown destination {location:?}; known destinations: {}", known.join(", "))]
    Unknown { location: String, known: Vec<String> },
    #[error("destination lookup unavailable: {0}")]
    Unavailable(String),
}

/// Turns what a traveller typed into a destination.
#[async_trait]
pub trait Destinations: Send + Sync {
    async fn resolve(&self, location: &Location) -> Result<Destination, ResolveError>;

    /// Every destination known without a network, for suggestions.
    fn list(&self) -> Vec<Destination>;

    /// Whether resolving `location` would ask an outside service (a geocoder, with its own quota), so that
    /// callers can be metered for it. The bundled data and answers already kept cost nothing.
    fn costs_a_lookup(&self, _location: &Location) -> bool {
        false
    }
}
