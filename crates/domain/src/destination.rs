//! What the domain knows about a destination: where it is, its currency, its budget ceilings and, for
//! bundled destinations, its monthly climate normals.

use serde::{Deserialize, Serialize};

use crate::request::{BudgetLevel, Language};

/// A text in both languages the service speaks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Localized {
    pub en: String,
    pub ko: String,
}

impl Localized {
    pub fn get(&self, lang: Language) -> &str {
        match lang {
            Language::En => &self.en,
            Language::Ko => &self.ko,
        }
    }
}

/// Spending ceilings per traveller per day for activities and meals (lodging excluded), in the
/// destination's currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetCeilings {
    pub low: u64,
    pub medium: u64,
    pub high: u64,
}

impl BudgetCeilings {
    pub fn per_traveler_per_day(&self, level: BudgetLevel) -> u64 {
        match level {
            BudgetLevel::Low => self.low,
            BudgetLevel::Medium => self.medium,
            BudgetLevel::High => self.high,
        }
    }

    /// The ceiling for a whole trip: per day per traveller, times days, times travellers.
    pub fn for_trip(&self, level: BudgetLevel, days: u32, travelers: u32) -> u64 {
        self.per_traveler_per_day(level) * u64::from(days) * u64::from(travelers)
    }
}

/// One month's climate normals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClimateNormal {
    /// Mean daily maximum, °C.
    pub high_c: f64,
    /// Mean daily minimum, °C.
    pub low_c: f64,
    /// Chance, in percent, that a day of this month has measurable precipitation.
    pub rain_chance: u8,
    pub summary: Localized,
}

/// A destination the service can plan for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Destination {
    /// A stable slug (`seoul`, `new-york`).
    pub id: String,
    pub name: Localized,
    /// ISO 3166-1 alpha-2.
    pub country: String,
    pub lat: f64,
    pub lon: f64,
    /// IANA time zone name.
    pub timezone: String,
    /// ISO 4217 code; amounts are whole units of it.
    pub currency: String,
    pub budget: BudgetCeilings,
    /// Twelve monthly normals, January first, when the destination is bundled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub climate: Option<Vec<ClimateNormal>>,
}

impl Destination {
    /// The normals for a month (1–12), if this destination has them.
    pub fn climate_for_month(&self, month: i8) -> Option<&ClimateNormal> {
        let index = usize::try_from(month - 1).ok()?;
        self.climate.as_ref()?.get(index)
    }
}
