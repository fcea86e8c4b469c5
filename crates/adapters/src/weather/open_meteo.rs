//! Open-Meteo: a free daily forecast, no key, sixteen days ahead.

use std::time::Duration;

use async_trait::async_trait;
use jiff::civil::Date;
use serde::Deserialize;
use tripstream_domain::Language;
use tripstream_domain::plan::{DayWeather, WeatherSource};

use super::{CallPolicy, Condition, ForecastSource, SourceError, get_json, percent, round_temp};

/// The Open-Meteo client. Needs no key, so it is the natural second source.
#[derive(Debug, Clone)]
pub struct OpenMeteo {
    base_url: String,
    client: reqwest::Client,
    policy: CallPolicy,
}

impl OpenMeteo {
    pub const NAME: &'static str = "open-meteo";
    pub const DEFAULT_BASE_URL: &'static str = "https://api.open-meteo.com";
    const FORECAST_DAYS: u32 = 16;
    const DAILY: &'static str = "weather_code,temperature_2m_max,temperature_2m_min,precipitation_probability_max";

    /// A client for the public service with default timeouts; `client` comes from [`crate::http::client`].
    pub fn new(client: reqwest::Client) -> Self {
        Self { base_url: Self::DEFAULT_BASE_URL.to_owned(), client, policy: CallPolicy::default() }
    }

    /// Points the client elsewhere (a self-hosted instance, a test server).
    pub fn with_base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = base_url.into().trim_end_matches('/').to_owned();
        self
    }

    /// How long one attempt may take, body included.
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.policy.request_timeout = timeout;
        self
    }

    /// The jittered wait before the one retry of a transient failure: at most `base`, never over `max`.
    pub fn with_backoff(mut self, base: Duration, max: Duration) -> Self {
        self.policy.backoff_base = base;
        self.policy.backoff_max = max;
        self
    }
}

#[async_trait]
impl ForecastSource for OpenMeteo {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn horizon_days(&self) -> u32 {
        Self::FORECAST_DAYS
    }

    async fn daily(
        &self,
        lat: f64,
        lon: f64,
        timezone: &str,
        lang: Language,
    ) -> Result<Vec<(Date, DayWeather)>, SourceError> {
        let url = format!("{}/v1/forecast", self.base_url);
        let params = [
            ("latitude", lat.to_string()),
            ("longitude", lon.to_string()),
            ("daily", Self::DAILY.to_owned()),
            ("timezone", timezone.to_owned()),
            ("forecast_days", Self::FORECAST_DAYS.to_string()),
        ];
        let response: OmResponse =
            get_json(Self::NAME, &self.client, &url, &params, self.policy, error_message).await?;
        days(response.daily, lang)
    }
}

/// Zips the parallel daily arrays into days, leaving out any day with a missing value or an unknown
/// weather code.
fn days(daily: OmDaily, lang: Language) -> Result<Vec<(Date, DayWeather)>, SourceError> {
    let n = daily.time.len();
    let lengths = [
        daily.weather_code.len(),
        daily.temperature_2m_max.len(),
        daily.temperature_2m_min.len(),
        daily.precipitation_probability_max.len(),
    ];
    if lengths.iter().any(|&len| len != n) {
        return Err(SourceError::BadBody(format!("daily arrays differ in length: {n} dates, {lengths:?} values")));
    }
    let mut out = Vec::with_capacity(n);
    for (i, time) in daily.time.iter().enumerate() {
        let date: Date = time.parse().map_err(|e| SourceError::BadBody(format!("daily.time {time:?}: {e}")))?;
        let (Some(code), Some(high), Some(low), Some(pop)) = (
            daily.weather_code[i],
            daily.temperature_2m_max[i],
            daily.temperature_2m_min[i],
            daily.precipitation_probability_max[i],
        ) else {
            continue;
        };
        let Some(condition) = u16::try_from(code.round() as i64).ok().and_then(Condition::from_wmo) else {
            continue;
        };
        out.push((
            date,
            DayWeather {
                summary: condition.summary(lang).to_owned(),
                temp_min_c: round_temp(low),
                temp_max_c: round_temp(high),
                precipitation_chance: percent(pop),
                source: WeatherSource::Forecast,
            },
        ));
    }
    Ok(out)
}

/// Open-Meteo explains errors as `{"error": true, "reason": "…"}`.
fn error_message(body: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct OmError {
        reason: String,
    }
    serde_json::from_str::<OmError>(body).ok().map(|e| e.reason)
}

#[derive(Deserialize)]
struct OmResponse {
    daily: OmDaily,
}

#[derive(Deserialize)]
struct OmDaily {
    time: Vec<String>,
    weather_code: Vec<Option<f64>>,
    temperature_2m_max: Vec<Option<f64>>,
    temperature_2m_min: Vec<Option<f64>>,
    precipitation_probability_max: Vec<Option<f64>>,
}
