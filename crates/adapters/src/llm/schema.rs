//! What a model is asked to write: the plan as JSON, its schema for structured output (JSON Schema for
//! OpenAI-compatible servers, Gemini's OpenAPI subset), and the conversion into the domain's days.
//!
//! The model's shape is deliberately smaller than the plan: dates, weather and sums are the engine's, and
//! costs are per person (models are poor at multiplying), so there is less for a model to get wrong.

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use tripstream_domain::plan::{Activity, Category, ClockTime, Day};
use tripstream_engine::PlanContext;

/// The whole answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelPlan {
    /// A short title for the trip.
    #[serde(default)]
    pub title: String,
    /// One entry per trip day, in order.
    pub days: Vec<ModelDay>,
    /// 3 to 5 practical tips.
    #[serde(default)]
    pub tips: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelDay {
    /// 1 for the first day.
    #[serde(default, deserialize_with = "whole")]
    pub day: u32,
    /// The day's theme in a few words, e.g. the areas it visits.
    #[serde(default)]
    pub theme: String,
    /// 3 to 8 activities in time order, meals included.
    pub activities: Vec<ModelActivity>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelActivity {
    /// Start time, 24-hour HH:MM.
    pub time: String,
    #[serde(deserialize_with = "whole")]
    pub duration_minutes: u32,
    /// The place or activity, as locals name it.
    pub name: String,
    /// One sentence.
    #[serde(default)]
    pub description: String,
    pub category: ModelCategory,
    /// The neighbourhood.
    #[serde(default)]
    pub area: String,
    /// Typical cost for one person, whole units of the local currency, 0 when free.
    /// `None` when the model left it out: the bundled data fills it where it knows the place.
    #[serde(default, deserialize_with = "whole_or_none")]
    #[schemars(with = "u64")]
    pub cost_per_person: Option<u64>,
    /// `None` when the model left it out: the bundled data, or the category, says.
    #[serde(default)]
    #[schemars(with = "bool")]
    pub indoor: Option<bool>,
}

/// A day with its activities counted, not read: [`ModelDay`] from activities already read one by one
/// as they closed (see `incremental`). Its fields are read as [`ModelDay`]'s are.
#[derive(Deserialize)]
pub(super) struct DayHead {
    #[serde(default, deserialize_with = "whole")]
    pub day: u32,
    #[serde(default)]
    pub theme: String,
    pub activities: Vec<serde::de::IgnoredAny>,
}

/// A plan with its days counted, not read: [`ModelPlan`] from days already read as they closed.
#[derive(Deserialize)]
pub(super) struct PlanHead {
    #[serde(default)]
    pub title: String,
    pub days: Vec<serde::de::IgnoredAny>,
    #[serde(default)]
    pub tips: Vec<String>,
}

// The categories of API.md; anything else a model invents is read as `Other` and planned as sightseeing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ModelCategory {
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
    #[serde(other)]
    #[schemars(skip)]
    Other,
}

impl From<ModelCategory> for Category {
    fn from(c: ModelCategory) -> Category {
        match c {
            ModelCategory::Sightseeing | ModelCategory::Other => Category::Sightseeing,
            ModelCategory::Food => Category::Food,
            ModelCategory::Cafe => Category::Cafe,
            ModelCategory::Shopping => Category::Shopping,
            ModelCategory::Culture => Category::Culture,
            ModelCategory::Nature => Category::Nature,
            ModelCategory::Activity => Category::Activity,
            ModelCategory::Nightlife => Category::Nightlife,
            ModelCategory::Transport => Category::Transport,
            ModelCategory::Rest => Category::Rest,
        }
    }
}

impl From<Category> for ModelCategory {
    fn from(c: Category) -> ModelCategory {
        match c {
            Category::Sightseeing => ModelCategory::Sightseeing,
            Category::Food => ModelCategory::Food,
            Category::Cafe => ModelCategory::Cafe,
            Category::Shopping => ModelCategory::Shopping,
            Category::Culture => ModelCategory::Culture,
            Category::Nature => ModelCategory::Nature,
            Category::Activity => ModelCategory::Activity,
            Category::Nightlife => ModelCategory::Nightlife,
            Category::Transport => ModelCategory::Transport,
            Category::Rest => ModelCategory::Rest,
        }
    }
}

/// Whole numbers that a model may write as `3000.0`, `"3000"`, `"₩3,000"`, `"3,000원"`, `"KRW 1,000"`
/// or `"90 min"`: the currency, the unit and the thousands separators around the digits are dropped.
fn whole<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<u64>,
{
    let v = Value::deserialize(d)?;
    number(&v)
        .and_then(|n| T::try_from(n).ok())
        .ok_or_else(|| serde::de::Error::custom(format!("expected a whole number >= 0, found {v}")))
}

/// [`whole`], or `None` for `null`.
fn whole_or_none<'de, D>(d: D) -> Result<Option<u64>, D::Error>
where
    D: Deserializer<'de>,
{
    let v = Value::deserialize(d)?;
    if v.is_null() {
        return Ok(None);
    }
    number(&v).map(Some).ok_or_else(|| serde::de::Error::custom(format!("expected a whole number >= 0, found {v}")))
}

fn number(v: &Value) -> Option<u64> {
    let n = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => written_number(s),
        _ => None,
    };
    n.filter(|n| n.is_finite() && *n >= 0.0).map(|n| n.round() as u64)
}

/// The number in a string as a model writes it: the first run of digits (with `,` between thousands
/// and an optional decimal point), whatever currency sign or unit is around it; "free" is 0.
fn written_number(s: &str) -> Option<f64> {
    let s = s.trim();
    if ["free", "무료", "無料", "gratuit", "gratis"].iter().any(|w| s.eq_ignore_ascii_case(w)) {
        return Some(0.0);
    }
    let start = s.find(|c: char| c.is_ascii_digit())?;
    if s[..start].contains('-') {
        return None;
    }
    let run: String =
        s[start..].chars().take_while(|c| c.is_ascii_digit() || *c == ',' || *c == '.').filter(|c| *c != ',').collect();
    run.trim_end_matches('.').parse::<f64>().ok()
}

/// `9:00`, `09:00` and `09:00:00` all mean nine o'clock.
pub fn parse_time(s: &str) -> Option<ClockTime> {
    let mut parts = s.trim().split(':');
    let (h, m) = (parts.next()?, parts.next()?);
    let (h, m): (u16, u16) = (h.parse().ok()?, m.get(..2)?.parse().ok()?);
    (h < 24 && m < 60).then(|| ClockTime::hm(h, m))
}

/// Whether a place of `category` is indoors when neither the model nor the data says.
fn indoors_by_default(category: ModelCategory) -> bool {
    matches!(category, ModelCategory::Food | ModelCategory::Cafe | ModelCategory::Culture | ModelCategory::Shopping)
}

impl ModelActivity {
    /// The domain's activity: costs for every traveller, the time parsed. `None` when the time is not a time.
    pub fn to_activity(&self, travelers: u32) -> Option<Activity> {
        Some(Activity {
            time: parse_time(&self.time)?,
            duration_minutes: u16::try_from(self.duration_minutes).unwrap_or(u16::MAX),
            name: self.name.trim().to_owned(),
            description: self.description.trim().to_owned(),
            category: self.category.into(),
            area: self.area.trim().to_owned(),
            cost: self.cost_per_person.unwrap_or(0).saturating_mul(u64::from(travelers)),
            indoor: self.indoor.unwrap_or_else(|| indoors_by_default(self.category)),
            location: None,
        })
    }
}

impl ModelDay {
    /// The domain's day `index` (0-based) of the trip, dated and with the gathered weather; sums are
    /// the engine's. Errs naming the activity whose time cannot be read.
    pub fn to_day(&self, index: usize, ctx: &PlanContext) -> Result<Day, String> {
        let activities = self
            .activities
            .iter()
            .map(|a| a.to_activity(ctx.request.travelers).ok_or_else(|| format!("{:?} has time {:?}", a.name, a.time)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Day {
            day: index as u32 + 1,
            date: ctx.request.dates.iter().nth(index).unwrap_or(ctx.request.dates.end()),
            theme: self.theme.trim().to_owned(),
            weather: ctx.weather.get(index).or(ctx.weather.last()).cloned().ok_or("no weather gathered")?,
            activities,
            daily_cost: 0,
        })
    }
}

/// The plan's JSON Schema, every subschema inlined, every object closed and every property required:
/// what OpenAI's strict structured outputs accept, and the base of Gemini's schema.
pub fn json_schema() -> Value {
    let generator = schemars::generate::SchemaSettings::draft07()
        .with(|s| {
            s.inline_subschemas = true;
            s.meta_schema = None;
        })
        .into_generator();
    let mut schema = generator.into_root_schema_for::<ModelPlan>().to_value();
    close_objects(&mut schema);
    schema
}

fn close_objects(schema: &mut Value) {
    let Some(obj) = schema.as_object_mut() else { return };
    // Schema annotations strict structured output does not take.
    for key in ["title", "default", "format"] {
        if obj.get(key).is_some_and(|v| !v.is_object()) {
            obj.remove(key);
        }
    }
    if let Some(Value::Object(props)) = obj.get_mut("properties") {
        props.values_mut().for_each(close_objects);
        let keys = props.keys().cloned().map(Value::String).collect();
        obj.insert("required".into(), Value::Array(keys));
        obj.insert("additionalProperties".into(), Value::Bool(false));
    }
    if let Some(items) = obj.get_mut("items") {
        close_objects(items);
    }
}

/// Gemini's `responseSchema`: the OpenAPI 3.0 subset (upper-case types, no `additionalProperties`,
/// `format` only where Gemini knows it) with `propertyOrdering`, so the model writes keys in the order
/// the stream parser expects (theme before activities, days before tips).
pub fn gemini_schema() -> Value {
    fn convert(schema: &Value) -> Value {
        let Some(obj) = schema.as_object() else { return schema.clone() };
        let mut out = Map::new();
        if let Some(t) = obj.get("type").and_then(Value::as_str) {
            out.insert("type".into(), Value::String(t.to_ascii_uppercase()));
        }
        for key in ["description", "enum", "required"] {
            if let Some(v) = obj.get(key) {
                out.insert(key.into(), v.clone());
            }
        }
        if let Some(props) = obj.get("properties").and_then(Value::as_object) {
            out.insert("properties".into(), props.iter().map(|(k, v)| (k.clone(), convert(v))).collect());
            out.insert("propertyOrdering".into(), props.keys().cloned().map(Value::String).collect());
        }
        if let Some(items) = obj.get("items") {
            out.insert("items".into(), convert(items));
        }
        Value::Object(out)
    }
    convert(&json_schema())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_schema_is_closed_inlined_and_lists_the_categories() {
        let schema = json_schema();
        let text = schema.to_string();
        assert!(!text.contains("$ref") && !text.contains("$defs") && !text.contains("Other"), "{text}");
        let activity = &schema["properties"]["days"]["items"]["properties"]["activities"]["items"];
        assert_eq!(activity["additionalProperties"], json!(false));
        assert_eq!(activity["required"].as_array().unwrap().len(), 8);
        assert_eq!(activity["properties"]["category"]["enum"].as_array().unwrap().len(), 10);
    }

    #[test]
    fn gemini_gets_its_openapi_subset_with_property_ordering() {
        let schema = gemini_schema();
        assert_eq!(schema["type"], "OBJECT");
        assert_eq!(schema["propertyOrdering"], json!(["title", "days", "tips"]));
        let day = &schema["properties"]["days"]["items"];
        assert_eq!(day["propertyOrdering"], json!(["day", "theme", "activities"]));
        let text = schema.to_string();
        assert!(!text.contains("additionalProperties") && !text.contains("uint"), "{text}");
    }

    #[test]
    fn model_numbers_and_times_are_read_leniently() {
        let a: ModelActivity = serde_json::from_value(json!({
            "time": "9:00", "durationMinutes": 90.0, "name": " 경복궁 ", "category": "museum",
            "costPerPerson": "3,000", "indoor": false
        }))
        .unwrap();
        let activity = a.to_activity(2).unwrap();
        assert_eq!((activity.time, activity.duration_minutes, activity.cost), (ClockTime::hm(9, 0), 90, 6000));
        assert_eq!((activity.name.as_str(), activity.category), ("경복궁", Category::Sightseeing));
        assert_eq!(parse_time("25:00"), None);
        for (written, whole) in
            [("₩3,000", 3000), ("3,000원", 3000), ("KRW 1,000", 1000), ("¥1,200.", 1200), ("free", 0)]
        {
            assert_eq!(written_number(written), Some(f64::from(whole)), "{written}");
        }
        assert_eq!(written_number("-3000"), None);
        let a: ModelActivity = serde_json::from_value(json!({
            "time": "9:00", "durationMinutes": "90 min", "name": "경복궁", "category": "culture"
        }))
        .unwrap();
        assert_eq!((a.duration_minutes, a.cost_per_person, a.indoor), (90, None, None));
        assert!(a.to_activity(1).unwrap().indoor);
        assert_eq!(parse_time("noon"), None);
        assert_eq!(parse_time("18:30:00"), Some(ClockTime::hm(18, 30)));
    }
}
