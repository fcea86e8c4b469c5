//! The two plan endpoints: one JSON answer, or the generation streamed as it happens.

use std::convert::Infallible;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::header::{HeaderName, HeaderValue};
use axum::response::IntoResponse;
use axum::response::sse::{KeepAlive, Sse};
use futures::stream::{self, Stream};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tracing::Instrument;
use tripstream_domain::event::Failure;
use tripstream_domain::plan::prefixed_id;
use tripstream_domain::{ErrorCode, Plan, StreamEvent, messages};
use tripstream_engine::EventSink;

use crate::error::ApiError;
use crate::extract::ValidPlanRequest;
use crate::sse;
use crate::state::AppState;

pub async fn generate(
    State(state): State<AppState>,
    ValidPlanRequest(request): ValidPlanRequest,
) -> Result<Json<Plan>, ApiError> {
    let destination = state.destinations.resolve(&request.location).await?;
    let mut events = Vec::new();
    let plan = state.engine.run(&request, &destination, &mut events).await?;
    Ok(Json(plan))
}

pub async fn generate_stream(
    State(state): State<AppState>,
    ValidPlanRequest(request): ValidPlanRequest,
) -> Result<impl IntoResponse, ApiError> {
    // Everything that can be answered with a 4xx is checked before the stream opens.
    let destination = state.destinations.resolve(&request.location).await?;
    let stream_id = prefixed_id("str_", uuid::Uuid::now_v7().as_u128());
    let span = tracing::info_span!("generation", stream_id = %stream_id, location = %request.location.as_str());
    let (tx, rx) = mpsc::unbounded_channel();
    let engine = state.engine.clone();
    let hard_stop = state.hard_stop.clone();
    let task = tokio::spawn(
        async move {
            let mut tx = tx;
            let lang = request.language;
            let finished = tokio::select! {
                _ = hard_stop.cancelled() => false,
                _ = engine.run(&request, &destination, &mut tx) => true,
            };
            if !finished {
                tracing::warn!("shutdown grace period over; ending the stream");
                tx.emit(StreamEvent::Error(Failure {
                    message: messages::shutting_down(lang),
                    error: ErrorCode::Internal,
                    retryable: true,
                    usage: None,
                }));
                tx.emit(StreamEvent::Done);
            }
        }
        .instrument(span),
    );

    let mut headers = HeaderMap::new();
    headers.insert(HeaderName::from_static("x-accel-buffering"), HeaderValue::from_static("no"));
    headers.insert(axum::http::header::CONNECTION, HeaderValue::from_static("keep-alive"));
    if let Ok(id) = HeaderValue::from_str(&stream_id) {
        headers.insert(HeaderName::from_static("x-stream-id"), id);
    }
    let events = events(rx, stream_id, CancelOnDrop(task.abort_handle()));
    let keep_alive = KeepAlive::new().interval(state.keep_alive).text("keep-alive");
    Ok((headers, Sse::new(events).keep_alive(keep_alive)))
}

/// The SSE messages of one stream, ending after `done`. Owns the generation: when the client goes away
/// the response is dropped, and with it this guard, which stops the generation (and any upstream call).
fn events(
    rx: mpsc::UnboundedReceiver<StreamEvent>,
    stream_id: String,
    guard: CancelOnDrop,
) -> impl Stream<Item = Result<axum::response::sse::Event, Infallible>> {
    stream::unfold((rx, 0u64, stream_id, guard), |(mut rx, seq, stream_id, guard)| async move {
        let event = rx.recv().await?;
        let message = sse::encode(seq, &event, &stream_id);
        Some((Ok(message), (rx, seq + 1, stream_id, guard)))
    })
}

struct CancelOnDrop(AbortHandle);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if !self.0.is_finished() {
            tracing::info!("client left; cancelling the generation");
            self.0.abort();
        }
    }
}
