//! The plan request: the raw JSON shape clients send and the validated [`PlanRequest`] it is parsed into.
//!
//! Everything downstream takes a `PlanRequest`, so nothing after the HTTP edge re-checks a string.

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

/// The longest trip, in days, unless configured otherwise (`MAX_TRIP_DAYS`).
pub const DEFAULT_MAX_TRIP_DAYS: u32 = 14;
const MAX_LOCATION_CHARS: usize = 100;
const MAX_TRAVELERS: i64 = 20;
const MAX_INTERESTS: usize = 10;
const MAX_INTEREST_CHARS: usize = 40;

/// A request that breaks the contract, with the field to blame when there is one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RequestError {
    /// The JSON field name as the client spelled it (`startDate`), if one field is to blame.
    pub field: Option<String>,
    pub message: String,
}

impl RequestError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: Some(field.into()), message: message.into() }
    }

    pub fn general(message: impl Into<String>) -> Self {
        Self { field: None, message: message.into() }
    }
}

/// The budget level a traveller asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum BudgetLevel {
    Low,
    Medium,
    High,
}

impl BudgetLevel {
    pub const ALL: [BudgetLevel; 3] = [BudgetLevel::Low, BudgetLevel::Medium, BudgetLevel::High];

    pub fn as_str(self) -> &'static str {
        match self {
            BudgetLevel::Low => "low",
            BudgetLevel::Medium => "medium",
            BudgetLevel::High => "high",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|b| b.as_str() == s)
    }
}

/// The language of every human-readable string in a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Language {
    #[default]
    Ko,
    En,
}

impl Language {
    pub fn as_str(self) -> &'static str {
        match self {
            Language::Ko => "ko",
            Language::En => "en",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ko" => Some(Language::Ko),
            "en" => Some(Language::En),
            _ => None,
        }
    }

    /// Picks ko or en from an `Accept-Language` header by quality; `None` when it names neither.
    pub fn from_accept_language(header: &str) -> Option<Self> {
        let mut best: Option<(f32, Language)> = None;
        for part in header.split(',') {
            let mut pieces = part.trim().split(';');
            let tag = pieces.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = pieces.find_map(|p| p.trim().strip_prefix("q=").and_then(|q| q.parse::<f32>().ok())).unwrap_or(1.0);
            let primary = tag.split('-').next().unwrap_or("");
            let Some(lang) = Language::parse(primary) else {
                continue;
            };
            if q > 0.0 && best.is_none_or(|(bq, _)| q > bq) {
                best = Some((q, lang));
            }
        }
        best.map(|(_, lang)| lang)
    }
}

/// A destination as the traveller typed it: trimmed, 1–100 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Location(String);

impl Location {
    pub fn parse(raw: &str) -> Result<Self, RequestError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(RequestError::new("location", "location must not be empty"));
        }
        if trimmed.chars().count() > MAX_LOCATION_CHARS {
            return Err(RequestError::new(
                "location",
                format!("location must be at most {MAX_LOCATION_CHARS} characters"),
            ));
        }
        if trimmed.chars().any(char::is_control) {
            return Err(RequestError::new("location", "location must not contain control characters"));
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The inclusive span of a trip, at most `max_days` long.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TripDates {
    start: Date,
    end: Date,
}

impl TripDates {
    pub fn new(start: Date, end: Date, max_days: u32) -> Result<Self, RequestError> {
        if end < start {
            return Err(RequestError::new("endDate", "endDate must not be before startDate"));
        }
        let dates = Self { start, end };
        if dates.len() > max_days {
            return Err(RequestError::new(
                "endDate",
                format!("the trip must be at most {max_days} days long (got {})", dates.len()),
            ));
        }
        Ok(dates)
    }

    pub fn start(&self) -> Date {
        self.start
    }

    pub fn end(&self) -> Date {
        self.end
    }

    /// The number of days, counting both ends.
    pub fn len(&self) -> u32 {
        // Both dates are valid civil dates, so the span in days always fits.
        let span = self.start.until(self.end).map(|s| s.get_days()).unwrap_or(0);
        span as u32 + 1
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// The date of the trip's `index`-th day, counting from 0.
    pub fn date(&self, index: u32) -> Date {
        self.start.checked_add(jiff::Span::new().days(i64::from(index))).unwrap_or(self.end)
    }

    pub fn iter(&self) -> impl Iterator<Item = Date> + '_ {
        (0..self.len()).map(|i| self.date(i))
    }
}

/// Limits that come from configuration rather than from the contract itself.
#[derive(Debug, Clone, Copy)]
pub struct RequestLimits {
    pub max_trip_days: u32,
}

impl Default for RequestLimits {
    fn default() -> Self {
        Self { max_trip_days: DEFAULT_MAX_TRIP_DAYS }
    }
}

/// The request body as clients send it. Every field is optional here so that a missing field gets a
/// message naming it; unknown fields are rejected so that a typo never silently does nothing. An optional
/// field sent as `null` is taken as absent.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawPlanRequest {
    /// A city or region: 1–100 characters after trimming, no control characters.
    #[cfg_attr(feature = "openapi", schema(value_type = String, required = true, min_length = 1, max_length = 100, pattern = r"\S", example = "Seoul"))]
    pub location: Option<String>,
    /// The first day, `YYYY-MM-DD`.
    #[cfg_attr(feature = "openapi", schema(value_type = String, required = true, format = Date, example = "2025-11-10"))]
    pub start_date: Option<String>,
    /// The last day, `YYYY-MM-DD`, not before `startDate`; the trip (both ends counted) is at most
    /// `MAX_TRIP_DAYS` days long (14 unless configured otherwise).
    #[cfg_attr(feature = "openapi", schema(value_type = String, required = true, format = Date, example = "2025-11-12"))]
    pub end_date: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = BudgetLevel, required = true))]
    pub budget: Option<String>,
    /// Ext: the language of every text of the answer; when absent, `Accept-Language` picks ko or en, else ko.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Language>, required = false))]
    pub language: Option<String>,
    /// Ext: how many travel together (default 1); costs are for all of them.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<u32>, required = false, minimum = 1, maximum = 20, example = 2))]
    pub travelers: Option<i64>,
    /// Ext: at most 10 hints such as `food` or `history`, each 1–40 characters (trimmed, lower-cased,
    /// deduplicated); hints, not constraints.
    #[cfg_attr(feature = "openapi", schema(schema_with = interests_schema, required = false))]
    pub interests: Option<Vec<String>>,
}

/// `interests`: at most 10 strings of 1–40 characters, or `null`.
#[cfg(feature = "openapi")]
fn interests_schema() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, SchemaType, Type};
    let item = ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(MAX_INTEREST_CHARS))
        .pattern(Some(r"\S"));
    ArrayBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .items(item)
        .max_items(Some(MAX_INTERESTS))
        .description(Some(
            "Ext: at most 10 hints such as `food` or `history`, each 1–40 characters (trimmed, lower-cased, \
             deduplicated); hints, not constraints.",
        ))
        .examples([serde_json::json!(["food", "history"])])
        .build()
}

impl From<&PlanRequest> for RawPlanRequest {
    /// A valid request in the contract's JSON form, as it is kept (the shared log, saved plans).
    fn from(request: &PlanRequest) -> Self {
        RawPlanRequest {
            location: Some(request.location.as_str().to_owned()),
            start_date: Some(request.dates.start().to_string()),
            end_date: Some(request.dates.end().to_string()),
            budget: Some(request.budget.as_str().to_owned()),
            language: Some(request.language.as_str().to_owned()),
            travelers: Some(i64::from(request.travelers)),
            interests: Some(request.interests.clone()),
        }
    }
}

/// A request that satisfies every rule of the contract.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PlanRequest {
    pub location: Location,
    pub dates: TripDates,
    pub budget: BudgetLevel,
    pub language: Language,
    pub travelers: u32,
    /// Lower-cased, trimmed, deduplicated and sorted: hints for the planner, never constraints.
    pub interests: Vec<String>,
}

impl PlanRequest {
    /// Validates a raw request. `fallback_language` comes from `Accept-Language` when the body has none.
    pub fn parse(
        raw: RawPlanRequest,
        fallback_language: Option<Language>,
        limits: RequestLimits,
    ) -> Result<Self, RequestError> {
        let location = Location::parse(required(raw.location.as_deref(), "location")?)?;
        let start = parse_date(required(raw.start_date.as_deref(), "startDate")?, "startDate")?;
        let end = parse_date(required(raw.end_date.as_deref(), "endDate")?, "endDate")?;
        let dates = TripDates::new(start, end, limits.max_trip_days)?;
        let budget_raw = required(raw.budget.as_deref(), "budget")?;
        let budget = BudgetLevel::parse(budget_raw)
            .ok_or_else(|| RequestError::new("budget", "budget must be one of low, medium, high"))?;
        let language = match raw.language.as_deref() {
            Some(l) => {
                Language::parse(l).ok_or_else(|| RequestError::new("language", "language must be one of ko, en"))?
            }
            None => fallback_language.unwrap_or_default(),
        };
        let travelers = match raw.travelers {
            None => 1,
            Some(n @ 1..=MAX_TRAVELERS) => n as u32,
            Some(_) => {
                return Err(RequestError::new("travelers", format!("travelers must be between 1 and {MAX_TRAVELERS}")));
            }
        };
        let interests = parse_interests(raw.interests.unwrap_or_default())?;
        Ok(Self { location, dates, budget, language, travelers, interests })
    }
}

fn required<'a>(value: Option<&'a str>, field: &str) -> Result<&'a str, RequestError> {
    value.ok_or_else(|| RequestError::new(field, format!("{field} is required")))
}

fn parse_date(raw: &str, field: &str) -> Result<Date, RequestError> {
    let well_formed = raw.len() == 10
        && raw.bytes().enumerate().all(|(i, b)| if i == 4 || i == 7 { b == b'-' } else { b.is_ascii_digit() });
    if !well_formed {
        return Err(RequestError::new(field, format!("{field} must be a date in YYYY-MM-DD form")));
    }
    raw.parse::<Date>().map_err(|_| RequestError::new(field, format!("{field} is not a real calendar date")))
}

fn parse_interests(raw: Vec<String>) -> Result<Vec<String>, RequestError> {
    if raw.len() > MAX_INTERESTS {
        return Err(RequestError::new("interests", format!("at most {MAX_INTERESTS} interests are allowed")));
    }
    let mut out = Vec::with_capacity(raw.len());
    for interest in raw {
        let t = interest.trim().to_lowercase();
        if t.is_empty() || t.chars().count() > MAX_INTEREST_CHARS || t.chars().any(char::is_control) {
            return Err(RequestError::new(
                "interests",
                format!("each interest must be 1–{MAX_INTEREST_CHARS} characters without control characters"),
            ));
        }
        out.push(t);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(location: &str, start: &str, end: &str, budget: &str) -> RawPlanRequest {
        RawPlanRequest {
            location: Some(location.into()),
            start_date: Some(start.into()),
            end_date: Some(end.into()),
            budget: Some(budget.into()),
            ..Default::default()
        }
    }

    fn parse(r: RawPlanRequest) -> Result<PlanRequest, RequestError> {
        PlanRequest::parse(r, None, RequestLimits::default())
    }

    #[test]
    fn the_original_example_parses_with_defaults() {
        let req = parse(raw(" Seoul ", "2025-11-10", "2025-11-12", "medium")).unwrap();
        assert_eq!(req.location.as_str(), "Seoul");
        assert_eq!(req.dates.len(), 3);
        assert_eq!(req.language, Language::Ko);
        assert_eq!(req.travelers, 1);
        assert_eq!(req.dates.iter().last().unwrap().to_string(), "2025-11-12");
    }

    #[test]
    fn each_broken_rule_names_its_field() {
        let cases = [
            (raw("Seoul", "2025-11-12", "2025-11-10", "medium"), "endDate", "must not be before"),
            (raw("Seoul", "2025-11-01", "2025-11-15", "medium"), "endDate", "at most 14 days"),
            (raw("Seoul", "2025-11-10", "2025-11-12", "luxury"), "budget", "low, medium, high"),
            (raw("   ", "2025-11-10", "2025-11-12", "low"), "location", "must not be empty"),
            (raw(&"x".repeat(101), "2025-11-10", "2025-11-12", "low"), "location", "at most 100"),
            (raw("Seo\u{7}ul", "2025-11-10", "2025-11-12", "low"), "location", "control"),
            (raw("Seoul", "2025-02-30", "2025-03-01", "low"), "startDate", "real calendar date"),
            (raw("Seoul", "2025/11/10", "2025-11-12", "low"), "startDate", "YYYY-MM-DD"),
            (raw("Seoul", "2025-11-10", "+2025-11-1", "low"), "endDate", "YYYY-MM-DD"),
        ];
        for (r, field, text) in cases {
            let err = parse(r).unwrap_err();
            assert_eq!(err.field.as_deref(), Some(field), "{err}");
            assert!(err.message.contains(text), "{err}");
        }
        let missing = RawPlanRequest { location: Some("Seoul".into()), ..Default::default() };
        assert_eq!(parse(missing).unwrap_err().field.as_deref(), Some("startDate"));
    }

    #[test]
    fn a_hundred_characters_and_fourteen_days_are_allowed() {
        assert!(parse(raw(&"가".repeat(100), "2025-11-01", "2025-11-14", "low")).is_ok());
    }

    #[test]
    fn extensions_are_validated() {
        let mut r = raw("Seoul", "2025-11-10", "2025-11-12", "low");
        r.travelers = Some(21);
        assert_eq!(parse(r.clone()).unwrap_err().field.as_deref(), Some("travelers"));
        r.travelers = Some(2);
        r.language = Some("fr".into());
        assert_eq!(parse(r.clone()).unwrap_err().field.as_deref(), Some("language"));
        r.language = None;
        r.interests = Some(vec![" Food ".into(), "history".into(), "food".into()]);
        let req = PlanRequest::parse(r, Some(Language::En), RequestLimits::default()).unwrap();
        assert_eq!(req.interests, ["food", "history"]);
        assert_eq!(req.language, Language::En);
    }

    #[test]
    fn accept_language_picks_the_preferred_known_language() {
        assert_eq!(Language::from_accept_language("en-US,en;q=0.9,ko;q=0.8"), Some(Language::En));
        assert_eq!(Language::from_accept_language("fr, ko-KR;q=0.5, en;q=0.4"), Some(Language::Ko));
        assert_eq!(Language::from_accept_language("fr, de"), None);
        assert_eq!(Language::from_accept_language("en;q=0"), None);
    }
}
