//! The plan workflow and the ports it drives.
//!
//! `gather_context → generate_draft → validate_plan ⇄ refine_plan → finalize_plan`: each step is a plain
//! async function over one run, and every step reports through one [`EventSink`]. The HTTP stream, the
//! CLI progress bar and any log are consumers of that one event sequence.
//!
//! Architecture invariant: the engine knows no HTTP client, database or file; outside services reach it
//! only through the traits in [`ports`].

mod places;
pub mod ports;
pub mod sink;
mod workflow;

pub use ports::{
    DayRequest, Destinations, Destined, Draft, DraftSink, GenerateError, GeneratorInfo, Pacing, PlaceVerifier,
    PlanContext, PlanGenerator, Quiet, ResolveError, Weather, WeatherError, WeatherReport,
};
pub use sink::EventSink;
pub use workflow::{Engine, EngineConfig, EngineError, Regeneration, check_context};
