//! Real weather: forecast services layered over climatology.
//!
//! Each forecast service is a [`ForecastSource`] that turns one HTTP call into local-day forecasts.
//! [`LayeredWeather`] asks them in order, caches what they answer and fills every date they cannot
//! cover with monthly normals, so a failing or missing service never fails a plan.

pub mod conditions;
mod layered;
mod open_meteo;
mod openweathermap;

use std::time::Duration;

use async_trait::async_trait;
use jiff::civil::Date;
use serde::de::DeserializeOwned;
use tripstream_domain::Language;
use tripstream_domain::plan::DayWeather;

use crate::http::Address;

pub use conditions::Condition;
pub use layered::{Clock, LayeredWeather};
pub use open_meteo::OpenMeteo;
pub use openweathermap::{GeoPlace, OpenWeatherMap};

/// A forecast service: one call returns every local day it forecasts for a place.
#[async_trait]
pub trait ForecastSource: Send + Sync {
    /// The name reports and logs use (`openweathermap`, `open-meteo`).
    fn name(&self) -> &'static str;

    /// How many local days, counting today, the service forecasts completely.
    fn horizon_days(&self) -> u32;

    /// Every local day the service has for the place, in date order, each marked
    /// [`WeatherSource::Forecast`](tripstream_domain::plan::WeatherSource::Forecast). `timezone` is
    /// the place's IANA zone, for services that need one to tell where a local day begins.
    async fn daily(
        &self,
        lat: f64,
        lon: f64,
        timezone: &str,
        lang: Language,
    ) -> Result<Vec<(Date, DayWeather)>, SourceError>;
}

/// Why a forecast service gave no forecast.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// The service answered with a non-success status; `message` is its own explanation.
    #[error("HTTP {status}: {message}")]
    Status { status: u16, message: String },
    /// No complete answer within the request timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The connection failed or broke.
    #[error("transport error: {0}")]
    Transport(String),
    /// A success status with a body this adapter cannot read.
    #[error("unreadable response: {0}")]
    BadBody(String),
}

impl SourceError {
    /// Whether trying again soon may succeed: server errors, timeouts and connection failures. A 4xx
    /// (bad key, bad request, rate limit) will not get better by repeating it at once.
    pub fn is_transient(&self) -> bool {
        match self {
            SourceError::Status { status, .. } => *status >= 500,
            SourceError::Timeout(_) | SourceError::Transport(_) => true,
            SourceError::BadBody(_) => false,
        }
    }

    /// A transport error without its URL, which carries the API key in its query.
    fn transport(error: reqwest::Error) -> Self {
        let error = error.without_url();
        let mut text = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        SourceError::Transport(text)
    }
}

/// How a source calls its service: a timeout per attempt and one retry of a transient failure after a
/// jittered wait of at most `backoff_base`, capped by `backoff_max`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CallPolicy {
    pub request_timeout: Duration,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
}

impl Default for CallPolicy {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(4),
            backoff_base: Duration::from_millis(250),
            backoff_max: Duration::from_secs(1),
        }
    }
}

/// GETs `url` with `query` and parses the JSON answer as `T`, retrying a transient failure once.
/// `error_message` pulls the service's own explanation out of an error body.
pub(crate) async fn get_json<T: DeserializeOwned>(
    source: &'static str,
    client: &reqwest::Client,
    url: &Address,
    query: &[(&str, String)],
    policy: CallPolicy,
    error_message: fn(&str) -> Option<String>,
) -> Result<T, SourceError> {
    let body = match get_once(client, url, query, policy.request_timeout, error_message).await {
        Err(error) if error.is_transient() => {
            let wait = crate::http::backoff(0, policy.backoff_base, policy.backoff_max);
            tracing::debug!(source, %error, ?wait, "transient failure; retrying once");
            tokio::time::sleep(wait).await;
            get_once(client, url, query, policy.request_timeout, error_message).await?
        }
        other => other?,
    };
    // Checked as UTF-8 once, on its fast path for ASCII, then parsed as text: `from_slice` would check
    // every key and string it reads again.
    let body = std::str::from_utf8(&body).map_err(|e| SourceError::BadBody(e.to_string()))?;
    serde_json::from_str(body).map_err(|e| SourceError::BadBody(e.to_string()))
}

/// The most of a weather or geocoding answer that is read. OpenWeatherMap's five-day forecast, the
/// largest, is about 16 KiB; a service that sends more is answering something else.
const MAX_BODY_BYTES: usize = 1 << 20;

/// One request's body, as bytes, at most [`MAX_BODY_BYTES`] of it: not copied into a `String` through
/// `from_utf8_lossy`'s slow path, which took a forecast's body a character at a time.
async fn get_once(
    client: &reqwest::Client,
    url: &Address,
    query: &[(&str, String)],
    timeout: Duration,
    error_message: fn(&str) -> Option<String>,
) -> Result<Vec<u8>, SourceError> {
    let exchange = async {
        let mut response = url.get(client).query(query).send().await?;
        let status = response.status();
        let mut body =
            Vec::with_capacity(response.content_length().map_or(0, |n| n.min(MAX_BODY_BYTES as u64)) as usize);
        while let Some(chunk) = response.chunk().await? {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Ok(Err(status));
            }
            body.extend_from_slice(&chunk);
        }
        Ok::<_, reqwest::Error>(Ok((status, body)))
    };
    let (status, body) = tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| SourceError::Timeout(timeout))?
        .map_err(|e| if e.is_timeout() { SourceError::Timeout(timeout) } else { SourceError::transport(e) })?
        .map_err(|status| SourceError::BadBody(format!("{status}: the body passed {MAX_BODY_BYTES} bytes")))?;
    if !status.is_success() {
        let body = String::from_utf8_lossy(&body);
        let message = error_message(&body).unwrap_or_else(|| snippet(&body));
        return Err(SourceError::Status { status: status.as_u16(), message });
    }
    Ok(body)
}

/// The start of a body that is not the service's usual error JSON, for the log.
fn snippet(body: &str) -> String {
    const MAX_CHARS: usize = 200;
    let trimmed = body.trim();
    if trimmed.chars().count() <= MAX_CHARS {
        trimmed.to_owned()
    } else {
        let mut s: String = trimmed.chars().take(MAX_CHARS).collect();
        s.push('…');
        s
    }
}

/// Rounds a temperature to one decimal, the precision plans show.
fn round_temp(celsius: f64) -> f64 {
    (celsius * 10.0).round() / 10.0
}

/// A probability in 0–100 (percent) or clamped into it.
fn percent(value: f64) -> u8 {
    value.round().clamp(0.0, 100.0) as u8
}
