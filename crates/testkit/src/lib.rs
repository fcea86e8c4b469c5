//! Mock upstreams that speak the real wire formats, for tests and the benchmark: Gemini's streaming
//! API (plain HTTP/1.1, or TLS with HTTP/2 only and a concurrent-stream limit per connection),
//! OpenWeatherMap's geocoding and forecast, the throwaway CA that lets a client trust the TLS one, and a
//! hostile provider in both LLM wire formats for the abuse suite.

pub mod gemini;
pub mod hostile;
pub mod nominatim;
pub mod serve;
pub mod tls;
pub mod weather;

pub use gemini::{Flight, Gemini, Reply};
pub use hostile::{Hostile, Scenario};
pub use serve::{Connections, DEFAULT_STREAM_LIMIT, Protocol};
pub use tls::TestCa;

/// A one-day plan in the model's JSON shape that passes every rule and every commonsense check for a
/// medium budget in Kyoto (`the_benchmarks_plan_needs_no_refinement` pins it): what the mock model writes.
pub fn one_day_plan() -> String {
    serde_json::json!({"title": "Kyoto", "days": [{"day": 1, "theme": "Higashiyama", "activities": [
        {"time": "09:00", "durationMinutes": 90, "name": "Kiyomizu-dera", "description": "Temple.", "category": "sightseeing", "area": "Higashiyama", "costPerPerson": 500, "indoor": false},
        {"time": "12:00", "durationMinutes": 60, "name": "Lunch", "description": "Noodles.", "category": "food", "area": "Gion", "costPerPerson": 1200, "indoor": true},
        {"time": "14:00", "durationMinutes": 90, "name": "Sanjusangen-do", "description": "Statues.", "category": "culture", "area": "Higashiyama", "costPerPerson": 600, "indoor": true},
        {"time": "15:50", "durationMinutes": 60, "name": "Kennin-ji Temple", "description": "Zen garden.", "category": "culture", "area": "Gion", "costPerPerson": 800, "indoor": true},
        {"time": "17:05", "durationMinutes": 45, "name": "Hanamikoji Street", "description": "Evening walk.", "category": "sightseeing", "area": "Gion", "costPerPerson": 0, "indoor": false},
        {"time": "18:00", "durationMinutes": 90, "name": "Dinner", "description": "Kaiseki.", "category": "food", "area": "Gion", "costPerPerson": 3000, "indoor": true}]}],
        "tips": ["Walk."]})
    .to_string()
}
