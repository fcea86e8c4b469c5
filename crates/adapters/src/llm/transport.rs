//! What both LLM wire formats share: sending with bounded retries, reading an SSE body under an idle
//! timeout, and the limits that keep a stalled provider from holding a stream open.

use std::time::Duration;

use futures::StreamExt;
use reqwest::{RequestBuilder, Response, StatusCode};
use tracing::Instrument;
use tracing::field::Empty;
use tripstream_domain::event::ErrorCode;
use tripstream_domain::plan::Usage;
use tripstream_engine::GenerateError;

use super::{Completion, Finish};

use crate::http::backoff;

/// How long each phase of a call to a provider may take (`LLM_*_TIMEOUT_SECS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP and TLS set-up.
    pub connect: Duration,
    /// From sending the request to the response headers.
    pub first_byte: Duration,
    /// The longest quiet gap between two frames of the body.
    pub idle: Duration,
    /// One whole call, retries included.
    pub total: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(5),
            first_byte: Duration::from_secs(30),
            idle: Duration::from_secs(30),
            total: Duration::from_secs(120),
        }
    }
}

/// The most a provider's reply may hold, SSE framing included. A plan of the
/// longest trip is tens of kilobytes of text; OpenAI-style framing (a JSON envelope per token) makes it a
/// few hundred kilobytes on the wire. A reply past the cap is `llm_bad_output`.
pub const DEFAULT_MAX_REPLY_BYTES: usize = 4 << 20;

/// The most of an error body that is read: enough for any provider's error envelope.
const MAX_ERROR_BODY_BYTES: usize = 64 << 10;

/// The longest wait a provider's `Retry-After` or `retryDelay` is taken at: anything longer (`1e20`, a
/// date in the next century) is read as this, which is far beyond any [`RetryPolicy::max_retry_after`],
/// so the call fails fast as rate limited instead of waiting.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(3600);

/// How failed sends are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Sends in all, the first included.
    pub max_attempts: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// A rate limit that asks for a longer wait than this fails fast instead of waiting.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(10),
        }
    }
}

/// A provider's reading of an error response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub code: ErrorCode,
    /// The provider's own message, for logs.
    pub message: String,
    /// How long the provider asks us to wait before trying again.
    pub retry_after: Option<Duration>,
}

/// Sends the request `build` makes, retrying what is worth retrying: transport failures and 5xx with
/// exponential backoff and jitter, rate limits only when the provider asks for a short wait. Returns a
/// 2xx response, or the failure with the contract's code. `read_error` turns an error body into a
/// [`Rejection`]; it sees the status, the headers and the body text.
pub async fn send(
    provider: &str,
    policy: &RetryPolicy,
    timeouts: &Timeouts,
    build: impl Fn() -> RequestBuilder,
    read_error: impl Fn(StatusCode, &reqwest::header::HeaderMap, &str) -> Rejection,
) -> Result<Response, GenerateError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        // Inside `within`, this is the provider call's span.
        tracing::Span::current().record("attempts", attempt);
        let last = attempt >= policy.max_attempts;
        let wait = match tokio::time::timeout(timeouts.first_byte, build().send()).await {
            Err(_) => {
                return Err(GenerateError::new(
                    ErrorCode::LlmTimeout,
                    format!("{provider}: no response within {:?}", timeouts.first_byte),
                ));
            }
            Ok(Err(e)) if e.is_timeout() => {
                return Err(GenerateError::new(ErrorCode::LlmTimeout, format!("{provider}: {e}")));
            }
            Ok(Err(e)) => {
                let detail = format!("{provider}: {}", error_chain(&e));
                if last {
                    return Err(GenerateError::new(ErrorCode::LlmUnavailable, detail));
                }
                tracing::warn!(provider, attempt, error = %detail, "provider unreachable; retrying");
                backoff(attempt - 1, policy.backoff_base, policy.backoff_max)
            }
            Ok(Ok(response)) if response.status().is_success() => return Ok(response),
            Ok(Ok(response)) => {
                let status = response.status();
                let headers = response.headers().clone();
                let body = read_body(response, timeouts.idle).await;
                let rejection = read_error(status, &headers, &body);
                let detail = format!("{provider} answered {status}: {}", rejection.message);
                match rejection.code {
                    ErrorCode::LlmRateLimited => match rejection.retry_after {
                        Some(after) if !last && after <= policy.max_retry_after => {
                            tracing::warn!(provider, attempt, ?after, "rate limited; waiting as asked");
                            after
                        }
                        _ => return Err(GenerateError::new(ErrorCode::LlmRateLimited, detail)),
                    },
                    _ if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT => {
                        if last {
                            return Err(GenerateError::new(ErrorCode::LlmUnavailable, detail));
                        }
                        tracing::warn!(provider, attempt, %status, "provider failed; retrying");
                        backoff(attempt - 1, policy.backoff_base, policy.backoff_max)
                    }
                    code => return Err(GenerateError::new(code, detail)),
                }
            }
        };
        tokio::time::sleep(wait).await;
    }
}

/// An error body, at most [`MAX_ERROR_BODY_BYTES`] of it, read within `limit`: a provider that sends an
/// endless or huge error page costs neither memory nor time.
async fn read_body(response: Response, limit: Duration) -> String {
    let mut body = Vec::new();
    let mut chunks = response.bytes_stream();
    let read = async {
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(|e| format!("(unreadable body: {e})"))?;
            let room = MAX_ERROR_BODY_BYTES - body.len();
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if body.len() >= MAX_ERROR_BODY_BYTES {
                break;
            }
        }
        Ok::<_, String>(())
    };
    match tokio::time::timeout(limit, read).await {
        Ok(Ok(())) => String::from_utf8_lossy(&body).into_owned(),
        Ok(Err(e)) => e,
        Err(_) => "(body not received in time)".into(),
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

/// Whether a frame handler wants more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// The provider said it is done (OpenAI's `[DONE]`).
    Stop,
}

/// Reads the SSE body frame by frame, each `data` to `on_data`, failing with `llm_timeout` when nothing
/// arrives within `idle` (a comment counts: the provider is there), and with `llm_bad_output` once the
/// body passes `max_bytes` (counted as it arrives, so an endless line is not buffered). Returns when the
/// body ends or after [`Flow::Stop`].
pub async fn read_sse(
    provider: &str,
    response: Response,
    idle: Duration,
    max_bytes: usize,
    mut on_data: impl FnMut(&str) -> Result<Flow, GenerateError>,
) -> Result<(), GenerateError> {
    let mut body = response.bytes_stream();
    let mut events = SseReader::default();
    let mut received = 0usize;
    // One timer for the whole body, moved only when it fires: a timeout per frame would add and remove a
    // timer entry for every frame, on a stream's hottest path.
    let stall = tokio::time::sleep(idle);
    tokio::pin!(stall);
    let mut last_bytes = tokio::time::Instant::now();
    loop {
        let next = tokio::select! {
            biased;
            next = body.next() => next,
            () = &mut stall => {
                let deadline = last_bytes + idle;
                if deadline > tokio::time::Instant::now() {
                    stall.as_mut().reset(deadline);
                    continue;
                }
                return Err(GenerateError::new(
                    ErrorCode::LlmTimeout,
                    format!("{provider}: the stream stalled for {idle:?}"),
                ));
            }
        };
        last_bytes = tokio::time::Instant::now();
        let chunk = match next {
            // An event the body ended in the middle of is not dispatched (as the SSE standard says).
            None => return Ok(()),
            Some(Ok(chunk)) => chunk,
            Some(Err(e)) => {
                return Err(GenerateError::new(
                    ErrorCode::LlmUnavailable,
                    format!("{provider}: the stream broke: {}", error_chain(&e)),
                ));
            }
        };
        received = received.saturating_add(chunk.len());
        if received > max_bytes {
            return Err(GenerateError::new(
                ErrorCode::LlmBadOutput,
                format!("{provider}: the reply passed the limit of {max_bytes} bytes"),
            ));
        }
        let flow = events.feed(&chunk, &mut |data: &[u8]| match std::str::from_utf8(data) {
            Ok(data) => on_data(data),
            Err(e) => {
                Err(GenerateError::new(ErrorCode::LlmBadOutput, format!("{provider}: a frame that is not UTF-8: {e}")))
            }
        })?;
        if flow == Flow::Stop {
            return Ok(());
        }
    }
}

/// An incremental `text/event-stream` reader with what a provider's reply needs of the standard (WHATWG
/// HTML, "Server-sent events"): lines end in CRLF, LF or CR, in any mix and cut anywhere; `data` lines
/// (one space after the colon dropped) join with LF; an empty line ends an event, and one with data is
/// passed on; comments, other fields and a leading byte-order mark are skipped. It keeps only the
/// unfinished line and the event's data, and reuses both: no allocation per frame once they have grown.
#[derive(Default)]
struct SseReader {
    /// The line the last chunk ended inside.
    line: Vec<u8>,
    /// The event's data so far.
    data: Vec<u8>,
    /// A `data` field was seen in this event.
    has_data: bool,
    /// The last line ended in CR: a LF next is its other half, not an empty line.
    after_cr: bool,
    /// The first line has been read (the only one a byte-order mark may start).
    started: bool,
}

impl SseReader {
    /// Reads `chunk`, passing each finished event's data to `on_event`; stops at its first
    /// [`Flow::Stop`] or error.
    fn feed<E>(&mut self, mut chunk: &[u8], on_event: &mut impl FnMut(&[u8]) -> Result<Flow, E>) -> Result<Flow, E> {
        while !chunk.is_empty() {
            if std::mem::take(&mut self.after_cr) && chunk[0] == b'\n' {
                chunk = &chunk[1..];
                continue;
            }
            let Some(end) = memchr::memchr2(b'\n', b'\r', chunk) else {
                self.line.extend_from_slice(chunk);
                break;
            };
            self.after_cr = chunk[end] == b'\r';
            // A line that arrived whole is read where it lies; one cut by the network is put together.
            let flow = if self.line.is_empty() {
                self.line_ended(&chunk[..end], on_event)?
            } else {
                let mut line = std::mem::take(&mut self.line);
                line.extend_from_slice(&chunk[..end]);
                let flow = self.line_ended(&line, on_event);
                line.clear();
                self.line = line;
                flow?
            };
            chunk = &chunk[end + 1..];
            if flow == Flow::Stop {
                return Ok(Flow::Stop);
            }
        }
        Ok(Flow::Continue)
    }

    fn line_ended<E>(
        &mut self,
        mut line: &[u8],
        on_event: &mut impl FnMut(&[u8]) -> Result<Flow, E>,
    ) -> Result<Flow, E> {
        if !std::mem::replace(&mut self.started, true) {
            line = line.strip_prefix("\u{feff}".as_bytes()).unwrap_or(line);
        }
        if line.is_empty() {
            let has_data = std::mem::take(&mut self.has_data);
            let flow = if has_data && !self.data.is_empty() { on_event(&self.data) } else { Ok(Flow::Continue) };
            self.data.clear();
            return flow;
        }
        let (field, value) = match memchr::memchr(b':', line) {
            Some(colon) => (&line[..colon], &line[colon + 1..]),
            None => (line, &[][..]),
        };
        // A line starting with a colon is a comment; only `data` matters here (`event`, `id`, `retry`
        // are not used by the providers' replies).
        if field == b"data" {
            if std::mem::replace(&mut self.has_data, true) {
                self.data.push(b'\n');
            }
            self.data.extend_from_slice(value.strip_prefix(b" ").unwrap_or(value));
        }
        Ok(Flow::Continue)
    }
}

/// `Retry-After`: delay-seconds, or an HTTP-date (RFC 9110), as a wait from now, at most
/// [`MAX_RETRY_DELAY`]. Garbage is no advice (`None`); a date in the past is no wait.
pub fn retry_after_header(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    retry_after(value, jiff::Timestamp::now())
}

/// [`retry_after_header`]'s reading of one value, at the time `now`.
pub fn retry_after(value: &str, now: jiff::Timestamp) -> Option<Duration> {
    if let Ok(seconds) = value.parse::<f64>() {
        return delay_secs(seconds);
    }
    let at = jiff::fmt::rfc2822::DateTimeParser::new().parse_timestamp(value).ok()?;
    let wait = now.duration_until(at);
    Some(if wait.is_negative() { Duration::ZERO } else { Duration::try_from(wait).unwrap_or(MAX_RETRY_DELAY) })
        .map(|d| d.min(MAX_RETRY_DELAY))
}

/// A provider's number of seconds to wait as a [`Duration`] of at most [`MAX_RETRY_DELAY`]: never a
/// panic (`Duration::from_secs_f64` panics past `u64::MAX` seconds), `None` for NaN or a negative.
pub fn delay_secs(seconds: f64) -> Option<Duration> {
    if seconds.is_nan() || seconds < 0.0 {
        return None;
    }
    Some(Duration::try_from_secs_f64(seconds).unwrap_or(MAX_RETRY_DELAY).min(MAX_RETRY_DELAY))
}

/// How a read stream ends a call: its own failure, or a body that closed without the provider saying it
/// was finished (a cut stream), or the finish it reported. Tokens spent are kept either way.
pub fn completion(
    provider: &str,
    read: Result<(), GenerateError>,
    finish: Option<Finish>,
    usage: Usage,
) -> Result<Completion, GenerateError> {
    read.map_err(|e| GenerateError { usage, ..e })?;
    let finish = finish.ok_or_else(|| GenerateError {
        usage,
        ..GenerateError::new(
            ErrorCode::LlmUnavailable,
            format!("{provider}: the stream ended before the model finished"),
        )
    })?;
    Ok(Completion { finish, usage })
}

/// `call` under the whole-call limit, as one `provider_call` span: the provider, the model, how many
/// sends it took and the error code if it failed (never the prompt, the reply or a key), so a trace shows
/// each call to a provider under the workflow step that made it.
pub async fn within<T>(
    provider: &str,
    model: &str,
    total: Duration,
    call: impl Future<Output = Result<T, GenerateError>>,
) -> Result<T, GenerateError> {
    let span = tracing::info_span!("provider_call", provider, model, attempts = Empty, error_code = Empty);
    let result = tokio::time::timeout(total, call).instrument(span.clone()).await.unwrap_or_else(|_| {
        Err(GenerateError::new(ErrorCode::LlmTimeout, format!("{provider}: no complete reply within {total:?}")))
    });
    if let Err(e) = &result {
        span.record("error_code", e.code.as_str());
    }
    result
}

/// A request's JSON body, serialized once (cheap to resend on a retry) into one buffer of about `text`
/// bytes (the prompts' and schema's lengths: the rest of a body is small) rather than one that grows.
pub fn json_body(value: &impl serde::Serialize, text: usize) -> bytes::Bytes {
    let mut body = Vec::with_capacity(text + text / 8 + 512);
    // Writing a request body of strings and numbers into memory cannot fail.
    serde_json::to_writer(&mut body, value).expect("a request body is JSON");
    bytes::Bytes::from(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every event's data from `chunks`, and whether reading stopped early.
    fn events(chunks: &[&[u8]], stop_at: Option<&str>) -> (Vec<String>, Flow) {
        let mut reader = SseReader::default();
        let mut seen = Vec::new();
        let mut on_event = |data: &[u8]| -> Result<Flow, ()> {
            seen.push(String::from_utf8(data.to_vec()).unwrap());
            Ok(if stop_at == Some(std::str::from_utf8(data).unwrap()) { Flow::Stop } else { Flow::Continue })
        };
        let mut flow = Flow::Continue;
        for chunk in chunks {
            flow = reader.feed(chunk, &mut on_event).unwrap();
            if flow == Flow::Stop {
                break;
            }
        }
        (seen, flow)
    }

    #[test]
    fn the_sse_reader_joins_data_lines_and_skips_what_is_not_data() {
        let body: &[&[u8]] = &[
            "\u{feff}: a comment\nevent: message\nid: 7\ndata: one\ndata:two\n".as_bytes(),
            b"data\nretry: 10\n\n",
            // An event without data, and one with only an empty data line, are not passed on.
            b"event: ping\n\ndata:\n\n",
            b"data: last\r",
            b"\n\r\n",
        ];
        assert_eq!(events(body, None), (vec!["one\ntwo\n".to_owned(), "last".to_owned()], Flow::Continue));
        // A byte-order mark only counts at the very start; later it is data.
        assert_eq!(events(&["data: \u{feff}x\n\n".as_bytes()], None).0, ["\u{feff}x"]);
        // An event the body ends inside is not passed on.
        assert_eq!(events(&[b"data: a\n\ndata: b\n"], None).0, ["a"]);
    }

    /// The network may cut a body anywhere, even between a CR and its LF: every cut, and a byte at a
    /// time, reads the same events as the whole body.
    #[test]
    fn the_sse_reader_reads_the_same_events_wherever_the_body_is_cut() {
        let body =
            "\u{feff}data: {\"a\": 1}\r\n\r\n: note\rdata: x\rdata:y\r\rid: 3\ndata: \u{e9}t\u{e9}\n\n".as_bytes();
        let whole = events(&[body], None).0;
        assert_eq!(whole, ["{\"a\": 1}", "x\ny", "\u{e9}t\u{e9}"]);
        for cut in 1..body.len() {
            assert_eq!(events(&[&body[..cut], &body[cut..]], None).0, whole, "cut at {cut}");
        }
        let bytes: Vec<&[u8]> = body.chunks(1).collect();
        assert_eq!(events(&bytes, None).0, whole);
    }

    #[test]
    fn the_sse_reader_stops_where_it_is_told_even_mid_chunk() {
        let (seen, flow) = events(&[b"data: a\n\ndata: [DONE]\n\ndata: after\n\n"], Some("[DONE]"));
        assert_eq!((seen, flow), (vec!["a".to_owned(), "[DONE]".to_owned()], Flow::Stop));
    }

    /// A provider that sends only comments while its model thinks is there: no stall, as long as the
    /// gaps are shorter than the idle limit.
    #[tokio::test(start_paused = true)]
    async fn comments_keep_a_slow_reply_from_counting_as_stalled() {
        let chunks = futures::stream::unfold(0, |i| async move {
            tokio::time::sleep(Duration::from_secs(20)).await;
            let chunk = match i {
                0..5 => ": still thinking\n",
                5 => "data: the plan\n\n",
                _ => return None,
            };
            Some((Ok::<_, std::io::Error>(bytes::Bytes::from_static(chunk.as_bytes())), i + 1))
        });
        let response = Response::from(http::Response::new(reqwest::Body::wrap_stream(chunks)));
        let mut seen = Vec::new();
        let read = read_sse("test", response, Duration::from_secs(30), usize::MAX, |data| {
            seen.push(data.to_owned());
            Ok(Flow::Continue)
        })
        .await;
        assert!(read.is_ok(), "{read:?}");
        assert_eq!(seen, ["the plan"]);
    }

    #[test]
    fn retry_after_is_read_in_seconds_or_as_a_date_clamped_and_never_panics() {
        let now: jiff::Timestamp = "2026-11-30T12:00:00Z".parse().unwrap();
        let read = |v: &str| retry_after(v, now);
        assert_eq!(read("2"), Some(Duration::from_secs(2)));
        assert_eq!(read("0.25"), Some(Duration::from_millis(250)));
        assert_eq!(read("Mon, 30 Nov 2026 12:00:30 GMT"), Some(Duration::from_secs(30)));
        assert_eq!(read("Mon, 30 Nov 2026 11:00:00 GMT"), Some(Duration::ZERO), "a date in the past is no wait");
        let far: jiff::Timestamp = "9000-01-01T00:00:00Z".parse().unwrap();
        let far = jiff::fmt::rfc2822::DateTimePrinter::new().timestamp_to_rfc9110_string(&far).unwrap();
        for huge in ["1e20", "1e400", "inf", "18446744073709551616", &far] {
            assert_eq!(read(huge), Some(MAX_RETRY_DELAY), "{huge}");
        }
        for garbage in ["-1", "NaN", "soon", "", "Mon, 99 Nov 2026 12:00:30 GMT", "\u{0}"] {
            assert_eq!(read(garbage), None, "{garbage:?}");
        }
    }
}
