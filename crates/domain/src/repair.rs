//! Deterministic repair: what the service does to a plan that still breaks rules after the refine
//! iterations. It fixes what has a fix (sums, numbering, ordering, overlaps, extra days, dropping the
//! costliest optional activity) and returns the findings that remain.

use std::collections::HashSet;

use crate::plan::{Activity, ClockTime, Day, Plan};
use crate::rules::{
    EARLIEST, Finding, LATEST, MAX_ACTIVITIES, MIN_ACTIVITIES, ValidationContext, normalize_name, sights_elsewhere,
    validate,
};

/// Repairs `plan` in place and returns the findings no repair could clear (hard ones first).
pub fn repair(plan: &mut Plan, ctx: &ValidationContext) -> Vec<Finding> {
    let expected = ctx.dates.len() as usize;
    plan.days.truncate(expected);
    for (index, day) in plan.days.iter_mut().enumerate() {
        fix_day(day, index, ctx);
    }
    drop_repeats(plan.days.iter_mut(), HashSet::new());
    for day in &mut plan.days {
        fix_rain(day);
    }
    plan.recompute_costs();
    if plan.total_cost > ctx.budget_ceiling {
        // Dropping activities is only worth it when it gets the plan under the ceiling.
        let mut trimmed = plan.clone();
        trim_to_budget(&mut trimmed, ctx.budget_ceiling, |_| true);
        if trimmed.total_cost <= ctx.budget_ceiling {
            *plan = trimmed;
        }
    }
    remaining(plan, ctx)
}

/// [`repair`] that touches day `index` (0-based) only: every other day stays exactly as it is. A place
/// the other days visit is dropped from this day, and only this day's activities are trimmed to the
/// budget. For a plan of which one day was written again.
pub fn repair_day(plan: &mut Plan, index: usize, ctx: &ValidationContext) -> Vec<Finding> {
    if index < plan.days.len() {
        let elsewhere = sights_elsewhere(&plan.days, index);
        let day = &mut plan.days[index];
        fix_day(day, index, ctx);
        drop_repeats(std::iter::once(&mut *day), elsewhere);
        fix_rain(day);
        plan.recompute_costs();
        if plan.total_cost > ctx.budget_ceiling {
            let mut trimmed = plan.clone();
            trim_to_budget(&mut trimmed, ctx.budget_ceiling, |di| di == index);
            if trimmed.total_cost <= ctx.budget_ceiling {
                *plan = trimmed;
            }
        }
    }
    remaining(plan, ctx)
}

/// Numbering, dates, empty names, the schedule and the most activities of one day.
fn fix_day(day: &mut Day, index: usize, ctx: &ValidationContext) {
    day.day = index as u32 + 1;
    day.date = ctx.dates.date(index as u32);
    day.activities.retain(|a| !a.name.trim().is_empty());
    fix_schedule(day);
    while day.activities.len() > MAX_ACTIVITIES {
        if !drop_costliest(day, |_| true, MAX_ACTIVITIES - 1) {
            break;
        }
    }
}

/// A rainy day keeps at most one outdoor activity where it can spare the others.
fn fix_rain(day: &mut Day) {
    if day.weather.is_rainy() {
        while day.activities.iter().filter(|a| !a.indoor).count() > 1 {
            if !drop_costliest(day, |a| !a.indoor, MIN_ACTIVITIES) {
                break;
            }
        }
    }
}

fn remaining(plan: &Plan, ctx: &ValidationContext) -> Vec<Finding> {
    let mut remaining = validate(plan, ctx);
    remaining.sort_by_key(Finding::rule);
    remaining
}

/// Drops the costliest optional activity, again and again, until the plan fits `ceiling` or nothing
/// more can go (meals stay, and every day keeps its minimum of activities), from the days `day` allows.
fn trim_to_budget(plan: &mut Plan, ceiling: u64, day: impl Fn(usize) -> bool) {
    while plan.total_cost > ceiling {
        let costliest = plan
            .days
            .iter()
            .enumerate()
            .filter(|(di, d)| day(*di) && d.activities.len() > MIN_ACTIVITIES)
            .flat_map(|(di, d)| d.activities.iter().enumerate().map(move |(ai, a)| (di, ai, a)))
            .filter(|(_, _, a)| !a.is_meal() && a.cost > 0)
            .max_by_key(|(_, _, a)| a.cost)
            .map(|(di, ai, _)| (di, ai));
        let Some((di, ai)) = costliest else { break };
        plan.days[di].activities.remove(ai);
        plan.recompute_costs();
    }
}

/// Sorts by start time, then moves each activity to start no earlier than 06:00 and no earlier than the
/// previous one ends; an optional activity pushed past 23:59 is dropped.
fn fix_schedule(day: &mut Day) {
    day.activities.sort_by_key(|a| a.time);
    let mut fixed: Vec<Activity> = Vec::with_capacity(day.activities.len());
    let mut earliest = u32::from(EARLIEST.minutes());
    for mut a in day.activities.drain(..) {
        let start = u32::from(a.time.minutes()).max(earliest);
        if start > u32::from(LATEST.minutes()) {
            if a.is_meal() {
                a.time = LATEST;
                fixed.push(a);
            }
            continue;
        }
        a.time = ClockTime::from_minutes(start as u16);
        // Two activities must not share a start time (strictly increasing), even with zero duration.
        earliest = a.end_minutes().max(start + 1);
        fixed.push(a);
    }
    day.activities = fixed;
}

/// Removes the costliest non-meal activity matching `pred`, if the day keeps at least `keep` activities.
fn drop_costliest(day: &mut Day, pred: impl Fn(&Activity) -> bool, keep: usize) -> bool {
    if day.activities.len() <= keep {
        return false;
    }
    let victim = day
        .activities
        .iter()
        .enumerate()
        .filter(|(_, a)| !a.is_meal() && pred(a))
        .max_by_key(|(_, a)| a.cost)
        .map(|(i, _)| i);
    match victim {
        Some(i) => {
            day.activities.remove(i);
            true
        }
        None => false,
    }
}

/// Drops a repeated (non-meal) activity where its day can spare it; `seen` holds the places visited
/// before these days.
fn drop_repeats<'a>(days: impl Iterator<Item = &'a mut Day>, mut seen: HashSet<String>) {
    for day in days {
        let mut i = 0;
        while i < day.activities.len() {
            let a = &day.activities[i];
            let key = normalize_name(&a.name);
            if !a.is_meal() && !seen.insert(key) && day.activities.len() > MIN_ACTIVITIES {
                day.activities.remove(i);
            } else {
                i += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Category;
    use crate::rules::Rule;
    use crate::rules::tests::{activity, ctx, day, good_day, plan};

    #[test]
    fn sums_numbering_order_and_overlaps_are_repaired() {
        let mut p = plan(vec![good_day(7), good_day(1), good_day(2), good_day(3)]);
        p.days[0].activities.reverse();
        p.days[0].activities[1].time = ClockTime::hm(9, 30);
        p.total_cost = 1;
        p.days[2].daily_cost = 2;
        let remaining = repair(&mut p, &ctx(1_000_000));
        assert_eq!(remaining, vec![]);
        assert_eq!(p.days.len(), 3);
        assert_eq!(p.days[0].day, 1);
        let times: Vec<String> = p.days[0].activities.iter().map(|a| a.time.to_string()).collect();
        assert_eq!(times, ["09:00", "11:00", "12:30", "18:00"]);
    }

    #[test]
    fn over_budget_drops_the_costliest_optional_activities_first() {
        let mut p = plan(vec![good_day(1), good_day(2), good_day(3)]);
        p.days[1].activities.push(activity("20:00", 60, "Show", Category::Activity, 90000, true));
        let ceiling = p.total_cost - 1;
        let remaining = repair(&mut p, &ctx(ceiling));
        assert_eq!(remaining, vec![]);
        assert!(p.days[1].activities.iter().all(|a| a.name != "Show"));
        assert_eq!(p.total_cost, p.days.iter().map(|d| d.daily_cost).sum::<u64>());
    }

    #[test]
    fn meals_are_never_dropped_so_an_impossible_budget_remains_a_warning() {
        let mut p = plan(vec![good_day(1), good_day(2), good_day(3)]);
        let remaining = repair(&mut p, &ctx(100));
        assert_eq!(remaining.iter().map(Finding::rule).collect::<Vec<_>>(), vec![Rule::Budget]);
        assert!(p.days.iter().all(|d| d.activities.len() == 4), "nothing dropped in vain");
    }

    #[test]
    fn rainy_days_lose_outdoor_extras_and_repeats_are_dropped() {
        let mut rainy = good_day(2);
        rainy.weather.precipitation_chance = 90;
        rainy.activities.push(activity("20:00", 60, "Night Walk", Category::Nature, 0, false));
        rainy.activities.push(activity("21:30", 60, "palace 1", Category::Sightseeing, 0, false));
        let mut p = plan(vec![good_day(1), rainy, good_day(3)]);
        let remaining = repair(&mut p, &ctx(1_000_000));
        assert_eq!(remaining, vec![]);
        assert_eq!(p.days[1].activities.iter().filter(|a| !a.indoor).count(), 1);
    }

    #[test]
    fn missing_days_and_too_few_activities_cannot_be_repaired() {
        let mut thin = good_day(2);
        thin.activities.truncate(2);
        let mut p = plan(vec![good_day(1), thin]);
        let remaining = repair(&mut p, &ctx(1_000_000));
        let rules: Vec<Rule> = remaining.iter().map(Finding::rule).collect();
        assert_eq!(rules, vec![Rule::DayCount, Rule::DaySchedule]);
        assert!(remaining.iter().all(Finding::is_hard));
    }

    #[test]
    fn activities_pushed_past_midnight_are_dropped_unless_meals() {
        let mut d = day(
            1,
            10,
            vec![
                activity("22:00", 120, "Club", Category::Nightlife, 0, true),
                activity("23:30", 60, "Bar", Category::Nightlife, 0, true),
                activity("05:00", 60, "Sunrise", Category::Nature, 0, false),
                activity("12:00", 60, "Lunch", Category::Food, 0, true),
            ],
        );
        fix_schedule(&mut d);
        let names: Vec<&str> = d.activities.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["Sunrise", "Lunch", "Club"]);
        assert_eq!(d.activities[0].time, ClockTime::hm(6, 0));
    }

    #[test]
    fn repairing_one_day_leaves_the_others_exactly_as_they_are() {
        let mut rainy = good_day(2);
        rainy.weather.precipitation_chance = 90;
        rainy.activities.push(activity("20:00", 60, "Night Walk", Category::Nature, 0, false));
        rainy.activities.push(activity("21:30", 60, "palace 1", Category::Sightseeing, 90000, true));
        let mut p = plan(vec![good_day(1), rainy, good_day(3)]);
        // Day 3 repeats day 1's palace too; a whole-plan repair would drop it there, this one may not.
        p.days[2].activities.push(activity("20:00", 60, "Palace 1", Category::Sightseeing, 0, true));
        p.recompute_costs();
        let (first, third) = (p.days[0].clone(), p.days[2].clone());
        let ceiling = p.total_cost - 1;
        let remaining = repair_day(&mut p, 1, &ctx(ceiling));
        assert_eq!((&p.days[0], &p.days[2]), (&first, &third));
        assert!(p.days[1].activities.iter().all(|a| normalize_name(&a.name) != "palace 1"), "{:?}", p.days[1]);
        assert_eq!(p.days[1].activities.iter().filter(|a| !a.indoor).count(), 1);
        assert_eq!(remaining.iter().map(Finding::rule).collect::<Vec<_>>(), vec![Rule::Repeats]);
    }
}
