//! The plan endpoints: one JSON answer, or the generation streamed as it happens (POST, or GET for
//! EventSource); resuming a stream after a dropped connection; cancelling one. A request looks in the plan
//! cache first, then joins an identical generation in flight, and only then starts one.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::header::{HeaderName, HeaderValue};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::Sse;
use axum::response::{IntoResponse, Response};
use futures::stream::{self, Stream};
use tracing::Instrument;
use tripstream_adapters::cache::plan_key;
use tripstream_adapters::eventlog::{EventLogError, LogReader};
use tripstream_domain::event::Failure;
use tripstream_domain::plan::prefixed_id;
use tripstream_domain::{Destination, ErrorCode, Plan, PlanRequest, RawPlanRequest, StreamEvent, messages};
use tripstream_engine::{EngineError, EventSink};

use crate::error::ApiError;
use crate::extract::{QueryPlanRequest, ValidPlanRequest};
use crate::hub::Listener;
use crate::observe::{Endpoint, Recorder, count_tokens};
use crate::sse;
use crate::state::AppState;

const X_CACHE: HeaderName = HeaderName::from_static("x-cache");

pub async fn generate(
    State(state): State<AppState>,
    headers: HeaderMap,
    ValidPlanRequest(request): ValidPlanRequest,
) -> Result<Response, ApiError> {
    let destination = state.destinations.resolve(&request.location).await?;
    let mut recorder = recorder(&state, Endpoint::Json, &request, &headers);
    let key = plan_key(&request, &state.engine.generator_info());
    if let Some(plan) = cached(&state, &key).await {
        recorder.cache_hit();
        recorder.delivered(&plan);
        return Ok(([(X_CACHE, HeaderValue::from_static("HIT"))], Json(plan)).into_response());
    }
    let (mut listener, coalesced) = start_or_join(&state, key, request, destination, idempotency_key(&headers));
    if coalesced {
        recorder.coalesced();
    }
    recorder.stream_id(listener.stream_id());
    let mut failure = None;
    while let Some((_, event)) = listener.next().await {
        recorder.saw(&event);
        match &*event {
            StreamEvent::Complete(c) => {
                return Ok(([(X_CACHE, HeaderValue::from_static("MISS"))], Json(&*c.plan)).into_response());
            }
            StreamEvent::Error(f) => failure = Some(f.clone()),
            _ => {}
        }
    }
    let failure = failure.unwrap_or_else(|| Failure {
        message: "the generation ended without a plan".into(),
        error: ErrorCode::Internal,
        retryable: true,
        usage: None,
        partial_days: None,
    });
    let usage = failure.usage.unwrap_or_default();
    Err(EngineError { code: failure.error, detail: failure.message, usage }.into())
}

pub async fn generate_stream(
    State(state): State<AppState>,
    headers: HeaderMap,
    ValidPlanRequest(request): ValidPlanRequest,
) -> Result<Response, ApiError> {
    open_stream(state, headers, request, None).await
}

/// `EventSource` can only GET: the same stream, the request in the query.
pub async fn generate_stream_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: QueryPlanRequest,
) -> Result<Response, ApiError> {
    open_stream(state, headers, query.request, query.last_event_id).await
}

/// A stream for a request: a reconnecting client (`Last-Event-ID`, or an `Idempotency-Key` seen before)
/// gets the rest of the stream it was reading; otherwise the cache, the identical run in flight, or a new
/// generation, in that order.
async fn open_stream(
    state: AppState,
    headers: HeaderMap,
    request: PlanRequest,
    last_event_id_query: Option<String>,
) -> Result<Response, ApiError> {
    // Everything that can be answered with a 4xx is checked before the stream opens.
    let destination = state.destinations.resolve(&request.location).await?;
    let mut recorder = recorder(&state, Endpoint::Stream, &request, &headers);
    let key = plan_key(&request, &state.engine.generator_info());
    let last = sse::last_event_id(&headers, last_event_id_query.as_deref());
    let from = last.map_or(0, |id| id as usize + 1);
    let idempotency = idempotency_key(&headers);
    let reattached = match (idempotency, last) {
        (Some(k), _) => state.hub.resume_by_idempotency(k, from),
        (None, Some(_)) => state.hub.resume_by_key(&key, from),
        (None, None) => None,
    };
    // A reconnect after the end: EventSource stops only on 204.
    if let Some(listener) = &reattached
        && listener.run().is_finished()
        && listener.position() >= listener.run().len()
    {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let (listener, stream_id, hit) = match reattached {
        Some(listener) => {
            recorder.coalesced();
            let id = listener.stream_id().to_owned();
            (listener, id, false)
        }
        None => match cached(&state, &key).await {
            Some(plan) => {
                recorder.cache_hit();
                let mut events = Vec::new();
                state.engine.replay(&request, &destination, &plan, &mut events).await;
                // Registered like a generation, so a dropped replay resumes like one.
                let run = state.hub.completed(&key, &request, new_stream_id(), events);
                let id = run.stream_id.clone();
                (Listener::on(run, from), id, true)
            }
            None => {
                let (listener, coalesced) = start_or_join(&state, key, request, destination, idempotency);
                if coalesced {
                    recorder.coalesced();
                }
                let id = listener.stream_id().to_owned();
                (listener, id, false)
            }
        },
    };
    Ok(sse_response(&state, listener, stream_id, recorder, Some(hit)))
}

/// `GET /api/v1/plans/streams/{streamId}/events`: the rest of a stream after `Last-Event-ID`, then live.
/// A finished stream with nothing left to send is `204` (EventSource stops reconnecting); an unknown or
/// expired one is `404`.
pub async fn resume(
    State(state): State<AppState>,
    Path(stream_id): Path<String>,
    headers: HeaderMap,
    Query(query): Query<ResumeQuery>,
) -> Result<Response, ApiError> {
    let from = sse::last_event_id(&headers, query.last_event_id.as_deref()).map_or(0, |id| id as usize + 1);
    let Some(run) = state.hub.run(&stream_id) else {
        return resume_from_shared_log(&state, stream_id, from, &headers).await;
    };
    if run.is_finished() && from >= run.len() {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let mut recorder = recorder(&state, Endpoint::Resume, &run.request, &headers);
    recorder.coalesced();
    Ok(sse_response(&state, Listener::on(run, from), stream_id, recorder, None))
}

/// A stream another replica produces (or produced), read from the shared event log in Redis.
async fn resume_from_shared_log(
    state: &AppState,
    stream_id: String,
    from: usize,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let log = state.hub.shared_log().ok_or_else(|| unknown_stream(&stream_id))?;
    let unavailable =
        |e: EventLogError| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "internal", format!("cannot resume: {e}"));
    let raw = log.request(&stream_id).await.map_err(unavailable)?.ok_or_else(|| unknown_stream(&stream_id))?;
    let request = serde_json::from_str::<RawPlanRequest>(&raw)
        .ok()
        .and_then(|raw| PlanRequest::parse(raw, None, state.limits).ok())
        .ok_or_else(|| unknown_stream(&stream_id))?;
    if let Some((last, event)) = log.last(&stream_id).await.map_err(unavailable)?
        && from > last
        && event.contains(r#""type":"done""#)
    {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let reader = log.reader(&stream_id, from).await.map_err(unavailable)?;
    let mut recorder = recorder(state, Endpoint::Resume, &request, headers);
    recorder.coalesced();
    Ok(sse_response(state, Source::Shared { reader, ended: false }, stream_id, recorder, None))
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResumeQuery {
    last_event_id: Option<String>,
}

/// `POST /api/v1/plans/streams/{streamId}/cancel`: stops the generation now. Listeners get a `cancelled`
/// error with the days drafted so far and the tokens spent, then `done`.
pub async fn cancel(State(state): State<AppState>, Path(stream_id): Path<String>) -> Result<Response, ApiError> {
    let run = state.hub.run(&stream_id).ok_or_else(|| unknown_stream(&stream_id))?;
    let cancelled = run.cancel();
    let status = if cancelled { StatusCode::ACCEPTED } else { StatusCode::OK };
    Ok((status, Json(serde_json::json!({ "streamId": stream_id, "cancelled": cancelled }))).into_response())
}

fn idempotency_key(headers: &HeaderMap) -> Option<&str> {
    headers.get("idempotency-key").and_then(|v| v.to_str().ok()).filter(|k| !k.trim().is_empty())
}

fn unknown_stream(stream_id: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no stream {stream_id:?}: unknown, or expired"))
}

/// The SSE response for a source: contract headers, a `retry:` hint, keep-alive comments.
fn sse_response(
    state: &AppState,
    source: impl Into<Source>,
    stream_id: String,
    mut recorder: Recorder,
    cache_hit: Option<bool>,
) -> Response {
    recorder.stream_id(&stream_id);
    let mut headers = HeaderMap::new();
    headers.insert(HeaderName::from_static("x-accel-buffering"), HeaderValue::from_static("no"));
    headers.insert(axum::http::header::CONNECTION, HeaderValue::from_static("keep-alive"));
    if let Some(hit) = cache_hit {
        headers.insert(X_CACHE, HeaderValue::from_static(if hit { "HIT" } else { "MISS" }));
    }
    if let Ok(id) = HeaderValue::from_str(&stream_id) {
        headers.insert(HeaderName::from_static("x-stream-id"), id);
    }
    let messages = messages(source.into(), stream_id, recorder, state.sse_retry);
    (headers, Sse::new(sse::keep_alive(messages, state.keep_alive))).into_response()
}

fn recorder(state: &AppState, endpoint: Endpoint, request: &PlanRequest, headers: &HeaderMap) -> Recorder {
    let request_id = headers.get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let mut recorder = Recorder::new(state.runlog.clone(), endpoint, request, request_id);
    let info = state.engine.generator_info();
    recorder.generator(&info.provider, &info.model);
    recorder
}

/// A cached plan, marked as such.
async fn cached(state: &AppState, key: &str) -> Option<Plan> {
    let mut plan = state.cache.as_ref()?.get(key).await?;
    plan.metadata.cached = true;
    Some(plan)
}

fn new_stream_id() -> String {
    prefixed_id("str_", uuid::Uuid::now_v7().as_u128())
}

/// Joins the identical generation in flight, or starts one whose plan goes into the cache.
fn start_or_join(
    state: &AppState,
    key: String,
    request: PlanRequest,
    destination: Destination,
    idempotency_key: Option<&str>,
) -> (Listener, bool) {
    let engine = state.engine.clone();
    let hard_stop = state.hard_stop.clone();
    let cache = state.cache.clone();
    let handover = state.hub.shared_log().is_some();
    let hub_key = key.clone();
    let for_run = request.clone();
    state.hub.join_or_start(&hub_key, &for_run, idempotency_key, new_stream_id, move |mut sink, cancel| {
        let span =
            tracing::info_span!("generation", stream_id = %sink.stream_id(), location = %request.location.as_str());
        tokio::spawn(
            async move {
                let outcome = tokio::select! {
                    _ = hard_stop.cancelled() => None,
                    result = engine.run_until(&request, &destination, &mut sink, cancel.cancelled_owned()) => Some(result),
                };
                match outcome {
                    Some(Ok(plan)) => {
                        let m = &plan.metadata;
                        count_tokens(&m.provider, m.usage.input_tokens, m.usage.output_tokens);
                        if let Some(cache) = cache {
                            cache.put(&key, &plan).await;
                        }
                    }
                    Some(Err(_)) => {}
                    // With a shared log, another replica takes the stream over: ending it here without
                    // `done` sends this replica's clients to resume elsewhere.
                    None if handover => tracing::warn!("shutdown grace period over; handing the stream over"),
                    None => {
                        tracing::warn!("shutdown grace period over; ending the stream");
                        sink.emit(StreamEvent::Error(Failure {
                            message: messages::shutting_down(request.language),
                            error: ErrorCode::Internal,
                            retryable: true,
                            usage: None,
                            partial_days: None,
                        }));
                        sink.emit(StreamEvent::Done);
                    }
                }
            }
            .instrument(span),
        )
    })
}

/// The SSE messages of one connection, ending after `done`; the first carries the `retry:` hint. Owns
/// the connection's listener and recorder: when the client goes away the response is dropped, the
/// listener leaves the run (the last one out starts its cancellation grace period), and the recorder
/// writes the row.
fn messages(
    source: Source,
    stream_id: String,
    recorder: Recorder,
    retry: std::time::Duration,
) -> impl Stream<Item = Result<axum::response::sse::Event, Infallible>> {
    let state = (source, true, stream_id, recorder);
    stream::unfold(state, move |(mut source, first, stream_id, mut recorder)| async move {
        let (seq, event) = source.next().await?;
        recorder.saw(&event);
        let mut message = sse::encode(seq as u64, &event, &stream_id);
        if first {
            message = message.retry(retry);
        }
        Some((Ok(message), (source, false, stream_id, recorder)))
    })
}

/// Where a connection's events come from, with their sequence numbers: a run on this replica, or the
/// shared log of a run on another.
enum Source {
    Local(Listener),
    Shared { reader: LogReader, ended: bool },
}

impl From<Listener> for Source {
    fn from(listener: Listener) -> Self {
        Source::Local(listener)
    }
}

impl Source {
    /// A shared log quiet for this long is taken to be abandoned by its producer; the client may retry.
    const SHARED_IDLE_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

    async fn next(&mut self) -> Option<(usize, Arc<StreamEvent>)> {
        match self {
            Source::Local(listener) => listener.next().await,
            Source::Shared { reader, ended } => {
                if *ended {
                    return None;
                }
                let (seq, json) = reader.next(Self::SHARED_IDLE_LIMIT).await.ok().flatten()?;
                let event: StreamEvent = serde_json::from_str(&json).ok()?;
                *ended = matches!(event, StreamEvent::Done);
                Some((seq, Arc::new(event)))
            }
        }
    }
}
