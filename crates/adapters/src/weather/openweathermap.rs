//! OpenWeatherMap: the free 5-day / 3-hour forecast, folded into local days, and direct geocoding.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::{Offset, TimeZone};
use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, SeqAccess, Visitor};
use tripstream_domain::Language;
use tripstream_domain::plan::{DayWeather, WeatherSource};

use super::{CallPolicy, Condition, ForecastSource, SourceError, get_json, percent, round_temp};
use crate::http::{Address, Secret};

/// The OpenWeatherMap client. Needs an API key; the free tier's forecast covers five days.
#[derive(Debug, Clone)]
pub struct OpenWeatherMap {
    forecast_url: Address,
    geocode_url: Address,
    key: Secret,
    client: reqwest::Client,
    policy: CallPolicy,
}

impl OpenWeatherMap {
    pub const NAME: &'static str = "openweathermap";
    pub const DEFAULT_BASE_URL: &'static str = "https://api.openweathermap.org";

    /// A client for the public service with default timeouts; `client` comes from [`crate::http::client`].
    pub fn new(key: Secret, client: reqwest::Client) -> Self {
        Self::with_endpoints(Self::DEFAULT_BASE_URL, key, client, CallPolicy::default())
    }

    fn with_endpoints(base_url: &str, key: Secret, client: reqwest::Client, policy: CallPolicy) -> Self {
        Self {
            forecast_url: Address::on(base_url, "/data/2.5/forecast"),
            geocode_url: Address::on(base_url, "/geo/1.0/direct"),
            key,
            client,
            policy,
        }
    }

    /// Points the client elsewhere (a proxy, a test server).
    pub fn with_base_url(self, base_url: impl Into<String>) -> Self {
        Self::with_endpoints(&base_url.into(), self.key, self.client, self.policy)
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

    /// The best match for a place name, with its Korean name when OpenWeatherMap knows one; `None`
    /// when nothing matches.
    pub async fn geocode(&self, query: &str) -> Result<Option<GeoPlace>, SourceError> {
        let params = [("q", query.to_owned()), ("limit", "1".to_owned()), ("appid", self.key.expose().to_owned())];
        let places: Vec<OwmPlace> =
            get_json(Self::NAME, &self.client, &self.geocode_url, &params, self.policy, error_message).await?;
        Ok(places.into_iter().next().map(|p| GeoPlace {
            name_ko: p.local_names.and_then(|mut names| names.remove("ko")),
            name: p.name,
            lat: p.lat,
            lon: p.lon,
            country: p.country,
            timezone: None,
        }))
    }
}

/// A place found by [`OpenWeatherMap::geocode`] or [`super::OpenMeteo::geocode`].
#[derive(Debug, Clone, PartialEq)]
pub struct GeoPlace {
    /// The English (default) name.
    pub name: String,
    pub name_ko: Option<String>,
    pub lat: f64,
    pub lon: f64,
    /// ISO 3166-1 alpha-2.
    pub country: String,
    /// IANA zone, when the geocoder knows it (Open-Meteo does).
    pub timezone: Option<String>,
}

#[async_trait]
impl ForecastSource for OpenWeatherMap {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    /// 40 three-hour slots from now: today and the next four days are whole (today from now on).
    fn horizon_days(&self) -> u32 {
        5
    }

    async fn daily(
        &self,
        lat: f64,
        lon: f64,
        timezone: &str,
        lang: Language,
    ) -> Result<Vec<(Date, DayWeather)>, SourceError> {
        let owm_lang = match lang {
            Language::Ko => "kr",
            Language::En => "en",
        };
        let params = [
            ("lat", lat.to_string()),
            ("lon", lon.to_string()),
            ("units", "metric".to_owned()),
            ("lang", owm_lang.to_owned()),
            ("appid", self.key.expose().to_owned()),
        ];
        let forecast: OwmForecast =
            get_json(Self::NAME, &self.client, &self.forecast_url, &params, self.policy, error_message).await?;
        let zone = match forecast.city.and_then(|c| c.timezone) {
            Some(seconds) => Offset::from_seconds(seconds)
                .map(TimeZone::fixed)
                .map_err(|e| SourceError::BadBody(format!("city.timezone {seconds}: {e}")))?,
            None => TimeZone::get(timezone).unwrap_or(TimeZone::UTC),
        };
        aggregate(&forecast.list, &zone, lang)
    }
}

/// Folds three-hour slots into local days: the lowest minimum, the highest maximum, the dominant
/// condition and the highest chance of precipitation. A day with no recognisable condition is left out.
fn aggregate(slots: &[OwmSlot], zone: &TimeZone, lang: Language) -> Result<Vec<(Date, DayWeather)>, SourceError> {
    #[derive(Default)]
    struct Acc {
        min: Option<f64>,
        max: Option<f64>,
        conditions: Vec<Condition>,
        pop: f64,
    }
    let mut days: BTreeMap<Date, Acc> = BTreeMap::new();
    for slot in slots {
        let at = Timestamp::from_second(slot.dt).map_err(|e| SourceError::BadBody(format!("dt {}: {e}", slot.dt)))?;
        let acc = days.entry(zone.to_datetime(at).date()).or_default();
        if let Some(low) = slot.main.temp_min.or(slot.main.temp) {
            acc.min = Some(acc.min.map_or(low, |m| m.min(low)));
        }
        if let Some(high) = slot.main.temp_max.or(slot.main.temp) {
            acc.max = Some(acc.max.map_or(high, |m| m.max(high)));
        }
        acc.conditions.extend(slot.weather);
        acc.pop = acc.pop.max(slot.pop.unwrap_or(0.0));
    }
    Ok(days
        .into_iter()
        .filter_map(|(date, acc)| {
            let condition = Condition::dominant(acc.conditions)?;
            let day = DayWeather {
                summary: condition.summary(lang).to_owned(),
                temp_min_c: round_temp(acc.min?),
                temp_max_c: round_temp(acc.max?),
                precipitation_chance: percent(acc.pop * 100.0),
                source: WeatherSource::Forecast,
            };
            Some((date, day))
        })
        .collect())
}

/// OpenWeatherMap explains errors as `{"cod": 401, "message": "Invalid API key…"}` (`cod` a number or
/// a string).
fn error_message(body: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct OwmError {
        message: serde_json::Value,
    }
    match serde_json::from_str::<OwmError>(body).ok()?.message {
        serde_json::Value::String(s) => Some(s),
        serde_json::Value::Null => None,
        other => Some(other.to_string()),
    }
}

#[derive(Deserialize)]
struct OwmForecast {
    list: Vec<OwmSlot>,
    city: Option<OwmCity>,
}

#[derive(Deserialize)]
struct OwmSlot {
    dt: i64,
    main: OwmMain,
    /// The first of the slot's conditions (the main one), when it is one we know.
    #[serde(default, deserialize_with = "first_condition")]
    weather: Option<Condition>,
    pop: Option<f64>,
}

#[derive(Deserialize)]
struct OwmMain {
    temp: Option<f64>,
    temp_min: Option<f64>,
    temp_max: Option<f64>,
}

#[derive(Deserialize)]
struct OwmCondition<'a> {
    #[serde(borrow)]
    main: Cow<'a, str>,
}

/// A slot's `weather` list read down to its first condition, without keeping the list or its strings: a
/// forecast has forty slots.
fn first_condition<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Condition>, D::Error> {
    struct First;
    impl<'de> Visitor<'de> for First {
        type Value = Option<Condition>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a list of conditions")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut list: A) -> Result<Self::Value, A::Error> {
            let first = list.next_element::<OwmCondition<'de>>()?;
            while list.next_element::<IgnoredAny>()?.is_some() {}
            Ok(first.and_then(|c| Condition::from_owm_main(&c.main)))
        }
    }
    deserializer.deserialize_seq(First)
}

#[derive(Deserialize)]
struct OwmCity {
    /// Offset from UTC in seconds.
    timezone: Option<i32>,
}

#[derive(Deserialize)]
struct OwmPlace {
    name: String,
    local_names: Option<std::collections::HashMap<String, String>>,
    lat: f64,
    lon: f64,
    #[serde(default)]
    country: String,
}
