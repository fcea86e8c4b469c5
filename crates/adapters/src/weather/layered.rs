//! Forecast services in order of preference, cached, over climatology.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use moka::future::Cache;
use tripstream_domain::plan::{DayWeather, WeatherSource};
use tripstream_domain::{Destination, Language, PlanRequest};
use tripstream_engine::{Weather, WeatherError, WeatherReport};

use super::{ForecastSource, SourceError};
use crate::Climatology;

/// What time it is; injectable so tests can fix "today".
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// (source name, lat × 100, lon × 100, language): nearby requests within ~1 km share an entry.
type CacheKey = (&'static str, i32, i32, Language);
type Days = Arc<Vec<(Date, DayWeather)>>;
/// (destination id, month, language): one place's archive normals for every day of one month.
type NormalsKey = (String, i8, Language);
/// (day of the month, its normals).
type MonthNormals = Arc<Vec<(i8, DayWeather)>>;

/// The [`Weather`] port over real forecasts: each trip date inside the horizon of the first source that
/// answers comes from that forecast, every other date from [`Climatology`]. A source that fails is
/// logged and skipped; only a date with neither a forecast nor normals fails the report.
#[derive(Clone)]
pub struct LayeredWeather {
    sources: Vec<Arc<dyn ForecastSource>>,
    cache: Cache<CacheKey, Days>,
    clock: Clock,
    /// Normals for places the bundled data does not cover.
    normals: Option<Arc<super::OpenMeteo>>,
    /// Their answers, per place and month: normals do not change from one generation to the next, and
    /// the archive is a rate-limited service that each generation for the place would call again.
    normals_cache: Cache<NormalsKey, MonthNormals>,
}

impl std::fmt::Debug for LayeredWeather {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<_> = self.sources.iter().map(|s| s.name()).collect();
        f.debug_struct("LayeredWeather").field("sources", &names).field("cached", &self.cache.entry_count()).finish()
    }
}

impl LayeredWeather {
    /// How long an answer is reused: forecasts change a few times a day, and the free tiers are
    /// rate-limited.
    pub const DEFAULT_TTL: Duration = Duration::from_secs(60 * 60);
    const MAX_ENTRIES: u64 = 10_000;
    /// How long a place's normals for a month are reused: they are averages over years.
    pub const NORMALS_TTL: Duration = Duration::from_secs(30 * 24 * 60 * 60);

    /// Sources in order of preference, the system clock and a one-hour cache. With no sources every
    /// day is climatology.
    pub fn new(sources: Vec<Arc<dyn ForecastSource>>) -> Self {
        Self {
            sources,
            cache: Self::cache(Self::DEFAULT_TTL),
            clock: Arc::new(Timestamp::now),
            normals: None,
            normals_cache: Cache::builder().max_capacity(Self::MAX_ENTRIES).time_to_live(Self::NORMALS_TTL).build(),
        }
    }

    /// Where to get climate normals for a place without bundled ones (Open-Meteo's archive).
    pub fn with_archive_normals(mut self, archive: Arc<super::OpenMeteo>) -> Self {
        self.normals = Some(archive);
        self
    }

    /// Replaces the cache with an empty one whose entries live for `ttl`.
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.cache = Self::cache(ttl);
        self
    }

    /// Replaces the clock that decides which local day is today.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The sources' names, in order of preference (for `/health`).
    pub fn source_names(&self) -> Vec<&'static str> {
        self.sources.iter().map(|s| s.name()).collect()
    }

    fn cache(ttl: Duration) -> Cache<CacheKey, Days> {
        Cache::builder().max_capacity(Self::MAX_ENTRIES).time_to_live(ttl).build()
    }

    /// The source's days for the destination, from the cache or from one call; failures are not cached,
    /// and concurrent requests for the same key share one call.
    async fn days_from(
        &self,
        source: &Arc<dyn ForecastSource>,
        destination: &Destination,
        lang: Language,
    ) -> Result<Days, Arc<SourceError>> {
        let key = (source.name(), hundredths(destination.lat), hundredths(destination.lon), lang);
        let call =
            async { source.daily(destination.lat, destination.lon, &destination.timezone, lang).await.map(Arc::new) };
        self.cache.try_get_with(key, call).await
    }

    /// The archive's normals for every day of `date`'s month at the destination, from the cache or from
    /// one call shared by concurrent requests; failures are not cached.
    async fn month_normals(
        &self,
        archive: &super::OpenMeteo,
        destination: &Destination,
        date: Date,
        lang: Language,
    ) -> Result<MonthNormals, Arc<SourceError>> {
        let key = (destination.id.clone(), date.month(), lang);
        let call = async {
            let first = date.first_of_month();
            let length = usize::try_from(date.days_in_month()).unwrap_or(31);
            let days: Vec<Date> = first.series(jiff::Span::new().days(1)).take(length).collect();
            let normals = archive.normals(destination.lat, destination.lon, &destination.timezone, &days, lang).await?;
            Ok(Arc::new(normals.into_iter().map(|(d, w)| (d.day(), w)).collect()))
        };
        self.normals_cache.try_get_with(key, call).await
    }
}

/// A day's normals from its month's: the same day of the month, or for a 29 February the month cached
/// from a common year lacks, the last day before it.
fn day_normals(month: &[(i8, DayWeather)], day: i8) -> Option<DayWeather> {
    month.iter().rev().find(|(d, _)| *d <= day).filter(|(d, _)| *d == day || day == 29).map(|(_, w)| w.clone())
}

#[async_trait]
impl Weather for LayeredWeather {
    async fn forecast(&self, destination: &Destination, request: &PlanRequest) -> Result<WeatherReport, WeatherError> {
        let lang = request.language;
        let zone = TimeZone::get(&destination.timezone).unwrap_or_else(|error| {
            tracing::warn!(
                destination = %destination.id, timezone = %destination.timezone, %error,
                "unknown time zone; taking today in UTC"
            );
            TimeZone::UTC
        });
        let today = zone.to_datetime((self.clock)()).date();

        let mut answer: Option<(&'static str, u32, Days)> = None;
        for source in &self.sources {
            let horizon = source.horizon_days();
            if !request.dates.iter().any(|date| within(today, date, horizon)) {
                tracing::debug!(source = source.name(), horizon, "trip lies beyond the source's horizon");
                continue;
            }
            match self.days_from(source, destination, lang).await {
                Ok(days) => {
                    answer = Some((source.name(), horizon, days));
                    break;
                }
                Err(error) => tracing::warn!(
                    source = source.name(), destination = %destination.id, %error,
                    "forecast source failed; trying the next one"
                ),
            }
        }

        let mut days = Vec::with_capacity(request.dates.len() as usize);
        let mut forecast_days = 0;
        let mut missing = Vec::new();
        for date in request.dates.iter() {
            let forecast = answer
                .as_ref()
                .filter(|(_, horizon, _)| within(today, date, *horizon))
                .and_then(|(_, _, forecast)| forecast.iter().find(|(d, _)| *d == date).map(|(_, w)| w));
            let day = match forecast {
                Some(weather) => {
                    forecast_days += 1;
                    Some(DayWeather { source: WeatherSource::Forecast, ..weather.clone() })
                }
                None => Climatology::day(destination, date, lang),
            };
            if day.is_none() {
                missing.push(date);
            }
            days.push(day);
        }
        // A place without bundled normals (one a model plans, found by geocoding) gets them from the archive,
        // a month at a time.
        if let Some(archive) = &self.normals {
            let mut months: Vec<Date> = missing.iter().map(|d| d.first_of_month()).collect();
            months.dedup();
            for month in months {
                match self.month_normals(archive, destination, month, lang).await {
                    Ok(normals) => {
                        for (i, date) in request.dates.iter().enumerate() {
                            if date.first_of_month() == month && days[i].is_none() {
                                days[i] = day_normals(&normals, date.day());
                            }
                        }
                    }
                    Err(error) => tracing::warn!(destination = %destination.id, %error, "archive normals failed"),
                }
            }
        }
        let days = request
            .dates
            .iter()
            .zip(days)
            .map(|(date, day)| {
                day.ok_or_else(|| {
                    WeatherError(format!("no forecast and no climate normals for {} on {date}", destination.id))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;

        let source = match answer {
            Some((name, _, _)) if forecast_days == days.len() => name.to_owned(),
            Some((name, _, _)) if forecast_days > 0 => format!("{name}+{}", Climatology::SOURCE),
            _ => Climatology::SOURCE.to_owned(),
        };
        Ok(WeatherReport { days, source })
    }
}

/// Whether `date` is among the `horizon` local days starting with `today`.
fn within(today: Date, date: Date, horizon: u32) -> bool {
    today.until(date).is_ok_and(|span| (0..i64::from(horizon)).contains(&i64::from(span.get_days())))
}

fn hundredths(degrees: f64) -> i32 {
    (degrees * 100.0).round() as i32
}
