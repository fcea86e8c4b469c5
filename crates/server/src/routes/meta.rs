//! `/health` and `/api/v1/destinations`.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::state::AppState;

pub async fn health(State(state): State<AppState>) -> Json<Value> {
    let info = state.engine.generator_info();
    Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "uptimeSecs": state.started.elapsed().as_secs(),
        "llm": {
            "provider": info.provider,
            "model": info.model,
            "promptVersion": info.prompt_version,
            "chain": state.generators,
        },
        "weather": state.weather,
        "destinations": state.destinations.list().len(),
        "maxTripDays": state.limits.max_trip_days,
    }))
}

pub async fn destinations(State(state): State<AppState>) -> Json<Value> {
    let list: Vec<Value> = state
        .destinations
        .list()
        .into_iter()
        .map(|d| {
            json!({
                "id": d.id,
                "name": d.name,
                "country": d.country,
                "currency": d.currency,
                "timezone": d.timezone,
                "lat": d.lat,
                "lon": d.lon,
                "budget": d.budget,
            })
        })
        .collect();
    Json(json!({ "destinations": list }))
}
