//! Encoding the engine's events as SSE messages: `id:` is the per-stream sequence number, `data:` the
//! event's JSON, and the first event carries the `streamId`.

use axum::response::sse::Event;
use tripstream_domain::StreamEvent;
use tripstream_domain::event::WireEvent;

pub fn encode(seq: u64, event: &StreamEvent, stream_id: &str) -> Event {
    let wire = WireEvent { event, stream_id: (seq == 0).then_some(stream_id) };
    // Serializing plain data with string keys cannot fail.
    let data = serde_json::to_string(&wire).expect("events serialize");
    Event::default().id(seq.to_string()).data(data)
}

/// The `Last-Event-ID` a reconnecting client sent (header, or `lastEventId` in the query for clients that
/// cannot set headers): the sequence number to resume after.
pub fn last_event_id(headers: &axum::http::HeaderMap, query: Option<&str>) -> Option<u64> {
    let header = headers.get("last-event-id").and_then(|v| v.to_str().ok());
    header.or(query).and_then(|v| v.trim().parse().ok())
}
