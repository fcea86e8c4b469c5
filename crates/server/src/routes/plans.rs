//! The plan endpoints: one JSON answer, or the generation streamed as it happens (POST, or GET for
//! EventSource); resuming a stream after a dropped connection; cancelling one. Handlers only: each parses,
//! calls the [`Generations`](crate::generations::Generations) service, and turns its answer into HTTP or
//! SSE.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::header::{HeaderName, HeaderValue};
use axum::http::{HeaderMap, StatusCode, Version};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::stream::{self, Stream};
use tripstream_domain::event::Failure;
use tripstream_domain::{ErrorCode, Plan, PlanRequest, RawPlanRequest, StreamEvent, messages};

use super::openapi::{
    AcceptLanguage, DayNumber, IdempotencyKey, LastEventId, PlanErrors, PlanId, RegenerateErrors, ResumeToken,
    STREAM_DESCRIPTION, StreamBodyErrors, StreamId, StreamIdErrors, StreamQueryErrors,
};
use crate::auth::{Caller, MaybeCaller};
use crate::error::ApiError;
use crate::extract::{DayInstruction, DayInstructionBody, PlanQuery, QueryPlanRequest, ValidPlanRequest, ValidQuery};
use crate::generations::{Attached, Attachment, Credentials, How, PlanCall, RegenerateCall, Wants};
use crate::intake::{Arrival, Arriving};
use crate::observe::{Endpoint, Recorder};
use crate::sse;
use crate::state::AppState;

const X_CACHE: HeaderName = HeaderName::from_static("x-cache");

/// The plan as the JSON endpoint answers it: the plan's own fields, and `planId`, the caller's saved copy.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(as = GeneratedPlan)]
pub struct Delivered {
    #[serde(flatten)]
    #[schema(value_type = Plan)]
    plan: Arc<Plan>,
    /// The caller's saved copy (`plan_…`), for `GET /api/v1/plans/{planId}`; absent when it could not be
    /// saved.
    #[serde(rename = "planId", skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    plan_id: Option<String>,
}

/// `POST /api/v1/plans/generate`: the plan as one JSON document, with `planId`.
#[utoipa::path(
    post, path = "/api/v1/plans/generate", tag = "plans",
    summary = "Generate a plan, answered as one JSON document",
    description = "Generates a plan and answers it as one JSON document when it is complete. The same \
                   request answered before is served from the cache (`X-Cache: HIT`).",
    request_body(content = RawPlanRequest, example = json!({
        "location": "Seoul", "startDate": "2025-11-10", "endDate": "2025-11-12", "budget": "medium",
    })),
    params(AcceptLanguage, IdempotencyKey),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The plan, with `planId`: the caller's saved copy", body = Delivered,
         headers(("X-Cache" = String, description = "`HIT` when served from the cache, else `MISS`"))),
        PlanErrors,
    ),
)]
pub async fn generate(
    State(state): State<AppState>,
    Arriving(arrival): Arriving,
    headers: HeaderMap,
    caller: Caller,
    ValidPlanRequest(request): ValidPlanRequest,
) -> Result<Response, ApiError> {
    let mut recorder = recorder(&state, Endpoint::Json, &request, &headers, arrival.as_ref());
    let language = request.language;
    let call = PlanCall {
        request: request.clone(),
        wants: Wants::Plan,
        idempotency_key: idempotency_key(&headers),
        last_event_id: None,
    };
    let mut failure = None;
    let attached = state.generations.start(call, &caller).await;
    // Its first bytes are the plan: other requests need not wait for them.
    drop(arrival);
    match attached? {
        Attached::Cached(plan) => {
            recorder.cache_hit();
            recorder.delivered(&plan);
            let plan_id = state.generations.keep_cached(&plan, &caller, &request).await;
            return Ok((
                [(X_CACHE, HeaderValue::from_static("HIT"))],
                Json(Delivered { plan: Arc::from(plan), plan_id }),
            )
                .into_response());
        }
        Attached::Stream(mut attachment) => {
            recorder.attached(&attachment);
            while let Some((_, event)) = attachment.events.next().await {
                recorder.saw(&event);
                match &*event {
                    StreamEvent::Complete(c) => {
                        let delivered = Delivered { plan: c.plan.clone(), plan_id: c.plan_id.clone() };
                        return Ok(([(X_CACHE, HeaderValue::from_static("MISS"))], Json(delivered)).into_response());
                    }
                    StreamEvent::Error(f) => failure = Some(f.clone()),
                    _ => {}
                }
            }
        }
        Attached::Finished => {}
    }
    // A stream handed over as this replica shut down ends without a plan: the client may retry.
    Err(failure
        .unwrap_or_else(|| Failure {
            message: messages::error(language, ErrorCode::Unavailable),
            error: ErrorCode::Unavailable,
            retryable: true,
            usage: None,
            partial_days: None,
        })
        .into())
}

/// `POST /api/v1/plans/generate/stream`.
#[utoipa::path(
    post, path = "/api/v1/plans/generate/stream", tag = "plans",
    summary = "Generate a plan, streamed as Server-Sent Events",
    description = "Generates a plan and streams the generation as Server-Sent Events. A request that breaks \
                   a rule is answered with a JSON error and never opens a stream; once open, a failure is an \
                   `error` event followed by `done`.",
    request_body(content = RawPlanRequest, example = json!({
        "location": "Seoul", "startDate": "2025-11-10", "endDate": "2025-11-12", "budget": "medium",
    })),
    params(AcceptLanguage, IdempotencyKey, LastEventId),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = STREAM_DESCRIPTION, content_type = "text/event-stream", body = String,
         headers(
             ("X-Stream-Id" = String, description = "The stream's id, for resuming and cancelling"),
             ("X-Resume-Token" = String, description = "A secret that resumes or cancels this stream without \
              the key that opened it; sent only to the caller the stream was made for"),
             ("X-Cache" = String, description = "`HIT` when the events are replayed from the cache"),
         )),
        (status = 204, description = "`Last-Event-ID` named the end of a finished stream: nothing is left"),
        StreamBodyErrors,
    ),
)]
pub async fn generate_stream(
    State(state): State<AppState>,
    Arriving(arrival): Arriving,
    version: Version,
    headers: HeaderMap,
    caller: Caller,
    ValidPlanRequest(request): ValidPlanRequest,
) -> Result<Response, ApiError> {
    open_stream(state, arrival, version, headers, caller, request, None).await
}

/// `GET /api/v1/plans/generate/stream?…`: `EventSource` can only GET; the same stream, the request in the
/// query.
#[utoipa::path(
    get, path = "/api/v1/plans/generate/stream", tag = "plans",
    summary = "The same stream, the request in the query (for EventSource)",
    operation_id = "generate_stream_from_query",
    description = "The same stream as `POST`, the request in the query, for `EventSource` (which can only \
                   GET).",
    params(PlanQuery, AcceptLanguage, IdempotencyKey, LastEventId),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = STREAM_DESCRIPTION, content_type = "text/event-stream", body = String,
         headers(
             ("X-Stream-Id" = String, description = "The stream's id, for resuming and cancelling"),
             ("X-Resume-Token" = String, description = "A secret that resumes or cancels this stream"),
             ("X-Cache" = String, description = "`HIT` when the events are replayed from the cache"),
         )),
        (status = 204, description = "`Last-Event-ID` named the end of a finished stream: nothing is left"),
        StreamQueryErrors,
    ),
)]
pub async fn generate_stream_get(
    State(state): State<AppState>,
    Arriving(arrival): Arriving,
    version: Version,
    headers: HeaderMap,
    caller: Caller,
    query: QueryPlanRequest,
) -> Result<Response, ApiError> {
    open_stream(state, arrival, version, headers, caller, query.request, query.last_event_id).await
}

async fn open_stream(
    state: AppState,
    arrival: Option<Arrival>,
    version: Version,
    headers: HeaderMap,
    caller: Caller,
    request: PlanRequest,
    last_event_id_query: Option<String>,
) -> Result<Response, ApiError> {
    let recorder = recorder(&state, Endpoint::Stream, &request, &headers, arrival.as_ref());
    let last_event_id = sse::last_event_id(&headers, last_event_id_query.as_deref());
    let call = PlanCall { request, wants: Wants::Stream, idempotency_key: idempotency_key(&headers), last_event_id };
    let attached = state.generations.start(call, &caller).await?;
    Ok(stream_response(&state, attached, recorder, Endpoint::Stream, arrival, kept_alive(version, &headers)))
}

/// `POST /api/v1/plans/{planId}/days/{n}/regenerate`, with an optional `{"instruction": "…"}`: day `n` of
/// the caller's saved plan written again, streamed exactly like `POST /generate/stream` (the same headers,
/// events, resume and cancellation); `complete` carries the whole plan, saved as its next version. Someone
/// else's plan is `404 plan_not_found` like an unknown one; a day the plan does not have, or an
/// instruction over 200 characters, is `422`.
#[utoipa::path(
    post, path = "/api/v1/plans/{planId}/days/{day}/regenerate", tag = "saved",
    description = "Writes one day of the caller's saved plan again (different places, none of the other days', \
                   following the optional `instruction`, e.g. \"more food, less walking\") and streams it \
                   exactly like `POST /api/v1/plans/generate/stream`: the same headers, events, resume and \
                   cancellation, one `day` event (the new day), and `complete` with the whole plan, whose other \
                   days are unchanged, saved as the plan's next version (`planId`). No body, or a JSON body. \
                   Someone else's plan is `404 plan_not_found` like an unknown one; a day the plan does not \
                   have, or an instruction over 200 characters, is `422`.",
    request_body(content = Option<DayInstructionBody>, content_type = "application/json"),
    params(PlanId, DayNumber, IdempotencyKey, LastEventId),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = STREAM_DESCRIPTION, content_type = "text/event-stream", body = String,
         headers(
             ("X-Stream-Id" = String, description = "The stream's id, for resuming and cancelling"),
             ("X-Resume-Token" = String, description = "A secret that resumes or cancels this stream"),
         )),
        (status = 204, description = "`Last-Event-ID` named the end of a finished stream: nothing is left"),
        RegenerateErrors,
    ),
)]
pub async fn regenerate_day(
    State(state): State<AppState>,
    Arriving(arrival): Arriving,
    version: Version,
    Path((plan_id, day)): Path<(String, String)>,
    headers: HeaderMap,
    caller: Caller,
    DayInstruction(instruction): DayInstruction,
) -> Result<Response, ApiError> {
    let day = day.parse::<u32>().map_err(|_| {
        ApiError::invalid(StatusCode::UNPROCESSABLE_ENTITY, "day must be a day number: 1, 2, …", Some("day".into()))
    })?;
    let call = RegenerateCall {
        plan_id,
        day,
        instruction,
        idempotency_key: idempotency_key(&headers),
        last_event_id: sse::last_event_id(&headers, None),
    };
    let attached = state.generations.regenerate(call, &caller).await?;
    let recorder = match &attached {
        Attached::Stream(a) => recorder(&state, Endpoint::Stream, &a.request, &headers, arrival.as_ref()),
        _ => return Ok(StatusCode::NO_CONTENT.into_response()),
    };
    Ok(stream_response(&state, attached, recorder, Endpoint::Stream, arrival, kept_alive(version, &headers)))
}

/// `GET /api/v1/plans/streams/{streamId}/events`: the rest of a stream after `Last-Event-ID`, then live,
/// for its owner's key or its resume token (`X-Resume-Token`, or `?token=`). A finished stream with
/// nothing left to send is `204` (EventSource stops reconnecting); an unknown, expired or someone else's
/// stream is `404`.
#[utoipa::path(
    get, path = "/api/v1/plans/streams/{streamId}/events", tag = "streams",
    summary = "Resume a stream after Last-Event-ID",
    description = "The rest of a stream after `Last-Event-ID`, then live, for the key that opened it or its \
                   resume token. A finished stream with nothing left to send is `204`, which stops \
                   `EventSource` from reconnecting.",
    params(StreamId, StreamQuery, LastEventId, ResumeToken),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = STREAM_DESCRIPTION, content_type = "text/event-stream", body = String,
         headers(("X-Stream-Id" = String, description = "The stream's id"))),
        (status = 204, description = "The stream is finished and every event was sent"),
        StreamIdErrors,
    ),
)]
pub async fn resume(
    State(state): State<AppState>,
    Arriving(arrival): Arriving,
    version: Version,
    Path(stream_id): Path<String>,
    headers: HeaderMap,
    MaybeCaller(caller): MaybeCaller,
    ValidQuery(query): ValidQuery<StreamQuery>,
) -> Result<Response, ApiError> {
    let after = sse::last_event_id(&headers, query.last_event_id.as_deref());
    let token = sse::resume_token(&headers, query.token.as_deref());
    let attached = state.generations.resume(&stream_id, after, Credentials { caller: &caller, token }).await?;
    let recorder = match &attached {
        Attached::Stream(a) => recorder(&state, Endpoint::Resume, &a.request, &headers, arrival.as_ref()),
        _ => return Ok(StatusCode::NO_CONTENT.into_response()),
    };
    Ok(stream_response(&state, attached, recorder, Endpoint::Resume, arrival, kept_alive(version, &headers)))
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// For clients that cannot send `Last-Event-ID` (resume only).
    #[param(value_type = Option<u64>)]
    last_event_id: Option<String>,
    /// For clients that cannot send `X-Resume-Token`: the stream's resume token.
    token: Option<String>,
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TokenQuery {
    /// For clients that cannot send `X-Resume-Token`: the stream's resume token.
    token: Option<String>,
}

/// `POST /api/v1/plans/streams/{streamId}/cancel`: stops the caller's stream now, for its owner's key or
/// its resume token. Its listeners get a `cancelled` error with the days drafted so far, then `done`.
#[utoipa::path(
    post, path = "/api/v1/plans/streams/{streamId}/cancel", tag = "streams",
    summary = "Cancel a stream",
    description = "Stops a stream now, for the key that opened it or its resume token. Its listeners get a \
                   `cancelled` error event with the days drafted so far, then `done`.",
    params(StreamId, TokenQuery, ResumeToken),
    security((), ("bearer" = [])),
    responses(
        (status = 202, description = "Cancelled", body = Cancelled, example = json!({"streamId": "str_01JC…", "cancelled": true})),
        (status = 200, description = "The stream had already ended", body = Cancelled,
         example = json!({"streamId": "str_01JC…", "cancelled": false})),
        StreamIdErrors,
    ),
)]
pub async fn cancel(
    State(state): State<AppState>,
    Path(stream_id): Path<String>,
    headers: HeaderMap,
    MaybeCaller(caller): MaybeCaller,
    ValidQuery(query): ValidQuery<TokenQuery>,
) -> Result<Response, ApiError> {
    let token = sse::resume_token(&headers, query.token.as_deref());
    let cancelled = state.generations.cancel(&stream_id, Credentials { caller: &caller, token }).await?;
    let status = if cancelled { StatusCode::ACCEPTED } else { StatusCode::OK };
    Ok((status, Json(Cancelled { stream_id, cancelled })).into_response())
}

#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Cancelled {
    stream_id: String,
    /// Whether this call stopped it (`false`: it had already ended).
    cancelled: bool,
}

fn idempotency_key(headers: &HeaderMap) -> Option<String> {
    headers.get("idempotency-key").and_then(|v| v.to_str().ok()).filter(|k| !k.trim().is_empty()).map(str::to_owned)
}

/// The request's recorder, counting from when it reached the server (its `arrival`).
fn recorder(
    state: &AppState,
    endpoint: Endpoint,
    request: &PlanRequest,
    headers: &HeaderMap,
    arrival: Option<&Arrival>,
) -> Recorder {
    let request_id = headers.get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let arrived = arrival.map(|a| a.at.into_std());
    let mut recorder = Recorder::new(state.runlog.clone(), endpoint, request, request_id, arrived);
    let info = state.generations.generator_info();
    recorder.generator(&info.provider, &info.model);
    recorder
}

/// Whether the response may say `Connection: keep-alive` (API.md, HTTP/1.1 only): not to a client that
/// asked to close, to which hyper adds `close` (the two together would contradict each other), nor over
/// HTTP/1.0 or HTTP/2, which have no such header of their own.
fn kept_alive(version: Version, headers: &HeaderMap) -> bool {
    let closing = headers
        .get_all(axum::http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("close"));
    version == Version::HTTP_11 && !closing
}

/// The SSE response for an attachment (`204` for a stream with nothing left): contract headers (and, on
/// the stream endpoint, `X-Cache`), a `retry:` hint, keep-alive comments. The request's `arrival` ends
/// with its first event.
fn stream_response(
    state: &AppState,
    attached: Attached,
    mut recorder: Recorder,
    endpoint: Endpoint,
    arrival: Option<Arrival>,
    keep_alive: bool,
) -> Response {
    let attachment = match attached {
        Attached::Stream(attachment) => attachment,
        Attached::Finished | Attached::Cached(_) => return StatusCode::NO_CONTENT.into_response(),
    };
    recorder.attached(&attachment);
    tracing::Span::current().record("stream_id", attachment.stream_id.as_str());
    let mut headers = HeaderMap::new();
    headers.insert(HeaderName::from_static("x-accel-buffering"), HeaderValue::from_static("no"));
    if keep_alive {
        headers.insert(axum::http::header::CONNECTION, HeaderValue::from_static("keep-alive"));
    }
    if endpoint == Endpoint::Stream {
        let hit = if attachment.how == How::Replayed { "HIT" } else { "MISS" };
        headers.insert(X_CACHE, HeaderValue::from_static(hit));
    }
    if let Ok(id) = HeaderValue::from_str(&attachment.stream_id) {
        headers.insert(HeaderName::from_static("x-stream-id"), id);
    }
    if let Some(token) = attachment.resume_token.as_deref().and_then(|t| HeaderValue::from_str(t).ok()) {
        headers.insert(HeaderName::from_static("x-resume-token"), token);
    }
    let messages = messages(attachment, recorder, state.sse_retry, arrival);
    (headers, sse::response(sse::keep_alive(messages, state.keep_alive))).into_response()
}

/// The SSE messages of one connection, ending after `done`; the first carries the `retry:` hint and ends
/// the request's `arrival`. Owns the connection's attachment and recorder: when the client goes away the
/// response is dropped, the listener leaves the run (the last one out starts its cancellation grace
/// period), and the recorder writes the row.
fn messages(
    attachment: Attachment,
    recorder: Recorder,
    retry: std::time::Duration,
    arrival: Option<Arrival>,
) -> impl Stream<Item = Bytes> {
    let Attachment { events, stream_id, resume_token, .. } = attachment;
    // The first message names the caller's stream (and gives its token); later ones carry neither.
    let first = Some((stream_id, resume_token, arrival));
    stream::unfold((events, first, recorder), move |(mut events, first, mut recorder)| async move {
        let (seq, event) = events.next().await?;
        recorder.saw(&event);
        let message = match &first {
            Some((id, token, _)) => sse::encode(seq, &event, Some(id), token.as_deref(), Some(retry)),
            None => sse::encode(seq, &event, None, None, None),
        };
        // Dropped here: the first event is ready to be written.
        drop(first);
        Some((message, (events, None, recorder)))
    })
}
