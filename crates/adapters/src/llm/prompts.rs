//! The prompts, as YAML files under `prompts/` (embedded) or `PROMPTS_DIR` (read at start-up), each a
//! minijinja template with a version. A broken file fails at start-up naming the file, not at the first
//! request.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use minijinja::{Environment, UndefinedBehavior, context};
use serde::{Deserialize, Serialize};
use tripstream_domain::Language;
use tripstream_domain::rules::Finding;
use tripstream_engine::{DayRequest, PlanContext};

use super::schema::{ModelDay, ModelPlan};
use crate::catalog::{BestTime, Catalog, DestinationData, Hours, Weekday};

const NAMES: [&str; 4] = ["system", "draft", "refine", "regenerate"];
const EMBEDDED: [&str; 4] = [
    include_str!("../../../../prompts/system.yaml"),
    include_str!("../../../../prompts/draft.yaml"),
    include_str!("../../../../prompts/refine.yaml"),
    include_str!("../../../../prompts/regenerate.yaml"),
];

#[derive(Debug, thiserror::Error)]
#[error("prompt file {file}: {message}")]
pub struct PromptError {
    pub file: String,
    pub message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PromptFile {
    version: String,
    template: String,
}

/// The four compiled templates.
#[derive(Debug)]
pub struct Prompts {
    env: Environment<'static>,
    version: String,
    /// The known places of a destination in a language, as template values: the same for every
    /// request there, and the costliest part of a prompt's variables to build.
    places: Mutex<HashMap<(String, Language), minijinja::Value>>,
}

/// A rendered conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub system: String,
    pub user: String,
}

impl Prompts {
    /// The prompts compiled into the binary.
    pub fn embedded() -> Result<Prompts, PromptError> {
        Self::build(NAMES.iter().zip(EMBEDDED).map(|(n, text)| (format!("prompts/{n}.yaml"), text.to_owned())))
    }

    /// `system.yaml`, `draft.yaml`, `refine.yaml` and `regenerate.yaml` from `dir`.
    pub fn from_dir(dir: &Path) -> Result<Prompts, PromptError> {
        let files = NAMES
            .iter()
            .map(|n| {
                let path = dir.join(format!("{n}.yaml"));
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| PromptError { file: path.display().to_string(), message: e.to_string() })?;
                Ok((path.display().to_string(), text))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::build(files)
    }

    fn build(files: impl IntoIterator<Item = (String, String)>) -> Result<Prompts, PromptError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        let mut versions: Vec<String> = Vec::new();
        for ((file, text), name) in files.into_iter().zip(NAMES) {
            let err = |message: String| PromptError { file: file.clone(), message };
            let parsed: PromptFile = serde_saphyr::from_str(&text).map_err(|e| err(e.to_string()))?;
            if parsed.version.trim().is_empty() {
                return Err(err("version is empty".into()));
            }
            env.add_template_owned(name, parsed.template).map_err(|e| err(describe(&e)))?;
            if !versions.contains(&parsed.version) {
                versions.push(parsed.version);
            }
        }
        let prompts = Prompts { env, version: versions.join("+"), places: Mutex::default() };
        // Render once with representative values, so a template that names a missing variable or
        // misuses a filter fails now rather than on the first request.
        prompts.render_sample().map_err(|(name, message)| PromptError { file: format!("{name}.yaml"), message })?;
        Ok(prompts)
    }

    /// `plan-v2`, or the distinct versions of the files joined with `+`.
    pub fn version(&self) -> &str {
        &self.version
    }

    pub fn draft(&self, ctx: &PlanContext, catalog: Option<&Catalog>) -> Result<Rendered, String> {
        let vars = self.vars(ctx, catalog);
        Ok(Rendered { system: self.render("system", vars.clone())?, user: self.render("draft", vars)? })
    }

    pub fn refine(
        &self,
        ctx: &PlanContext,
        catalog: Option<&Catalog>,
        current: &ModelPlanJson,
        findings: &[Finding],
    ) -> Result<Rendered, String> {
        let vars = self.vars(ctx, catalog);
        let lang = ctx.request.language;
        let refine = context! {
            findings => findings.iter().map(|f| f.message(lang)).collect::<Vec<_>>(),
            current_plan => current.0.clone(),
            ..vars.clone()
        };
        Ok(Rendered { system: self.render("system", vars)?, user: self.render("refine", refine)? })
    }

    /// The prompt for one day of a plan written again: the other days (`other_days`, in the answer's
    /// shape), the places the day had, the budget they leave, the traveller's instruction and, when
    /// refining, what the last attempt broke.
    pub fn regenerate(
        &self,
        ctx: &PlanContext,
        catalog: Option<&Catalog>,
        ask: &DayRequest<'_>,
        other_days: &[ModelDay],
    ) -> Result<Rendered, String> {
        let vars = self.vars(ctx, catalog);
        let lang = ctx.request.language;
        let left = ask.budget_left(ctx);
        let regenerate = context! {
            day => ask.index + 1,
            other_days => serde_json::to_string_pretty(other_days).unwrap_or_default(),
            old_places => ask.day().map(|d| d.activities.iter().map(|a| a.name.clone()).collect::<Vec<_>>()),
            budget_left => left,
            budget_left_per_person => left / u64::from(ctx.request.travelers.max(1)),
            instruction => ask.instruction.map(str::trim).unwrap_or_default(),
            findings => ask.findings().iter().map(|f| f.message(lang)).collect::<Vec<_>>(),
            ..vars.clone()
        };
        Ok(Rendered { system: self.render("system", vars)?, user: self.render("regenerate", regenerate)? })
    }

    /// The template variables, with the destination's known places (none when it is not bundled).
    fn vars(&self, ctx: &PlanContext, catalog: Option<&Catalog>) -> minijinja::Value {
        let places = match catalog.and_then(|c| c.get(&ctx.destination.id)) {
            Some(data) => {
                let lang = ctx.request.language;
                let mut cache = self.places.lock().unwrap_or_else(|p| p.into_inner());
                cache.entry((ctx.destination.id.clone(), lang)).or_insert_with(|| place_vars(data, lang)).clone()
            }
            None => minijinja::Value::from(Vec::<minijinja::Value>::new()),
        };
        context! { places, ..value(Vars::new(ctx)) }
    }

    fn render(&self, name: &str, vars: minijinja::Value) -> Result<String, String> {
        let template = self.env.get_template(name).map_err(|e| describe(&e))?;
        template.render(vars).map(|s| s.trim().to_owned()).map_err(|e| format!("{name}.yaml: {}", describe(&e)))
    }

    fn render_sample(&self) -> Result<(), (&'static str, String)> {
        for name in NAMES {
            let mut vars = Vars::sample();
            if name == "refine" {
                vars = context! { findings => vec!["sample finding"], current_plan => "{}", ..vars };
            }
            if name == "regenerate" {
                vars = context! {
                    day => 2,
                    other_days => "[]",
                    old_places => vec!["Gyeongbokgung"],
                    budget_left => 240000,
                    budget_left_per_person => 120000,
                    instruction => "more food",
                    findings => vec!["sample finding"],
                    ..vars
                };
            }
            self.render(name, vars).map_err(|e| (name, e))?;
        }
        Ok(())
    }
}

fn value(data: impl Serialize) -> minijinja::Value {
    minijinja::Value::from(minijinja::value::Serde(data))
}

/// A destination's places and restaurants as the prompts list them.
fn place_vars(data: &DestinationData, lang: Language) -> minijinja::Value {
    let places =
        data.places.iter().map(|p| (&p.name, &p.area, p.cost, p.indoor, when(p.hours, &p.closed_on, p.best_time)));
    let meals = data.meals.iter().map(|m| (&m.name, &m.area, m.cost, true, when(m.hours, &m.closed_on, BestTime::Any)));
    let list: Vec<PlaceVars> = places
        .chain(meals)
        .map(|(name, area, cost, indoor, when)| PlaceVars {
            name: name.get(lang).to_owned(),
            area: area.get(lang).to_owned(),
            cost,
            indoor,
            when,
        })
        .collect();
    value(&list)
}

/// When a place can and should be visited, in the prompt's words: "09:00–18:00, closed Tue, best in the
/// morning"; empty for a place open all day, every day, at any time.
fn when(hours: Hours, closed_on: &[Weekday], best: BestTime) -> String {
    let mut parts = Vec::new();
    if !hours.all_day() {
        parts.push(format!("{}–{}", hours.open, hours.close));
    }
    if !closed_on.is_empty() {
        let days: Vec<&str> = closed_on.iter().map(|d| d.short_name()).collect();
        parts.push(format!("closed {}", days.join(", ")));
    }
    match best {
        BestTime::Morning => parts.push("best in the morning".into()),
        BestTime::Afternoon => parts.push("best in the afternoon".into()),
        BestTime::Evening => parts.push("best in the evening".into()),
        BestTime::Night => parts.push("best at night".into()),
        BestTime::Any => {}
    }
    parts.join(", ")
}

/// The current plan, serialized in the shape the model answers in.
pub struct ModelPlanJson(pub String);

impl ModelPlanJson {
    pub fn of(plan: &ModelPlan) -> Self {
        Self(serde_json::to_string_pretty(plan).unwrap_or_default())
    }
}

fn describe(e: &minijinja::Error) -> String {
    let mut s = e.to_string();
    if let Some(detail) = e.detail()
        && !s.contains(detail)
    {
        s = format!("{s}: {detail}");
    }
    s
}

#[derive(Serialize)]
struct DayVars {
    day: u32,
    date: String,
    weekday: String,
    weather: WeatherVars,
}

#[derive(Serialize)]
struct WeatherVars {
    summary: String,
    temp_min_c: f64,
    temp_max_c: f64,
    precipitation_chance: u8,
    source: &'static str,
}

#[derive(Serialize)]
struct PlaceVars {
    name: String,
    area: String,
    cost: u64,
    indoor: bool,
    when: String,
}

#[derive(Serialize)]
struct Vars {
    language: &'static str,
    language_name: &'static str,
    destination: String,
    country: String,
    start_date: String,
    end_date: String,
    day_count: u32,
    days: Vec<DayVars>,
    budget: &'static str,
    travelers: u32,
    currency: String,
    ceiling_per_person_per_day: u64,
    ceiling_total: u64,
    interests: Vec<String>,
}

impl Vars {
    fn new(ctx: &PlanContext) -> Vars {
        let r = &ctx.request;
        let lang = r.language;
        let d = &ctx.destination;
        Vars {
            language: lang.as_str(),
            language_name: match lang {
                tripstream_domain::Language::Ko => "Korean",
                tripstream_domain::Language::En => "English",
            },
            destination: d.name.get(lang).to_owned(),
            country: d.country.clone(),
            start_date: r.dates.start().to_string(),
            end_date: r.dates.end().to_string(),
            day_count: r.dates.len(),
            days: r
                .dates
                .iter()
                .zip(&ctx.weather)
                .enumerate()
                .map(|(i, (date, w))| DayVars {
                    day: i as u32 + 1,
                    date: date.to_string(),
                    weekday: date.strftime("%A").to_string(),
                    weather: WeatherVars {
                        summary: w.summary.clone(),
                        temp_min_c: w.temp_min_c,
                        temp_max_c: w.temp_max_c,
                        precipitation_chance: w.precipitation_chance,
                        source: match w.source {
                            tripstream_domain::plan::WeatherSource::Forecast => "forecast",
                            tripstream_domain::plan::WeatherSource::Climatology => "climatology",
                        },
                    },
                })
                .collect(),
            budget: r.budget.as_str(),
            travelers: r.travelers,
            currency: d.currency.clone(),
            ceiling_per_person_per_day: d.budget.per_traveler_per_day(r.budget),
            ceiling_total: ctx.budget_ceiling(),
            interests: r.interests.clone(),
        }
    }

    /// Representative variables, places included.
    fn sample() -> minijinja::Value {
        let place = PlaceVars {
            name: "Gyeongbokgung".into(),
            area: "Jongno".into(),
            cost: 3000,
            indoor: false,
            when: "09:00–18:00, closed Tue, best in the morning".into(),
        };
        let vars = Vars {
            language: "en",
            language_name: "English",
            destination: "Seoul".into(),
            country: "KR".into(),
            start_date: "2025-11-10".into(),
            end_date: "2025-11-11".into(),
            day_count: 2,
            days: (1..=2)
                .map(|day| DayVars {
                    day,
                    date: format!("2025-11-1{}", day - 1),
                    weekday: "Monday".into(),
                    weather: WeatherVars {
                        summary: "Clear".into(),
                        temp_min_c: 5.0,
                        temp_max_c: 14.0,
                        precipitation_chance: 70,
                        source: "forecast",
                    },
                })
                .collect(),
            budget: "medium",
            travelers: 2,
            currency: "KRW".into(),
            ceiling_per_person_per_day: 120000,
            ceiling_total: 480000,
            interests: vec!["food".into()],
        };
        context! { places => value([place]), ..value(&vars) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_prompts_compile_and_carry_a_version() {
        let prompts = Prompts::embedded().unwrap();
        assert_eq!(prompts.version(), "plan-v2");
        let draft = prompts.render("draft", Vars::sample()).unwrap();
        assert!(draft.contains("Plan a 2-day trip to Seoul (KR)"), "{draft}");
        assert!(draft.contains("(rainy: plan indoors)") && draft.contains("Interests: food."), "{draft}");
        assert!(
            draft.contains(
                "- Gyeongbokgung — Jongno — 3000 KRW — outdoor — 09:00–18:00, closed Tue, best in the morning"
            ),
            "{draft}"
        );
        let system = prompts.render("system", Vars::sample()).unwrap();
        assert!(system.contains("in English") && system.contains("whole number in KRW"), "{system}");
    }

    #[test]
    fn a_broken_prompt_directory_fails_naming_the_file() {
        let dir = std::env::temp_dir().join(format!("tripstream-prompts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (n, text) in NAMES.iter().zip(EMBEDDED) {
            std::fs::write(dir.join(format!("{n}.yaml")), text).unwrap();
        }
        assert_eq!(Prompts::from_dir(&dir).unwrap().version(), "plan-v2");

        std::fs::write(dir.join("draft.yaml"), "version: plan-v3\ntemplate: |\n  {% for d in days %}\n").unwrap();
        let err = Prompts::from_dir(&dir).unwrap_err();
        assert!(err.file.ends_with("draft.yaml"), "{err}");

        std::fs::write(dir.join("draft.yaml"), "version: plan-v3\ntemplate: \"{{ no_such_variable }}\"\n").unwrap();
        let err = Prompts::from_dir(&dir).unwrap_err();
        assert!(err.file.ends_with("draft.yaml") && err.message.contains("undefined"), "{err}");

        std::fs::remove_file(dir.join("refine.yaml")).unwrap();
        let err = Prompts::from_dir(&dir).unwrap_err();
        assert!(err.file.ends_with("refine.yaml"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
