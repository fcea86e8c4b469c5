//! Open-Meteo, no key needed: a daily forecast sixteen days ahead; and, for places without bundled
//! normals, geocoding and climate normals computed from the historical archive (the same calendar days
//! of the previous years).

use std::time::Duration;

use async_trait::async_trait;
use jiff::civil::Date;
use serde::Deserialize;
use tripstream_domain::Language;
use tripstream_domain::plan::{DayWeather, WeatherSource};

use super::{CallPolicy, Condition, ForecastSource, SourceError, get_json, percent, round_temp};
use crate::http::Address;

/// The Open-Meteo client. Needs no key, so it is the natural second source.
#[derive(Debug, Clone)]
pub struct OpenMeteo {
    forecast_url: Address,
    search_url: Address,
    archive_url: Address,
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
        Self {
            forecast_url: Address::on(Self::DEFAULT_BASE_URL, Self::FORECAST_PATH),
            search_url: Address::on(Self::GEOCODING_URL, Self::SEARCH_PATH),
            archive_url: Address::on(Self::ARCHIVE_URL, Self::ARCHIVE_PATH),
            client,
            policy: CallPolicy::default(),
        }
    }

    pub const GEOCODING_URL: &'static str = "https://geocoding-api.open-meteo.com";
    pub const ARCHIVE_URL: &'static str = "https://archive-api.open-meteo.com";
    const FORECAST_PATH: &'static str = "/v1/forecast";
    const SEARCH_PATH: &'static str = "/v1/search";
    const ARCHIVE_PATH: &'static str = "/v1/archive";
    /// Years of the archive averaged into normals.
    const NORMAL_YEARS: i16 = 5;

    /// Points the forecast elsewhere (a self-hosted instance, a test server).
    pub fn with_base_url(mut self, base_url: impl Into<String>) -> Self {
        self.forecast_url = Address::on(&base_url.into(), Self::FORECAST_PATH);
        self
    }

    /// Points geocoding and the archive elsewhere (a self-hosted instance serves all three).
    pub fn with_geocoding_and_archive_urls(mut self, geocoding: impl Into<String>, archive: impl Into<String>) -> Self {
        self.search_url = Address::on(&geocoding.into(), Self::SEARCH_PATH);
        self.archive_url = Address::on(&archive.into(), Self::ARCHIVE_PATH);
        self
    }

    /// The best match for a place name, with its time zone.
    pub async fn geocode(&self, query: &str, lang: Language) -> Result<Option<super::GeoPlace>, SourceError> {
        let params = [
            ("name", query.to_owned()),
            ("count", "1".to_owned()),
            ("language", lang.as_str().to_owned()),
            ("format", "json".to_owned()),
        ];
        let found: GeoResults =
            get_json(Self::NAME, &self.client, &self.search_url, &params, self.policy, error_message).await?;
        Ok(found.results.into_iter().next().map(|p| super::GeoPlace {
            name_ko: (lang == Language::Ko).then(|| p.name.clone()),
            name: p.name,
            lat: p.latitude,
            lon: p.longitude,
            country: p.country_code.unwrap_or_default(),
            timezone: p.timezone,
        }))
    }

    /// Climate normals for `dates` at a place: for each date, the mean high and low of the same calendar
    /// day over the previous years, the share of those days with at least 1 mm of rain, and their most
    /// common condition. Marked [`WeatherSource::Climatology`].
    pub async fn normals(
        &self,
        lat: f64,
        lon: f64,
        timezone: &str,
        dates: &[Date],
        lang: Language,
    ) -> Result<Vec<(Date, DayWeather)>, SourceError> {
        let (Some(first), Some(last)) = (dates.iter().min(), dates.iter().max()) else { return Ok(Vec::new()) };
        let shift = |d: &Date, years: i16| d.checked_sub(jiff::Span::new().years(years)).ok();
        let (Some(from), Some(to)) = (shift(first, Self::NORMAL_YEARS), shift(last, 1)) else {
            return Err(SourceError::BadBody("dates out of range".into()));
        };
        let params = [
            ("latitude", lat.to_string()),
            ("longitude", lon.to_string()),
            ("start_date", from.to_string()),
            ("end_date", to.to_string()),
            ("daily", "weather_code,temperature_2m_max,temperature_2m_min,precipitation_sum".to_owned()),
            ("timezone", timezone.to_owned()),
        ];
        let archive: ArchiveResponse =
            get_json(Self::NAME, &self.client, &self.archive_url, &params, self.policy, error_message).await?;
        let a = archive.daily;
        let mut out = Vec::new();
        for date in dates {
            let (mut highs, mut lows, mut wet, mut codes) = (Vec::new(), Vec::new(), 0u32, Vec::new());
            for (i, time) in a.time.iter().enumerate() {
                let Ok(day) = time.parse::<Date>() else { continue };
                if (day.month(), day.day()) != (date.month(), date.day()) {
                    continue;
                }
                let at = |v: &Vec<Option<f64>>| v.get(i).copied().flatten();
                let (Some(high), Some(low)) = (at(&a.temperature_2m_max), at(&a.temperature_2m_min)) else { continue };
                highs.push(high);
                lows.push(low);
                wet += u32::from(at(&a.precipitation_sum).is_some_and(|mm| mm >= 1.0));
                codes.extend(
                    at(&a.weather_code)
                        .and_then(|c| u16::try_from(c.round() as i64).ok())
                        .and_then(Condition::from_wmo),
                );
            }
            if highs.is_empty() {
                continue;
            }
            let n = highs.len() as f64;
            let condition = Condition::dominant(codes).unwrap_or(if f64::from(wet) * 2.0 >= n {
                Condition::Rain
            } else {
                Condition::PartlyCloudy
            });
            out.push((
                *date,
                DayWeather {
                    summary: condition.summary(lang).to_owned(),
                    temp_min_c: round_temp(lows.iter().sum::<f64>() / n),
                    temp_max_c: round_temp(highs.iter().sum::<f64>() / n),
                    precipitation_chance: percent(f64::from(wet) / n * 100.0),
                    source: WeatherSource::Climatology,
                },
            ));
        }
        Ok(out)
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
        let params = [
            ("latitude", lat.to_string()),
            ("longitude", lon.to_string()),
            ("daily", Self::DAILY.to_owned()),
            ("timezone", timezone.to_owned()),
            ("forecast_days", Self::FORECAST_DAYS.to_string()),
        ];
        let response: OmResponse =
            get_json(Self::NAME, &self.client, &self.forecast_url, &params, self.policy, error_message).await?;
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

#[derive(Deserialize)]
struct GeoResults {
    #[serde(default)]
    results: Vec<GeoResult>,
}

#[derive(Deserialize)]
struct GeoResult {
    name: String,
    latitude: f64,
    longitude: f64,
    country_code: Option<String>,
    timezone: Option<String>,
}

#[derive(Deserialize)]
struct ArchiveResponse {
    daily: ArchiveDaily,
}

#[derive(Deserialize)]
struct ArchiveDaily {
    time: Vec<String>,
    #[serde(default)]
    weather_code: Vec<Option<f64>>,
    temperature_2m_max: Vec<Option<f64>>,
    temperature_2m_min: Vec<Option<f64>>,
    #[serde(default)]
    precipitation_sum: Vec<Option<f64>>,
}
