//! Encoding the engine's events as SSE messages: `id:` is the per-stream sequence number, `data:` the
//! event's JSON, and the first event of a response carries the `streamId` (and the `resumeToken` of a
//! stream it gave); keep-alive comments while a stream is quiet.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::response::sse::Event;
use futures::Stream;
use tokio::time::{Instant, Sleep};
use tripstream_domain::StreamEvent;
use tripstream_domain::event::WireEvent;

/// An event as an SSE message. The first message of a response carries the caller's `stream_id` and, when
/// the response gave them the stream, its `resume_token`.
pub fn encode(seq: u64, event: &StreamEvent, stream_id: Option<&str>, resume_token: Option<&str>) -> Event {
    let wire = WireEvent { event, stream_id, resume_token };
    // Serializing plain data with string keys cannot fail.
    let data = serde_json::to_string(&wire).expect("events serialize");
    Event::default().id(seq.to_string()).data(data)
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
pub fn keep_alive<S>(events: S, every: Duration) -> impl Stream<Item = Result<Event, Infallible>>
where
    S: Stream<Item = Result<Event, Infallible>>,
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

impl<S: Stream<Item = Result<Event, Infallible>>> Stream for KeepAlive<S> {
    type Item = Result<Event, Infallible>;

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
            return Poll::Ready(Some(Ok(Event::default().comment("keep-alive"))));
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;

    fn same(a: &Event, b: &Event) -> bool {
        format!("{a:?}") == format!("{b:?}")
    }

    #[tokio::test(start_paused = true)]
    async fn a_comment_goes_out_only_after_a_whole_quiet_interval() {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Event>();
        let events = futures::stream::unfold(rx, |mut rx| async { rx.recv().await.map(|e| (Ok(e), rx)) });
        let mut stream = Box::pin(keep_alive(events, Duration::from_secs(15)));
        let comment = Event::default().comment("keep-alive");
        let started = Instant::now();
        tokio::time::sleep(Duration::from_secs(10)).await;
        tx.send(Event::default().data("a")).unwrap();
        assert!(same(&stream.next().await.unwrap().unwrap(), &Event::default().data("a")));
        // 15 s after the event, not 15 s after the start.
        assert!(same(&stream.next().await.unwrap().unwrap(), &comment));
        assert_eq!(started.elapsed(), Duration::from_secs(25));
        assert!(same(&stream.next().await.unwrap().unwrap(), &comment));
        assert_eq!(started.elapsed(), Duration::from_secs(40));
        drop(tx);
        assert!(stream.next().await.is_none());
    }
}
