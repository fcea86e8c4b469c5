//! Repairs for commonsense findings that need no judgement: the day's stops put in their shortest order
//! with the meals fixed, start times shifted to leave the travel time and to meet meal windows and
//! nightlife hours, idle gaps closed, and a misplaced stop swapped with another of the same day. Each
//! repair is tried on a copy and kept only when the day has fewer findings and still keeps rule 2.

use crate::plan::{Category, ClockTime, Day, GeoPoint};
use crate::rules::{EARLIEST, LATEST};

use super::{CheckContext, MAX_IDLE_MINUTES, MealKind, NIGHTLIFE_FROM, Severity, check_day, is_free_time, route};

/// Repairs one day in place (`index` 0-based, `origin` the destination's centre); returns whether it
/// changed.
pub fn reschedule_day(day: &mut Day, index: usize, origin: GeoPoint, ctx: &CheckContext) -> bool {
    let score = |d: &Day| check_day(d, index, origin, ctx).iter().filter(|c| c.severity() == Severity::Warning).count();
    let mut best = score(day);
    if best == 0 {
        return false;
    }
    let mut changed = false;
    // A few rounds: a reorder can make a retiming possible, and a swap a reorder.
    for _ in 0..3 {
        let mut improved = false;
        for candidate in candidates(day, ctx) {
            let s = score(&candidate);
            if s < best && keeps_schedule_rules(&candidate) {
                best = s;
                *day = candidate;
                improved = true;
                changed = true;
            }
        }
        if !improved || best == 0 {
            break;
        }
    }
    changed
}

/// Ways the day could be: retimed as it is, reordered (shortest route) and retimed, and with two stops
/// that are not meals swapped and retimed.
fn candidates(day: &Day, ctx: &CheckContext) -> Vec<Day> {
    let mut out: Vec<Day> = retimed(day, ctx).into_iter().collect();
    if let Some(r) = route::route(day) {
        out.extend(retimed(&in_order(day, &r.order), ctx));
    }
    let movable: Vec<usize> = (0..day.activities.len()).filter(|&i| !route::is_fixed(&day.activities[i])).collect();
    for (x, &i) in movable.iter().enumerate() {
        for &j in &movable[x + 1..] {
            let mut order: Vec<usize> = (0..day.activities.len()).collect();
            order.swap(i, j);
            out.extend(retimed(&in_order(day, &order), ctx));
        }
    }
    out
}

/// The day's activities in `order`, each taking the planned start time of the slot it moves into.
pub fn in_order(day: &Day, order: &[usize]) -> Day {
    let mut out = day.clone();
    out.activities = order
        .iter()
        .zip(&day.activities)
        .map(|(&i, slot)| crate::plan::Activity { time: slot.time, ..day.activities[i].clone() })
        .collect();
    out
}

/// The day's stops in the same order, each starting as close to its planned time as the travel from the
/// previous one allows, meals no earlier than their window, nightlife no earlier than 18:00, and no
/// stop left waiting more than the idle allowance when it could start sooner. Times are on 5 minutes.
/// `None` when that pushes a meal out of its window.
pub fn retimed(day: &Day, ctx: &CheckContext) -> Option<Day> {
    let profile = &ctx.profile;
    let mut out = day.clone();
    let mut previous: Option<(u32, Option<GeoPoint>, bool)> = None;
    for a in &mut out.activities {
        let planned = u32::from(a.time.minutes());
        let mut floor = u32::from(EARLIEST.minutes());
        let window = a.is_meal().then(|| MealKind::at(a.time).window(profile));
        if let Some(w) = window {
            floor = floor.max(u32::from(w.from.minutes()));
        }
        if a.category == Category::Nightlife {
            floor = floor.max(u32::from(NIGHTLIFE_FROM.minutes()));
        }
        let ready = match previous {
            Some((end, from, _)) => {
                let travel = match (from, a.location) {
                    (Some(f), Some(t)) => u32::from(profile.transit.between(f, t)),
                    _ => 0,
                };
                round5(end + travel)
            }
            None => 0,
        };
        let mut start = planned.max(floor).max(ready);
        // A stop that is not tied to a time of day starts soon after the previous one.
        let free = previous.is_some_and(|(_, _, free)| free) || is_free_time(a);
        if previous.is_some() && !a.is_meal() && !free && start > ready.max(floor) + MAX_IDLE_MINUTES {
            start = ready.max(floor);
        }
        if window.is_some_and(|w| start >= u32::from(w.to.minutes())) {
            return None;
        }
        a.time = ClockTime::from_minutes(start.min(u32::from(u16::MAX)) as u16);
        previous = Some((a.end_minutes(), a.location, is_free_time(a)));
    }
    Some(out)
}

fn round5(m: u32) -> u32 {
    m.div_ceil(5) * 5
}

/// Rule 2's schedule part: start times in 06:00–23:59, increasing, no overlap.
fn keeps_schedule_rules(day: &Day) -> bool {
    day.activities.iter().all(|a| (EARLIEST..=LATEST).contains(&a.time))
        && day
            .activities
            .windows(2)
            .all(|w| w[0].time < w[1].time && w[0].end_minutes() <= u32::from(w[1].time.minutes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::{Check, check_day};
    use crate::destination::DestinationProfile;
    use crate::rules::tests::{activity, day};

    fn ctx() -> CheckContext {
        CheckContext { profile: DestinationProfile::generic(), utc_offsets: vec![540] }
    }

    const SEOUL: GeoPoint = GeoPoint { lat: 37.5665, lon: 126.978 };

    fn at(mut a: crate::plan::Activity, lat: f64, lon: f64) -> crate::plan::Activity {
        a.location = Some(GeoPoint { lat, lon });
        a
    }

    #[test]
    fn a_zigzag_is_reordered_and_retimed_with_lunch_in_place() {
        // Hongdae, Jamsil, Hongdae-side, lunch in Jongno, dinner at 16:15.
        let mut d = day(
            1,
            10,
            vec![
                at(activity("09:00", 60, "Hongdae street", Category::Sightseeing, 0, false), 37.556, 126.923),
                at(activity("10:00", 60, "Lotte World Tower", Category::Sightseeing, 0, true), 37.5126, 127.1025),
                at(activity("11:00", 60, "Mangwon market", Category::Sightseeing, 0, false), 37.556, 126.905),
                at(activity("12:30", 60, "Lunch", Category::Food, 0, true), 37.570, 126.985),
                at(activity("14:00", 90, "Seokchon lake", Category::Nature, 0, false), 37.509, 127.100),
                at(activity("16:15", 60, "Dinner", Category::Food, 0, true), 37.510, 127.06),
            ],
        );
        let before = check_day(&d, 0, SEOUL, &ctx());
        assert!(before.iter().any(|c| matches!(c, Check::TravelTime { .. })), "{before:?}");
        assert!(before.iter().any(|c| matches!(c, Check::MealTime { .. })), "{before:?}");
        assert!(reschedule_day(&mut d, 0, SEOUL, &ctx()));
        let after = check_day(&d, 0, SEOUL, &ctx());
        assert!(after.len() < before.len(), "{after:?}");
        assert!(!after.iter().any(|c| matches!(c, Check::TravelTime { .. } | Check::MealTime { .. })), "{after:?}");
        assert!(keeps_schedule_rules(&d));
        let lunch = d.activities.iter().position(|a| a.name == "Lunch").unwrap();
        assert_eq!(lunch, 3, "the meal keeps its slot");
    }

    #[test]
    fn nightlife_moves_to_the_evening_and_a_sound_day_is_left_alone() {
        let mut d = day(
            1,
            10,
            vec![
                activity("10:30", 60, "Club", Category::Nightlife, 0, true),
                activity("12:00", 60, "Lunch", Category::Food, 0, true),
                activity("14:00", 120, "Museum", Category::Culture, 0, true),
                activity("18:30", 90, "Dinner", Category::Food, 0, true),
            ],
        );
        assert!(reschedule_day(&mut d, 0, SEOUL, &ctx()));
        let club = d.activities.iter().find(|a| a.name == "Club").unwrap();
        assert!(club.time >= NIGHTLIFE_FROM, "{d:?}");
        let mut sound = day(
            2,
            10,
            vec![
                activity("09:00", 120, "Palace", Category::Sightseeing, 0, true),
                activity("12:00", 60, "Lunch", Category::Food, 0, true),
                activity("13:30", 120, "Museum", Category::Culture, 0, true),
                activity("16:30", 90, "Market", Category::Shopping, 0, true),
                activity("18:30", 90, "Dinner", Category::Food, 0, true),
            ],
        );
        assert_eq!(check_day(&sound, 0, SEOUL, &ctx()), vec![]);
        assert!(!reschedule_day(&mut sound, 0, SEOUL, &ctx()));
    }
}
