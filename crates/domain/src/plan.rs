//! The plan: the document every client renders, in the `complete` event and the JSON endpoint.

use std::fmt;

use jiff::civil::Date;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::request::{BudgetLevel, Language};

/// A time of day in minutes after midnight, written `HH:MM` on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClockTime(u16);

impl ClockTime {
    pub const fn from_minutes(minutes: u16) -> Self {
        Self(minutes)
    }

    pub const fn hm(hours: u16, minutes: u16) -> Self {
        Self(hours * 60 + minutes)
    }

    pub fn minutes(self) -> u16 {
        self.0
    }

    /// Parses strict `HH:MM` with 00 ≤ HH ≤ 24 (24:00 only as a closing time).
    pub fn parse(s: &str) -> Option<Self> {
        let (h, m) = s.split_once(':')?;
        if h.len() != 2 || m.len() != 2 {
            return None;
        }
        let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
        match (h, m) {
            (0..=23, 0..=59) | (24, 0) => Some(Self(h * 60 + m)),
            _ => None,
        }
    }
}

impl fmt::Display for ClockTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}

impl Serialize for ClockTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ClockTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        ClockTime::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("invalid time {s:?}, expected HH:MM")))
    }
}

/// What kind of thing an activity is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Category {
    Sightseeing,
    Food,
    Cafe,
    Shopping,
    Culture,
    Nature,
    Activity,
    Nightlife,
    Transport,
    Rest,
}

impl Category {
    pub const ALL: [Category; 10] = [
        Category::Sightseeing,
        Category::Food,
        Category::Cafe,
        Category::Shopping,
        Category::Culture,
        Category::Nature,
        Category::Activity,
        Category::Nightlife,
        Category::Transport,
        Category::Rest,
    ];
}

/// A point on the map.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GeoPoint {
    pub lat: f64,
    pub lon: f64,
}

/// Where a day's weather figures come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum WeatherSource {
    /// A real forecast for that date.
    Forecast,
    /// Monthly normals: the date is beyond the forecast horizon or no forecast service answered.
    Climatology,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct DayWeather {
    pub summary: String,
    pub temp_min_c: f64,
    pub temp_max_c: f64,
    /// Percent, 0–100.
    #[cfg_attr(feature = "openapi", schema(maximum = 100))]
    pub precipitation_chance: u8,
    pub source: WeatherSource,
}

impl DayWeather {
    /// Rule 6 applies from this chance of precipitation on.
    pub const RAINY_FROM: u8 = 60;

    pub fn is_rainy(&self) -> bool {
        self.precipitation_chance >= Self::RAINY_FROM
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Activity {
    /// Local start time, `HH:MM`.
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$", example = "09:00"))]
    pub time: ClockTime,
    pub duration_minutes: u16,
    pub name: String,
    #[serde(default)]
    // Always written, though a missing one reads as empty.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub description: String,
    pub category: Category,
    #[serde(default)]
    // Always written, though a missing one reads as empty.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub area: String,
    /// For all travellers together, in whole units of the plan's currency.
    pub cost: u64,
    pub indoor: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<GeoPoint>,
}

impl Activity {
    /// Meals are the one kind of activity that may repeat and is never dropped to fit a budget.
    pub fn is_meal(&self) -> bool {
        self.category == Category::Food
    }

    /// When the activity is over, in minutes after midnight (may pass midnight).
    pub fn end_minutes(&self) -> u32 {
        u32::from(self.time.minutes()) + u32::from(self.duration_minutes)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Day {
    /// 1-based.
    pub day: u32,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Date))]
    pub date: Date,
    pub theme: String,
    pub weather: DayWeather,
    pub activities: Vec<Activity>,
    pub daily_cost: u64,
}

impl Day {
    /// The day's activities' costs added up, or `None` when the sum overflows (which the validator
    /// reports as a broken rule 4).
    pub fn checked_activities_cost(&self) -> Option<u64> {
        crate::money::checked_sum(self.activities.iter().map(|a| a.cost))
    }

    /// [`Self::checked_activities_cost`], saturating at `u64::MAX`: what `dailyCost` is set to. A
    /// saturated sum is never the exact one, so [`crate::rules::validate`] still rejects the plan.
    pub fn activities_cost(&self) -> u64 {
        self.checked_activities_cost().unwrap_or(u64::MAX)
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

impl std::ops::AddAssign for Usage {
    /// Saturating: the counts come from providers, and an absurd one must not wrap into a small one.
    fn add_assign(&mut self, other: Self) {
        self.input_tokens = self.input_tokens.saturating_add(other.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(other.output_tokens);
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    pub provider: String,
    pub model: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub generated_at: jiff::Timestamp,
    /// Drafts made: 1 for the first draft, plus one per refine iteration.
    pub iterations: u32,
    pub prompt_version: String,
    pub weather_source: String,
    pub duration_ms: u64,
    pub cached: bool,
    pub usage: Usage,
}

/// The destination as the plan names it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlanDestination {
    pub name: String,
    pub country: String,
    pub lat: f64,
    pub lon: f64,
    pub timezone: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub id: String,
    pub title: String,
    /// The location exactly as requested (trimmed).
    pub location: String,
    pub destination: PlanDestination,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Date))]
    pub start_date: Date,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Date))]
    pub end_date: Date,
    pub budget: BudgetLevel,
    pub travelers: u32,
    pub currency: String,
    pub language: Language,
    pub days: Vec<Day>,
    pub total_cost: u64,
    pub tips: Vec<String>,
    pub warnings: Vec<String>,
    pub metadata: Metadata,
}

impl Plan {
    /// Sets `dailyCost` and `totalCost` to the exact sums (rule 4), or to `u64::MAX` where a sum
    /// overflows, which [`crate::rules::validate`] reports.
    pub fn recompute_costs(&mut self) {
        for day in &mut self.days {
            day.daily_cost = day.activities_cost();
        }
        self.total_cost = self.checked_total_cost().unwrap_or(u64::MAX);
    }

    /// Every activity's cost added up, or `None` when that overflows.
    pub fn checked_total_cost(&self) -> Option<u64> {
        crate::money::checked_sum(self.days.iter().flat_map(|d| d.activities.iter().map(|a| a.cost)))
    }
}

/// A plan id: `pln_` and a ULID-style rendering of 128 time-ordered bits (a UUIDv7).
pub fn plan_id(bits: u128) -> String {
    prefixed_id("pln_", bits)
}

/// `prefix` followed by the 26-character Crockford base32 rendering of `bits`, which sorts by time
/// when the bits do.
pub fn prefixed_id(prefix: &str, bits: u128) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let mut out = String::with_capacity(prefix.len() + 26);
    out.push_str(prefix);
    for i in (0..26).rev() {
        let shift = i * 5;
        let index = if shift >= 128 { 0 } else { ((bits >> shift) & 31) as usize };
        out.push(ALPHABET[index] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_times_round_trip_and_reject_nonsense() {
        assert_eq!(ClockTime::parse("09:05").unwrap().to_string(), "09:05");
        assert_eq!(ClockTime::parse("24:00").unwrap().minutes(), 1440);
        for bad in ["9:00", "24:01", "12:60", "ab:cd", "12-00", ""] {
            assert!(ClockTime::parse(bad).is_none(), "{bad}");
        }
        let t: ClockTime = serde_json::from_str("\"18:30\"").unwrap();
        assert_eq!(t, ClockTime::hm(18, 30));
        assert!(serde_json::from_str::<ClockTime>("\"25:00\"").is_err());
    }

    #[test]
    fn plan_ids_look_like_ulids_and_sort_by_time() {
        let a = plan_id(1 << 80);
        let b = plan_id(2 << 80);
        assert_eq!(a.len(), 30);
        assert!(a.starts_with("pln_0"));
        assert!(a < b);
    }
}
