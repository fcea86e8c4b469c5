//! A saved plan as a calendar file: `GET /api/v1/plans/{planId}/calendar.ics` for its owner and
//! `GET /api/v1/shares/{shareId}/calendar.ics` for anyone with the link. Whom each answers, and the `404`s,
//! are exactly those of the plan and share endpoints in `saved.rs`.

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use tripstream_adapters::plans::SavedPlan;

use super::openapi::{PlanId, SavedPlanErrors, ShareErrors, ShareId};
use super::saved::{owned, share_not_found, shared};
use crate::auth::{Caller, MaybeCaller};
use crate::calendar::{file_name, plan_calendar};
use crate::error::ApiError;
use crate::state::AppState;

/// What a `calendar.ics` answer is, for the documentation.
const CALENDAR: &str = "An RFC 5545 calendar (`text/calendar; charset=utf-8`, sent as an attachment): one `VEVENT` \
per activity, its local time with the destination's `TZID` and a `VTIMEZONE` of the zone's transitions (floating \
local times where the zone is not known), duration, `LOCATION`, `GEO` when known, description and cost. `UID`s are \
`{planId}-d{day}-a{n}@tripstream` and `SEQUENCE` the version less one, so importing it again, or a later version, \
updates the events instead of adding copies.";

/// `GET /api/v1/plans/{planId}/calendar.ics`: the latest version of the caller's plan.
#[utoipa::path(
    get, path = "/api/v1/plans/{planId}/calendar.ics", tag = "saved", operation_id = "plan_calendar",
    description = "The latest version of one of the caller's saved plans as a calendar file. Someone else's plan \
                   is `404 plan_not_found`, exactly like one that does not exist.",
    params(PlanId),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = CALENDAR, body = String, content_type = "text/calendar; charset=utf-8",
         headers(("Content-Disposition" = String, description = "`attachment; filename=\"{place}-{startDate}.ics\"`"))),
        SavedPlanErrors,
    ),
)]
pub async fn plan(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Response, ApiError> {
    Ok(ics(&owned(&state, &caller, &id, None).await?))
}

/// `GET /api/v1/shares/{shareId}/calendar.ics`: the latest version of the shared plan.
#[utoipa::path(
    get, path = "/api/v1/shares/{shareId}/calendar.ics", tag = "saved", operation_id = "share_calendar",
    description = "The plan behind a share link as a calendar file, for anyone who has the link (no key needed, \
                   in either auth mode); `404 share_not_found` once it is revoked.",
    params(ShareId),
    security(()),
    responses(
        (status = 200, description = CALENDAR, body = String, content_type = "text/calendar; charset=utf-8",
         headers(("Content-Disposition" = String, description = "`attachment; filename=\"{place}-{startDate}.ics\"`"))),
        ShareErrors,
    ),
)]
pub async fn share(
    State(state): State<AppState>,
    MaybeCaller(_): MaybeCaller,
    Path(share_id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(ics(&shared(&state, &share_id).await?.ok_or_else(share_not_found)?))
}

/// The calendar of a saved plan's version: UIDs from the saved plan's id, so that importing a later
/// version (a regenerated day) updates the events; `SEQUENCE` is the version less one.
fn ics(saved: &SavedPlan) -> Response {
    let calendar = plan_calendar(&saved.plan, &saved.summary.plan_id, saved.version.saturating_sub(1));
    let disposition = format!("attachment; filename=\"{}\"", file_name(&saved.plan));
    (
        [
            (header::CONTENT_TYPE, "text/calendar; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
            (header::CACHE_CONTROL, "private, no-store".to_owned()),
        ],
        calendar.body,
    )
        .into_response()
}
