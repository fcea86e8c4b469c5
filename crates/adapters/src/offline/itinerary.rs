//! The offline planner's itinerary algorithm. Pure and deterministic: the same trip, weather and options
//! always give the same days.
//!
//! Per day: pick an anchor area with the best remaining places that are open that weekday (indoor only
//! when rain is likely), choose lunch and dinner near it in the budget level's price band, fill the
//! daytime with places from the anchor outward within what is left of the daily allowance, add an
//! evening place when one fits, then try every order of the daytime places and every split around lunch,
//! simulating travel and opening hours, and keep the feasible order with the least travel and waiting and
//! the fewest places seen outside their time of day (a palace in the morning, a lit street after dinner).

use std::collections::{BTreeSet, HashMap, HashSet};

use tripstream_domain::checks::{
    AFTER_SUNSET_MINUTES, CheckContext, HIKE_START_BY, HOT_FROM_C, LONG_HIKE_MINUTES, MIDDAY, MIN_SIGHTS, is_day_trip,
    is_sight, sun_times,
};
use tripstream_domain::plan::{Activity, Category, ClockTime, Day, DayWeather, GeoPoint};
use tripstream_domain::rules::normalize_name;
use tripstream_domain::{BudgetLevel, Language, Localized, PlanRequest, TimeWindow};

use super::intent::Preferences;
use crate::catalog::{BestTime, DestinationData, Hours, Meal, MealKind, Place, Weekday};

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
    /// Meal windows, transit, holidays, UTC offsets: what the commonsense checks will hold the plan to.
    pub checks: &'a CheckContext,
}

const MOST_DAYTIME_PLACES: usize = 4;
/// A day keeps to one region: every stop within this of the day's anchor area, so that no day spreads
/// beyond the checks' bound. On Jeju (70 km across) that is a day in the east, a day in the south-west…
/// rather than a day spent in the car; in a city it changes nothing.
/// Outdoor daytime places on a hot day: what fits before the midday heat.
const HOT_DAY_OUTDOORS: usize = 2;
/// Areas this close to the anchor count as its neighbourhood when a day looks for variety.
const NEIGHBOURHOOD_KM: f64 = 3.0;
const DAY_RADIUS_KM: f64 = tripstream_domain::checks::MAX_SPREAD_KM / 2.0;
/// Evening places must be open until at least this time.
const EVENING_CLOSE: u16 = 21 * 60 + 30;
/// Minutes before the city centre's dark that outdoor nature ends by (see [`Planner::rules`]).
const SUNSET_MARGIN: u16 = 5;
/// Nothing starts after this (the contract allows up to 23:59; this leaves the evening room to end).
const LAST_START: u16 = 22 * 60 + 30;

/// When a meal may start: from its window's start, for at most two hours, and early enough to sit down
/// before the window closes.
#[derive(Debug, Clone, Copy)]
struct Window {
    earliest: u16,
    latest: u16,
}

impl Window {
    fn of(w: TimeWindow) -> Self {
        let earliest = w.from.minutes();
        let latest = (earliest + 120).min(w.to.minutes().saturating_sub(30)).max(earliest);
        Window { earliest, latest }
    }
}

/// What a day's schedule must respect beyond opening hours: meal windows, daylight for outdoor nature,
/// the midday heat.
struct DayRules {
    breakfast: Window,
    lunch: Window,
    dinner: Window,
    /// Outdoor nature ends by this (sunset plus twilight), minutes after midnight.
    dark_at: u16,
    hot: bool,
}

pub fn plan_days(trip: &Trip) -> Vec<Day> {
    let mut planner = Planner::new(trip);
    (0..trip.request.dates.len()).map(|i| planner.day(i)).collect()
}

/// Day `index` (0-based) of the trip planned on its own, for a day written again: no place named in
/// `avoid` (names as [`normalize_name`] gives them, in the request's language), restaurants named there
/// only when nothing else fits, and the traveller's preferences followed where the catalog allows (indoor
/// days come from `trip.options`).
pub fn plan_day(trip: &Trip, index: u32, avoid: &HashSet<String>, prefs: &Preferences) -> Day {
    let mut planner = Planner::new(trip);
    let lang = trip.request.language;
    for (i, p) in trip.data.places.iter().enumerate() {
        if avoid.contains(&normalize_name(p.name.get(lang)))
            || prefs.unwanted.iter().any(|u| u.matches(p.category, &p.tags))
        {
            planner.used.insert(i);
        }
        if prefs.wanted.iter().any(|w| w.matches(p.category, &p.tags)) {
            planner.scores[i] += 2.0;
        }
    }
    for (i, m) in trip.data.meals.iter().enumerate() {
        if avoid.contains(&normalize_name(m.name.get(lang))) {
            *planner.meal_uses.entry(i).or_default() += 1;
        }
    }
    if prefs.less_walking {
        planner.daytime_per_day = planner.daytime_per_day.saturating_sub(1).max(1);
    }
    planner.with_breakfast |= prefs.more_meals;
    planner.day(index)
}

struct Planner<'a> {
    trip: &'a Trip<'a>,
    lang: Language,
    /// Per person per day, local currency.
    allowance: u64,
    /// What the day being planned may spend per person: its allowance plus what the days before it left
    /// unspent, so that a long cheap stay can still eat when its cheapest tables have had their two visits.
    today: u64,
    /// Spent per person by the days planned so far, and how many they are.
    spent: u64,
    planned: u64,
    daytime_per_day: usize,
    with_breakfast: bool,
    scores: Vec<f64>,
    areas: HashMap<&'a str, (f64, f64)>,
    used: HashSet<usize>,
    meal_uses: HashMap<usize, u32>,
    /// The restaurant of the latest meal: never the next one.
    last_meal: Option<usize>,
    /// Days (0-based) given to a day trip.
    day_trip_days: Vec<u32>,
    /// Names of the free-time blocks so far.
    free_names: HashSet<String>,
    /// How often each area has anchored a day: the next day explores another part of town first.
    anchored: HashMap<&'a str, u32>,
    /// The area the day being planned is anchored in: its own places come first.
    anchor_name: Option<&'a str>,
    /// Ids of the places and restaurants closed for a public holiday on the day being planned.
    closed: Vec<&'a str>,
}

impl<'a> Planner<'a> {
    fn new(trip: &'a Trip<'a>) -> Self {
        let data = trip.data;
        let req = trip.request;
        let ceiling = data.budget.per_traveler_per_day(req.budget);
        let allowance = (ceiling as f64 * trip.options.budget_factor.clamp(0.1, 1.0)) as u64;
        let days = req.dates.len() as usize;
        // Leave about a fifth of the places for evenings and refinements.
        let daytime_per_day = (data.places.len() * 4 / 5 / days).clamp(2, MOST_DAYTIME_PLACES);
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
                // A high budget is for the signature places; a low one leaves them out.
                let flagship = match (p.flagship, req.budget) {
                    (true, BudgetLevel::High) => 2.0,
                    (true, BudgetLevel::Low) => -2.0,
                    _ => 0.0,
                };
                1.0 + fame + interest + flagship
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
            last_meal: None,
            day_trip_days: day_trip_days(data, days as u32),
            free_names: HashSet::new(),
            anchored: HashMap::new(),
            anchor_name: None,
            closed: Vec::new(),
            today: allowance,
            spent: 0,
            planned: 0,
        }
    }

    fn rules(&self, index: u32, date: jiff::civil::Date, weather: &DayWeather) -> DayRules {
        let checks = self.trip.checks;
        let w = &checks.profile.meal_windows;
        let centre = GeoPoint { lat: self.trip.data.lat, lon: self.trip.data.lon };
        // The check takes each place's own sunset: a few minutes' margin covers a city's width (Jeju's
        // 70 km are three minutes of sun) and the rounding to whole minutes.
        let dark_at = sun_times(checks, index as usize, date, centre)
            .map_or(24 * 60, |(_, set)| set.minutes() + AFTER_SUNSET_MINUTES as u16 - SUNSET_MARGIN);
        DayRules {
            breakfast: Window::of(w.breakfast),
            lunch: Window::of(w.lunch),
            dinner: Window::of(w.dinner),
            dark_at,
            hot: weather.temp_max_c >= HOT_FROM_C,
        }
    }

    /// A whole day out of the city: breakfast, the excursion, dinner back in town.
    fn day_trip(&mut self, index: u32, date: jiff::civil::Date, weather: &DayWeather, rules: &DayRules) -> Option<Day> {
        let data = self.trip.data;
        let weekday = Weekday::from(date.weekday());
        let closed = &self.closed;
        let place = (0..data.places.len())
            .filter(|&i| {
                let p = &data.places[i];
                p.day_trip
                    && !self.used.contains(&i)
                    && open_on(&p.closed_on, weekday)
                    && !closed.contains(&p.id.as_str())
                    && (p.indoor || !weather.is_rainy())
                    && p.cost <= self.today
            })
            .max_by(|&a, &b| self.scores[a].total_cmp(&self.scores[b]).then(b.cmp(&a)))?;
        let city = (data.lat, data.lon);
        let taken: Vec<usize> = Vec::new();
        // The excursion and both meals within the day's allowance, or no day trip.
        let left = self.today - data.places[place].cost;
        let breakfast = self.choose_meal(MealKind::Breakfast, Near::Point(city), weekday, &taken, left / 3)?;
        let left = left.checked_sub(data.meals[breakfast].cost)?;
        let dinner = self.choose_meal(MealKind::Dinner, Near::Point(city), weekday, &[breakfast], left)?;
        if data.meals[dinner].cost > left {
            return None;
        }
        let seq =
            [Stop::Meal(breakfast, MealKind::Breakfast), Stop::Place(place), Stop::Meal(dinner, MealKind::Dinner)];
        let (_, times) = simulate(data, self.trip.checks, rules, &seq, rules.breakfast.earliest)?;
        let stops: Vec<(Stop, u16)> = seq.into_iter().zip(times).collect();
        Some(self.build_day(index, date, weather.clone(), stops))
    }

    /// Ids of the places and restaurants a public holiday closes on `date`.
    fn closed_on_holiday(&self, date: jiff::civil::Date) -> Vec<&'a str> {
        let data = self.trip.data;
        self.trip.checks.profile.holiday(date).map_or_else(Vec::new, |h| {
            let ids = data.places.iter().map(|p| p.id.as_str()).chain(data.meals.iter().map(|m| m.id.as_str()));
            ids.filter(|id| h.closes.iter().any(|c| c == id)).collect()
        })
    }

    fn day(&mut self, index: u32) -> Day {
        let trip = self.trip;
        self.today = (self.allowance * (self.planned + 1)).saturating_sub(self.spent);
        let date = trip.request.dates.date(index);
        let weekday = Weekday::from(date.weekday());
        let weather = trip.weather[index as usize].clone();
        let rules = self.rules(index, date, &weather);
        self.closed = self.closed_on_holiday(date);
        if self.day_trip_days.contains(&index)
            && let Some(day) = self.day_trip(index, date, &weather, &rules)
        {
            return day;
        }
        let indoors = weather.is_rainy() || trip.options.indoor_days.contains(&(index + 1));
        let places = &trip.data.places;
        let closed = &self.closed;
        let eligible: Vec<usize> = (0..places.len())
            .filter(|&i| {
                let p = &places[i];
                !self.used.contains(&i)
                    && !p.day_trip
                    && open_on(&p.closed_on, weekday)
                    && !closed.contains(&p.id.as_str())
                    && (!indoors || p.indoor)
            })
            .collect();

        let anchor = self.anchor_area(&eligible);
        let mut meals = self.choose_meals(anchor, weekday);
        let meal_cost: u64 = meals.iter().map(|(m, _)| trip.data.meals[*m].cost).sum();
        let mut left = self.today.saturating_sub(meal_cost);

        let daytime = self.choose_daytime(&eligible, anchor, &mut left, rules.hot);
        let evening = self.choose_evening(&eligible, &daytime, anchor, left);

        // Late in a long, cheap trip the affordable places run out; breakfast (a meal may repeat) keeps
        // the day a day rather than two meals.
        let mut with_breakfast = self.with_breakfast;
        if !with_breakfast && meals.len() + daytime.len() + usize::from(evening.is_some()) < 3 {
            let taken: Vec<usize> = meals.iter().map(|(m, _)| *m).collect();
            if let Some(m) = self.choose_meal(MealKind::Breakfast, Near::Point(anchor), weekday, &taken, left)
                && trip.data.meals[m].cost <= left
            {
                meals.push((m, MealKind::Breakfast));
                with_breakfast = true;
            }
        }

        let mut candidates = daytime;
        let mut schedule = None;
        while schedule.is_none() {
            let order =
                |evening| best_order(trip.data, trip.checks, &rules, &candidates, &meals, evening, with_breakfast);
            schedule = order(evening).or_else(|| evening.and_then(|_| order(None)));
            if schedule.is_none() {
                if candidates.is_empty() {
                    break;
                }
                candidates.pop();
            }
        }
        let mut stops = schedule.unwrap_or_default();
        // A full day has no room to say "free time" where it leaves a hole: the evening place gives way.
        if let Some(e) = evening
            && stops.len() + idle_holes(trip.data, trip.checks, &rules, &stops)
                > tripstream_domain::rules::MAX_ACTIVITIES
            && let Some(without) = best_order(trip.data, trip.checks, &rules, &candidates, &meals, None, with_breakfast)
            && stops.iter().any(|(s, _)| *s == Stop::Place(e))
        {
            stops = without;
        }
        let evening_cost =
            evening.filter(|&e| stops.iter().any(|(s, _)| *s == Stop::Place(e))).map_or(0, |e| places[e].cost);
        let stops = self.lunch_on_the_way(stops, &meals, weekday, left.saturating_sub(evening_cost), &rules);
        self.build_day(index, date, weather, stops)
    }

    /// Lunch was chosen near the day's anchor before the day was ordered, so it may sit off the way from
    /// the stop before it to the stop after (a third of lunches added over a kilometre). The lunch that
    /// adds least to that way, by the same rules (serving, open, variety; the level's band now a
    /// preference of half a kilometre) and costing at most the current one and what the day has left,
    /// takes its place when the day then costs less travel and waiting and still fits every window.
    fn lunch_on_the_way(
        &self,
        stops: Vec<(Stop, u16)>,
        meals: &[(usize, MealKind)],
        weekday: Weekday,
        slack: u64,
        rules: &DayRules,
    ) -> Vec<(Stop, u16)> {
        let data = self.trip.data;
        let Some(at) = stops.iter().position(|(s, _)| matches!(s, Stop::Meal(_, MealKind::Lunch))) else {
            return stops;
        };
        let Stop::Meal(current, _) = stops[at].0 else { return stops };
        if at == 0 || at + 1 == stops.len() {
            return stops;
        }
        let way = Near::Way(info(data, rules, stops[at - 1].0).at, info(data, rules, stops[at + 1].0).at);
        let others: Vec<usize> = meals.iter().filter(|(_, k)| *k != MealKind::Lunch).map(|(m, _)| *m).collect();
        let cap = data.meals[current].cost + slack;
        let Some(lunch) = self.choose_meal(MealKind::Lunch, way, weekday, &others, cap) else { return stops };
        if lunch == current || data.meals[lunch].cost > cap {
            return stops;
        }
        let start = day_start(rules, stops.iter().any(|(s, _)| matches!(s, Stop::Meal(_, MealKind::Breakfast))));
        let cost = |seq: &[Stop]| {
            simulate(data, self.trip.checks, rules, seq, start)
                .map(|(cost, times)| (cost + detour_penalty(data, rules, seq), times))
        };
        let old: Vec<Stop> = stops.iter().map(|(s, _)| *s).collect();
        let mut new = old.clone();
        new[at] = Stop::Meal(lunch, MealKind::Lunch);
        match (cost(&old), cost(&new)) {
            (Some((was, _)), Some((now, times))) if now < was => {
                let swapped: Vec<(Stop, u16)> = new.into_iter().zip(times).collect();
                // A hole the day has no room to call free time is worse than the walk.
                let holes = |s: &[(Stop, u16)]| idle_holes(data, self.trip.checks, rules, s);
                let added = holes(&swapped);
                if swapped.len() + added > tripstream_domain::rules::MAX_ACTIVITIES && added > holes(&stops) {
                    return stops;
                }
                swapped
            }
            _ => stops,
        }
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
                        p.cost.saturating_mul(travelers),
                        p.indoor,
                        p.lat,
                        p.lon,
                        lang,
                    )
                }
                Stop::Meal(i, _) => {
                    *self.meal_uses.entry(i).or_default() += 1;
                    self.last_meal = Some(i);
                    let m = &data.meals[i];
                    activity(
                        start,
                        m.duration_minutes,
                        &m.name,
                        &m.description,
                        m.category,
                        &m.area,
                        m.cost.saturating_mul(travelers),
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
        let mut theme = themes.iter().take(2).copied().collect::<Vec<_>>().join(" & ");
        self.fill_idle(index, &mut activities);
        let mut day = Day { day: index + 1, date, theme: theme.clone(), weather, activities, daily_cost: 0 };
        // Late in a long stay the places that fit the day run out: say it is a free day rather than
        // pass off two meals as a day of sightseeing.
        if day.activities.iter().filter(|a| is_sight(a)).count() < MIN_SIGHTS && !is_day_trip(&day) {
            theme = match lang {
                Language::En => format!("Free day: {theme}"),
                Language::Ko => format!("자유 일정: {theme}"),
            };
            day.theme = theme;
        }
        day.daily_cost = day.activities_cost();
        self.spent += day.daily_cost / travelers.max(1);
        self.planned += 1;
        day
    }

    /// Says "free time" where the schedule leaves more than the idle allowance between two stops (after
    /// travelling), rather than leaving a hole: time to wander the next stop's neighbourhood.
    fn fill_idle(&mut self, index: u32, activities: &mut Vec<Activity>) {
        let transit = &self.trip.checks.profile.transit;
        let mut i = 1;
        while i < activities.len() && activities.len() < tripstream_domain::rules::MAX_ACTIVITIES {
            let (a, b) = (&activities[i - 1], &activities[i]);
            let travel = match (a.location, b.location) {
                (Some(x), Some(y)) => u32::from(transit.between(x, y)),
                _ => 0,
            };
            let ready = a.end_minutes() + travel;
            let from = ready.div_ceil(5) * 5;
            let to = u32::from(b.time.minutes());
            // Compared unrounded, as the check compares it.
            if to > ready + tripstream_domain::checks::MAX_IDLE_MINUTES {
                let area = b.area.clone();
                // Rule 7: no name twice in a trip, so each free block is named for what it is for.
                let names = match self.lang {
                    Language::En => [
                        format!("Free time in {area}"),
                        format!("Free time: a stroll around {area}"),
                        format!("Free time: a café stop in {area}"),
                        format!("Free time: browsing {area}"),
                        format!("Free time in {area} (day {})", index + 1),
                    ],
                    Language::Ko => [
                        format!("{area} 자유 시간"),
                        format!("자유 시간: {area} 산책"),
                        format!("자유 시간: {area} 카페 휴식"),
                        format!("자유 시간: {area} 구경"),
                        format!("{area} 자유 시간 ({}일차)", index + 1),
                    ],
                };
                let last = names[4].clone();
                let name = names.into_iter().find(|n| !self.free_names.contains(n)).unwrap_or(last);
                self.free_names.insert(name.clone());
                let description = match self.lang {
                    Language::En => format!("Wander {area} at your own pace."),
                    Language::Ko => format!("{area}을 천천히 둘러보세요."),
                };
                let free = Activity {
                    time: ClockTime::from_minutes(from as u16),
                    duration_minutes: (to - from) as u16,
                    name,
                    description,
                    category: Category::Rest,
                    area,
                    cost: 0,
                    indoor: true,
                    location: b.location,
                };
                activities.insert(i, free);
                i += 1;
            }
            i += 1;
        }
    }

    /// The area whose best eligible places score highest together, among those that have anchored the
    /// fewest days so far.
    fn anchor_area(&mut self, eligible: &[usize]) -> (f64, f64) {
        let places = &self.trip.data.places;
        let mut by_area: HashMap<&'a str, Vec<f64>> = HashMap::new();
        for &i in eligible {
            by_area.entry(places[i].area.en.as_str()).or_default().push(self.scores[i]);
        }
        let best = by_area
            .into_iter()
            .map(|(area, mut scores)| {
                scores.sort_by(|a, b| b.total_cmp(a));
                // An area with a single place left does not make a day.
                let sum = scores.iter().take(self.daytime_per_day).sum::<f64>();
                let times = self.anchored.get(area).copied().unwrap_or(0);
                (area, (std::cmp::Reverse(times), scores.len() >= 2), sum)
            })
            .max_by(|a, b| a.1.cmp(&b.1).then(a.2.total_cmp(&b.2)).then_with(|| b.0.cmp(a.0)))
            .map(|(area, _, _)| area);
        if let Some(area) = best {
            *self.anchored.entry(area).or_default() += 1;
        }
        self.anchor_name = best;
        best.and_then(|a| self.areas.get(a).copied()).unwrap_or((self.trip.data.lat, self.trip.data.lon))
    }

    /// Lunch, dinner and perhaps breakfast near `anchor`, in the level's price band, favouring variety,
    /// within most of the day's allowance (the rest is for things to do).
    fn choose_meals(&self, anchor: (f64, f64), weekday: Weekday) -> Vec<(usize, MealKind)> {
        let mut kinds = vec![MealKind::Dinner, MealKind::Lunch];
        if self.with_breakfast {
            kinds.push(MealKind::Breakfast);
        }
        let mut budget = self.today * 7 / 10;
        let mut chosen: Vec<(usize, MealKind)> = Vec::new();
        for (n, kind) in kinds.iter().enumerate() {
            let taken: Vec<usize> = chosen.iter().map(|(m, _)| *m).collect();
            let cap = budget / (kinds.len() - n) as u64;
            if let Some(m) = self.choose_meal(*kind, Near::Point(anchor), weekday, &taken, cap) {
                budget = budget.saturating_sub(self.trip.data.meals[m].cost);
                chosen.push((m, *kind));
            }
        }
        chosen
    }

    /// The meal of `kind` closest to `near` that costs at most `cap`, preferring the level's price band
    /// and places not eaten at yet; the cheapest one open when nothing fits the cap.
    fn choose_meal(&self, kind: MealKind, near: Near, weekday: Weekday, taken: &[usize], cap: u64) -> Option<usize> {
        let meals = &self.trip.data.meals;
        let serving: Vec<usize> = (0..meals.len())
            .filter(|&i| meals[i].meals.contains(&kind) && open_on(&meals[i].closed_on, weekday) && !taken.contains(&i))
            .filter(|&i| !self.closed.contains(&meals[i].id.as_str()))
            // A café may not repeat (only meals proper may, rule 7), and is never lunch or dinner.
            .filter(|&i| {
                meals[i].category == Category::Food || (kind == MealKind::Breakfast && !self.meal_uses.contains_key(&i))
            })
            // A restaurant at most twice a trip, never twice in a row.
            .filter(|&i| self.meal_uses.get(&i).copied().unwrap_or(0) < tripstream_domain::checks::MAX_RESTAURANT_USES)
            .filter(|&i| self.last_meal != Some(i))
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
        let high = self.trip.request.budget == BudgetLevel::High;
        // On the way between two stops, a price outside the level's band is half a kilometre against a
        // place rather than out of the question: a lunch beside the route beats a dearer walk.
        let on_the_way = matches!(near, Near::Way(..));
        let score = |i: usize| {
            let m = &meals[i];
            let flagship = if high && m.flagship { -3.0 } else { 0.0 };
            let off_band = if on_the_way && !band(m.cost) { 0.5 } else { 0.0 };
            near.km((m.lat, m.lon))
                + 4.0 * f64::from(self.meal_uses.get(&i).copied().unwrap_or(0))
                + flagship
                + off_band
        };
        let best =
            |pool: &mut dyn Iterator<Item = usize>| pool.min_by(|&a, &b| score(a).total_cmp(&score(b)).then(a.cmp(&b)));
        // Within the day's region when any is; a meal across the island only when nothing nearer serves.
        let centre = near.centre();
        let within: Vec<usize> =
            serving.iter().copied().filter(|&i| km(centre, (meals[i].lat, meals[i].lon)) <= DAY_RADIUS_KM).collect();
        let serving = if within.is_empty() { serving } else { within };
        let affordable = || serving.iter().copied().filter(|&i| meals[i].cost <= cap);
        best(&mut affordable().filter(|&i| on_the_way || band(meals[i].cost)))
            .or_else(|| best(&mut affordable()))
            .or_else(|| serving.iter().copied().min_by_key(|&i| (meals[i].cost, i)))
    }

    /// Daytime places, from the anchor area outward, best first, within `left` per person; a first pass
    /// takes only categories not yet seen that day so a day is not three museums in a row.
    fn choose_daytime(&self, eligible: &[usize], anchor: (f64, f64), left: &mut u64, hot: bool) -> Vec<usize> {
        let places = &self.trip.data.places;
        let mut pool: Vec<usize> = eligible
            .iter()
            .copied()
            .filter(|&i| places[i].hours.open.minutes() <= 15 * 60)
            .filter(|&i| places[i].category != Category::Nightlife && places[i].best_time != BestTime::Night)
            .filter(|&i| self.near(anchor, i))
            .collect();
        // The anchor area's own places first, then areas within 1.5 km of it, and so on outward.
        let ring = |i: usize| {
            if self.anchor_name == Some(places[i].area.en.as_str()) {
                0.0
            } else {
                1.0 + (self.area_distance(anchor, i) / 1.5).floor()
            }
        };
        pool.sort_by(|&a, &b| {
            ring(a).total_cmp(&ring(b)).then(self.scores[b].total_cmp(&self.scores[a])).then(a.cmp(&b))
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
                // On a hot day the outdoors is for the morning (and the evening): the rest is indoors.
                if hot && !p.indoor && chosen.iter().filter(|&&c| !places[c].indoor).count() >= HOT_DAY_OUTDOORS {
                    continue;
                }
                // A place at its best in the evening is kept for the evening while the day has others.
                if diverse && p.best_time == BestTime::Evening {
                    continue;
                }
                // Variety is sought in the neighbourhood only: a park across town is not worth the ride
                // when the anchor area has another museum.
                if diverse
                    && (chosen.iter().any(|&c| places[c].category == p.category)
                        || self.area_distance(anchor, i) > NEIGHBOURHOOD_KM)
                {
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
                p.hours.close.minutes() >= EVENING_CLOSE
                    && p.hours.open.minutes() <= 20 * 60
                    && !matches!(p.best_time, BestTime::Morning | BestTime::Afternoon)
                    && p.cost <= left
                    && self.near(anchor, i)
            })
            .min_by(|&a, &b| {
                // A place at its best after dark (a lit street, a night view) is worth a kilometre more.
                let after_dark =
                    |i: usize| f64::from(matches!(places[i].best_time, BestTime::Evening | BestTime::Night));
                let key = |i: usize| self.area_distance(anchor, i) - self.scores[i] - after_dark(i);
                key(a).total_cmp(&key(b)).then(a.cmp(&b))
            })
    }

    /// Whether place `i` lies within the day's region around `anchor`.
    fn near(&self, anchor: (f64, f64), i: usize) -> bool {
        let p = &self.trip.data.places[i];
        km(anchor, (p.lat, p.lon)) <= DAY_RADIUS_KM
    }

    fn area_distance(&self, anchor: (f64, f64), place: usize) -> f64 {
        let p = &self.trip.data.places[place];
        let centre = self.areas.get(p.area.en.as_str()).copied().unwrap_or((p.lat, p.lon));
        km(anchor, centre)
    }
}

/// Where a meal should be: near a point (the day's anchor), or on the way from one stop to the next.
#[derive(Clone, Copy)]
enum Near {
    Point((f64, f64)),
    Way((f64, f64), (f64, f64)),
}

impl Near {
    /// How far `to` is: from the point, or what going by it adds to the way.
    fn km(self, to: (f64, f64)) -> f64 {
        match self {
            Near::Point(p) => km(p, to),
            Near::Way(a, b) => {
                let at = |(lat, lon): (f64, f64)| GeoPoint { lat, lon };
                tripstream_domain::checks::route::detour(at(a), at(to), at(b))
            }
        }
    }

    fn centre(self) -> (f64, f64) {
        match self {
            Near::Point(p) => p,
            Near::Way(a, b) => ((a.0 + b.0) / 2.0, (a.1 + b.1) / 2.0),
        }
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
    window: Option<Window>,
    category: Category,
    indoor: bool,
    best_time: BestTime,
}

fn info(data: &DestinationData, rules: &DayRules, stop: Stop) -> StopInfo {
    match stop {
        Stop::Place(i) => {
            let p: &Place = &data.places[i];
            StopInfo {
                at: (p.lat, p.lon),
                duration: p.duration_minutes,
                hours: p.hours,
                window: None,
                category: p.category,
                indoor: p.indoor,
                best_time: p.best_time,
            }
        }
        Stop::Meal(i, kind) => {
            let m: &Meal = &data.meals[i];
            let window = match kind {
                MealKind::Breakfast => rules.breakfast,
                MealKind::Lunch => rules.lunch,
                MealKind::Dinner => rules.dinner,
            };
            StopInfo {
                at: (m.lat, m.lon),
                duration: m.duration_minutes,
                hours: m.hours,
                window: Some(window),
                category: m.category,
                indoor: true,
                best_time: BestTime::Any,
            }
        }
    }
}

/// Tries every order of `daytime` and every split of it around lunch; returns the stops with start
/// times of the feasible sequence with the least travel and waiting.
fn best_order(
    data: &DestinationData,
    checks: &CheckContext,
    rules: &DayRules,
    daytime: &[usize],
    meals: &[(usize, MealKind)],
    evening: Option<usize>,
    with_breakfast: bool,
) -> Option<Vec<(Stop, u16)>> {
    let meal = |kind: MealKind| meals.iter().find(|(_, k)| *k == kind).map(|&(m, k)| Stop::Meal(m, k));
    let breakfast = meal(MealKind::Breakfast).filter(|_| with_breakfast);
    let (lunch, dinner) = (meal(MealKind::Lunch), meal(MealKind::Dinner));
    let start = day_start(rules, breakfast.is_some());
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
            if let Some((cost, times)) = simulate(data, checks, rules, &seq, start)
                && let cost = cost + detour_penalty(data, rules, &seq)
                && best.as_ref().is_none_or(|(c, _)| cost < *c)
            {
                best = Some((cost, seq.into_iter().zip(times).collect()));
            }
        }
    }
    best.map(|(_, stops)| stops)
}

/// When a day may start: at breakfast's earliest when it has one, else at 09:00.
fn day_start(rules: &DayRules, with_breakfast: bool) -> u16 {
    if with_breakfast { rules.breakfast.earliest } else { 9 * 60 }
}

/// What the route check would hold against the order: nothing for the shortest order with the meals in
/// their places, and a lot for a detour, so that a quicker but longer order (a walk instead of a ride)
/// only wins when it is nearly as short.
fn detour_penalty(data: &DestinationData, rules: &DayRules, seq: &[Stop]) -> u32 {
    let points: Vec<GeoPoint> =
        seq.iter().map(|&s| info(data, rules, s).at).map(|(lat, lon)| GeoPoint { lat, lon }).collect();
    let fixed: Vec<bool> = seq.iter().map(|s| matches!(s, Stop::Meal(..))).collect();
    let efficiency = tripstream_domain::checks::route::route_of(&points, &fixed).efficiency();
    ((1.0 - efficiency) * 2000.0).round() as u32
}

/// Walks a sequence from `start`: returns its cost (travel counts double, waiting once, long waits more)
/// and each start time, or `None` if an opening hour, a meal window, daylight, the heat or nightlife hours
/// cannot be met. Each stop starts as soon as it can, then a backward pass starts earlier stops later
/// where the next one would otherwise wait (breakfast at 08:30 rather than 07:00 before a sight that
/// opens at 10:00), so that the day flows instead of leaving holes.
fn simulate(
    data: &DestinationData,
    checks: &CheckContext,
    rules: &DayRules,
    seq: &[Stop],
    start: u16,
) -> Option<(u32, Vec<u16>)> {
    let infos: Vec<StopInfo> = seq.iter().map(|&stop| info(data, rules, stop)).collect();
    let legs: Vec<(u16, f64)> = infos
        .windows(2)
        .map(|w| {
            let dist = km(w[0].at, w[1].at);
            (travel_minutes(checks, dist), dist)
        })
        .collect();
    let mut now = start;
    let mut times = Vec::with_capacity(seq.len());
    for (k, s) in infos.iter().enumerate() {
        let arrive = now + k.checked_sub(1).map_or(0, |p| legs[p].0);
        let mut begin = arrive.max(s.hours.open.minutes());
        if let Some(w) = s.window {
            begin = begin.max(w.earliest);
        }
        if s.category == Category::Nightlife {
            begin = begin.max(tripstream_domain::checks::NIGHTLIFE_FROM.minutes());
        }
        begin = begin.div_ceil(5) * 5;
        if !fits(s, begin, rules) {
            return None;
        }
        times.push(begin);
        now = begin + s.duration;
    }
    for k in (0..infos.len().saturating_sub(1)).rev() {
        let s = &infos[k];
        let latest = (times[k + 1].saturating_sub(legs[k].0 + s.duration)) / 5 * 5;
        let mut t = latest;
        // Never later than the place's time of day, when it was at it.
        let best = s.best_time.suits(times[k], s.duration);
        while t > times[k] && !(fits(s, t, rules) && (!best || s.best_time.suits(t, s.duration))) {
            t -= 5;
        }
        times[k] = t.max(times[k]);
    }
    // A morning left empty is a morning lost: the day's first stop should start by 10:00. Each minute
    // later costs two, so that a thin day starts with a sight and rests before dinner rather than
    // starting at lunch (a fifth of days did, at one).
    let mut cost = times.first().map_or(0, |&t| 2 * u32::from(t.saturating_sub(10 * 60)));
    // A place has its time of day (a temple before the crowds, a viewpoint at sunset): missing it costs
    // as much as two hours' wait, one hour for an afternoon place.
    cost += infos
        .iter()
        .zip(&times)
        .filter(|(s, t)| !s.best_time.suits(**t, s.duration))
        .map(|(s, _)| if s.best_time == BestTime::Afternoon { 60 } else { 120 })
        .sum::<u32>();
    for k in 1..infos.len() {
        let (travel, dist) = legs[k - 1];
        let wait = u32::from(times[k] - (times[k - 1] + infos[k - 1].duration + travel));
        // An idle hour costs more than it looks; distance counts on its own too, so that the order is the
        // short one, not only the quick one.
        cost += 2 * u32::from(travel) + wait + wait.saturating_sub(60) * 2 + (dist * 4.0) as u32;
    }
    Some((cost, times))
}

/// Whether stop `s` may start at `begin`: its opening hours, its meal window, nothing after
/// [`LAST_START`], outdoor nature in daylight, long hikes early, no exposed midday on a hot day.
fn fits(s: &StopInfo, begin: u16, rules: &DayRules) -> bool {
    let end = begin + s.duration;
    let outdoor_nature = s.category == Category::Nature && !s.indoor;
    let midday = u32::from(end.min(MIDDAY.to.minutes())).saturating_sub(u32::from(begin.max(MIDDAY.from.minutes())));
    !(s.window.is_some_and(|w| begin > w.latest || begin < w.earliest)
        || begin < s.hours.open.minutes()
        || end > s.hours.close.minutes()
        || begin > LAST_START
        || (s.category == Category::Nightlife && begin < tripstream_domain::checks::NIGHTLIFE_FROM.minutes())
        || (outdoor_nature && end > rules.dark_at)
        || (outdoor_nature && s.duration >= LONG_HIKE_MINUTES && begin > HIKE_START_BY.minutes())
        || (rules.hot && !s.indoor && s.window.is_none() && midday >= 30))
}

/// How many gaps of the schedule, after travelling, are longer than the checks allow idle.
fn idle_holes(data: &DestinationData, checks: &CheckContext, rules: &DayRules, stops: &[(Stop, u16)]) -> usize {
    stops
        .windows(2)
        .filter(|w| {
            let (a, b) = (info(data, rules, w[0].0), info(data, rules, w[1].0));
            let ready = u32::from(w[0].1 + a.duration + checks.profile.transit.minutes(km(a.at, b.at)));
            u32::from(w[1].1) > ready + tripstream_domain::checks::MAX_IDLE_MINUTES
        })
        .count()
}

/// Minutes from one stop to the next with the destination's own transit model (what the checks hold
/// the plan to), rounded up to 5 minutes.
fn travel_minutes(checks: &CheckContext, km: f64) -> u16 {
    (checks.profile.transit.minutes(km).div_ceil(5) * 5).max(5)
}

/// Great-circle distance in km.
fn km(a: (f64, f64), b: (f64, f64)) -> f64 {
    tripstream_domain::checks::route::km(GeoPoint { lat: a.0, lon: a.1 }, GeoPoint { lat: b.0, lon: b.1 })
}

/// On stays of four days or more, one day in four goes out of the city (never the first or the last).
fn day_trip_days(data: &DestinationData, days: u32) -> Vec<u32> {
    let available = data.places.iter().filter(|p| p.day_trip).count() as u32;
    if days < 4 {
        return Vec::new();
    }
    (0..(days / 4).min(available)).map(|k| 2 + 4 * k).filter(|&d| d + 1 < days).collect()
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
        let checks = CheckContext { profile: tripstream_domain::DestinationProfile::generic(), utc_offsets: vec![] };
        assert_eq!(travel_minutes(&checks, 0.0), 5);
        assert_eq!(travel_minutes(&checks, 1.0), 15);
        assert_eq!(travel_minutes(&checks, 5.0), 25);
        assert!((km((37.5796, 126.9770), (37.5512, 126.9882)) - 3.3).abs() < 0.2);
        assert_eq!(permutations(3).len(), 6);
        assert_eq!(permutations(0), vec![Vec::<usize>::new()]);
    }
}
