//! `/health` (and its `live` and `ready` probes), `/api/v1/destinations`, `/api/v1/stats` and `/metrics`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::{Value, json};

use crate::auth::{Admin, MaybeCaller};
use crate::error::ApiError;
use crate::state::AppState;

/// `/health`: its status for everyone; the details (providers, stores, load) for admins only.
pub async fn health(State(state): State<AppState>, MaybeCaller(caller): MaybeCaller) -> Json<Value> {
    let status = if state.readiness.is_draining() { "draining" } else { "ok" };
    if !caller.is_admin() {
        return Json(json!({ "status": status }));
    }
    let info = state.generations.generator_info();
    Json(json!({
        "status": status,
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
        "authMode": state.auth.mode,
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
    // Whether a place beyond this list can be planned (a model plans anywhere, the offline planner not).
    let plans_anywhere = state.about.generators.first().is_some_and(|g| g != "offline");
    Json(json!({ "destinations": list, "plansAnywhere": plans_anywhere }))
}

#[derive(serde::Deserialize)]
pub struct StatsQuery {
    since: Option<String>,
}

/// The monitoring numbers over the run log since `since` (RFC 3339, or Unix milliseconds; default: the
/// last 24 hours).
pub async fn stats(
    State(state): State<AppState>,
    _: Admin,
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

/// Prometheus text exposition, for admins (or, unauthenticated, on `METRICS_ADDR`'s own listener).
pub async fn metrics(_: Admin) -> impl IntoResponse {
    exposition()
}

/// The Prometheus text of the process's metrics.
pub fn exposition() -> impl IntoResponse {
    let body = crate::observe::prometheus().render();
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body)
}
