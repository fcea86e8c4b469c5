//! The two plan endpoints: one JSON answer, or the generation streamed as it happens. Both look in the
//! plan cache first, then join an identical generation in flight, and only then start one.

use std::collections::VecDeque;
use std::convert::Infallible;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::header::{HeaderName, HeaderValue};
use axum::response::sse::{KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::stream::{self, Stream};
use tracing::Instrument;
use tripstream_adapters::cache::plan_key;
use tripstream_domain::event::Failure;
use tripstream_domain::plan::prefixed_id;
use tripstream_domain::{Destination, ErrorCode, Plan, PlanRequest, StreamEvent, messages};
use tripstream_engine::{EngineError, EventSink};

use crate::error::ApiError;
use crate::extract::ValidPlanRequest;
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
    let (mut listener, coalesced) = start_or_join(&state, key, request, destination);
    if coalesced {
        recorder.coalesced();
    }
    recorder.stream_id(listener.stream_id());
    let mut failure = None;
    while let Some(event) = listener.next().await {
        recorder.saw(&event);
        match event {
            StreamEvent::Complete(c) => {
                return Ok(([(X_CACHE, HeaderValue::from_static("MISS"))], Json(*c.plan)).into_response());
            }
            StreamEvent::Error(f) => failure = Some(f),
            _ => {}
        }
    }
    let failure = failure.unwrap_or_else(|| Failure {
        message: "the generation ended without a plan".into(),
        error: ErrorCode::Internal,
        retryable: true,
        usage: None,
    });
    let usage = failure.usage.unwrap_or_default();
    Err(EngineError { code: failure.error, detail: failure.message, usage }.into())
}

pub async fn generate_stream(
    State(state): State<AppState>,
    headers: HeaderMap,
    ValidPlanRequest(request): ValidPlanRequest,
) -> Result<impl IntoResponse, ApiError> {
    // Everything that can be answered with a 4xx is checked before the stream opens.
    let destination = state.destinations.resolve(&request.location).await?;
    let mut recorder = recorder(&state, Endpoint::Stream, &request, &headers);
    let key = plan_key(&request, &state.engine.generator_info());
    let (source, stream_id, hit) = match cached(&state, &key).await {
        Some(plan) => {
            recorder.cache_hit();
            let mut events = Vec::new();
            state.engine.replay(&request, &plan, &mut events);
            (Source::Replay(events.into()), new_stream_id(), true)
        }
        None => {
            let (listener, coalesced) = start_or_join(&state, key, request, destination);
            if coalesced {
                recorder.coalesced();
            }
            let id = listener.stream_id().to_owned();
            (Source::Live(listener), id, false)
        }
    };
    recorder.stream_id(&stream_id);

    let mut headers = HeaderMap::new();
    headers.insert(HeaderName::from_static("x-accel-buffering"), HeaderValue::from_static("no"));
    headers.insert(axum::http::header::CONNECTION, HeaderValue::from_static("keep-alive"));
    headers.insert(X_CACHE, HeaderValue::from_static(if hit { "HIT" } else { "MISS" }));
    if let Ok(id) = HeaderValue::from_str(&stream_id) {
        headers.insert(HeaderName::from_static("x-stream-id"), id);
    }
    let keep_alive = KeepAlive::new().interval(state.keep_alive).text("keep-alive");
    Ok((headers, Sse::new(messages(source, stream_id, recorder)).keep_alive(keep_alive)))
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
fn start_or_join(state: &AppState, key: String, request: PlanRequest, destination: Destination) -> (Listener, bool) {
    let engine = state.engine.clone();
    let hard_stop = state.hard_stop.clone();
    let cache = state.cache.clone();
    let hub_key = key.clone();
    state.hub.join_or_start(&hub_key, new_stream_id, move |mut sink| {
        let span =
            tracing::info_span!("generation", stream_id = %sink.stream_id(), location = %request.location.as_str());
        tokio::spawn(
            async move {
                let outcome = tokio::select! {
                    _ = hard_stop.cancelled() => None,
                    result = engine.run(&request, &destination, &mut sink) => Some(result),
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
                    None => {
                        tracing::warn!("shutdown grace period over; ending the stream");
                        sink.emit(StreamEvent::Error(Failure {
                            message: messages::shutting_down(request.language),
                            error: ErrorCode::Internal,
                            retryable: true,
                            usage: None,
                        }));
                        sink.emit(StreamEvent::Done);
                    }
                }
            }
            .instrument(span),
        )
    })
}

/// Where a stream's events come from: a replayed cached plan, or a generation's log.
enum Source {
    Replay(VecDeque<StreamEvent>),
    Live(Listener),
}

impl Source {
    async fn next(&mut self) -> Option<StreamEvent> {
        match self {
            Source::Replay(events) => events.pop_front(),
            Source::Live(listener) => listener.next().await,
        }
    }
}

/// The SSE messages of one client, ending after `done`. Owns the client's listener and recorder: when the
/// client goes away the response is dropped, the listener leaves the run (the last one out cancels it),
/// and the recorder writes the row.
fn messages(
    source: Source,
    stream_id: String,
    recorder: Recorder,
) -> impl Stream<Item = Result<axum::response::sse::Event, Infallible>> {
    stream::unfold((source, 0u64, stream_id, recorder), |(mut source, seq, stream_id, mut recorder)| async move {
        let event = source.next().await?;
        recorder.saw(&event);
        let message = sse::encode(seq, &event, &stream_id);
        Some((Ok(message), (source, seq + 1, stream_id, recorder)))
    })
}
