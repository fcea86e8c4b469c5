//! A Gemini provider that speaks `streamGenerateContent?alt=sse` exactly as Google's does: it checks the
//! request (path, `alt=sse`, the key header, a JSON body with contents), then streams the model's reply in `GenerateContentResponse` frames, the last with
//! `finishReason` and usage. It counts what a test or a benchmark needs to see: requests, streams in
//! flight and their peak, when each request arrived, and the connections opened.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::serve::{self, Body, Connections, Protocol, Server};

/// What every reply says and how fast.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The model's text, in the pieces it is streamed in, one frame each.
    pub pieces: Arc<Vec<String>>,
    /// The wait before each frame.
    pub pace: Duration,
    /// Hold every reply after its first frame until [`Gemini::release`].
    pub hold: bool,
}

impl Reply {
    /// `text` in `chunks` frames (about equal, never splitting a character), one every `pace`.
    pub fn new(text: &str, chunks: usize, pace: Duration) -> Self {
        let chars: Vec<char> = text.chars().collect();
        let size = chars.len().div_ceil(chunks.max(1)).max(1);
        Self { pieces: Arc::new(chars.chunks(size).map(|c| c.iter().collect()).collect()), pace, hold: false }
    }

    /// The same reply, held after its first frame until released.
    pub fn held(self) -> Self {
        Self { hold: true, ..self }
    }
}

/// Streams in flight now, and the most seen at once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flight {
    pub now: usize,
    pub peak: usize,
}

struct State {
    reply: Reply,
    flight: watch::Sender<Flight>,
    released: watch::Sender<bool>,
    arrivals: Mutex<Vec<Instant>>,
    rejected: Mutex<Vec<String>>,
}

/// A running mock Gemini.
pub struct Gemini {
    server: Server,
    scheme: &'static str,
    state: Arc<State>,
}

impl Gemini {
    /// Serves `reply` on 127.0.0.1 at any free port.
    pub async fn start(protocol: Protocol, reply: Reply) -> std::io::Result<Self> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), protocol, reply).await
    }

    /// Serves `reply` on `addr`.
    pub async fn start_on(addr: SocketAddr, protocol: Protocol, reply: Reply) -> std::io::Result<Self> {
        let scheme = match protocol {
            Protocol::Http1 => "http",
            Protocol::Http2Tls { .. } => "https",
        };
        let state = Arc::new(State {
            reply,
            flight: watch::Sender::new(Flight::default()),
            released: watch::Sender::new(false),
            arrivals: Mutex::new(Vec::new()),
            rejected: Mutex::new(Vec::new()),
        });
        let handler_state = state.clone();
        let handler: serve::Handler = Arc::new(move |request| Box::pin(handle(handler_state.clone(), request)));
        let server = serve::start(addr, protocol, handler).await?;
        Ok(Self { server, scheme, state })
    }

    /// What `GEMINI_BASE_URL` is set to: `https://localhost:port` over TLS (the name the certificate
    /// carries), `http://127.0.0.1:port` otherwise.
    pub fn base_url(&self) -> String {
        match self.scheme {
            "https" => format!("https://localhost:{}", self.server.addr.port()),
            _ => format!("http://{}", self.server.addr),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr
    }

    pub fn connections(&self) -> &Connections {
        &self.server.connections
    }

    pub fn flight(&self) -> Flight {
        *self.state.flight.borrow()
    }

    /// The most streams in flight at once since the last call (or the start); the count starts again
    /// from those in flight now.
    pub fn take_peak(&self) -> usize {
        let mut peak = 0;
        self.state.flight.send_modify(|f| {
            peak = f.peak;
            f.peak = f.now;
        });
        peak
    }

    /// Waits until `n` streams are in flight at once; false if `limit` passed first.
    pub async fn wait_for_in_flight(&self, n: usize, limit: Duration) -> bool {
        let mut flight = self.state.flight.subscribe();
        tokio::time::timeout(limit, flight.wait_for(|f| f.now >= n)).await.is_ok_and(|r| r.is_ok())
    }

    /// Lets every held reply (and every later one) go on.
    pub fn release(&self) {
        self.state.released.send_replace(true);
    }

    /// When each well-formed request arrived, in order.
    pub fn arrivals(&self) -> Vec<Instant> {
        self.state.arrivals.lock().map(|a| a.clone()).unwrap_or_default()
    }

    /// Why each refused request was refused.
    pub fn rejected(&self) -> Vec<String> {
        self.state.rejected.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

/// Holds a stream's place in the count from its request to the end (or drop) of its response body.
struct InFlight(Arc<State>);

impl InFlight {
    fn new(state: Arc<State>) -> Self {
        state.flight.send_modify(|f| {
            f.now += 1;
            f.peak = f.peak.max(f.now);
        });
        Self(state)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.flight.send_modify(|f| f.now -= 1);
    }
}

async fn handle(state: Arc<State>, request: Request<Incoming>) -> Response<Body> {
    let model = match check(request).await {
        Ok(model) => model,
        Err((status, message)) => {
            if let Ok(mut rejected) = state.rejected.lock() {
                rejected.push(message.clone());
            }
            return error(status, &message);
        }
    };
    if let Ok(mut arrivals) = state.arrivals.lock() {
        arrivals.push(Instant::now());
    }
    // The stream owns its place in the count: it is given back when the body ends or is dropped.
    let frames = futures::stream::unfold((0, InFlight::new(state)), move |(i, in_flight)| {
        let model = model.clone();
        async move {
            let state = in_flight.0.clone();
            let pieces = &state.reply.pieces;
            if i >= pieces.len() {
                return None;
            }
            tokio::time::sleep(state.reply.pace).await;
            if i == 1 && state.reply.hold {
                let _ = state.released.subscribe().wait_for(|go| *go).await;
            }
            let frame = Frame::data(frame(&pieces[i], &model, i + 1 == pieces.len()));
            Some((Ok(frame), (i + 1, in_flight)))
        }
    });
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(BodyExt::boxed_unsync(StreamBody::new(frames.boxed())))
        .unwrap_or_else(|_| error(StatusCode::INTERNAL_SERVER_ERROR, "response"))
}

/// Checks the request is what Gemini accepts; returns the model named in the path.
async fn check(request: Request<Incoming>) -> Result<String, (StatusCode, String)> {
    let bad = |m: &str| (StatusCode::BAD_REQUEST, m.to_owned());
    if request.method() != hyper::Method::POST {
        return Err((StatusCode::METHOD_NOT_ALLOWED, format!("{} is not POST", request.method())));
    }
    let model = request
        .uri()
        .path()
        .strip_prefix("/v1beta/models/")
        .and_then(|rest| rest.strip_suffix(":streamGenerateContent"))
        .ok_or_else(|| (StatusCode::NOT_FOUND, format!("no such method: {}", request.uri().path())))?
        .to_owned();
    if !request.uri().query().unwrap_or("").split('&').any(|p| p == "alt=sse") {
        return Err(bad("alt=sse is missing"));
    }
    if request.headers().get("x-goog-api-key").is_none_or(|k| k.is_empty()) {
        return Err((StatusCode::UNAUTHORIZED, "no API key".to_owned()));
    }
    let body = Limited::new(request.into_body(), 1 << 20)
        .collect()
        .await
        .map_err(|e| bad(&format!("unreadable body: {e}")))?
        .to_bytes();
    let body: Value = serde_json::from_slice(&body).map_err(|e| bad(&format!("the body is not JSON: {e}")))?;
    if !body["contents"][0]["parts"][0]["text"].is_string() {
        return Err(bad("contents[0].parts[0].text is missing"));
    }
    Ok(model)
}

/// One `GenerateContentResponse` as an SSE frame; the last carries the finish reason and token counts.
fn frame(text: &str, model: &str, last: bool) -> Bytes {
    let mut candidate = json!({"content": {"parts": [{"text": text}], "role": "model"}, "index": 0});
    let mut usage = json!({"promptTokenCount": 812, "totalTokenCount": 812});
    if last {
        candidate["finishReason"] = json!("STOP");
        usage = json!({"promptTokenCount": 812, "candidatesTokenCount": 640, "totalTokenCount": 1452});
    }
    let frame = json!({"candidates": [candidate], "usageMetadata": usage, "modelVersion": model, "responseId": "mock"});
    Bytes::from(format!("data: {frame}\r\n\r\n"))
}

/// A `google.rpc.Status` error body.
fn error(status: StatusCode, message: &str) -> Response<Body> {
    let reason = match status {
        StatusCode::UNAUTHORIZED => "UNAUTHENTICATED",
        StatusCode::NOT_FOUND => "NOT_FOUND",
        _ => "INVALID_ARGUMENT",
    };
    let body = json!({"error": {"code": status.as_u16(), "message": message, "status": reason}});
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())).boxed_unsync());
    *response.status_mut() = status;
    response.headers_mut().insert("content-type", hyper::header::HeaderValue::from_static("application/json"));
    response
}
