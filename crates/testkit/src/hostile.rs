//! A hostile or broken LLM provider, for the abuse suite: it speaks both wire formats tripstream knows —
//! Gemini's `streamGenerateContent?alt=sse` and OpenAI's `/v1/chat/completions` with `stream: true` —
//! and answers every request with one [`Scenario`] of what real providers and proxies have been seen to
//! do: a reply that never stops growing, a rate limit that asks to wait forever, a stream that never ends,
//! frames that are not SSE or not JSON, a plan cut mid-object, and a storm of 429s.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use serde_json::json;

use crate::serve::{self, Body, Protocol, Server};

/// What every reply does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// A well-formed stream whose text runs on for 10 MB.
    Huge,
    /// `429` asking to wait `1e20` seconds (`Retry-After: 1e20`; Gemini's `RetryInfo.retryDelay: "1e20s"`).
    RetryAfterForever,
    /// The reply starts, then whitespace follows, a frame every 10 ms, forever (JSON mode's known
    /// failure).
    EndlessWhitespace,
    /// The reply starts, then nothing more is sent and the connection stays open.
    Silent,
    /// `200 text/event-stream` whose frames are not JSON, and lines that are not SSE.
    MalformedSse,
    /// A well-formed stream that says it finished, with the plan's JSON cut in the middle.
    TruncatedJson,
    /// `429` every time, asking for no wait.
    RateLimitStorm,
}

/// The wire format of a request, from its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wire {
    Gemini,
    OpenAi,
}

/// A running hostile provider.
pub struct Hostile {
    server: Server,
    requests: Arc<AtomicUsize>,
}

impl Hostile {
    /// Serves `scenario` over plain HTTP/1.1 on 127.0.0.1 at any free port.
    pub async fn start(scenario: Scenario) -> std::io::Result<Self> {
        let requests = Arc::new(AtomicUsize::new(0));
        let counted = requests.clone();
        let handler: serve::Handler = Arc::new(move |request| {
            counted.fetch_add(1, Ordering::Relaxed);
            Box::pin(handle(scenario, request))
        });
        let server = serve::start(SocketAddr::from(([127, 0, 0, 1], 0)), Protocol::Http1, handler).await?;
        Ok(Self { server, requests })
    }

    /// What `GEMINI_BASE_URL` or `OPENAI_BASE_URL` is set to.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.server.addr)
    }

    /// Requests received so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::Relaxed)
    }
}

async fn handle(scenario: Scenario, request: Request<Incoming>) -> Response<Body> {
    let wire = if request.uri().path().ends_with(":streamGenerateContent") { Wire::Gemini } else { Wire::OpenAi };
    // The request body is read and dropped, as a server does before it answers.
    let _ = request.into_body().collect().await;
    match scenario {
        Scenario::RetryAfterForever => rate_limited(wire, "1e20"),
        Scenario::RateLimitStorm => rate_limited(wire, "0"),
        Scenario::Huge => {
            let piece = " ".repeat(64 << 10);
            let frames = futures::stream::iter(0..160).map(move |i| {
                let text = if i == 0 { "{\"title\": \"".to_owned() } else { piece.clone() };
                Ok(Frame::data(frame(wire, &text)))
            });
            sse(frames.boxed())
        }
        Scenario::EndlessWhitespace => {
            let frames = futures::stream::unfold(0u64, move |i| async move {
                if i > 0 {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                let text = if i == 0 { "{\"title\": \"Seoul\", \"days\": [" } else { " \n" };
                Some((Ok(Frame::data(frame(wire, text))), i + 1))
            });
            sse(frames.boxed())
        }
        Scenario::Silent => {
            let first = futures::stream::once(async move { Ok(Frame::data(frame(wire, "{\"title\": "))) });
            sse(first.chain(futures::stream::pending()).boxed())
        }
        Scenario::MalformedSse => {
            let body = "data: {\"candidates\": [{\"content\": \nthis is not SSE at all\r\n\r\ndata: <html>502 Bad Gateway</html>\n\n";
            sse(futures::stream::once(async move { Ok(Frame::data(Bytes::from(body))) }).boxed())
        }
        Scenario::TruncatedJson => {
            let text = "{\"title\": \"Seoul\", \"days\": [{\"day\": 1, \"theme\": \"Jongno\", \"activities\": [{\"time\": \"09:00\", \"durationMinutes\": 120, \"name\": \"Gyeong";
            let frames = vec![Ok(Frame::data(frame(wire, text))), Ok(Frame::data(finish(wire)))];
            sse(futures::stream::iter(frames).boxed())
        }
    }
}

type Frames = futures::stream::BoxStream<'static, Result<Frame<Bytes>, std::convert::Infallible>>;

fn sse(frames: Frames) -> Response<Body> {
    let mut response = Response::new(BodyExt::boxed_unsync(StreamBody::new(frames)));
    response.headers_mut().insert("content-type", hyper::header::HeaderValue::from_static("text/event-stream"));
    response
}

/// One piece of reply text as the wire format frames it.
fn frame(wire: Wire, text: &str) -> Bytes {
    let data = match wire {
        Wire::Gemini => json!({"candidates": [{"content": {"parts": [{"text": text}], "role": "model"}, "index": 0}],
                               "modelVersion": "gemini-2.5-flash-lite", "responseId": "hostile"}),
        Wire::OpenAi => json!({"id": "chatcmpl-hostile", "object": "chat.completion.chunk", "created": 1762754400,
                               "model": "gpt-4o-mini", "choices": [{"index": 0, "delta": {"content": text},
                               "logprobs": null, "finish_reason": null}]}),
    };
    Bytes::from(format!("data: {data}\r\n\r\n"))
}

/// The frame that says the model finished, as the wire format says it.
fn finish(wire: Wire) -> Bytes {
    match wire {
        Wire::Gemini => {
            let data = json!({"candidates": [{"content": {"parts": [{"text": ""}], "role": "model"},
                "finishReason": "STOP", "index": 0}],
                "usageMetadata": {"promptTokenCount": 812, "candidatesTokenCount": 40, "totalTokenCount": 852}});
            Bytes::from(format!("data: {data}\r\n\r\n"))
        }
        Wire::OpenAi => {
            let data = json!({"id": "chatcmpl-hostile", "object": "chat.completion.chunk", "created": 1762754400,
                "model": "gpt-4o-mini", "choices": [{"index": 0, "delta": {}, "logprobs": null, "finish_reason": "stop"}]});
            Bytes::from(format!("data: {data}\n\ndata: [DONE]\n\n"))
        }
    }
}

/// A `429` asking to wait `seconds`, in the wire format's own words.
fn rate_limited(wire: Wire, seconds: &str) -> Response<Body> {
    let body = match wire {
        Wire::Gemini => json!({"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).",
            "status": "RESOURCE_EXHAUSTED", "details": [
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": format!("{seconds}s")}]}}),
        Wire::OpenAi => json!({"error": {"message": "Rate limit reached for requests", "type": "requests",
            "param": null, "code": "rate_limit_exceeded"}}),
    };
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())).boxed_unsync());
    *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    let headers = response.headers_mut();
    headers.insert("content-type", hyper::header::HeaderValue::from_static("application/json"));
    if let Ok(value) = hyper::header::HeaderValue::from_str(seconds) {
        headers.insert("retry-after", value);
    }
    response
}
