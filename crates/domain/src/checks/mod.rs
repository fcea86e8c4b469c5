//! Commonsense checks: what makes a plan one a traveller would follow, beyond rules 1–7. They run on every
//! plan, whoever wrote it, and are findings like the rules' ([`crate::rules::Finding::Check`]): never hard,
//! so a plan is delivered with what remains of them in `warnings`.

pub mod fix;
pub mod route;
pub mod sun;

use std::collections::HashMap;

use jiff::civil::Date;

use crate::destination::{Closure, DestinationProfile, Localized, TimeWindow};
use crate::plan::{Activity, Category, ClockTime, Day, GeoPoint, Plan};
use crate::request::Language;
use crate::rules::normalize_name;

/// What the checks need beyond the plan: how a day runs at the destination, and the clock's offset from
/// UTC on each day of the trip (for sunrise and sunset).
#[derive(Debug, Clone)]
pub struct CheckContext {
    pub profile: DestinationProfile,
    /// Minutes ahead of UTC, one per day of the trip (the last one repeats beyond).
    pub utc_offsets: Vec<i32>,
}

impl CheckContext {
    fn utc_offset(&self, index: usize, lon: f64) -> i32 {
        self.utc_offsets
            .get(index)
            .or(self.utc_offsets.last())
            .copied()
            // Without a time zone, the sun's own: 4 minutes per degree of longitude.
            .unwrap_or((lon * 4.0).round() as i32)
    }
}

/// Idle time between two stops, after travelling, that a plan may leave without saying it is free time.
pub const MAX_IDLE_MINUTES: u32 = 90;
/// Nightlife starts no earlier than this.
pub const NIGHTLIFE_FROM: ClockTime = ClockTime::hm(18, 0);
/// Outdoor nature may end this long after sunset (civil twilight), no later.
pub const AFTER_SUNSET_MINUTES: i32 = 20;
/// From this daily maximum on, no exposed outdoor activity at midday.
pub const HOT_FROM_C: f64 = 32.0;
/// Midday, for the heat check.
pub const MIDDAY: TimeWindow = TimeWindow { from: ClockTime::hm(11, 0), to: ClockTime::hm(16, 0) };
/// A long outdoor hike (this many minutes or more) starts by [`HIKE_START_BY`].
pub const LONG_HIKE_MINUTES: u16 = 240;
pub const HIKE_START_BY: ClockTime = ClockTime::hm(10, 0);
/// The farthest two stops of a day may be apart, unless the day is a day trip.
pub const MAX_SPREAD_KM: f64 = 50.0;
/// A day's route may be this much longer than its shortest order (meals fixed) before it is a finding.
pub const MIN_EFFICIENCY: f64 = 0.8;
/// A restaurant at most this often per trip.
pub const MAX_RESTAURANT_USES: u32 = 2;
/// Things to see or do on every day that is not a rest day.
pub const MIN_SIGHTS: usize = 2;
/// An activity at least this long is a day trip, and its day may spread beyond [`MAX_SPREAD_KM`].
pub const DAY_TRIP_MINUTES: u16 = 300;

/// The meal a food stop is, by its time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MealKind {
    Breakfast,
    Lunch,
    Dinner,
}

impl MealKind {
    /// Before 11:00 breakfast, before 16:00 lunch, dinner after.
    pub fn at(time: ClockTime) -> Self {
        match time.minutes() {
            m if m < 11 * 60 => MealKind::Breakfast,
            m if m < 16 * 60 => MealKind::Lunch,
            _ => MealKind::Dinner,
        }
    }

    pub fn window(self, profile: &DestinationProfile) -> TimeWindow {
        let w = &profile.meal_windows;
        match self {
            MealKind::Breakfast => w.breakfast,
            MealKind::Lunch => w.lunch,
            MealKind::Dinner => w.dinner,
        }
    }

    fn name(self, lang: Language) -> &'static str {
        match (self, lang) {
            (MealKind::Breakfast, Language::En) => "Breakfast",
            (MealKind::Lunch, Language::En) => "Lunch",
            (MealKind::Dinner, Language::En) => "Dinner",
            (MealKind::Breakfast, Language::Ko) => "아침",
            (MealKind::Lunch, Language::Ko) => "점심",
            (MealKind::Dinner, Language::Ko) => "저녁",
        }
    }
}

/// How much a finding matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Rules 1–4: never delivered.
    Error,
    /// Worth fixing (repair, then refinement); delivered in `warnings` if it stays.
    Warning,
    /// Worth knowing, nothing to fix: a public holiday.
    Notice,
}

/// One commonsense finding. `day` fields are 1-based day numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// The schedule leaves less time between two stops than getting from one to the other takes.
    TravelTime { day: u32, to: String, needed: u16, given: u32 },
    /// More than [`MAX_IDLE_MINUTES`] with nothing to do, after travelling.
    IdleGap { day: u32, after: String, minutes: u32 },
    /// Nightlife before [`NIGHTLIFE_FROM`].
    NightlifeEarly { day: u32, name: String, time: ClockTime },
    /// Outdoor nature after dark (or before dawn).
    NatureInDark { day: u32, name: String, sunset: ClockTime },
    /// A long hike that starts too late to finish in daylight.
    LateHike { day: u32, name: String, time: ClockTime },
    /// Exposed outdoors at midday on a hot day.
    MiddayHeat { day: u32, name: String, temp_max_c: i32 },
    /// A meal outside the destination's window for it.
    MealTime { day: u32, name: String, meal: MealKind, time: ClockTime, window: TimeWindow },
    /// A café standing in for lunch.
    CafeAsLunch { day: u32, name: String },
    /// The day's stops lie further apart than [`MAX_SPREAD_KM`].
    DaySpread { day: u32, km: u32 },
    /// The day's order is much longer than its shortest one (meals fixed): efficiency in percent.
    RouteDetour { day: u32, efficiency: u32 },
    /// A restaurant used more than [`MAX_RESTAURANT_USES`] times.
    RestaurantReuse { name: String, times: u32 },
    /// The same restaurant for two meals in a row.
    ConsecutiveMeals { day: u32, name: String },
    /// Fewer than [`MIN_SIGHTS`] things to see or do on a day that is not a rest day.
    FewSights { day: u32, count: usize },
    /// The day is a public holiday.
    Holiday { day: u32, name: Localized },
    /// A bundled place on a day it is closed: its weekly closing day, or a public holiday that closes it.
    ClosedDay { day: u32, name: String },
    /// A bundled place visited (in part) outside its opening hours.
    OutsideHours { day: u32, name: String, time: ClockTime, open: ClockTime, close: ClockTime },
}

impl Check {
    pub fn severity(&self) -> Severity {
        match self {
            Check::Holiday { .. } => Severity::Notice,
            _ => Severity::Warning,
        }
    }

    /// The day (1-based) the finding is about; `None` for one about the whole trip.
    pub fn day(&self) -> Option<u32> {
        match self {
            Check::TravelTime { day, .. }
            | Check::IdleGap { day, .. }
            | Check::NightlifeEarly { day, .. }
            | Check::NatureInDark { day, .. }
            | Check::LateHike { day, .. }
            | Check::MiddayHeat { day, .. }
            | Check::MealTime { day, .. }
            | Check::CafeAsLunch { day, .. }
            | Check::DaySpread { day, .. }
            | Check::RouteDetour { day, .. }
            | Check::ConsecutiveMeals { day, .. }
            | Check::FewSights { day, .. }
            | Check::Holiday { day, .. }
            | Check::ClosedDay { day, .. }
            | Check::OutsideHours { day, .. } => Some(*day),
            Check::RestaurantReuse { .. } => None,
        }
    }

    /// A short stable name for counting (the scorecard).
    pub fn kind(&self) -> &'static str {
        match self {
            Check::TravelTime { .. } => "travel_time",
            Check::IdleGap { .. } => "idle_gap",
            Check::NightlifeEarly { .. } => "nightlife_early",
            Check::NatureInDark { .. } => "nature_in_dark",
            Check::LateHike { .. } => "late_hike",
            Check::MiddayHeat { .. } => "midday_heat",
            Check::MealTime { .. } => "meal_time",
            Check::CafeAsLunch { .. } => "cafe_as_lunch",
            Check::DaySpread { .. } => "day_spread",
            Check::RouteDetour { .. } => "route_detour",
            Check::RestaurantReuse { .. } => "restaurant_reuse",
            Check::ConsecutiveMeals { .. } => "consecutive_meals",
            Check::FewSights { .. } => "few_sights",
            Check::Holiday { .. } => "holiday",
            Check::ClosedDay { .. } => "closed_day",
            Check::OutsideHours { .. } => "outside_hours",
        }
    }

    pub fn message(&self, lang: Language) -> String {
        use Language::{En, Ko};
        match (self, lang) {
            (Check::TravelTime { day, to, needed, given }, En) => {
                format!("Day {day}: getting to '{to}' takes about {needed} min, but the plan leaves {given}.")
            }
            (Check::TravelTime { day, to, needed, given }, Ko) => {
                format!("{day}일차 '{to}'까지 이동에 약 {needed}분이 걸리지만 일정에는 {given}분뿐입니다.")
            }
            (Check::IdleGap { day, after, minutes }, En) => {
                format!("Day {day}: {minutes} min with nothing planned after '{after}'.")
            }
            (Check::IdleGap { day, after, minutes }, Ko) => {
                format!("{day}일차 '{after}' 이후 {minutes}분 동안 일정이 비어 있습니다.")
            }
            (Check::NightlifeEarly { day, name, time }, En) => {
                format!("Day {day}: '{name}' is nightlife but starts at {time}; it belongs after {NIGHTLIFE_FROM}.")
            }
            (Check::NightlifeEarly { day, name, time }, Ko) => {
                format!("{day}일차 '{name}'은 밤에 즐기는 곳인데 {time}에 시작합니다 ({NIGHTLIFE_FROM} 이후 권장).")
            }
            (Check::NatureInDark { day, name, sunset }, En) => {
                format!("Day {day}: '{name}' is outdoors after dark (sunset {sunset}).")
            }
            (Check::NatureInDark { day, name, sunset }, Ko) => {
                format!("{day}일차 '{name}'은 야외인데 해가 진 뒤입니다 (일몰 {sunset}).")
            }
            (Check::LateHike { day, name, time }, En) => {
                format!("Day {day}: '{name}' is a long hike and should start by {HIKE_START_BY}, not {time}.")
            }
            (Check::LateHike { day, name, time }, Ko) => {
                format!("{day}일차 '{name}'은 긴 산행이라 {HIKE_START_BY} 전에 시작해야 합니다 (현재 {time}).")
            }
            (Check::MiddayHeat { day, name, temp_max_c }, En) => {
                format!("Day {day}: '{name}' is outdoors at midday with a high of {temp_max_c} °C.")
            }
            (Check::MiddayHeat { day, name, temp_max_c }, Ko) => {
                format!("{day}일차 '{name}'은 최고 {temp_max_c}°C인 한낮의 야외 활동입니다.")
            }
            (Check::MealTime { day, name, meal, time, window }, En) => format!(
                "Day {day}: {} at '{name}' at {time}, outside the local {}–{}.",
                meal.name(En).to_lowercase(),
                window.from,
                window.to
            ),
            (Check::MealTime { day, name, meal, time, window }, Ko) => format!(
                "{day}일차 {} '{name}'이 {time}로, 현지 식사 시간 {}–{} 밖입니다.",
                meal.name(Ko),
                window.from,
                window.to
            ),
            (Check::CafeAsLunch { day, name }, En) => format!("Day {day}: '{name}' is a café, not lunch."),
            (Check::CafeAsLunch { day, name }, Ko) => format!("{day}일차 '{name}'은 카페라 점심이 되지 않습니다."),
            (Check::DaySpread { day, km }, En) => format!("Day {day}: the stops are {km} km apart."),
            (Check::DaySpread { day, km }, Ko) => format!("{day}일차 장소들이 {km}km나 떨어져 있습니다."),
            (Check::RouteDetour { day, efficiency }, En) => {
                format!("Day {day}: the route is a detour (the shortest order is {efficiency}% of it).")
            }
            (Check::RouteDetour { day, efficiency }, Ko) => {
                format!("{day}일차 동선이 돌아갑니다 (최단 순서는 그 {efficiency}%).")
            }
            (Check::RestaurantReuse { name, times }, En) => format!("'{name}' is used for {times} meals."),
            (Check::RestaurantReuse { name, times }, Ko) => format!("'{name}'에서 식사를 {times}번 합니다."),
            (Check::ConsecutiveMeals { day, name }, En) => {
                format!("Day {day}: '{name}' twice in a row.")
            }
            (Check::ConsecutiveMeals { day, name }, Ko) => {
                format!("{day}일차 '{name}'에서 연달아 식사합니다.")
            }
            (Check::FewSights { day, count }, En) => {
                format!("Day {day} has {count} things to see or do besides meals (at least {MIN_SIGHTS}).")
            }
            (Check::FewSights { day, count }, Ko) => {
                format!("{day}일차에 식사 외 볼거리가 {count}개입니다 ({MIN_SIGHTS}개 이상 권장).")
            }
            (Check::Holiday { day, name }, En) => {
                format!("Day {day} is a public holiday ({}): some places may close or be crowded.", name.en)
            }
            (Check::Holiday { day, name }, Ko) => {
                format!("{day}일차는 공휴일({})입니다. 문을 닫거나 붐비는 곳이 있을 수 있습니다.", name.ko)
            }
            (Check::ClosedDay { day, name }, En) => format!("Day {day}: '{name}' is closed that day."),
            (Check::ClosedDay { day, name }, Ko) => format!("{day}일차에는 '{name}'이 문을 닫습니다."),
            (Check::OutsideHours { day, name, time, open, close }, En) => {
                format!("Day {day}: '{name}' at {time} is outside its opening hours ({open}–{close}).")
            }
            (Check::OutsideHours { day, name, time, open, close }, Ko) => {
                format!("{day}일차 '{name}' 방문 시각 {time}이 운영 시간({open}–{close}) 밖입니다.")
            }
        }
    }
}

/// Free time on purpose: a rest activity, or one that says so.
pub fn is_free_time(a: &Activity) -> bool {
    if a.category == Category::Rest {
        return true;
    }
    let text = format!("{} {}", a.name, a.description).to_lowercase();
    ["free time", "at leisure", "자유 시간", "자유시간"].iter().any(|k| text.contains(k))
}

/// Something to see or do: not a meal, a café, a rest or getting somewhere.
pub fn is_sight(a: &Activity) -> bool {
    !matches!(a.category, Category::Food | Category::Cafe | Category::Rest | Category::Transport)
}

/// A day declared for rest: its theme says so, or it holds a long rest.
pub fn is_rest_day(day: &Day) -> bool {
    is_themed_rest_day(day) || day.activities.iter().any(|a| a.category == Category::Rest && a.duration_minutes >= 120)
}

/// A day whose theme declares it a day of rest ("Free day: …", "휴식").
pub fn is_themed_rest_day(day: &Day) -> bool {
    let theme = day.theme.to_lowercase();
    ["rest", "free day", "휴식", "자유"].iter().any(|k| theme.contains(k))
}

/// Outdoor nature: parks, beaches, trails.
pub fn is_outdoor_nature(a: &Activity) -> bool {
    a.category == Category::Nature && !a.indoor
}

/// A day trip: one activity that takes most of the day.
pub fn is_day_trip(day: &Day) -> bool {
    day.activities.iter().any(|a| !a.is_meal() && a.duration_minutes >= DAY_TRIP_MINUTES)
}

/// Minutes needed between two consecutive activities: the travel between them, when both are located.
pub fn travel_needed(profile: &DestinationProfile, a: &Activity, b: &Activity) -> Option<u16> {
    Some(profile.transit.between(a.location?, b.location?))
}

/// Sunrise and sunset on a day of the trip at `at`, as clock times (clamped to the day).
pub fn sun_times(ctx: &CheckContext, index: usize, date: Date, at: GeoPoint) -> Option<(ClockTime, ClockTime)> {
    let (rise, set) = sun::sunrise_sunset(date, at.lat, at.lon, ctx.utc_offset(index, at.lon))?;
    let clock = |m: i32| ClockTime::from_minutes(m.clamp(0, 24 * 60) as u16);
    Some((clock(rise), clock(set)))
}

/// Every commonsense finding in `plan`, day by day, then the trip-wide ones.
pub fn check(plan: &Plan, ctx: &CheckContext) -> Vec<Check> {
    let mut out = Vec::new();
    let origin = GeoPoint { lat: plan.destination.lat, lon: plan.destination.lon };
    for (index, day) in plan.days.iter().enumerate() {
        out.extend(check_day(day, index, origin, ctx));
    }
    check_restaurants(plan, &mut out);
    out
}

/// The findings of one day (`index` is 0-based; `origin` is the destination's centre).
pub fn check_day(day: &Day, index: usize, origin: GeoPoint, ctx: &CheckContext) -> Vec<Check> {
    let mut out = Vec::new();
    let n = day.day;
    let profile = &ctx.profile;
    if let Some(h) = profile.holiday(day.date) {
        out.push(Check::Holiday { day: n, name: h.name.clone() });
    }
    for pair in day.activities.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let given = u32::from(b.time.minutes()).saturating_sub(a.end_minutes());
        let needed = travel_needed(profile, a, b).unwrap_or(0);
        if given < u32::from(needed) {
            out.push(Check::TravelTime { day: n, to: b.name.clone(), needed, given });
        } else if given - u32::from(needed) > MAX_IDLE_MINUTES && !is_free_time(a) && !is_free_time(b) {
            out.push(Check::IdleGap { day: n, after: a.name.clone(), minutes: given - u32::from(needed) });
        }
    }
    let sun = sun_times(ctx, index, day.date, origin);
    let has_lunch = day.activities.iter().any(|a| a.is_meal() && profile.meal_windows.lunch.contains(a.time));
    for a in &day.activities {
        let name = || a.name.clone();
        if a.category == Category::Nightlife && a.time < NIGHTLIFE_FROM {
            out.push(Check::NightlifeEarly { day: n, name: name(), time: a.time });
        }
        if is_outdoor_nature(a) {
            let here = a.location.map_or(sun, |at| sun_times(ctx, index, day.date, at));
            if let Some((rise, set)) = here {
                let late = a.end_minutes() as i32 > i32::from(set.minutes()) + AFTER_SUNSET_MINUTES;
                let early = i32::from(a.time.minutes()) + 30 < i32::from(rise.minutes());
                if late || early {
                    out.push(Check::NatureInDark { day: n, name: name(), sunset: set });
                }
            }
            if a.duration_minutes >= LONG_HIKE_MINUTES && a.time > HIKE_START_BY {
                out.push(Check::LateHike { day: n, name: name(), time: a.time });
            }
        }
        if !a.indoor && !a.is_meal() && day.weather.temp_max_c >= HOT_FROM_C {
            let start = u32::from(a.time.minutes()).max(u32::from(MIDDAY.from.minutes()));
            let end = a.end_minutes().min(u32::from(MIDDAY.to.minutes()));
            if end >= start + 30 {
                out.push(Check::MiddayHeat { day: n, name: name(), temp_max_c: day.weather.temp_max_c.round() as i32 });
            }
        }
        if a.is_meal() {
            let meal = MealKind::at(a.time);
            let window = meal.window(profile);
            if !window.contains(a.time) {
                out.push(Check::MealTime { day: n, name: name(), meal, time: a.time, window });
            }
        }
        if a.category == Category::Cafe && !has_lunch && profile.meal_windows.lunch.contains(a.time) {
            out.push(Check::CafeAsLunch { day: n, name: name() });
        }
        match profile.closure(&a.name, day.date, a.time, a.end_minutes()) {
            Some(Closure::Day) => out.push(Check::ClosedDay { day: n, name: name() }),
            Some(Closure::Hours { open, close }) => {
                out.push(Check::OutsideHours { day: n, name: name(), time: a.time, open, close });
            }
            None => {}
        }
    }
    let points: Vec<GeoPoint> = day.activities.iter().filter_map(|a| a.location).collect();
    let spread = points.iter().flat_map(|a| points.iter().map(move |b| route::km(*a, *b))).fold(0.0, f64::max);
    if spread > MAX_SPREAD_KM && !is_day_trip(day) {
        out.push(Check::DaySpread { day: n, km: spread.round() as u32 });
    }
    if let Some(r) = route::route(day)
        && r.efficiency() < MIN_EFFICIENCY
    {
        out.push(Check::RouteDetour { day: n, efficiency: (r.efficiency() * 100.0).round() as u32 });
    }
    let sights = day.activities.iter().filter(|a| is_sight(a)).count();
    if sights < MIN_SIGHTS && !is_rest_day(day) && !is_day_trip(day) {
        out.push(Check::FewSights { day: n, count: sights });
    }
    out
}

fn check_restaurants(plan: &Plan, out: &mut Vec<Check>) {
    let mut uses: HashMap<String, (u32, String)> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut previous: Option<String> = None;
    for day in &plan.days {
        for a in day.activities.iter().filter(|a| a.is_meal()) {
            let key = normalize_name(&a.name);
            let e = uses.entry(key.clone()).or_insert_with(|| {
                order.push(key.clone());
                (0, a.name.clone())
            });
            e.0 += 1;
            if previous.as_deref() == Some(key.as_str()) {
                out.push(Check::ConsecutiveMeals { day: day.day, name: a.name.clone() });
            }
            previous = Some(key);
        }
    }
    for key in order {
        let (times, name) = &uses[&key];
        if *times > MAX_RESTAURANT_USES {
            out.push(Check::RestaurantReuse { name: name.clone(), times: *times });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::destination::{Holiday, MealWindows, OpeningHours, match_key};
    use crate::rules::tests::{activity, day, plan};
    use jiff::civil::date;
    use std::sync::Arc;

    fn paris_like() -> CheckContext {
        let t = ClockTime::hm;
        let mut profile = DestinationProfile::generic();
        profile.meal_windows = MealWindows {
            breakfast: TimeWindow { from: t(7, 30), to: t(10, 30) },
            lunch: TimeWindow { from: t(12, 0), to: t(14, 30) },
            dinner: TimeWindow { from: t(19, 30), to: t(22, 30) },
        };
        profile.holidays = Arc::from([Holiday {
            date: date(2025, 11, 11),
            name: Localized { en: "Armistice Day".into(), ko: "휴전 기념일".into() },
            closes: vec![],
        }]);
        CheckContext { profile, utc_offsets: vec![540] }
    }

    fn kinds(plan: &Plan) -> Vec<&'static str> {
        check(plan, &paris_like()).iter().map(Check::kind).collect()
    }

    fn at(mut a: Activity, lat: f64, lon: f64) -> Activity {
        a.location = Some(GeoPoint { lat, lon });
        a
    }

    #[test]
    fn each_check_is_detected() {
        // Day 1 (2025-11-10, Seoul, sunset about 17:25): a café lunch, nightlife at 11:00, a park at
        // 19:00, an early dinner and a 150-minute hole.
        let d1 = day(
            1,
            10,
            vec![
                activity("10:30", 60, "Hongdae clubs", Category::Nightlife, 0, true),
                activity("12:30", 45, "Café Onion", Category::Cafe, 0, true),
                activity("15:45", 60, "Palace", Category::Sightseeing, 0, true),
                activity("17:00", 60, "Ichiran", Category::Food, 0, true),
                activity("19:00", 60, "Seoul Forest", Category::Nature, 0, false),
            ],
        );
        // Day 2 (a holiday, hot): Ichiran again at the next meal, a late long hike, a far-flung day.
        let mut d2 = day(
            2,
            10,
            vec![
                at(activity("12:30", 60, "Ichiran", Category::Food, 0, true), 37.56, 126.97),
                at(activity("14:00", 280, "Bukhansan trail", Category::Nature, 0, false), 37.66, 126.98),
                at(activity("19:30", 60, "Ichiran", Category::Food, 0, true), 36.9, 126.97),
            ],
        );
        d2.weather.temp_max_c = 33.0;
        let d3 = day(
            3,
            10,
            vec![
                at(activity("09:00", 60, "West", Category::Sightseeing, 0, true), 37.55, 126.90),
                at(activity("10:05", 60, "East", Category::Sightseeing, 0, true), 37.55, 127.10),
                at(activity("11:10", 60, "West again", Category::Culture, 0, true), 37.55, 126.91),
                at(activity("13:00", 60, "Lunch", Category::Food, 0, true), 37.55, 127.00),
            ],
        );
        let found = kinds(&plan(vec![d1, d2, d3]));
        for kind in [
            "nightlife_early",
            "cafe_as_lunch",
            "idle_gap",
            "meal_time",
            "nature_in_dark",
            "holiday",
            "consecutive_meals",
            "restaurant_reuse",
            "late_hike",
            "midday_heat",
            "day_spread",
            "few_sights",
            "travel_time",
            "route_detour",
        ] {
            assert!(found.contains(&kind), "{kind} not in {found:?}");
        }
    }

    #[test]
    fn bundled_places_keep_to_their_hours_closing_days_and_holidays() {
        let t = ClockTime::hm;
        let mut ctx = paris_like();
        let hours = |id: &str, name: &str, open, close, closed_days| OpeningHours {
            id: id.into(),
            key: match_key(name),
            open,
            close,
            closed_days,
        };
        let louvre = |name| hours("louvre", name, t(9, 0), t(18, 0), 1 << 1);
        let chez_paul = |name| hours("chez-paul", name, t(12, 0), t(23, 0), 0);
        let mut table =
            vec![louvre("Louvre Museum"), louvre("루브르 박물관"), chez_paul("Chez Paul"), chez_paul("셰 폴")];
        table.sort_by(|a, b| a.key.cmp(&b.key));
        ctx.profile.opening_hours = table.into();
        ctx.profile.holidays = Arc::from([Holiday {
            date: date(2025, 11, 12),
            name: ctx.profile.holidays[0].name.clone(),
            closes: vec!["chez-paul".into()],
        }]);
        // Monday: the museum from opening, however its name is written, and again until after closing.
        let monday = day(
            1,
            10,
            vec![
                activity("09:00", 120, "LOUVRE-museum", Category::Culture, 0, true),
                activity("12:30", 60, "Chez Paul", Category::Food, 0, true),
                activity("17:00", 90, "Louvre Museum", Category::Culture, 0, true),
            ],
        );
        // Tuesday, its closing day; Wednesday, a holiday that closes the restaurant.
        let tuesday = day(2, 10, vec![activity("10:00", 120, "루브르 박물관", Category::Culture, 0, true)]);
        let wednesday = day(3, 10, vec![activity("12:30", 60, "셰 폴", Category::Food, 0, true)]);
        let found: Vec<Check> = check(&plan(vec![monday, tuesday, wednesday]), &ctx)
            .into_iter()
            .filter(|c| matches!(c, Check::ClosedDay { .. } | Check::OutsideHours { .. }))
            .collect();
        assert_eq!(
            found,
            [
                Check::OutsideHours {
                    day: 1,
                    name: "Louvre Museum".into(),
                    time: t(17, 0),
                    open: t(9, 0),
                    close: t(18, 0)
                },
                Check::ClosedDay { day: 2, name: "루브르 박물관".into() },
                Check::ClosedDay { day: 3, name: "셰 폴".into() },
            ]
        );
        assert_eq!(
            found[0].message(Language::En),
            "Day 1: 'Louvre Museum' at 17:00 is outside its opening hours (09:00–18:00)."
        );
        assert_eq!(found[1].message(Language::Ko), "2일차에는 '루브르 박물관'이 문을 닫습니다.");
        // Without bundled hours (a place the data does not know), nothing is said.
        assert!(DestinationProfile::generic().opening_hours("Louvre Museum").is_none());
    }

    #[test]
    fn a_sensible_day_passes_and_free_time_may_be_idle() {
        let d = day(
            1,
            10,
            vec![
                activity("09:00", 120, "Palace", Category::Sightseeing, 0, true),
                activity("12:00", 60, "Bistro", Category::Food, 0, true),
                activity("13:30", 60, "Free time in the Marais", Category::Rest, 0, true),
                activity("17:00", 90, "Museum", Category::Culture, 0, true),
                activity("19:30", 90, "Brasserie", Category::Food, 0, true),
                activity("21:30", 90, "Jazz club", Category::Nightlife, 0, true),
            ],
        );
        assert_eq!(kinds(&plan(vec![d])), Vec::<&str>::new());
    }

    #[test]
    fn meals_are_told_apart_by_time() {
        assert_eq!(MealKind::at(ClockTime::hm(8, 0)), MealKind::Breakfast);
        assert_eq!(MealKind::at(ClockTime::hm(13, 0)), MealKind::Lunch);
        assert_eq!(MealKind::at(ClockTime::hm(17, 30)), MealKind::Dinner);
    }
}
