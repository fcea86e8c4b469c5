//! The bundled destination catalog: one YAML file per destination under `data/destinations/`, embedded
//! into the binary and parsed once. The schema is `data/destinations/README.md`.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, LazyLock};

use async_trait::async_trait;
use serde::Deserialize;
use tripstream_domain::destination::{OpeningHours, match_key};
use tripstream_domain::plan::{Activity, Category, ClockTime};
use tripstream_domain::{
    BudgetCeilings, ClimateNormal, Destination, DestinationProfile, Holiday, Language, Localized, Location,
    MealWindows, Transit,
};
use tripstream_engine::{Destinations, ResolveError};

/// Every bundled destination as `[[file name, contents], …]`: the YAML files under `data/destinations/`,
/// turned into JSON by `build.rs`, which also lists them.
const BUNDLED_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/destinations.json"));

/// The YAML sources of [`BUNDLED_JSON`], `(file name, contents)`, for the tests.
#[cfg(test)]
const FILES: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/destination_sources.rs"));

/// Monday first, as [`OpeningHours::closed_days`] counts its bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Weekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Weekday {
    /// "Mon", "Tue"…: how the prompts name a closing day.
    pub fn short_name(self) -> &'static str {
        match self {
            Weekday::Mon => "Mon",
            Weekday::Tue => "Tue",
            Weekday::Wed => "Wed",
            Weekday::Thu => "Thu",
            Weekday::Fri => "Fri",
            Weekday::Sat => "Sat",
            Weekday::Sun => "Sun",
        }
    }
}

impl From<jiff::civil::Weekday> for Weekday {
    fn from(w: jiff::civil::Weekday) -> Self {
        use jiff::civil::Weekday as J;
        match w {
            J::Monday => Weekday::Mon,
            J::Tuesday => Weekday::Tue,
            J::Wednesday => Weekday::Wed,
            J::Thursday => Weekday::Thu,
            J::Friday => Weekday::Fri,
            J::Saturday => Weekday::Sat,
            J::Sunday => Weekday::Sun,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MealKind {
    Breakfast,
    Lunch,
    Dinner,
}

/// The part of the day a place is best visited in: the offline planner orders a day for it, as far as the
/// day's route and meals allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BestTime {
    /// Before noon: markets, temples before the crowds, hikes.
    Morning,
    /// Noon to 17:00.
    Afternoon,
    /// 17:00 to 21:00: viewpoints at sunset, night markets opening.
    Evening,
    /// From 18:00 on: bars, clubs, night views.
    Night,
    /// Whenever it is open.
    #[default]
    Any,
}

impl BestTime {
    /// The part of the day, minutes after midnight, `[from, to)`; `None` for any time.
    pub fn window(self) -> Option<(u16, u16)> {
        match self {
            BestTime::Morning => Some((0, 12 * 60)),
            BestTime::Afternoon => Some((12 * 60, 17 * 60)),
            BestTime::Evening => Some((17 * 60, 21 * 60)),
            BestTime::Night => Some((18 * 60, 24 * 60)),
            BestTime::Any => None,
        }
    }

    /// Whether a visit from `start` for `minutes` is at this time of day: its middle falls in the window
    /// (a two-hour palace visit from 10:00 is a morning one; from 11:00 it is not).
    pub fn suits(self, start: u16, minutes: u16) -> bool {
        let middle = start + minutes / 2;
        self.window().is_none_or(|(from, to)| (from..to).contains(&middle))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct Hours {
    pub open: ClockTime,
    pub close: ClockTime,
}

impl Hours {
    /// Open round the clock (`00:00`–`24:00`).
    pub fn all_day(self) -> bool {
        (self.open.minutes(), self.close.minutes()) == (0, 24 * 60)
    }
}

/// Something to do.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Place {
    pub id: String,
    pub name: Localized,
    pub description: Localized,
    pub category: Category,
    pub area: Localized,
    pub lat: f64,
    pub lon: f64,
    /// Per person, local currency.
    pub cost: u64,
    pub duration_minutes: u16,
    pub indoor: bool,
    pub hours: Hours,
    #[serde(default)]
    pub closed_on: Vec<Weekday>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// When in the day to go.
    #[serde(default)]
    pub best_time: BestTime,
    /// A whole-day excursion out of the city (durationMinutes 300 or more), for long stays.
    #[serde(default)]
    pub day_trip: bool,
    /// One of the destination's signature, premium experiences: what a high budget is for.
    #[serde(default)]
    pub flagship: bool,
}

/// Somewhere to eat. Always indoors.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Meal {
    pub id: String,
    pub name: Localized,
    pub description: Localized,
    pub category: Category,
    pub meals: Vec<MealKind>,
    pub area: Localized,
    pub lat: f64,
    pub lon: f64,
    /// Per person, local currency.
    pub cost: u64,
    pub duration_minutes: u16,
    pub hours: Hours,
    #[serde(default)]
    pub closed_on: Vec<Weekday>,
    /// A destination's signature, premium table: what a high budget is for.
    #[serde(default)]
    pub flagship: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Tips {
    pub en: Vec<String>,
    pub ko: Vec<String>,
}

impl Tips {
    pub fn get(&self, lang: Language) -> &[String] {
        match lang {
            Language::En => &self.en,
            Language::Ko => &self.ko,
        }
    }
}

/// One destination file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DestinationData {
    pub id: String,
    pub name: Localized,
    #[serde(default)]
    pub aliases: Vec<String>,
    pub country: String,
    pub lat: f64,
    pub lon: f64,
    pub timezone: String,
    pub currency: String,
    pub budget: BudgetCeilings,
    pub climate: Vec<ClimateNormal>,
    pub tips: Tips,
    pub places: Vec<Place>,
    pub meals: Vec<Meal>,
    /// When meals are eaten here.
    pub meal_windows: MealWindows,
    /// How long getting around takes.
    pub transit: Transit,
    /// Public holidays, 2025–2028 at least, in date order; shared with every request's profile.
    pub holidays: Arc<[Holiday]>,
    /// Every place and restaurant by its names' match keys, built once when the file is read.
    #[serde(skip)]
    known: Vec<([String; 2], KnownPlace)>,
    /// The hours of every place and restaurant not open all day, every day: the profile's, built once.
    #[serde(skip)]
    opening_hours: Arc<[OpeningHours]>,
}

impl DestinationData {
    /// The domain's view of this destination.
    pub fn destination(&self) -> Destination {
        Destination {
            id: self.id.clone(),
            name: self.name.clone(),
            country: self.country.clone(),
            lat: self.lat,
            lon: self.lon,
            timezone: self.timezone.clone(),
            currency: self.currency.clone(),
            budget: self.budget,
            climate: Some(self.climate.clone()),
            profile: Some(self.profile()),
        }
    }

    /// How a day runs here.
    pub fn profile(&self) -> DestinationProfile {
        DestinationProfile {
            meal_windows: self.meal_windows,
            transit: self.transit,
            holidays: self.holidays.clone(),
            opening_hours: self.opening_hours.clone(),
        }
    }
}

/// What the data says about a place a model named.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KnownPlace {
    pub lat: f64,
    pub lon: f64,
    /// Per person, local currency.
    pub cost: u64,
    pub indoor: bool,
}

impl DestinationData {
    /// For an activity that is one of this destination's places (its name in `lang`, not a day trip) with
    /// a time of day to be seen at: that time, and whether the activity is at it.
    pub fn at_best_time(&self, a: &Activity, lang: Language) -> Option<(BestTime, bool)> {
        let p = self.places.iter().find(|p| !p.day_trip && p.name.get(lang) == a.name)?;
        (p.best_time != BestTime::Any).then(|| (p.best_time, p.best_time.suits(a.time.minutes(), a.duration_minutes)))
    }

    /// The place or restaurant a model means by `name`: the same name in either language, ignoring case,
    /// spaces and punctuation, or a name that contains a known one (`경복궁 (Gyeongbokgung)`).
    pub fn find_place(&self, name: &str) -> Option<KnownPlace> {
        let key = match_key(name);
        if key.is_empty() {
            return None;
        }
        // An exact name wins; otherwise the longest known name inside the model's, so that
        // "Seoul Forest Park" is not taken for a place called "Seoul".
        let score = |known: &String| match known {
            k if *k == key => Some(usize::MAX),
            k if k.chars().count() >= 3 && key.contains(k.as_str()) => Some(k.len()),
            _ => None,
        };
        self.known
            .iter()
            .filter_map(|(keys, place)| Some((keys.iter().filter_map(score).max()?, place)))
            .max_by_key(|(best, _)| *best)
            .map(|(_, place)| *place)
    }

    fn index_names(&mut self) {
        let keys = |n: &Localized| [match_key(&n.en), match_key(&n.ko)];
        let places = self
            .places
            .iter()
            .map(|p| (keys(&p.name), KnownPlace { lat: p.lat, lon: p.lon, cost: p.cost, indoor: p.indoor }));
        let meals = self
            .meals
            .iter()
            .map(|m| (keys(&m.name), KnownPlace { lat: m.lat, lon: m.lon, cost: m.cost, indoor: true }));
        self.known = places.chain(meals).collect();
        let closed_by_holidays: HashSet<&str> =
            self.holidays.iter().flat_map(|h| &h.closes).map(String::as_str).collect();
        let hours = |id: &String, name: &Localized, hours: Hours, closed_on: &[Weekday]| {
            let limited = !hours.all_day() || !closed_on.is_empty() || closed_by_holidays.contains(id.as_str());
            let entry = move |key| OpeningHours {
                id: id.clone(),
                key,
                open: hours.open,
                close: hours.close,
                closed_days: closed_on.iter().fold(0, |bits, &d| bits | 1 << d as u8),
            };
            limited.then(|| keys(name).map(entry)).into_iter().flatten()
        };
        let places = self.places.iter().flat_map(|p| hours(&p.id, &p.name, p.hours, &p.closed_on));
        let meals = self.meals.iter().flat_map(|m| hours(&m.id, &m.name, m.hours, &m.closed_on));
        let mut all: Vec<OpeningHours> = places.chain(meals).collect();
        all.sort_by(|a, b| a.key.cmp(&b.key));
        all.dedup_by(|a, b| a.key == b.key);
        self.opening_hours = all.into();
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct CatalogError {
    pub file: String,
    pub message: String,
}

/// Every bundled destination, and an index of the names people type for them.
#[derive(Debug)]
pub struct Catalog {
    destinations: Vec<Arc<DestinationData>>,
    by_key: HashMap<String, usize>,
}

static BUNDLED: LazyLock<Arc<Catalog>> = LazyLock::new(|| {
    // The files are compiled in and checked by this crate's tests: a failure here is a build defect.
    let files: Vec<(String, DestinationData)> =
        serde_json::from_str(BUNDLED_JSON).unwrap_or_else(|e| panic!("bundled destination data is broken: {e}"));
    Arc::new(Catalog::new(files).unwrap_or_else(|e| panic!("bundled destination data is broken: {e}")))
});

impl Catalog {
    /// The catalog embedded in the binary.
    pub fn bundled() -> Arc<Catalog> {
        BUNDLED.clone()
    }

    /// Parses destination files, `(file name, YAML)`.
    pub fn parse(files: &[(&str, &str)]) -> Result<Catalog, CatalogError> {
        let parsed = files.iter().map(|(file, text)| match serde_saphyr::from_str(text) {
            Ok(data) => Ok(((*file).to_owned(), data)),
            Err(e) => Err(CatalogError { file: (*file).to_owned(), message: e.to_string() }),
        });
        Catalog::new(parsed.collect::<Result<Vec<_>, _>>()?)
    }

    /// Checks and indexes parsed destination files, `(file name, data)`.
    fn new(files: Vec<(String, DestinationData)>) -> Result<Catalog, CatalogError> {
        let mut destinations = Vec::with_capacity(files.len());
        let mut by_key = HashMap::new();
        for (file, mut data) in files {
            let err = |message: String| CatalogError { file: file.clone(), message };
            data.index_names();
            if data.climate.len() != 12 {
                return Err(err(format!("climate has {} months, not 12", data.climate.len())));
            }
            let index = destinations.len();
            let keys = [data.id.as_str(), data.name.en.as_str(), data.name.ko.as_str()]
                .into_iter()
                .chain(data.aliases.iter().map(String::as_str));
            for key in keys {
                if let Some(other) = by_key.insert(match_key(key), index)
                    && other != index
                {
                    return Err(err(format!("name {key:?} is also used by another destination")));
                }
            }
            destinations.push(Arc::new(data));
        }
        Ok(Catalog { destinations, by_key })
    }

    pub fn all(&self) -> &[Arc<DestinationData>] {
        &self.destinations
    }

    pub fn get(&self, id: &str) -> Option<&Arc<DestinationData>> {
        self.destinations.iter().find(|d| d.id == id)
    }

    /// Finds what someone typed: any name or alias, ignoring case, spaces, dashes and dots, and a trailing
    /// `, Country` part (`Seoul, South Korea`).
    pub fn find(&self, typed: &str) -> Option<&Arc<DestinationData>> {
        let head = typed.split([',', '(']).next().unwrap_or(typed);
        [typed, head].into_iter().find_map(|t| self.by_key.get(&match_key(t))).map(|&i| &self.destinations[i])
    }
}

/// The [`Destinations`] port over the bundled catalog.
#[derive(Clone)]
pub struct BundledDestinations {
    catalog: Arc<Catalog>,
}

impl BundledDestinations {
    pub fn new(catalog: Arc<Catalog>) -> Self {
        Self { catalog }
    }

    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }
}

#[async_trait]
impl Destinations for BundledDestinations {
    async fn resolve(&self, location: &Location) -> Result<Destination, ResolveError> {
        self.catalog.find(location.as_str()).map(|d| d.destination()).ok_or_else(|| ResolveError::Unknown {
            location: location.as_str().to_owned(),
            known: self.catalog.all().iter().map(|d| d.name.en.clone()).collect(),
        })
    }

    fn list(&self) -> Vec<Destination> {
        self.catalog.all().iter().map(|d| d.destination()).collect()
    }
}

#[cfg(test)]
mod data_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bundled_file_parses_and_holds_what_the_planner_needs() {
        let catalog = Catalog::bundled();
        assert_eq!(catalog.all().len(), 12);
        for d in catalog.all() {
            assert!(d.places.len() >= 25, "{}: {} places", d.id, d.places.len());
            assert!(d.budget.low < d.budget.medium && d.budget.medium < d.budget.high, "{}", d.id);
            for p in &d.places {
                assert!(p.hours.open < p.hours.close, "{}/{}", d.id, p.id);
                assert!(p.category != Category::Food, "{}/{}: meals belong under meals", d.id, p.id);
            }
            for m in &d.meals {
                assert!(!m.meals.is_empty(), "{}/{}", d.id, m.id);
            }
        }
    }

    #[test]
    fn the_embedded_json_is_the_yaml_files() {
        let from_yaml = Catalog::parse(FILES).unwrap();
        let bundled = Catalog::bundled();
        assert_eq!(bundled.all().len(), FILES.len());
        for (json, yaml) in bundled.all().iter().zip(from_yaml.all()) {
            assert_eq!(json, yaml, "{}", yaml.id);
        }
        assert_eq!(bundled.by_key, from_yaml.by_key);
    }

    #[test]
    fn places_a_model_names_are_matched_to_the_data() {
        let seoul = Catalog::bundled().find("Seoul").unwrap().clone();
        let palace = seoul.places.iter().find(|p| p.id == "gyeongbokgung").unwrap();
        for typed in ["경복궁", "Gyeongbokgung Palace", "gyeongbokgung palace!", "경복궁 (Gyeongbokgung Palace)"]
        {
            let found = seoul.find_place(typed).unwrap_or_else(|| panic!("{typed}"));
            assert_eq!((found.lat, found.lon, found.cost), (palace.lat, palace.lon, palace.cost), "{typed}");
        }
        assert!(seoul.find_place("Louvre Museum").is_none());
        assert!(seoul.find_place("  ").is_none());
    }

    #[test]
    fn names_are_found_however_they_are_typed() {
        let catalog = Catalog::bundled();
        for typed in ["Seoul", "seoul", " 서울 ", "Seoul, South Korea", "SEOUL"] {
            assert_eq!(catalog.find(typed).map(|d| d.id.as_str()), Some("seoul"), "{typed}");
        }
        for typed in ["New York", "new-york", "NYC", "뉴욕"] {
            assert_eq!(catalog.find(typed).map(|d| d.id.as_str()), Some("new-york"), "{typed}");
        }
        assert!(catalog.find("Atlantis").is_none());
    }
}
