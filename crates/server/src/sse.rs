//! Encoding the engine's events as SSE messages: `id:` is the per-stream sequence number, `data:` the
//! event's JSON, and the first event of a response carries the `streamId` (and the `resumeToken` of a
//! stream it gave); keep-alive comments while a stream is quiet.

use std::convert::Infallible;
use std::io::Write;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::body::Body;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use tokio::time::{Instant, Sleep};
use tripstream_domain::StreamEvent;
use tripstream_domain::event::WireEvent;

/// The comment sent while a stream is quiet.
const KEEP_ALIVE: &[u8] = b": keep-alive\n\n";

/// An event as an SSE message (`id:`, `data:`, and on a response's first message `retry:`), written once
/// into a buffer of about its size. The first message of a response carries the caller's `stream_id`
/// and, when the response gave them the stream, its `resume_token`.
pub fn encode(
    seq: u64,
    event: &StreamEvent,
    stream_id: Option<&str>,
    resume_token: Option<&str>,
    retry: Option<Duration>,
) -> Bytes {
    // A status or a piece of the draft is a few hundred bytes; the plan, a few thousand.
    let size = if matches!(event, StreamEvent::Complete(_)) { 8192 } else { 512 };
    let mut message = Vec::with_capacity(size);
    // Writing into memory cannot fail, and neither can serializing plain data with string keys; the
    // JSON has no raw line breaks, so it is one `data:` line.
    let _ = write!(message, "id: {seq}\ndata: ");
    serde_json::to_writer(&mut message, &WireEvent { event, stream_id, resume_token }).expect("events serialize");
    message.push(b'\n');
    if let Some(retry) = retry {
        let _ = writeln!(message, "retry: {}", retry.as_millis());
    }
    message.push(b'\n');
    Bytes::from(message)
}

/// A response streaming `messages` as `text/event-stream`.
pub fn response<S>(messages: S) -> Response
where
    S: Stream<Item = Bytes> + Send + 'static,
{
    let body = Body::from_stream(messages.map(Ok::<_, Infallible>));
    ([(header::CONTENT_TYPE, "text/event-stream"), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}

/// The resume token a client sent for a stream: `X-Resume-Token`, or `token` in the query for clients that
/// cannot set headers (EventSource).
pub fn resume_token<'a>(headers: &'a axum::http::HeaderMap, query: Option<&'a str>) -> Option<&'a str> {
    let header = headers.get("x-resume-token").and_then(|v| v.to_str().ok());
    header.or(query).map(str::trim).filter(|t| !t.is_empty())
}

/// The `Last-Event-ID` a reconnecting client sent (header, or `lastEventId` in the query for clients that
/// cannot set headers): the sequence number to resume after.
pub fn last_event_id(headers: &axum::http::HeaderMap, query: Option<&str>) -> Option<u64> {
    let header = headers.get("last-event-id").and_then(|v| v.to_str().ok());
    header.or(query).and_then(|v| v.trim().parse().ok())
}

/// `events`, with a `: keep-alive` comment whenever they have been quiet for `every`.
///
/// The timer moves only when it fires (to the last event's time plus `every`, if an event came since),
/// not on every event as axum's `KeepAlive` does: re-arming a timer per event is a timer-wheel update on
/// a stream's hottest path.
pub fn keep_alive<S>(events: S, every: Duration) -> impl Stream<Item = Bytes>
where
    S: Stream<Item = Bytes>,
{
    KeepAlive { events: Box::pin(events), timer: Box::pin(tokio::time::sleep(every)), last: Instant::now(), every }
}

struct KeepAlive<S> {
    events: Pin<Box<S>>,
    timer: Pin<Box<Sleep>>,
    /// When the last message (event or comment) went out.
    last: Instant,
    every: Duration,
}

impl<S: Stream<Item = Bytes>> Stream for KeepAlive<S> {
    type Item = Bytes;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if let Poll::Ready(item) = this.events.as_mut().poll_next(cx) {
            this.last = Instant::now();
            return Poll::Ready(item);
        }
        loop {
            ready!(this.timer.as_mut().poll(cx));
            let (due, now) = (this.last + this.every, Instant::now());
            if due > now {
                // An event went out since the timer was set: wait out the rest from that event.
                this.timer.as_mut().reset(due);
                continue;
            }
            this.last = now;
            this.timer.as_mut().reset(now + this.every);
            return Poll::Ready(Some(Bytes::from_static(KEEP_ALIVE)));
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::response::sse::{Event, Sse};
    use tripstream_domain::event::{Step, StepMessage};

    use super::*;

    /// The bytes of a response's body.
    async fn body(response: Response) -> Bytes {
        axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap()
    }

    /// The messages are byte for byte what axum's `Event` wrote before they were written directly.
    #[tokio::test]
    async fn messages_are_the_bytes_axums_events_make() {
        let status = StreamEvent::Status(StepMessage {
            message: "날씨 \"확인\"\n중".into(),
            progress: 10,
            step: Step::GatherContext,
            iteration: Some(2),
        });
        let cases = [
            (0, &status, Some("str_1"), Some("tok"), Some(Duration::from_millis(3000))),
            (7, &status, None, None, None),
            (8, &StreamEvent::Done, Some("str_1"), None, Some(Duration::from_millis(500))),
            (12_345, &StreamEvent::Done, None, None, None),
        ];
        for (seq, event, stream_id, token, retry) in cases {
            let data = serde_json::to_string(&WireEvent { event, stream_id, resume_token: token }).unwrap();
            let old = Event::default().id(seq.to_string()).data(data);
            let old = retry.map_or(old.clone(), |retry| old.retry(retry));
            let old = body(Sse::new(futures::stream::iter([Ok::<_, Infallible>(old)])).into_response()).await;
            let new = body(response(futures::stream::iter([encode(seq, event, stream_id, token, retry)]))).await;
            assert_eq!(new, old, "{}", String::from_utf8_lossy(&old));
        }
        let response = response(futures::stream::empty());
        assert_eq!(response.headers()[header::CONTENT_TYPE], "text/event-stream");
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-cache");
    }

    #[tokio::test(start_paused = true)]
    async fn a_comment_goes_out_only_after_a_whole_quiet_interval() {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Bytes>();
        let events = futures::stream::unfold(rx, |mut rx| async { rx.recv().await.map(|e| (e, rx)) });
        let mut stream = Box::pin(keep_alive(events, Duration::from_secs(15)));
        let started = Instant::now();
        tokio::time::sleep(Duration::from_secs(10)).await;
        tx.send(Bytes::from_static(b"data: a\n\n")).unwrap();
        assert_eq!(stream.next().await.unwrap(), "data: a\n\n");
        // 15 s after the event, not 15 s after the start.
        assert_eq!(stream.next().await.unwrap(), KEEP_ALIVE);
        assert_eq!(started.elapsed(), Duration::from_secs(25));
        assert_eq!(stream.next().await.unwrap(), KEEP_ALIVE);
        assert_eq!(started.elapsed(), Duration::from_secs(40));
        drop(tx);
        assert!(stream.next().await.is_none());
    }
}
