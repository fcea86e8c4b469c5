//! The offline planner's itinerary algorithm. Pure and deterministic: the same trip, weather and options
//! always give the same days.
//!
//! Per day: pick an anchor area with the best remaining places that are open that weekday (indoor only
//! when rain is likely), choose lunch and dinner near it in the budget level's price band, fill the
//! daytime with places from the anchor outward within what is left of the daily allowance, add an
//! evening place when one fits, then try every order of the daytime places and every split around lunch,
//! simulating travel and opening hours, and keep the feasible order with the least travel and waiting.

use std::collections::{BTreeSet, HashMap, HashSet};

use tripstream_domain::plan::{Activity, ClockTime, Day, DayWeather, GeoPoint};
use tripstream_domain::{BudgetLevel, Language, Localized, PlanRequest};

use crate::catalog::{DestinationData, Hours, Meal, MealKind, Place, Weekday};

/// Knobs that refinement turns.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Scales the per-person daily allowance (the budget ceiling); refinement lowers it when over budget.
    pub budget_factor: f64,
    /// Days (1-based) to plan indoors whatever the forecast says.
    pub indoor_days: BTreeSet<u32>,
}

impl Default for Options {
    fn default() -> Self {
        Self { budget_factor: 1.0, indoor_days: BTreeSet::new() }
    }
}

pub struct Trip<'a> {
    pub data: &'a DestinationData,
    pub request: &'a PlanRequest,
    /// One per day.
    pub weather: &'a [DayWeather],
    pub options: &'a Options,
}

const MOST_DAYTIME_PLACES: usize = 4;
/// Evening places must be open until at least this time.
const EVENING_CLOSE: u16 = 21 * 60 + 30;
/// Nothing starts after this (the contract allows up to 23:59; this leaves the evening room to end).
const LAST_START: u16 = 22 * 60 + 30;

struct Window {
    earliest: u16,
    latest: u16,
}

const BREAKFAST: Window = Window { earliest: 7 * 60 + 30, latest: 9 * 60 + 30 };
const LUNCH: Window = Window { earliest: 11 * 60 + 30, latest: 13 * 60 + 30 };
const DINNER: Window = Window { earliest: 17 * 60 + 30, latest: 19 * 60 + 30 };

pub fn plan_days(trip: &Trip) -> Vec<Day> {
    let mut planner = Planner::new(trip);
    (0..trip.request.dates.len()).map(|i| planner.day(i)).collect()
}

struct Planner<'a> {
    trip: &'a Trip<'a>,
    lang: Language,
    /// Per person per day, local currency.
    allowance: u64,
    daytime_per_day: usize,
    with_breakfast: bool,
    scores: Vec<f64>,
    areas: HashMap<&'a str, (f64, f64)>,
    used: HashSet<usize>,
    meal_uses: HashMap<usize, u32>,
}

impl<'a> Planner<'a> {
    fn new(trip: &'a Trip<'a>) -> Self {
        let data = trip.data;
        let req = trip.request;
        let ceiling = data.budget.per_traveler_per_day(req.budget);
        let allowance = (ceiling as f64 * trip.options.budget_factor.clamp(0.1, 1.0)) as u64;
        let days = req.dates.len() as usize;
        // Leave about a fifth of the places for evenings and refinements.
        let daytime_per_day = (data.places.len() * 4 / 5 / days).clamp(1, MOST_DAYTIME_PLACES);
        let with_breakfast = req.budget == BudgetLevel::High || req.interests.iter().any(|i| i == "food");
        let n = data.places.len() as f64;
        let scores = data
            .places
            .iter()
            .enumerate()
            .map(|(i, p)| {
                // Files list the best-known places first; interests weigh more than fame.
                let fame = 0.5 * (n - i as f64) / n;
                let interest = req
                    .interests
                    .iter()
                    .filter(|want| p.tags.iter().any(|t| t == *want) || category_name(p).contains(want.as_str()))
                    .count() as f64;
                1.0 + fame + interest
            })
            .collect();
        let mut sums: HashMap<&str, (f64, f64, f64)> = HashMap::new();
        for p in &data.places {
            let e = sums.entry(p.area.en.as_str()).or_default();
            *e = (e.0 + p.lat, e.1 + p.lon, e.2 + 1.0);
        }
        let areas = sums.into_iter().map(|(a, (lat, lon, n))| (a, (lat / n, lon / n))).collect();
        Self {
            trip,
            lang: req.language,
            allowance,
            daytime_per_day,
            with_breakfast,
            scores,
            areas,
            used: HashSet::new(),
            meal_uses: HashMap::new(),
        }
    }

    fn day(&mut self, index: u32) -> Day {
        let trip = self.trip;
        let date = trip.request.dates.date(index);
        let weekday = Weekday::from(date.weekday());
        let weather = trip.weather[index as usize].clone();
        let indoors = weather.is_rainy() || trip.options.indoor_days.contains(&(index + 1));
        let places = &trip.data.places;
        let eligible: Vec<usize> = (0..places.len())
            .filter(|&i| {
                !self.used.contains(&i) && open_on(&places[i].closed_on, weekday) && (!indoors || places[i].indoor)
            })
            .collect();

        let anchor = self.anchor_area(&eligible);
        let mut meals = self.choose_meals(anchor, weekday);
        let meal_cost: u64 = meals.iter().map(|(m, _)| trip.data.meals[*m].cost).sum();
        let mut left = self.allowance.saturating_sub(meal_cost);

        let daytime = self.choose_daytime(&eligible, anchor, &mut left);
        let evening = self.choose_evening(&eligible, &daytime, anchor, left);

        // Late in a long, cheap trip the affordable places run out; breakfast (a meal may repeat) keeps
        // the day a day rather than two meals.
        let mut with_breakfast = self.with_breakfast;
        if !with_breakfast && meals.len() + daytime.len() + usize::from(evening.is_some()) < 3 {
            let taken: Vec<usize> = meals.iter().map(|(m, _)| *m).collect();
            if let Some(m) = self.choose_meal(MealKind::Breakfast, anchor, weekday, &taken, left)
                && trip.data.meals[m].cost <= left
            {
                meals.push((m, MealKind::Breakfast));
                with_breakfast = true;
            }
        }

        let mut candidates = daytime;
        let mut schedule = None;
        while schedule.is_none() {
            schedule = best_order(trip.data, &candidates, &meals, evening, with_breakfast)
                .or_else(|| evening.and_then(|_| best_order(trip.data, &candidates, &meals, None, with_breakfast)));
            if schedule.is_none() {
                if candidates.is_empty() {
                    break;
                }
                candidates.pop();
            }
        }
        let stops = schedule.unwrap_or_default();
        self.build_day(index, date, weather, stops)
    }

    fn build_day(&mut self, index: u32, date: jiff::civil::Date, weather: DayWeather, stops: Vec<(Stop, u16)>) -> Day {
        let data = self.trip.data;
        let travelers = u64::from(self.trip.request.travelers);
        let lang = self.lang;
        let mut themes: Vec<&str> = Vec::new();
        let mut activities = Vec::with_capacity(stops.len());
        for (stop, start) in stops {
            let activity = match stop {
                Stop::Place(i) => {
                    self.used.insert(i);
                    let p = &data.places[i];
                    let area = p.area.get(lang);
                    if !themes.contains(&area) {
                        themes.push(area);
                    }
                    activity(
                        start,
                        p.duration_minutes,
                        &p.name,
                        &p.description,
                        p.category,
                        &p.area,
                        p.cost * travelers,
                        p.indoor,
                        p.lat,
                        p.lon,
                        lang,
                    )
                }
                Stop::Meal(i, _) => {
                    *self.meal_uses.entry(i).or_default() += 1;
                    let m = &data.meals[i];
                    activity(
                        start,
                        m.duration_minutes,
                        &m.name,
                        &m.description,
                        m.category,
                        &m.area,
                        m.cost * travelers,
                        true,
                        m.lat,
                        m.lon,
                        lang,
                    )
                }
            };
            activities.push(activity);
        }
        if themes.is_empty() {
            themes.extend(activities.first().map(|a| a.area.as_str()));
        }
        let theme = themes.iter().take(2).copied().collect::<Vec<_>>().join(" & ");
        let mut day = Day { day: index + 1, date, theme, weather, activities, daily_cost: 0 };
        day.daily_cost = day.activities_cost();
        day
    }

    /// The area whose best eligible places score highest together.
    fn anchor_area(&self, eligible: &[usize]) -> (f64, f64) {
        let places = &self.trip.data.places;
        let mut by_area: HashMap<&str, Vec<f64>> = HashMap::new();
        for &i in eligible {
            by_area.entry(places[i].area.en.as_str()).or_default().push(self.scores[i]);
        }
        let best = by_area
            .into_iter()
            .map(|(area, mut scores)| {
                scores.sort_by(|a, b| b.total_cmp(a));
                (area, scores.iter().take(self.daytime_per_day).sum::<f64>())
            })
            .max_by(|a, b| a.1.total_cmp(&b.1).then_with(|| b.0.cmp(a.0)))
            .map(|(area, _)| area);
        best.and_then(|a| self.areas.get(a).copied()).unwrap_or((self.trip.data.lat, self.trip.data.lon))
    }

    /// Lunch, dinner and perhaps breakfast near `anchor`, in the level's price band, favouring variety,
    /// within most of the day's allowance (the rest is for things to do).
    fn choose_meals(&self, anchor: (f64, f64), weekday: Weekday) -> Vec<(usize, MealKind)> {
        let mut kinds = vec![MealKind::Dinner, MealKind::Lunch];
        if self.with_breakfast {
            kinds.push(MealKind::Breakfast);
        }
        let mut budget = self.allowance * 7 / 10;
        let mut chosen: Vec<(usize, MealKind)> = Vec::new();
        for (n, kind) in kinds.iter().enumerate() {
            let taken: Vec<usize> = chosen.iter().map(|(m, _)| *m).collect();
            let cap = budget / (kinds.len() - n) as u64;
            if let Some(m) = self.choose_meal(*kind, anchor, weekday, &taken, cap) {
                budget = budget.saturating_sub(self.trip.data.meals[m].cost);
                chosen.push((m, *kind));
            }
        }
        chosen
    }

    /// The meal of `kind` closest to `anchor` that costs at most `cap`, preferring the level's price
    /// band and places not eaten at yet; the cheapest one open when nothing fits the cap.
    fn choose_meal(
        &self,
        kind: MealKind,
        anchor: (f64, f64),
        weekday: Weekday,
        taken: &[usize],
        cap: u64,
    ) -> Option<usize> {
        let meals = &self.trip.data.meals;
        let serving: Vec<usize> = (0..meals.len())
            .filter(|&i| meals[i].meals.contains(&kind) && open_on(&meals[i].closed_on, weekday) && !taken.contains(&i))
            // A café may not repeat (only meals proper may, rule 7).
            .filter(|&i| meals[i].category == tripstream_domain::Category::Food || !self.meal_uses.contains_key(&i))
            .collect();
        if serving.is_empty() {
            return None;
        }
        let mut costs: Vec<u64> = serving.iter().map(|&i| meals[i].cost).collect();
        costs.sort_unstable();
        let n = costs.len();
        let band = |c: u64| -> bool {
            match self.trip.request.budget {
                BudgetLevel::Low => c <= costs[n / 3],
                BudgetLevel::Medium => c >= costs[n / 5] && c <= costs[(4 * n / 5).min(n - 1)],
                BudgetLevel::High => c >= costs[n / 2],
            }
        };
        let score = |i: usize| {
            let m = &meals[i];
            km(anchor, (m.lat, m.lon)) + 4.0 * f64::from(self.meal_uses.get(&i).copied().unwrap_or(0))
        };
        let best =
            |pool: &mut dyn Iterator<Item = usize>| pool.min_by(|&a, &b| score(a).total_cmp(&score(b)).then(a.cmp(&b)));
        let affordable = || serving.iter().copied().filter(|&i| meals[i].cost <= cap);
        best(&mut affordable().filter(|&i| band(meals[i].cost)))
            .or_else(|| best(&mut affordable()))
            .or_else(|| serving.iter().copied().min_by_key(|&i| (meals[i].cost, i)))
    }

    /// Daytime places, from the anchor area outward, best first, within `left` per person; a first pass
    /// takes only categories not yet seen that day so a day is not three museums in a row.
    fn choose_daytime(&self, eligible: &[usize], anchor: (f64, f64), left: &mut u64) -> Vec<usize> {
        let places = &self.trip.data.places;
        let mut pool: Vec<usize> =
            eligible.iter().copied().filter(|&i| places[i].hours.open.minutes() <= 15 * 60).collect();
        pool.sort_by(|&a, &b| {
            let da = self.area_distance(anchor, a);
            let db = self.area_distance(anchor, b);
            // Areas within 1.5 km of each other count as the same neighbourhood.
            (da / 1.5)
                .floor()
                .total_cmp(&(db / 1.5).floor())
                .then(self.scores[b].total_cmp(&self.scores[a]))
                .then(a.cmp(&b))
        });
        let mut chosen: Vec<usize> = Vec::new();
        for diverse in [true, false] {
            for &i in &pool {
                if chosen.len() >= self.daytime_per_day {
                    break;
                }
                let p = &places[i];
                if chosen.contains(&i) || p.cost > *left {
                    continue;
                }
                if diverse && chosen.iter().any(|&c| places[c].category == p.category) {
                    continue;
                }
                *left -= p.cost;
                chosen.push(i);
            }
        }
        chosen
    }

    fn choose_evening(&self, eligible: &[usize], daytime: &[usize], anchor: (f64, f64), left: u64) -> Option<usize> {
        let places = &self.trip.data.places;
        eligible
            .iter()
            .copied()
            .filter(|i| !daytime.contains(i))
            .filter(|&i| {
                let p = &places[i];
                p.hours.close.minutes() >= EVENING_CLOSE && p.hours.open.minutes() <= 20 * 60 && p.cost <= left
            })
            .min_by(|&a, &b| {
                let key = |i: usize| self.area_distance(anchor, i) - self.scores[i];
                key(a).total_cmp(&key(b)).then(a.cmp(&b))
            })
    }

    fn area_distance(&self, anchor: (f64, f64), place: usize) -> f64 {
        let p = &self.trip.data.places[place];
        let centre = self.areas.get(p.area.en.as_str()).copied().unwrap_or((p.lat, p.lon));
        km(anchor, centre)
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Stop {
    Place(usize),
    Meal(usize, MealKind),
}

struct StopInfo {
    at: (f64, f64),
    duration: u16,
    hours: Hours,
    window: Option<&'static Window>,
}

fn info(data: &DestinationData, stop: Stop) -> StopInfo {
    match stop {
        Stop::Place(i) => {
            let p: &Place = &data.places[i];
            StopInfo { at: (p.lat, p.lon), duration: p.duration_minutes, hours: p.hours, window: None }
        }
        Stop::Meal(i, kind) => {
            let m: &Meal = &data.meals[i];
            let window = match kind {
                MealKind::Breakfast => &BREAKFAST,
                MealKind::Lunch => &LUNCH,
                MealKind::Dinner => &DINNER,
            };
            StopInfo { at: (m.lat, m.lon), duration: m.duration_minutes, hours: m.hours, window: Some(window) }
        }
    }
}

/// Tries every order of `daytime` and every split of it around lunch; returns the stops with start
/// times of the feasible sequence with the least travel and waiting.
fn best_order(
    data: &DestinationData,
    daytime: &[usize],
    meals: &[(usize, MealKind)],
    evening: Option<usize>,
    with_breakfast: bool,
) -> Option<Vec<(Stop, u16)>> {
    let meal = |kind: MealKind| meals.iter().find(|(_, k)| *k == kind).map(|&(m, k)| Stop::Meal(m, k));
    let breakfast = meal(MealKind::Breakfast).filter(|_| with_breakfast);
    let (lunch, dinner) = (meal(MealKind::Lunch), meal(MealKind::Dinner));
    let start = if breakfast.is_some() { 8 * 60 } else { 9 * 60 };
    let mut best: Option<(u32, Vec<(Stop, u16)>)> = None;
    for order in permutations(daytime.len()) {
        for split in 0..=order.len() {
            let mut seq: Vec<Stop> = Vec::with_capacity(order.len() + 4);
            seq.extend(breakfast);
            seq.extend(order[..split].iter().map(|&k| Stop::Place(daytime[k])));
            seq.extend(lunch);
            seq.extend(order[split..].iter().map(|&k| Stop::Place(daytime[k])));
            seq.extend(dinner);
            seq.extend(evening.map(Stop::Place));
            if let Some((cost, times)) = simulate(data, &seq, start)
                && best.as_ref().is_none_or(|(c, _)| cost < *c)
            {
                best = Some((cost, seq.into_iter().zip(times).collect()));
            }
        }
    }
    best.map(|(_, stops)| stops)
}

/// Walks a sequence from `start`: returns its cost (travel counts double, waiting once) and each start
/// time, or `None` if an opening hour or meal window cannot be met.
fn simulate(data: &DestinationData, seq: &[Stop], start: u16) -> Option<(u32, Vec<u16>)> {
    let mut now = start;
    let mut at: Option<(f64, f64)> = None;
    let mut cost = 0u32;
    let mut times = Vec::with_capacity(seq.len());
    for &stop in seq {
        let s = info(data, stop);
        let travel = at.map_or(0, |from| travel_minutes(km(from, s.at)));
        let arrive = now + travel;
        let mut begin = arrive.max(s.hours.open.minutes());
        if let Some(w) = s.window {
            begin = begin.max(w.earliest);
        }
        begin = begin.div_ceil(5) * 5;
        if s.window.is_some_and(|w| begin > w.latest)
            || begin + s.duration > s.hours.close.minutes()
            || begin > LAST_START
        {
            return None;
        }
        cost += 2 * u32::from(travel) + u32::from(begin - arrive);
        times.push(begin);
        now = begin + s.duration;
        at = Some(s.at);
    }
    Some((cost, times))
}

/// Minutes from one stop to the next: on foot up to 1.2 km, otherwise transit with 10 minutes of
/// overhead, rounded up to 5 minutes.
fn travel_minutes(km: f64) -> u16 {
    let minutes = if km <= 1.2 { km / 4.5 * 60.0 } else { 10.0 + km / 25.0 * 60.0 };
    ((minutes.ceil() as u16).div_ceil(5) * 5).max(5)
}

/// Great-circle distance in km.
fn km(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (la1, lo1, la2, lo2) = (a.0.to_radians(), a.1.to_radians(), b.0.to_radians(), b.1.to_radians());
    let h = ((la2 - la1) / 2.0).sin().powi(2) + la1.cos() * la2.cos() * ((lo2 - lo1) / 2.0).sin().powi(2);
    2.0 * 6371.0 * h.sqrt().asin()
}

fn permutations(n: usize) -> Vec<Vec<usize>> {
    fn go(prefix: &mut Vec<usize>, rest: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
        if rest.is_empty() {
            out.push(prefix.clone());
            return;
        }
        for i in 0..rest.len() {
            let x = rest.remove(i);
            prefix.push(x);
            go(prefix, rest, out);
            prefix.pop();
            rest.insert(i, x);
        }
    }
    let mut out = Vec::new();
    go(&mut Vec::with_capacity(n), &mut (0..n).collect(), &mut out);
    out
}

fn open_on(closed_on: &[Weekday], day: Weekday) -> bool {
    !closed_on.contains(&day)
}

fn category_name(p: &Place) -> String {
    serde_json::to_value(p.category).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

#[allow(clippy::too_many_arguments)]
fn activity(
    start: u16,
    duration: u16,
    name: &Localized,
    description: &Localized,
    category: tripstream_domain::Category,
    area: &Localized,
    cost: u64,
    indoor: bool,
    lat: f64,
    lon: f64,
    lang: Language,
) -> Activity {
    Activity {
        time: ClockTime::from_minutes(start),
        duration_minutes: duration,
        name: name.get(lang).to_owned(),
        description: description.get(lang).to_owned(),
        category,
        area: area.get(lang).to_owned(),
        cost,
        indoor,
        location: Some(GeoPoint { lat, lon }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn travel_times_are_rounded_and_never_zero() {
        assert_eq!(travel_minutes(0.0), 5);
        assert_eq!(travel_minutes(1.0), 15);
        assert_eq!(travel_minutes(5.0), 25);
        assert!((km((37.5796, 126.9770), (37.5512, 126.9882)) - 3.3).abs() < 0.2);
        assert_eq!(permutations(3).len(), 6);
        assert_eq!(permutations(0), vec![Vec::<usize>::new()]);
    }
}
