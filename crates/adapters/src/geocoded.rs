//! Destinations beyond the bundled data, for LLM providers: found by geocoding (OpenWeatherMap with its
//! key, Open-Meteo without one), with the currency and budget ceilings of their country and the time zone
//! the geocoder gives (else the country's main one). The bundled data still serves every place it knows.
//! What the geocoder answers (found or not) is kept for a day: every request for a place resolves it
//! before anything else, and a popular city would otherwise cost a geocoding call (two with Open-Meteo)
//! per plan.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tripstream_domain::{BudgetCeilings, Destination, Localized, Location};
use tripstream_engine::{Destinations, ResolveError};

use crate::catalog::{BundledDestinations, Catalog};
use crate::weather::{GeoPlace, OpenMeteo, OpenWeatherMap, SourceError};

/// Who finds places by name.
pub enum Geocoder {
    OpenWeatherMap(Arc<OpenWeatherMap>),
    OpenMeteo(Arc<OpenMeteo>),
}

impl Geocoder {
    async fn find(&self, name: &str) -> Result<Option<GeoPlace>, SourceError> {
        match self {
            Geocoder::OpenWeatherMap(owm) => owm.geocode(name).await,
            Geocoder::OpenMeteo(om) => {
                let english = om.geocode(name, tripstream_domain::Language::En).await?;
                // The Korean name, when the service has one, for plans in Korean.
                let korean = match &english {
                    Some(_) => om.geocode(name, tripstream_domain::Language::Ko).await.ok().flatten(),
                    None => None,
                };
                Ok(english.map(|p| GeoPlace { name_ko: korean.map(|k| k.name), ..p }))
            }
        }
    }
}

pub struct GeocodedDestinations {
    bundled: BundledDestinations,
    geocoder: Geocoder,
    /// Answers by lower-cased name; failures are not kept. Concurrent look-ups of one name share a call.
    found: moka::future::Cache<String, Option<GeoPlace>>,
}

impl GeocodedDestinations {
    pub fn new(catalog: Arc<Catalog>, geocoder: Geocoder) -> Self {
        let found =
            moka::future::Cache::builder().max_capacity(10_000).time_to_live(Duration::from_secs(24 * 3600)).build();
        Self { bundled: BundledDestinations::new(catalog), geocoder, found }
    }
}

#[async_trait]
impl Destinations for GeocodedDestinations {
    fn costs_a_lookup(&self, location: &Location) -> bool {
        self.bundled.catalog().find(location.as_str()).is_none()
            && !self.found.contains_key(&location.as_str().to_lowercase())
    }

    async fn resolve(&self, location: &Location) -> Result<Destination, ResolveError> {
        let unknown = match self.bundled.resolve(location).await {
            Ok(d) => return Ok(d),
            Err(e) => e,
        };
        let name = location.as_str().to_lowercase();
        let place = match self.found.try_get_with(name, self.geocoder.find(location.as_str())).await {
            Ok(Some(place)) => place,
            Ok(None) => return Err(unknown),
            Err(e) => {
                tracing::warn!(location = location.as_str(), error = %e, "geocoding failed");
                return Err(ResolveError::Unavailable(e.to_string()));
            }
        };
        let country = CountryFacts::of(&place.country);
        Ok(Destination {
            id: slug(&place.name),
            name: Localized { ko: place.name_ko.clone().unwrap_or_else(|| place.name.clone()), en: place.name },
            country: place.country,
            lat: place.lat,
            lon: place.lon,
            timezone: place.timezone.clone().unwrap_or_else(|| country.timezone.to_owned()),
            currency: country.currency.to_owned(),
            budget: country.budget,
            climate: None,
            profile: None,
        })
    }

    fn list(&self) -> Vec<Destination> {
        self.bundled.list()
    }
}

fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_owned()
}

/// What a country's destinations share when no file describes them. Budget ceilings are per traveller per
/// day in the local currency, set to what the bundled cities of similar cost use; approximate.
struct CountryFacts {
    currency: &'static str,
    timezone: &'static str,
    budget: BudgetCeilings,
}

impl CountryFacts {
    fn of(country: &str) -> CountryFacts {
        let (currency, timezone, low, medium, high) = match country {
            "KR" => ("KRW", "Asia/Seoul", 50_000, 120_000, 300_000),
            "JP" => ("JPY", "Asia/Tokyo", 6_000, 15_000, 40_000),
            "TH" => ("THB", "Asia/Bangkok", 1_200, 3_500, 10_000),
            "CN" => ("CNY", "Asia/Shanghai", 300, 800, 2_000),
            "TW" => ("TWD", "Asia/Taipei", 1_500, 4_000, 10_000),
            "HK" => ("HKD", "Asia/Hong_Kong", 500, 1_200, 3_000),
            "SG" => ("SGD", "Asia/Singapore", 80, 200, 500),
            "VN" => ("VND", "Asia/Ho_Chi_Minh", 800_000, 2_000_000, 5_000_000),
            "PH" => ("PHP", "Asia/Manila", 2_000, 5_000, 12_000),
            "ID" => ("IDR", "Asia/Jakarta", 500_000, 1_200_000, 3_000_000),
            "MY" => ("MYR", "Asia/Kuala_Lumpur", 150, 400, 1_000),
            "IN" => ("INR", "Asia/Kolkata", 3_000, 8_000, 20_000),
            "AU" => ("AUD", "Australia/Sydney", 100, 250, 600),
            "NZ" => ("NZD", "Pacific/Auckland", 100, 250, 600),
            "GB" => ("GBP", "Europe/London", 60, 150, 400),
            "FR" => ("EUR", "Europe/Paris", 70, 180, 450),
            "DE" => ("EUR", "Europe/Berlin", 70, 170, 420),
            "IT" => ("EUR", "Europe/Rome", 70, 170, 420),
            "ES" => ("EUR", "Europe/Madrid", 60, 150, 380),
            "PT" => ("EUR", "Europe/Lisbon", 50, 130, 330),
            "NL" => ("EUR", "Europe/Amsterdam", 70, 180, 450),
            "AT" => ("EUR", "Europe/Vienna", 70, 170, 420),
            "GR" => ("EUR", "Europe/Athens", 50, 130, 330),
            "CH" => ("CHF", "Europe/Zurich", 100, 250, 600),
            "CZ" => ("CZK", "Europe/Prague", 1_200, 3_000, 8_000),
            "TR" => ("TRY", "Europe/Istanbul", 1_500, 4_000, 10_000),
            "CA" => ("CAD", "America/Toronto", 100, 250, 600),
            "MX" => ("MXN", "America/Mexico_City", 1_000, 2_500, 6_000),
            "US" => ("USD", "America/New_York", 80, 200, 500),
            _ => ("USD", "UTC", 80, 200, 500),
        };
        CountryFacts { currency, timezone, budget: BudgetCeilings { low, medium, high } }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_and_country_facts() {
        assert_eq!(slug("San Sebastián"), "san-sebastián");
        assert_eq!(slug("  Ho Chi Minh City "), "ho-chi-minh-city");
        let fr = CountryFacts::of("FR");
        assert_eq!((fr.currency, fr.timezone), ("EUR", "Europe/Paris"));
        assert!(fr.budget.low < fr.budget.medium && fr.budget.medium < fr.budget.high);
        assert_eq!(CountryFacts::of("ZZ").currency, "USD");
    }
}
