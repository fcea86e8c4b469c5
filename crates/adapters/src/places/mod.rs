//! The [`PlaceVerifier`] port: a generator's places checked against the bundled data (no network) and,
//! for the rest, against a place search ([`Nominatim`]) near the destination. Found: kept, with its
//! coordinates filled in or corrected. Not found: replaced by a bundled place of the same kind nearby
//! when the destination has data, else kept and noted as unverified. Without a search, or when it fails
//! or runs out of time, the places are noted as not checked: verification never fails a generation.

pub mod nominatim;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use tripstream_domain::checks::route::km;
use tripstream_domain::places::PlaceNote;
use tripstream_domain::rules::normalize_name;
use tripstream_domain::{Activity, Category, Day, GeoPoint, Localized};
use tripstream_engine::{Draft, PlaceVerifier, PlanContext};

pub use nominatim::{Near, Nominatim, NominatimConfig, SearchError};

use crate::catalog::{Catalog, DestinationData};

/// How verification spends its time.
#[derive(Debug, Clone)]
pub struct PlaceSettings {
    /// All the look-ups of one check of a plan together; what is not answered by then is not checked.
    pub budget: Duration,
    /// Look-ups in flight at once for one plan.
    pub concurrency: usize,
    /// How far from the destination's centre a place may be, in degrees of latitude (0.5° ≈ 55 km).
    pub radius_deg: f64,
    /// A model's coordinates further than this from the found place are replaced by the found ones.
    pub far_km: f64,
    /// Answers kept, found or not, and for how long.
    pub cache_capacity: u64,
    pub cache_ttl: Duration,
}

impl Default for PlaceSettings {
    fn default() -> Self {
        Self {
            budget: Duration::from_secs(8),
            concurrency: 4,
            radius_deg: 0.5,
            far_km: 2.0,
            cache_capacity: 10_000,
            cache_ttl: Duration::from_secs(24 * 3600),
        }
    }
}

/// Checks places against the bundled data, then the place search if there is one.
pub struct CheckedPlaces {
    catalog: Arc<Catalog>,
    search: Option<Nominatim>,
    settings: PlaceSettings,
    /// Answers by destination and searched name; failures are not kept.
    answers: moka::future::Cache<(String, String), Option<GeoPoint>>,
}

impl CheckedPlaces {
    pub fn new(catalog: Arc<Catalog>, search: Option<Nominatim>, settings: PlaceSettings) -> Self {
        let answers = moka::future::Cache::builder()
            .max_capacity(settings.cache_capacity)
            .time_to_live(settings.cache_ttl)
            .build();
        Self { catalog, search, settings, answers }
    }

    /// Looks `query` up near the destination: the kept answer, else the search, tried once more after a
    /// transient failure.
    async fn lookup(
        &self,
        search: &Nominatim,
        ctx: &PlanContext,
        query: &str,
    ) -> Result<Option<GeoPoint>, SearchError> {
        let key = (ctx.destination.id.clone(), normalize_name(query));
        if let Some(answer) = self.answers.get(&key).await {
            return Ok(answer);
        }
        let near = Near {
            center: GeoPoint { lat: ctx.destination.lat, lon: ctx.destination.lon },
            radius_deg: self.settings.radius_deg,
        };
        let lang = ctx.request.language;
        let answer = match search.search(query, near, lang).await {
            Err(e) if e.is_transient() => {
                tokio::time::sleep(crate::http::backoff(0, Duration::from_millis(200), Duration::from_millis(200)))
                    .await;
                search.search(query, near, lang).await
            }
            other => other,
        }?;
        self.answers.insert(key, answer).await;
        Ok(answer)
    }
}

#[async_trait]
impl PlaceVerifier for CheckedPlaces {
    async fn verify(&self, ctx: &PlanContext, draft: &mut Draft, only: Option<usize>) -> Vec<PlaceNote> {
        let data = self.catalog.get(&ctx.destination.id).map(Arc::as_ref);
        // The places outside the bundled data, by day and position, each with its search.
        let unknown: Vec<(usize, usize, String)> = draft
            .days
            .iter()
            .enumerate()
            .filter(|(d, _)| only.is_none_or(|o| o == *d))
            .flat_map(|(d, day)| day.activities.iter().enumerate().map(move |(i, a)| (d, i, a)))
            .filter(|(_, _, a)| is_a_place(a) && data.is_none_or(|data| data.find_place(&a.name).is_none()))
            .map(|(d, i, a)| (d, i, query(&a.name)))
            .collect();
        // The plan's names, which no replacement may repeat: built when a first replacement is needed.
        let mut used: Option<HashSet<String>> = None;
        let mut notes = data.map_or_else(Vec::new, |data| replace_closed(data, ctx, draft, only, &mut used));
        if unknown.is_empty() {
            return notes;
        }
        let used = used.get_or_insert_with(|| names_in(draft));
        let queries: HashSet<String> = unknown.iter().map(|(_, _, q)| q.clone()).collect();
        let answers: HashMap<String, Option<Option<GeoPoint>>> = match &self.search {
            None => HashMap::new(),
            Some(search) => {
                let deadline = tokio::time::Instant::now() + self.settings.budget;
                futures::stream::iter(queries)
                    .map(|q| async move {
                        let answer = match tokio::time::timeout_at(deadline, self.lookup(search, ctx, &q)).await {
                            Ok(Ok(answer)) => Some(answer),
                            Ok(Err(e)) => {
                                tracing::warn!(error = %e, "place search failed; the place is not checked");
                                None
                            }
                            Err(_) => {
                                tracing::warn!("place search ran out of its time budget; the place is not checked");
                                None
                            }
                        };
                        (q, answer)
                    })
                    .buffer_unordered(self.settings.concurrency.max(1))
                    .collect()
                    .await
            }
        };
        for (d, i, q) in unknown {
            let day = &mut draft.days[d];
            let name = day.activities[i].name.clone();
            match answers.get(&q).copied().flatten() {
                Some(Some(found)) => {
                    let activity = &mut day.activities[i];
                    if activity.location.is_none_or(|at| km(at, found) > self.settings.far_km) {
                        activity.location = Some(found);
                    }
                }
                Some(None) => match data.and_then(|data| replacement(data, ctx, day, i, used)) {
                    Some(by) => {
                        used.insert(normalize_name(&by.name));
                        notes.push(PlaceNote::Replaced { day: day.day, name, by: by.name.clone() });
                        day.activities[i] = by;
                    }
                    None => notes.push(PlaceNote::Unverified { name }),
                },
                None => notes.push(PlaceNote::NotChecked { name }),
            }
        }
        notes
    }
}

/// Bundled places the draft has on a day or at an hour they are closed, each replaced by a bundled place
/// of the same kind nearby that is open then, when there is one (else the commonsense check finds it
/// and refinement asks the model): no model call is spent on what the data can mend.
fn replace_closed(
    data: &DestinationData,
    ctx: &PlanContext,
    draft: &mut Draft,
    only: Option<usize>,
    used: &mut Option<HashSet<String>>,
) -> Vec<PlaceNote> {
    let Some(profile) = &ctx.destination.profile else { return Vec::new() };
    let mut notes = Vec::new();
    for d in (0..draft.days.len()).filter(|&d| only.is_none_or(|o| o == d)) {
        for i in 0..draft.days[d].activities.len() {
            let (day, a) = (&draft.days[d], &draft.days[d].activities[i]);
            if profile.closure(&a.name, day.date, a.time, a.end_minutes()).is_none() {
                continue;
            }
            let used = used.get_or_insert_with(|| names_in(draft));
            let day = &mut draft.days[d];
            if let Some(by) = replacement(data, ctx, day, i, used) {
                used.insert(normalize_name(&by.name));
                let name = std::mem::replace(&mut day.activities[i], by).name;
                notes.push(PlaceNote::Closed { day: day.day, name, by: day.activities[i].name.clone() });
            }
        }
    }
    notes
}

/// Every activity's name in `draft`, as [`normalize_name`] gives it.
fn names_in(draft: &Draft) -> HashSet<String> {
    draft.days.iter().flat_map(|d| &d.activities).map(|a| normalize_name(&a.name)).collect()
}

/// Whether an activity names somewhere to find: not a rest, a transfer or a meal without a venue
/// ("Lunch", "점심 식사", "Free time").
fn is_a_place(a: &Activity) -> bool {
    !matches!(a.category, Category::Rest | Category::Transport) && !is_generic(&a.name)
}

/// Whether `name` is only words that name no place ("Lunch", "Dinner at a local restaurant", "자유 시간").
fn is_generic(name: &str) -> bool {
    const GENERIC: &[&str] = &[
        "breakfast",
        "brunch",
        "lunch",
        "dinner",
        "supper",
        "snack",
        "meal",
        "free",
        "time",
        "rest",
        "break",
        "hotel",
        "check-in",
        "check-out",
        "checkin",
        "checkout",
        "at",
        "a",
        "the",
        "local",
        "restaurant",
        "cafe",
        "café",
        "coffee",
        "and",
        "in",
        "around",
        "nearby",
        "아침",
        "점심",
        "저녁",
        "식사",
        "자유",
        "시간",
        "휴식",
        "호텔",
        "체크인",
        "체크아웃",
        "현지",
        "식당",
        "카페",
        "근처",
        "및",
    ];
    let lower = name.to_lowercase();
    let words: Vec<&str> =
        lower.split(|c: char| c.is_whitespace() || ",.:;!()".contains(c)).filter(|w| !w.is_empty()).collect();
    words.is_empty() || words.iter().all(|w| GENERIC.contains(w))
}

/// What to search for: the venue the activity names, without a bracketed gloss (`경복궁 (Gyeongbokgung)` →
/// `경복궁`) or the words around it that a place search would take for part of the name (`Lunch at Menya
/// Inoichi`, `Dinner: …`, `Stroll through …`, `니시키 시장에서 점심`, `경복궁 방문`). What is left is never
/// empty: a name that is all such words is searched as it is.
fn query(name: &str) -> String {
    /// Leading words, lower case, each followed by a space in the name.
    const BEFORE: &[&str] = &[
        "breakfast at",
        "brunch at",
        "lunch at",
        "dinner at",
        "supper at",
        "snack at",
        "coffee at",
        "drinks at",
        "tea at",
        "dessert at",
        "breakfast in",
        "lunch in",
        "dinner in",
        "visit to",
        "visit",
        "explore",
        "explore the",
        "stroll through",
        "stroll around",
        "stroll along",
        "stroll in",
        "walk through",
        "walk around",
        "walk along",
        "walk in",
        "tour of",
        "shopping at",
        "shopping in",
        "relax at",
        "hike to",
        "hike up",
        "sunset at",
        "evening at",
        "morning at",
        "afternoon at",
    ];
    /// Trailing words, each after a space or straight after the name (Korean particles join it).
    const AFTER: &[&str] = &[
        "에서 아침 식사",
        "에서 점심 식사",
        "에서 저녁 식사",
        "에서 아침",
        "에서 점심",
        "에서 저녁",
        "에서 쇼핑",
        "에서 휴식",
        "에서 산책",
        "방문",
        "관광",
        "산책",
        "구경",
        "탐방",
        "투어",
        "쇼핑",
    ];
    let head = name.split('(').next().unwrap_or(name).trim();
    let mut venue = if head.is_empty() { name.trim() } else { head };
    // `Lunch: Menya Inoichi`, `점심 — 니시키 시장`: what follows a generic label. (Most names have no
    // separator; searching for each of the four would cost more than the rest of this function.)
    let separators: &[&str] =
        if venue.contains([':', '-', '—', '–']) { &[":", " - ", " — ", " – "] } else { &[] };
    for separator in separators {
        if let Some((label, rest)) = venue.split_once(separator)
            && is_generic(label)
            && !rest.trim().is_empty()
        {
            venue = rest.trim();
        }
    }
    // The longest leading phrase that is followed by a space, again until none is left.
    let after_phrase = |venue: &str, phrase: &str| {
        let rest = venue.get(phrase.len()..)?.strip_prefix(' ')?.trim();
        (venue[..phrase.len()].eq_ignore_ascii_case(phrase) && !rest.is_empty()).then_some(rest.len())
    };
    while let Some(shortest) = BEFORE.iter().filter_map(|phrase| after_phrase(venue, phrase)).min() {
        venue = &venue[venue.len() - shortest..];
    }
    for ending in AFTER {
        if let Some(rest) = venue.strip_suffix(ending).map(str::trim_end)
            && rest.chars().count() >= 2
        {
            venue = rest;
            break;
        }
    }
    venue.to_owned()
}

/// The bundled place of the same kind as activity `i` of `day` nearest to the stops around it (else the
/// destination's centre), not already in the plan, as the activity that takes its slot.
fn replacement(
    data: &DestinationData,
    ctx: &PlanContext,
    day: &Day,
    i: usize,
    used: &HashSet<String>,
) -> Option<Activity> {
    let old = &day.activities[i];
    let anchor = day.activities[..i]
        .iter()
        .rev()
        .chain(&day.activities[i + 1..])
        .find_map(|a| a.location)
        .unwrap_or(GeoPoint { lat: data.lat, lon: data.lon });
    let lang = ctx.request.language;
    let unused =
        |name: &Localized| !used.contains(&normalize_name(&name.en)) && !used.contains(&normalize_name(&name.ko));
    // Open for the slot it takes: not on its closing day or a holiday that closes it, within its hours.
    let open = |name: &Localized| {
        ctx.destination
            .profile
            .as_ref()
            .is_none_or(|p| p.closure(&name.en, day.date, old.time, old.end_minutes()).is_none())
    };
    let fits = |category: Category, name: &Localized| category == old.category && unused(name) && open(name);
    let places = data.places.iter().filter(|p| fits(p.category, &p.name)).map(|p| Candidate {
        name: &p.name,
        description: &p.description,
        area: &p.area,
        at: GeoPoint { lat: p.lat, lon: p.lon },
        cost: p.cost,
        indoor: p.indoor,
    });
    let meals = data.meals.iter().filter(|m| fits(m.category, &m.name)).map(|m| Candidate {
        name: &m.name,
        description: &m.description,
        area: &m.area,
        at: GeoPoint { lat: m.lat, lon: m.lon },
        cost: m.cost,
        indoor: true,
    });
    // No dearer than what it replaces, where one is: a kaiseki table for a bowl of udon breaks the budget.
    let per_person = old.cost / u64::from(ctx.request.travelers.max(1));
    let dearer = |c: &Candidate| c.cost > per_person;
    let best = places
        .chain(meals)
        .min_by(|a, b| dearer(a).cmp(&dearer(b)).then(km(a.at, anchor).total_cmp(&km(b.at, anchor))))?;
    Some(Activity {
        time: old.time,
        duration_minutes: old.duration_minutes,
        name: best.name.get(lang).to_owned(),
        description: best.description.get(lang).to_owned(),
        category: old.category,
        area: best.area.get(lang).to_owned(),
        cost: best.cost.saturating_mul(u64::from(ctx.request.travelers)),
        indoor: best.indoor,
        location: Some(best.at),
    })
}

struct Candidate<'a> {
    name: &'a Localized,
    description: &'a Localized,
    area: &'a Localized,
    at: GeoPoint,
    cost: u64,
    indoor: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(name: &str, category: Category) -> Activity {
        Activity {
            time: tripstream_domain::ClockTime::hm(12, 0),
            duration_minutes: 60,
            name: name.into(),
            description: String::new(),
            category,
            area: String::new(),
            cost: 0,
            indoor: true,
            location: None,
        }
    }

    #[test]
    fn meals_without_a_venue_and_rests_are_not_places() {
        for generic in ["Lunch", "Dinner at a local restaurant", "점심 식사", "Free time", "Coffee break"] {
            assert!(!is_a_place(&named(generic, Category::Food)), "{generic}");
        }
        assert!(!is_a_place(&named("Gion stroll", Category::Rest)));
        for place in ["Ichiran Ramen", "Kiyomizu-dera", "경복궁", "Café de Flore"] {
            assert!(is_a_place(&named(place, Category::Food)), "{place}");
        }
        assert_eq!(query("경복궁 (Gyeongbokgung Palace)"), "경복궁");
        assert_eq!(query("(Moon Temple)"), "(Moon Temple)");
    }

    #[test]
    fn a_search_asks_for_the_venue_not_the_words_around_it() {
        for (name, venue) in [
            ("Lunch at Menya Inoichi", "Menya Inoichi"),
            ("dinner at Nai Mong Hoi Thod (crab curry)", "Nai Mong Hoi Thod"),
            ("Lunch: Hyeondae Jangkalguksu", "Hyeondae Jangkalguksu"),
            ("점심 — 남부시장 청년몰", "남부시장 청년몰"),
            ("Dinner - Ichiran Ramen", "Ichiran Ramen"),
            ("Lunch – Menya Inoichi", "Menya Inoichi"),
            ("Visit to Gyeongbokgung Palace", "Gyeongbokgung Palace"),
            ("Stroll through the Philosopher's Path", "the Philosopher's Path"),
            ("니시키 시장에서 점심", "니시키 시장"),
            ("경복궁 방문", "경복궁"),
            ("감천문화마을 산책", "감천문화마을"),
            // Names that only start or end like those words stay whole.
            ("Tour Montparnasse", "Tour Montparnasse"),
            ("Visitor Center", "Visitor Center"),
            ("Lunch at", "Lunch at"),
            ("방문", "방문"),
            ("Kiyomizu-dera", "Kiyomizu-dera"),
        ] {
            assert_eq!(query(name), venue, "{name}");
        }
    }
}
