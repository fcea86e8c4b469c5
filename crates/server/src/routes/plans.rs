//! The plan endpoints: one JSON answer, or the generation streamed as it happens (POST, or GET for
//! EventSource); resuming a stream after a dropped connection; cancelling one. Handlers only: each parses,
//! calls the [`Generations`](crate::generations::Generations) service, and turns its answer into HTTP or
//! SSE.

use std::convert::Infallible;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::header::{HeaderName, HeaderValue};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use futures::stream::{self, Stream};
use tripstream_domain::event::Failure;
use tripstream_domain::{ErrorCode, PlanRequest, StreamEvent, messages};

use crate::auth::{Caller, MaybeCaller};
use crate::error::ApiError;
use crate::extract::{QueryPlanRequest, ValidPlanRequest};
use crate::generations::{Attached, Attachment, Credentials, How, PlanCall, Wants};
use crate::observe::{Endpoint, Recorder};
use crate::sse;
use crate::state::AppState;

const X_CACHE: HeaderName = HeaderName::from_static("x-cache");

/// `POST /api/v1/plans/generate`: the plan as one JSON document.
pub async fn generate(
    State(state): State<AppState>,
    headers: HeaderMap,
    caller: Caller,
    ValidPlanRequest(request): ValidPlanRequest,
) -> Result<Response, ApiError> {
    let mut recorder = recorder(&state, Endpoint::Json, &request, &headers);
    let language = request.language;
    let call =
        PlanCall { request, wants: Wants::Plan, idempotency_key: idempotency_key(&headers), last_event_id: None };
    let mut failure = None;
    match state.generations.start(call, &caller).await? {
        Attached::Cached(plan) => {
            recorder.cache_hit();
            recorder.delivered(&plan);
            return Ok(([(X_CACHE, HeaderValue::from_static("HIT"))], Json(plan)).into_response());
        }
        Attached::Stream(mut attachment) => {
            recorder.attached(&attachment);
            while let Some((_, event)) = attachment.events.next().await {
                recorder.saw(&event);
                match &*event {
                    StreamEvent::Complete(c) => {
                        return Ok(([(X_CACHE, HeaderValue::from_static("MISS"))], Json(&*c.plan)).into_response());
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
pub async fn generate_stream(
    State(state): State<AppState>,
    headers: HeaderMap,
    caller: Caller,
    ValidPlanRequest(request): ValidPlanRequest,
) -> Result<Response, ApiError> {
    open_stream(state, headers, caller, request, None).await
}

/// `GET /api/v1/plans/generate/stream?…`: `EventSource` can only GET; the same stream, the request in the
/// query.
pub async fn generate_stream_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    caller: Caller,
    query: QueryPlanRequest,
) -> Result<Response, ApiError> {
    open_stream(state, headers, caller, query.request, query.last_event_id).await
}

async fn open_stream(
    state: AppState,
    headers: HeaderMap,
    caller: Caller,
    request: PlanRequest,
    last_event_id_query: Option<String>,
) -> Result<Response, ApiError> {
    let recorder = recorder(&state, Endpoint::Stream, &request, &headers);
    let last_event_id = sse::last_event_id(&headers, last_event_id_query.as_deref());
    let call = PlanCall { request, wants: Wants::Stream, idempotency_key: idempotency_key(&headers), last_event_id };
    Ok(stream_response(&state, state.generations.start(call, &caller).await?, recorder, Endpoint::Stream))
}

/// `GET /api/v1/plans/streams/{streamId}/events`: the rest of a stream after `Last-Event-ID`, then live,
/// for its owner's key or its resume token (`X-Resume-Token`, or `?token=`). A finished stream with
/// nothing left to send is `204` (EventSource stops reconnecting); an unknown, expired or someone else's
/// stream is `404`.
pub async fn resume(
    State(state): State<AppState>,
    Path(stream_id): Path<String>,
    headers: HeaderMap,
    MaybeCaller(caller): MaybeCaller,
    Query(query): Query<StreamQuery>,
) -> Result<Response, ApiError> {
    let after = sse::last_event_id(&headers, query.last_event_id.as_deref());
    let token = sse::resume_token(&headers, query.token.as_deref());
    let attached = state.generations.resume(&stream_id, after, Credentials { caller: &caller, token }).await?;
    let recorder = match &attached {
        Attached::Stream(a) => recorder(&state, Endpoint::Resume, &a.request, &headers),
        _ => return Ok(StatusCode::NO_CONTENT.into_response()),
    };
    Ok(stream_response(&state, attached, recorder, Endpoint::Resume))
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamQuery {
    last_event_id: Option<String>,
    token: Option<String>,
}

/// `POST /api/v1/plans/streams/{streamId}/cancel`: stops the caller's stream now, for its owner's key or
/// its resume token. Its listeners get a `cancelled` error with the days drafted so far, then `done`.
pub async fn cancel(
    State(state): State<AppState>,
    Path(stream_id): Path<String>,
    headers: HeaderMap,
    MaybeCaller(caller): MaybeCaller,
    Query(query): Query<StreamQuery>,
) -> Result<Response, ApiError> {
    let token = sse::resume_token(&headers, query.token.as_deref());
    let cancelled = state.generations.cancel(&stream_id, Credentials { caller: &caller, token }).await?;
    let status = if cancelled { StatusCode::ACCEPTED } else { StatusCode::OK };
    Ok((status, Json(serde_json::json!({ "streamId": stream_id, "cancelled": cancelled }))).into_response())
}

fn idempotency_key(headers: &HeaderMap) -> Option<String> {
    headers.get("idempotency-key").and_then(|v| v.to_str().ok()).filter(|k| !k.trim().is_empty()).map(str::to_owned)
}

fn recorder(state: &AppState, endpoint: Endpoint, request: &PlanRequest, headers: &HeaderMap) -> Recorder {
    let request_id = headers.get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let mut recorder = Recorder::new(state.runlog.clone(), endpoint, request, request_id);
    let info = state.generations.generator_info();
    recorder.generator(&info.provider, &info.model);
    recorder
}

/// The SSE response for an attachment (`204` for a stream with nothing left): contract headers (and, on
/// the stream endpoint, `X-Cache`), a `retry:` hint, keep-alive comments.
fn stream_response(state: &AppState, attached: Attached, mut recorder: Recorder, endpoint: Endpoint) -> Response {
    let attachment = match attached {
        Attached::Stream(attachment) => attachment,
        Attached::Finished | Attached::Cached(_) => return StatusCode::NO_CONTENT.into_response(),
    };
    recorder.attached(&attachment);
    tracing::Span::current().record("stream_id", attachment.stream_id.as_str());
    let mut headers = HeaderMap::new();
    headers.insert(HeaderName::from_static("x-accel-buffering"), HeaderValue::from_static("no"));
    headers.insert(axum::http::header::CONNECTION, HeaderValue::from_static("keep-alive"));
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
    let messages = messages(attachment, recorder, state.sse_retry);
    (headers, Sse::new(sse::keep_alive(messages, state.keep_alive))).into_response()
}

/// The SSE messages of one connection, ending after `done`; the first carries the `retry:` hint. Owns
/// the connection's attachment and recorder: when the client goes away the response is dropped, the
/// listener leaves the run (the last one out starts its cancellation grace period), and the recorder
/// writes the row.
fn messages(
    attachment: Attachment,
    recorder: Recorder,
    retry: std::time::Duration,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let Attachment { events, stream_id, resume_token, .. } = attachment;
    // The first message names the caller's stream (and gives its token); later ones carry neither.
    let first = Some((stream_id, resume_token));
    stream::unfold((events, first, recorder), move |(mut events, first, mut recorder)| async move {
        let (seq, event) = events.next().await?;
        recorder.saw(&event);
        let message = match &first {
            Some((id, token)) => sse::encode(seq, &event, Some(id), token.as_deref()).retry(retry),
            None => sse::encode(seq, &event, None, None),
        };
        Some((Ok(message), (events, None, recorder)))
    })
}
