//! The provider traits (ports) the engine drives, and the values that cross them.

use async_trait::async_trait;
use tripstream_domain::event::ErrorCode;
use tripstream_domain::places::PlaceNote;
use tripstream_domain::plan::{Day, DayWeather, Usage};
use tripstream_domain::text::day_lines;
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
    /// What the generator repaired or filled in itself (a cost the model left out, a day it did not
    /// write), in the request's language: the plan's `warnings` carry them.
    pub notes: Vec<String>,
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

/// One day of a plan to write again, as a generator is asked for it.
#[derive(Debug, Clone, Copy)]
pub struct DayRequest<'a> {
    /// The plan as it was, every day in order, the one to replace included.
    pub current: &'a Draft,
    /// The day to write again, 0-based.
    pub index: u32,
    /// What the traveller asked for ("more food, less walking"), at most 200 characters.
    pub instruction: Option<&'a str>,
    /// When the new day is being refined: the last attempt at it and what the plan with it broke.
    pub refining: Option<(&'a Day, &'a [Finding])>,
}

impl DayRequest<'_> {
    /// What the last attempt broke (nothing at first).
    pub fn findings(&self) -> &[Finding] {
        self.refining.map_or(&[], |(_, findings)| findings)
    }

    /// The day as it was.
    pub fn day(&self) -> Option<&Day> {
        self.current.days.get(self.index as usize)
    }

    /// Every other day, which stays as it is.
    pub fn other_days(&self) -> impl Iterator<Item = &Day> {
        let index = self.index as usize;
        self.current.days.iter().enumerate().filter(move |(i, _)| *i != index).map(|(_, d)| d)
    }

    /// What the new day may cost, all travellers together: the trip's ceiling less the other days.
    pub fn budget_left(&self, ctx: &PlanContext) -> u64 {
        let others = self.other_days().fold(0u64, |sum, d| sum.saturating_add(d.activities_cost()));
        ctx.budget_ceiling().saturating_sub(others)
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

    /// Writes day `day.index` of `day.current` again: different places from the ones it had, none of the
    /// other days' places, within what the budget leaves, following the instruction where it can. The
    /// draft holds that one day, streamed to `sink`.
    ///
    /// The default is for generators that can only plan whole trips: it drafts the trip again and takes
    /// that day from it, and leaves the rest to validation and repair.
    async fn regenerate_day(
        &self,
        ctx: &PlanContext,
        day: &DayRequest<'_>,
        sink: &mut dyn DraftSink,
    ) -> Result<Draft, GenerateError> {
        let mut whole = self.generate_draft(ctx, &mut Quiet).await?;
        let index = day.index as usize;
        if index >= whole.days.len() {
            let detail = format!("the draft has {} days, not day {}", whole.days.len(), index + 1);
            return Err(GenerateError { code: ErrorCode::LlmBadOutput, detail, usage: whole.usage });
        }
        let new = whole.days.swap_remove(index);
        for line in day_lines(&new, &ctx.destination.currency, ctx.request.language) {
            sink.text(&format!("{line}\n"));
        }
        sink.day(&new);
        Ok(Draft { days: vec![new], ..whole })
    }
}

/// A sink that keeps nothing.
pub struct Quiet;

impl DraftSink for Quiet {
    fn text(&mut self, _: &str) {}
    fn day(&mut self, _: &Day) {}
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

/// Lets what must go first on a busy process go first: the engine waits on it after a step's status,
/// before the step's own work (the weather look-up, the model's draft), so that a stream's first event
/// is written before that work, and newly arrived requests get theirs before running generations go on.
#[async_trait]
pub trait Pacing: Send + Sync {
    /// Resolves when the step may do its work.
    async fn ready(&self);
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("unknown destination {location:?}; known destinations: {}", known.join(", "))]
    Unknown { location: String, known: Vec<String> },
    #[error("destination lookup unavailable: {0}")]
    Unavailable(String),
}

impl ResolveError {
    /// The contract's code for it, the same whether a `422`/`503` answers it before a stream or a
    /// stream's `error` event reports it.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Unknown { .. } => ErrorCode::UnknownDestination,
            Self::Unavailable(_) => ErrorCode::WeatherUnavailable,
        }
    }
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

/// Where a generation goes: a destination known when it starts, or one `gather_context` looks up after
/// the stream's first event, so that a geocoder's round trip does not hold that event back. A place
/// looked up and not found ends the stream with `unknown_destination`.
#[derive(Clone, Copy)]
pub enum Destined<'a> {
    Known(&'a Destination),
    Lookup(&'a dyn Destinations),
}

impl<'a> From<&'a Destination> for Destined<'a> {
    fn from(destination: &'a Destination) -> Self {
        Self::Known(destination)
    }
}

/// Checks that the places a generator named exist near the destination, before the plan keeps them: a
/// place the bundled data knows is taken as it is; another is looked up (a geocoder), its coordinates
/// filled or corrected when found, and, when it cannot be found, replaced by a bundled place of the same
/// kind nearby or left and noted as unverified.
#[async_trait]
pub trait PlaceVerifier: Send + Sync {
    /// Checks the places of `draft` (of day `only` alone, 0-based, when set), changing them in place, and
    /// says what it did. It never fails and keeps to its own time budget: a place it could not check in
    /// time, or whose look-up failed, is a [`PlaceNote::NotChecked`].
    async fn verify(&self, ctx: &PlanContext, draft: &mut Draft, only: Option<usize>) -> Vec<PlaceNote>;
}
