//! `/health` (and its `live` and `ready` probes), `/api/v1/destinations`, `/api/v1/stats` and `/metrics`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::state::AppState;

pub async fn health(State(state): State<AppState>) -> Json<Value> {
    let info = state.generations.generator_info();
    Json(json!({
        "status": if state.readiness.is_draining() { "draining" } else { "ok" },
        "version": env!("CARGO_PKG_VERSION"),
        "uptimeSecs": state.started.elapsed().as_secs(),
        "llm": {
            "provider": info.provider,
            "model": info.model,
            "promptVersion": info.prompt_version,
            "chain": state.about.generators,
        },
        "weather": state.about.weather,
        "destinations": state.destinations.list().len(),
        "maxTripDays": state.limits.max_trip_days,
        "cache": state.about.cache,
        "runLog": state.runlog.db().kind(),
        "sharedLog": state.generations.shared_log(),
        "generationsInFlight": state.generations.active(),
    }))
}

/// `/health/live`: the process serves requests (a liveness probe restarts it otherwise).
pub async fn live() -> Json<Value> {
    Json(json!({ "status": "live" }))
}

/// `/health/ready`: `200` when this replica should get traffic; `503` while it starts (its database's
/// schema not yet applied), drains after SIGTERM, or cannot reach a configured store.
pub async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    let report = state.readiness.check().await;
    let status = if report.is_ready() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(report))
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

#[derive(serde::Deserialize)]
pub struct StatsQuery {
    since: Option<String>,
}

/// The monitoring numbers over the run log since `since` (RFC 3339, or Unix milliseconds; default: the
/// last 24 hours).
pub async fn stats(
    State(state): State<AppState>,
    axum::extract::Query(query): axum::extract::Query<StatsQuery>,
) -> Result<Json<tripstream_adapters::runlog::Stats>, ApiError> {
    let since_ms = match query.since.as_deref().map(str::trim) {
        None | Some("") => jiff::Timestamp::now().as_millisecond() - 24 * 3_600_000,
        Some(s) => parse_since(s).ok_or_else(|| {
            let message =
                format!("since must be an RFC 3339 time (2025-11-10T00:00:00Z) or Unix milliseconds, not {s:?}");
            ApiError::invalid(StatusCode::UNPROCESSABLE_ENTITY, message, Some("since".into()))
        })?,
    };
    let rows = state.runlog.db().rows_since(since_ms).await.map_err(|e| ApiError::unavailable("the run log", &e))?;
    Ok(Json(tripstream_adapters::runlog::stats(since_ms, &rows)))
}

fn parse_since(s: &str) -> Option<i64> {
    s.parse::<i64>().ok().or_else(|| s.parse::<jiff::Timestamp>().ok().map(|t| t.as_millisecond()))
}

/// Prometheus text exposition.
pub async fn metrics() -> impl IntoResponse {
    let body = crate::observe::prometheus().render();
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body)
}
