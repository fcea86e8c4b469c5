//! What the domain knows about a destination: where it is, its currency, its budget ceilings and, for
//! bundled destinations, its monthly climate normals.

use std::sync::{Arc, LazyLock};

use serde::{Deserialize, Serialize};

use crate::plan::ClockTime;
use crate::request::{BudgetLevel, Language};

/// A text in both languages the service speaks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

    /// The ceiling for a whole trip: per day per traveller, times days, times travellers (saturating:
    /// the figures are data, and a ceiling cannot wrap into a small one).
    pub fn for_trip(&self, level: BudgetLevel, days: u32, travelers: u32) -> u64 {
        self.per_traveler_per_day(level).saturating_mul(u64::from(days)).saturating_mul(u64::from(travelers))
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
    /// How a day runs here (meal times, getting around, holidays), when the destination is bundled;
    /// checks use [`DestinationProfile::generic`] elsewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<DestinationProfile>,
}

/// How a day runs at a destination: when people eat, how long getting from one place to another takes,
/// and which dates are public holidays. Data, per destination; the commonsense checks read it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DestinationProfile {
    pub meal_windows: MealWindows,
    pub transit: Transit,
    /// Public holidays, at least 2025–2028, in date order. Shared: a destination is copied into every
    /// request's context, and seventy named holidays were most of what each copy held.
    #[serde(default)]
    pub holidays: Arc<[Holiday]>,
    /// When each bundled place and restaurant is open, for those that are not open all day, every day:
    /// one entry per name (English and Korean), sorted by [`OpeningHours::key`]. Shared like the holidays.
    #[serde(default, skip_serializing_if = "<[_]>::is_empty")]
    pub opening_hours: Arc<[OpeningHours]>,
}

/// When a bundled place is open: what the opening-hours check holds a plan's visit to it to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OpeningHours {
    /// The place's id in its destination's data (what a [`Holiday`] closes).
    pub id: String,
    /// One of its names (English or Korean) as [`match_key`] gives it.
    pub key: String,
    pub open: ClockTime,
    /// `24:00` for a place open until midnight.
    pub close: ClockTime,
    /// Weekdays it is closed on, one bit each, Monday first (bit 0).
    #[serde(default)]
    pub closed_days: u8,
}

impl OpeningHours {
    pub fn closed_on(&self, weekday: jiff::civil::Weekday) -> bool {
        self.closed_days & (1 << weekday.to_monday_zero_offset()) != 0
    }
}

/// How a bundled place is closed for a visit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closure {
    /// All that day: its weekly closing day, or a public holiday that closes it.
    Day,
    /// Outside its hours that day.
    Hours { open: ClockTime, close: ClockTime },
}

/// A name reduced to what identifies it: letters and digits, lower case (`Kinkaku-ji (Golden
/// Pavilion)` and `kinkakuji golden pavilion` are one place).
pub fn match_key(name: &str) -> String {
    name.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect()
}

/// When each meal normally starts, local time (Paris dines from 19:30, Seoul from 18:00).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MealWindows {
    pub breakfast: TimeWindow,
    pub lunch: TimeWindow,
    pub dinner: TimeWindow,
}

/// A span of local clock time, `from` inclusive, `to` exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeWindow {
    pub from: ClockTime,
    pub to: ClockTime,
}

impl TimeWindow {
    pub fn contains(&self, t: ClockTime) -> bool {
        self.from <= t && t < self.to
    }
}

/// Door-to-door travel between two stops: walking up to `walk_max_km` (straight line), beyond that the
/// city's usual transit at an effective `speed_kmh` over the straight-line distance plus a fixed
/// `overhead_minutes` (walking to the station, waiting, transfers).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Transit {
    pub walk_max_km: f64,
    pub walk_kmh: f64,
    pub speed_kmh: f64,
    pub overhead_minutes: u16,
}

/// A public holiday: a warning for plans on that date, and the places it closes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Holiday {
    pub date: jiff::civil::Date,
    pub name: Localized,
    /// Ids of bundled places (or restaurants) closed that day, beyond their usual `closedOn`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub closes: Vec<String>,
}

impl DestinationProfile {
    /// For places without bundled data: common meal times and a city's average transit. One shared
    /// value: a request's checks ask for it several times, and its empty lists cost nothing to clone.
    pub fn generic() -> Self {
        static GENERIC: LazyLock<DestinationProfile> = LazyLock::new(|| {
            let t = ClockTime::hm;
            DestinationProfile {
                meal_windows: MealWindows {
                    breakfast: TimeWindow { from: t(7, 0), to: t(10, 30) },
                    lunch: TimeWindow { from: t(11, 30), to: t(14, 30) },
                    dinner: TimeWindow { from: t(18, 0), to: t(21, 30) },
                },
                transit: Transit { walk_max_km: 1.2, walk_kmh: 4.5, speed_kmh: 20.0, overhead_minutes: 10 },
                holidays: Arc::default(),
                opening_hours: Arc::default(),
            }
        });
        GENERIC.clone()
    }

    /// The opening hours of the bundled place called `name`, if it is one with limited hours.
    pub fn opening_hours(&self, name: &str) -> Option<&OpeningHours> {
        if self.opening_hours.is_empty() {
            return None;
        }
        // Compared character by character, not built: this runs for every activity of every check.
        let key = || name.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase);
        let at = self.opening_hours.binary_search_by(|h| h.key.chars().cmp(key())).ok()?;
        self.opening_hours.get(at)
    }

    /// Why a visit to the bundled place called `name` on `date`, from `start` to `end` (minutes after
    /// midnight), finds it closed; `None` when it is open then or the data does not know its hours.
    pub fn closure(&self, name: &str, date: jiff::civil::Date, start: ClockTime, end: u32) -> Option<Closure> {
        let h = self.opening_hours(name)?;
        let holiday = self.holiday(date).is_some_and(|d| d.closes.contains(&h.id));
        if holiday || h.closed_on(date.weekday()) {
            Some(Closure::Day)
        } else if start < h.open || end > u32::from(h.close.minutes()) {
            Some(Closure::Hours { open: h.open, close: h.close })
        } else {
            None
        }
    }

    /// The holiday on `date`, if it is one.
    pub fn holiday(&self, date: jiff::civil::Date) -> Option<&Holiday> {
        self.holidays.iter().find(|h| h.date == date)
    }
}

impl Destination {
    /// The normals for a month (1–12), if this destination has them.
    pub fn climate_for_month(&self, month: i8) -> Option<&ClimateNormal> {
        let index = usize::try_from(month - 1).ok()?;
        self.climate.as_ref()?.get(index)
    }
}
