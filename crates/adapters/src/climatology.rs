//! Weather from monthly climate normals: the default source, and the fallback beyond any forecast's
//! horizon. Honest about it: every day says `source: "climatology"`.

use async_trait::async_trait;
use tripstream_domain::plan::{DayWeather, WeatherSource};
use tripstream_domain::{Destination, PlanRequest};
use tripstream_engine::{Weather, WeatherError, WeatherReport};

#[derive(Debug, Clone, Default)]
pub struct Climatology;

impl Climatology {
    pub const SOURCE: &'static str = "climatology";

    /// The normals of `date`'s month for `destination`.
    pub fn day(
        destination: &Destination,
        date: jiff::civil::Date,
        lang: tripstream_domain::Language,
    ) -> Option<DayWeather> {
        let normal = destination.climate_for_month(date.month())?;
        Some(DayWeather {
            summary: normal.summary.get(lang).to_owned(),
            temp_min_c: normal.low_c,
            temp_max_c: normal.high_c,
            precipitation_chance: normal.rain_chance.min(100),
            source: WeatherSource::Climatology,
        })
    }
}

#[async_trait]
impl Weather for Climatology {
    async fn forecast(&self, destination: &Destination, request: &PlanRequest) -> Result<WeatherReport, WeatherError> {
        let days = request
            .dates
            .iter()
            .map(|date| Self::day(destination, date, request.language))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| WeatherError(format!("no climate normals for {}", destination.id)))?;
        Ok(WeatherReport { days, source: Self::SOURCE.to_owned() })
    }
}
