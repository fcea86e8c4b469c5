//! The tripstream domain: what a plan request is, what a plan is, the events a generation emits, the
//! validation rules a delivered plan satisfies and the deterministic repair of the ones it breaks.
//!
//! Architecture invariant: this crate does no IO and knows no async runtime. Everything here is a pure
//! function of its inputs, so every rule can be tested without a network, a clock or a sleep.

pub mod calendar;
pub mod checks;
pub mod destination;
pub mod event;
pub mod messages;
pub mod money;
pub mod places;
pub mod plan;
pub mod repair;
pub mod request;
pub mod rules;
pub mod text;

#[cfg(test)]
mod properties;

pub use destination::{
    BudgetCeilings, ClimateNormal, Destination, DestinationProfile, Holiday, Localized, MealWindows, TimeWindow,
    Transit,
};
pub use event::{ErrorCode, Step, StreamEvent};
pub use plan::{Activity, Category, ClockTime, Day, DayWeather, GeoPoint, Metadata, Plan, Usage, WeatherSource};
pub use request::{
    BudgetLevel, Language, Location, PlanRequest, RawPlanRequest, RequestError, RequestLimits, TripDates,
};
pub use rules::{Finding, Rule, ValidationContext};
