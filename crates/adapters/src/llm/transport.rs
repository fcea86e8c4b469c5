//! What both LLM wire formats share: sending with bounded retries, reading an SSE body under an idle
//! timeout, and the limits that keep a stalled provider from holding a stream open.

use std::time::Duration;

use eventsource_stream::Eventsource;
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

/// Why the body of a reply stopped being read before the SSE parser saw it.
#[derive(Debug, thiserror::Error)]
enum BodyError {
    #[error("{}", error_chain(.0))]
    Transport(reqwest::Error),
    #[error("the reply passed {0} bytes")]
    TooLarge(usize),
}

/// Reads the SSE body frame by frame, each `data` to `on_data`, failing with `llm_timeout` when no frame
/// arrives within `idle`, and with `llm_bad_output` once the body passes `max_bytes` (counted before the
/// SSE parser, which would otherwise buffer an endless line). Returns when the body ends or after
/// [`Flow::Stop`].
pub async fn read_sse(
    provider: &str,
    response: Response,
    idle: Duration,
    max_bytes: usize,
    mut on_data: impl FnMut(&str) -> Result<Flow, GenerateError>,
) -> Result<(), GenerateError> {
    let mut received = 0usize;
    let body = response.bytes_stream().map(move |chunk| {
        let chunk = chunk.map_err(BodyError::Transport)?;
        received = received.saturating_add(chunk.len());
        if received > max_bytes { Err(BodyError::TooLarge(max_bytes)) } else { Ok(chunk) }
    });
    // The SSE parser cannot tell a lone CR at the very end of a body from the first half of a CRLF, and
    // drops the last frame of a body that ends in one; a newline after the end settles it (for any other
    // ending it is one more empty line, which dispatches nothing). Found by the property tests.
    let body = body.chain(futures::stream::iter([Ok(bytes::Bytes::from_static(b"\n"))]));
    let mut events = body.eventsource();
    // One timer for the whole body, moved only when it fires: a timeout per frame would add and remove a
    // timer entry for every frame, on a stream's hottest path.
    let stall = tokio::time::sleep(idle);
    tokio::pin!(stall);
    let mut last_frame = tokio::time::Instant::now();
    loop {
        let next = tokio::select! {
            biased;
            next = events.next() => next,
            () = &mut stall => {
                let deadline = last_frame + idle;
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
        last_frame = tokio::time::Instant::now();
        match next {
            None => return Ok(()),
            Some(Err(eventsource_stream::EventStreamError::Transport(BodyError::TooLarge(max)))) => {
                return Err(GenerateError::new(
                    ErrorCode::LlmBadOutput,
                    format!("{provider}: the reply passed the limit of {max} bytes"),
                ));
            }
            Some(Err(e)) => {
                return Err(GenerateError::new(
                    ErrorCode::LlmUnavailable,
                    format!("{provider}: the stream broke: {}", error_chain(&e)),
                ));
            }
            Some(Ok(event)) => {
                if event.data.is_empty() {
                    continue;
                }
                if on_data(&event.data)? == Flow::Stop {
                    return Ok(());
                }
            }
        }
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

/// A request body serialized once, cheap to resend on a retry.
pub fn json_body(value: &serde_json::Value) -> bytes::Bytes {
    // Serializing a `Value` cannot fail.
    bytes::Bytes::from(serde_json::to_vec(value).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

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
