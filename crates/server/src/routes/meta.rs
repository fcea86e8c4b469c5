//! `/health` (and its `live` and `ready` probes), `/api/v1/destinations`, `/api/v1/stats` and `/metrics`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Serialize;
use tripstream_adapters::runlog;
use tripstream_domain::{BudgetCeilings, Localized};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

use super::openapi::AdminErrors;
use crate::auth::{Admin, MaybeCaller};
use crate::error::{ApiError, ErrorResponse};
use crate::extract::ValidQuery;
use crate::health::Report;
use crate::state::AppState;

/// `/health`: `status` for everyone; the wiring and load for an admin key (every other field).
#[derive(Serialize)]
pub struct Health {
    /// `ok`, or `draining` after SIGTERM.
    status: &'static str,
    #[serde(flatten)]
    details: Option<HealthDetails>,
}

/// `status`, then every field of [`HealthDetails`], each optional (only admins get them).
impl utoipa::PartialSchema for Health {
    fn schema() -> RefOr<Schema> {
        let RefOr::T(Schema::Object(mut object)) = HealthDetails::schema() else {
            unreachable!("a struct's schema is an object")
        };
        object.required = vec!["status".into()];
        let status = ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(["ok", "draining"]))
            .description(Some("`draining` after SIGTERM"));
        object.properties.insert("status".into(), status.into());
        object.description = Some("`status` for everyone; every other field only for an admin key".into());
        Schema::Object(object).into()
    }
}

impl ToSchema for Health {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((LlmInfo::name().into(), LlmInfo::schema()));
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthDetails {
    version: &'static str,
    uptime_secs: u64,
    llm: LlmInfo,
    /// The weather layers, e.g. `openweathermap+open-meteo+climatology`.
    weather: String,
    /// How many destinations are bundled.
    destinations: usize,
    max_trip_days: u32,
    /// `memory`, `redis` or `off`.
    cache: &'static str,
    /// `sqlite` or `postgres`.
    run_log: &'static str,
    /// The event log shared across replicas (`redis`), or null.
    shared_log: Option<&'static str>,
    /// `open` or `required`.
    #[schema(value_type = String)]
    auth_mode: crate::config::AuthMode,
    generations_in_flight: usize,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LlmInfo {
    provider: String,
    model: String,
    prompt_version: String,
    /// The generators in fallback order.
    chain: Vec<String>,
}

/// `/health/live`.
#[derive(Serialize, ToSchema)]
pub struct Live {
    #[schema(example = "live")]
    status: &'static str,
}

/// One bundled destination.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DestinationEntry {
    /// A stable slug (`seoul`).
    id: String,
    name: Localized,
    /// ISO 3166-1 alpha-2.
    country: String,
    /// ISO 4217; amounts are whole units of it.
    currency: String,
    /// IANA time zone name.
    timezone: String,
    lat: f64,
    lon: f64,
    /// Spending ceilings per traveller per day, by budget level.
    budget: BudgetCeilings,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Destinations {
    destinations: Vec<DestinationEntry>,
    /// Whether a place beyond this list can be planned (a model plans anywhere, the offline planner not).
    plans_anywhere: bool,
}

/// `/health`: its status for everyone; the details (providers, stores, load) for admins only.
#[utoipa::path(
    get, path = "/health", tag = "meta",
    summary = "Health: status, and the wiring for admins",
    description = "`status` for everyone; with an admin key, also the providers, stores and load. It answers \
                   `200` while draining too: readiness is `/health/ready`.",
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The server answers", body = Health,
         example = json!({"status": "ok"})),
        (status = 401, description = "`unauthorized`: a key was sent and is not valid", body = ErrorResponse),
        (status = 503, description = "`unavailable`: a key was sent and the key store does not answer",
         body = ErrorResponse),
    ),
)]
pub async fn health(State(state): State<AppState>, MaybeCaller(caller): MaybeCaller) -> Json<Health> {
    let status = if state.readiness.is_draining() { "draining" } else { "ok" };
    if !caller.is_admin() {
        return Json(Health { status, details: None });
    }
    let info = state.generations.generator_info();
    let details = HealthDetails {
        version: env!("CARGO_PKG_VERSION"),
        uptime_secs: state.started.elapsed().as_secs(),
        llm: LlmInfo {
            provider: info.provider,
            model: info.model,
            prompt_version: info.prompt_version,
            chain: state.about.generators.clone(),
        },
        weather: state.about.weather.clone(),
        destinations: state.destinations.list().len(),
        max_trip_days: state.limits.max_trip_days,
        cache: state.about.cache,
        run_log: state.runlog.db().kind(),
        shared_log: state.generations.shared_log(),
        auth_mode: state.auth.mode,
        generations_in_flight: state.generations.active(),
    };
    Json(Health { status, details: Some(details) })
}

/// `/health/live`: the process serves requests (a liveness probe restarts it otherwise).
#[utoipa::path(
    get, path = "/health/live", tag = "meta",
    summary = "Liveness probe",
    description = "`200` while the process serves requests; a liveness probe restarts it otherwise.",
    responses((status = 200, description = "The process serves requests", body = Live)),
)]
pub async fn live() -> Json<Live> {
    Json(Live { status: "live" })
}

/// `/health/ready`: `200` when this replica should get traffic; `503` while it starts (its database's
/// schema not yet applied), drains after SIGTERM, or cannot reach a configured store.
#[utoipa::path(
    get, path = "/health/ready", tag = "meta",
    summary = "Readiness probe",
    description = "`200` when this replica should get traffic; `503` while it starts (its database's schema not \
                   yet applied), drains after SIGTERM, has no place for another generation, or cannot reach a \
                   configured store. `status` says which.",
    responses(
        (status = 200, description = "This replica should get traffic", body = Report,
         example = json!({"status": "ready", "runLog": "ok"})),
        (status = 503, description = "Starting, draining, saturated, or a configured store is down", body = Report,
         example = json!({"status": "draining", "runLog": "ok", "redis": "ok"})),
    ),
)]
pub async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    let report = state.readiness.check().await;
    let status = if report.is_ready() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(report))
}

/// `/api/v1/destinations`: the bundled destinations.
#[utoipa::path(
    get, path = "/api/v1/destinations", tag = "meta",
    summary = "The bundled destinations",
    description = "The destinations the server knows, with names in en and ko, currency and budget ceilings, and \
                   whether places beyond them can be planned.",
    responses((status = 200, description = "The bundled destinations", body = Destinations)),
)]
pub async fn destinations(State(state): State<AppState>) -> Json<Destinations> {
    let destinations = state
        .destinations
        .list()
        .into_iter()
        .map(|d| DestinationEntry {
            id: d.id,
            name: d.name,
            country: d.country,
            currency: d.currency,
            timezone: d.timezone,
            lat: d.lat,
            lon: d.lon,
            budget: d.budget,
        })
        .collect();
    let plans_anywhere = state.about.generators.first().is_some_and(|g| g != "offline");
    Json(Destinations { destinations, plans_anywhere })
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatsQuery {
    /// From when: RFC 3339 (`2025-11-10T00:00:00Z`) or Unix milliseconds. Default: the last 24 hours; at
    /// most the last 31 days (an older time is moved up, and `sinceMs` says so).
    since: Option<String>,
}

/// The monitoring numbers over the run log since `since` (RFC 3339, or Unix milliseconds; default: the
/// last 24 hours; at most the last 31 days), aggregated by the database.
#[utoipa::path(
    get, path = "/api/v1/stats", tag = "admin",
    summary = "Monitoring numbers from the run log",
    description = "The monitoring numbers over the run log, aggregated by the database. Admin key only.",
    params(StatsQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The numbers since `sinceMs`", body = runlog::Stats),
        (status = 422, description = "`invalid_request`: `since` is neither RFC 3339 nor Unix milliseconds",
         body = ErrorResponse),
        AdminErrors,
    ),
)]
pub async fn stats(
    State(state): State<AppState>,
    _: Admin,
    ValidQuery(query): ValidQuery<StatsQuery>,
) -> Result<Json<runlog::Stats>, ApiError> {
    let since_ms = match query.since.as_deref().map(str::trim) {
        None | Some("") => jiff::Timestamp::now().as_millisecond() - 24 * 3_600_000,
        Some(s) => parse_since(s).ok_or_else(|| {
            let message =
                format!("since must be an RFC 3339 time (2025-11-10T00:00:00Z) or Unix milliseconds, not {s:?}");
            ApiError::invalid(StatusCode::UNPROCESSABLE_ENTITY, message, Some("since".into()))
        })?,
    };
    // At most the last 31 days: an older `since` is moved up, and the answer's `sinceMs` says so.
    let since_ms = runlog::bounded_since(since_ms, jiff::Timestamp::now().as_millisecond());
    let stats = state.runlog.db().stats(since_ms).await.map_err(|e| ApiError::unavailable("the run log", &e))?;
    Ok(Json(stats))
}

fn parse_since(s: &str) -> Option<i64> {
    s.parse::<i64>().ok().or_else(|| s.parse::<jiff::Timestamp>().ok().map(|t| t.as_millisecond()))
}

/// Prometheus text exposition, for admins (or, unauthenticated, on `METRICS_ADDR`'s own listener).
#[utoipa::path(
    get, path = "/metrics", tag = "admin",
    summary = "Prometheus metrics",
    description = "Prometheus text exposition. Admin key only here; unauthenticated on `METRICS_ADDR`'s own \
                   listener when that is set.",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The process's metrics", body = String,
         content_type = "text/plain; version=0.0.4; charset=utf-8"),
        AdminErrors,
    ),
)]
pub async fn metrics(_: Admin) -> impl IntoResponse {
    exposition()
}

/// The Prometheus text of the process's metrics.
pub fn exposition() -> impl IntoResponse {
    let body = crate::observe::prometheus().render();
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body)
}
