//! Saved plans and share links: the caller's plans, one plan's versions, and read-only links anyone may
//! open. Handlers only: each checks who may see what through [`Caller::owns_plan`] and answers from
//! [`SavedPlans`](tripstream_adapters::plans::SavedPlans).
//!
//! A plan that is not the caller's is `404 plan_not_found`, exactly like one that does not exist: an id
//! is never a credential. A share link is one, by design, until its owner revokes it.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tripstream_adapters::plans::{LIST_MAX, PlanStoreError, PlanSummary, SavedPlan, VersionInfo};
use tripstream_domain::{ErrorCode, Language, Plan, messages, money};

use super::openapi::{
    ListLimit, PlanId, PlanVersion, RevokeShareErrors, SavedPlanErrors, SavedPlanQueryErrors, ShareErrors, ShareId,
};

use crate::auth::{Caller, MaybeCaller};
use crate::error::ApiError;
use crate::state::AppState;

/// Plans `GET /api/v1/plans` returns when the caller does not say.
const LIST_DEFAULT: u32 = 20;

fn plan_not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, ErrorCode::PlanNotFound, "no saved plan has this id (or it is not yours)")
}

pub(super) fn share_not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, ErrorCode::ShareNotFound, "no share link has this id, or it was revoked")
}

fn store_error(e: PlanStoreError) -> ApiError {
    ApiError::unavailable("the plan store", &e)
}

/// Version `n` (the latest with `None`) of the caller's plan `id`; anything else is `plan_not_found`.
pub(super) async fn owned(state: &AppState, caller: &Caller, id: &str, n: Option<u32>) -> Result<SavedPlan, ApiError> {
    match state.plans.version(id, n).await.map_err(store_error)? {
        Some(saved) if caller.owns_plan(&saved.summary.owner) => Ok(saved),
        // Someone else's plan answers exactly as one that does not exist, whatever the version asked.
        _ => Err(plan_not_found()),
    }
}

#[derive(serde::Deserialize)]
pub struct ListQuery {
    limit: Option<String>,
}

/// `GET /api/v1/plans`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct PlanList {
    plans: Vec<PlanSummary>,
}

/// `GET /api/v1/plans/{planId}/versions`.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlanVersions {
    plan_id: String,
    /// Oldest first.
    versions: Vec<VersionInfo>,
}

/// A new share link.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ShareLink {
    share_id: String,
    plan_id: String,
    /// The page that shows the plan, on this server: `/p/{shareId}`.
    url: String,
    created_at_ms: i64,
}

/// A shared plan, as anyone with the link reads it: the plan, never its owner or request.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SharedPlan {
    share_id: String,
    title: String,
    version: u32,
    plan: Plan,
}

/// `GET /api/v1/plans?limit=N`: the caller's plans, the most recently changed first (at most 100, 20 by
/// default). An anonymous caller without the page's session owns none.
#[utoipa::path(
    get, path = "/api/v1/plans", tag = "saved",
    description = "The caller's saved plans (their API key's, or the page session's), the most recently changed \
                   first. An anonymous caller without the page's session owns none: the list is empty.",
    params(ListLimit),
    security((), ("bearer" = [])),
    responses((status = 200, description = "The caller's plans", body = PlanList), SavedPlanQueryErrors),
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let limit = match query.limit.as_deref() {
        None => LIST_DEFAULT,
        Some(text) => text.parse::<u32>().ok().filter(|n| (1..=LIST_MAX).contains(n)).ok_or_else(|| {
            ApiError::invalid(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("limit must be a whole number from 1 to {LIST_MAX}"),
                Some("limit".into()),
            )
        })?,
    };
    let plans = match caller.plan_owner() {
        Some(owner) => state.plans.list(Some(&owner), limit).await.map_err(store_error)?,
        None => Vec::new(),
    };
    Ok(Json(PlanList { plans }).into_response())
}

/// `GET /api/v1/plans/{planId}`: the latest version of the caller's plan.
#[utoipa::path(
    get, path = "/api/v1/plans/{planId}", tag = "saved",
    description = "The latest version of one of the caller's saved plans. Someone else's plan is `404 \
                   plan_not_found`, exactly like one that does not exist (an admin reads every plan).",
    params(PlanId),
    security((), ("bearer" = [])),
    responses((status = 200, description = "The plan's latest version", body = SavedPlan), SavedPlanErrors),
)]
pub async fn latest(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(Json(owned(&state, &caller, &id, None).await?).into_response())
}

/// `GET /api/v1/plans/{planId}/versions`: the versions of the caller's plan, oldest first.
#[utoipa::path(
    get, path = "/api/v1/plans/{planId}/versions", tag = "saved",
    params(PlanId),
    security((), ("bearer" = [])),
    responses((status = 200, description = "The plan's versions, oldest first", body = PlanVersions), SavedPlanErrors),
)]
pub async fn versions(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    owned(&state, &caller, &id, None).await?;
    let versions = state.plans.versions(&id).await.map_err(store_error)?;
    Ok(Json(PlanVersions { plan_id: id, versions }).into_response())
}

/// `GET /api/v1/plans/{planId}/versions/{n}`: version `n` (1, 2, …) of the caller's plan. A version that is
/// not a whole number from 1 is `422`; one that does not exist, `404`.
#[utoipa::path(
    get, path = "/api/v1/plans/{planId}/versions/{version}", tag = "saved",
    params(PlanId, PlanVersion),
    security((), ("bearer" = [])),
    responses((status = 200, description = "That version of the plan", body = SavedPlan), SavedPlanQueryErrors),
)]
pub async fn version(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, n)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let n = n.parse::<u32>().ok().filter(|n| *n >= 1).ok_or_else(|| {
        ApiError::invalid(
            StatusCode::UNPROCESSABLE_ENTITY,
            "a version is a whole number from 1",
            Some("version".into()),
        )
    })?;
    Ok(Json(owned(&state, &caller, &id, Some(n)).await?).into_response())
}

/// `POST /api/v1/plans/{planId}/share`: a new read-only link to the caller's plan; `201` with its id and
/// path.
#[utoipa::path(
    post, path = "/api/v1/plans/{planId}/share", tag = "saved",
    description = "Makes a read-only link to one of the caller's plans: whoever has it reads the plan's latest \
                   version (`GET /api/v1/shares/{shareId}`, and the page at `/p/{shareId}`) until it is revoked.",
    params(PlanId),
    security((), ("bearer" = [])),
    responses((status = 201, description = "The new link", body = ShareLink), SavedPlanErrors),
)]
pub async fn share(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    owned(&state, &caller, &id, None).await?;
    let share = state.plans.share(&id).await.map_err(store_error)?;
    let url = format!("/p/{}", share.share_id);
    let body = ShareLink { url, share_id: share.share_id, plan_id: id, created_at_ms: share.created_at_ms };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// The latest version of the plan behind a share link, if the link exists.
pub(super) async fn shared(state: &AppState, share_id: &str) -> Result<Option<SavedPlan>, ApiError> {
    let Some(share) = state.plans.find_share(share_id).await.map_err(store_error)? else { return Ok(None) };
    state.plans.latest(&share.plan_id).await.map_err(store_error)
}

/// `GET /api/v1/shares/{shareId}`: the shared plan, read-only, for anyone with the link.
#[utoipa::path(
    get, path = "/api/v1/shares/{shareId}", tag = "saved",
    description = "The plan behind a share link, for anyone who has the link (no key needed, in either auth mode).",
    params(ShareId),
    security(()),
    responses((status = 200, description = "The shared plan", body = SharedPlan), ShareErrors),
)]
pub async fn get_share(
    State(state): State<AppState>,
    MaybeCaller(_): MaybeCaller,
    Path(share_id): Path<String>,
) -> Result<Response, ApiError> {
    let saved = shared(&state, &share_id).await?.ok_or_else(share_not_found)?;
    let body = SharedPlan { share_id, title: saved.summary.title, version: saved.version, plan: saved.plan };
    Ok(Json(body).into_response())
}

/// `DELETE /api/v1/shares/{shareId}`: revokes a link to one of the caller's plans; `204`, then the link is
/// `404`. Someone else's link is `404` too.
#[utoipa::path(
    delete, path = "/api/v1/shares/{shareId}", tag = "saved",
    description = "Revokes a link to one of the caller's plans: it is `404 share_not_found` from then on.",
    params(ShareId),
    security((), ("bearer" = [])),
    responses((status = 204, description = "Revoked"), RevokeShareErrors),
)]
pub async fn revoke_share(
    State(state): State<AppState>,
    caller: Caller,
    Path(share_id): Path<String>,
) -> Result<Response, ApiError> {
    let share = state.plans.find_share(&share_id).await.map_err(store_error)?.ok_or_else(share_not_found)?;
    let owner = state.plans.latest(&share.plan_id).await.map_err(store_error)?.map(|saved| saved.summary.owner);
    if !owner.is_some_and(|owner| caller.owns_plan(&owner)) {
        return Err(share_not_found());
    }
    state.plans.revoke_share(&share_id).await.map_err(store_error)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /p/{shareId}`: the page, rendering the shared plan (no form, no generation), with an Open Graph
/// preview for chat apps. A link that does not exist is the page with `404`, which says so.
pub async fn share_page(State(state): State<AppState>, Path(share_id): Path<String>) -> Response {
    let saved = match shared(&state, &share_id).await {
        Ok(saved) => saved,
        Err(e) => return e.into_response(),
    };
    let preview = saved.as_ref().map(|saved| {
        let plan = &saved.plan;
        let lang = plan.language;
        let dates = match lang {
            Language::Ko => format!("{} ~ {}", plan.start_date, plan.end_date),
            Language::En => format!("{} – {}", plan.start_date, plan.end_date),
        };
        let total = money::format_amount(&plan.currency, plan.total_cost);
        (
            messages::share_title(lang, &plan.location, plan.days.len()),
            messages::share_description(lang, &plan.title, &dates, &total),
        )
    });
    let status = if saved.is_some() { StatusCode::OK } else { StatusCode::NOT_FOUND };
    super::page::shared(&state, status, preview.as_ref().map(|(t, d)| (t.as_str(), d.as_str())))
}
