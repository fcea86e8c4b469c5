//! The scorecard (`tripstream eval`): a corpus of offline plans — every bundled city × budget × 1/3/7/14
//! days × two seasons × two languages, with interests and travellers varied — run through the real
//! engine, and the numbers of issue 15's table measured on what it delivers, with the wall time of each
//! 14-day plan (printed, never asserted: build with `--release` for the number the target is about).

pub mod faults;

use std::collections::HashMap;
use std::sync::Arc;

use tripstream_domain::checks::{self, Check, MealKind, check, is_free_time, is_rest_day, is_sight, route};
use tripstream_domain::plan::{Category, ClockTime};
use tripstream_domain::request::{RawPlanRequest, RequestLimits};
use tripstream_domain::rules::{Finding, Rule, ValidationContext, normalize_name, validate};
use tripstream_domain::{BudgetLevel, Destination, Plan, PlanRequest, StreamEvent};
use tripstream_engine::{Destinations, Engine, EngineConfig, PlanContext};

use crate::catalog::BestTime;
use crate::{BundledDestinations, Catalog, Climatology, OfflineConfig, OfflinePlanner};

/// How much of the corpus to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    /// Every combination (576 plans: 12 cities × 3 budgets × 4 lengths × 2 seasons × 2 languages).
    Full,
    /// One season, one language, 3 and 14 days (72 plans): a smoke test.
    Quick,
}

/// One line of the scorecard.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    pub name: &'static str,
    pub value: String,
    pub target: &'static str,
    /// Whether the value meets the target (`None` where the issue sets none).
    pub met: Option<bool>,
}

#[derive(Debug, Default)]
struct Tally {
    plans: u32,
    delivered: u32,
    rules_pass: u32,
    refined: u32,
    days: u32,
    idle_days: u32,
    free_time_blocks: u32,
    lunch_first_days: u32,
    legs: u32,
    short_legs: u32,
    nightlife_before_17: u32,
    nightlife_before_18: u32,
    nature_in_dark: u32,
    efficiency_sum: f64,
    efficiency_days: u32,
    efficiency_under_08: u32,
    /// Lunches between two located stops, and the walk each adds over going straight between them, km.
    lunch_detours: Vec<f64>,
    spread_days: u32,
    reuse_over_2: u32,
    consecutive_meals: u32,
    most_used_14: Vec<u32>,
    sights_14: Vec<usize>,
    few_sight_days: u32,
    rest_days: u32,
    /// Rest days whose theme says so (the rest hold a rest of two hours or more).
    themed_rest_days: u32,
    rainy_days: u32,
    rainy_meals_only: u32,
    cafe_lunches: u32,
    lunches: u32,
    meal_time: u32,
    heat: u32,
    /// Bundled places on a day they are closed, and outside their opening hours.
    closed: (u32, u32),
    holidays: u32,
    day_trips_on_long_stays: (u32, u32),
    dinners: HashMap<String, (Vec<u16>, u16)>,
    sights_by_budget: HashMap<(String, BudgetLevel), Vec<String>>,
    high_spend: Vec<f64>,
    high_flagship_days: (u32, u32),
    /// Places with a best time of day (morning, afternoon, evening) visited at it, and visited at all.
    best_time: HashMap<BestTime, (u32, u32)>,
    /// Wall time of each 14-day plan, whole pipeline (context, draft, checks, repairs, refinement), ms.
    plan_ms_14: Vec<f64>,
}

/// Runs the corpus and returns the scorecard's lines.
pub async fn run(size: Size) -> Vec<Metric> {
    let catalog = Catalog::bundled();
    let planner = OfflinePlanner::new(catalog.clone(), OfflineConfig::default());
    let engine = Engine::new(Arc::new(planner), Arc::new(Climatology), EngineConfig::default());
    let destinations = BundledDestinations::new(catalog.clone());
    let (lengths, seasons, langs): (&[i64], &[&str], &[&str]) = match size {
        Size::Full => (&[1, 3, 7, 14], &["2026-01-12", "2026-07-13"], &["ko", "en"]),
        Size::Quick => (&[3, 14], &["2026-07-13"], &["en"]),
    };
    let interests: [&[&str]; 4] = [&[], &["food"], &["history", "nature"], &["nightlife", "shopping"]];
    let mut t = Tally::default();
    let mut n = 0usize;
    for d in destinations.list() {
        for budget in BudgetLevel::ALL {
            for &days in lengths {
                for &start in seasons {
                    for &lang in langs {
                        n += 1;
                        let start = if d.id == "bangkok" && start.ends_with("-07-13") { "2026-09-14" } else { start };
                        let req = request(&d, start, days, budget, lang, interests[n % 4], 1 + (n % 3) as i64);
                        let mut events = Vec::new();
                        t.plans += 1;
                        let started = std::time::Instant::now();
                        let result = engine.run(&req, &d, &mut events).await;
                        if days == 14 {
                            t.plan_ms_14.push(started.elapsed().as_secs_f64() * 1000.0);
                        }
                        let Ok(plan) = result else { continue };
                        t.delivered += 1;
                        t.refined += u32::from(events.iter().any(
                            |e| matches!(e, StreamEvent::Status(m) if m.step == tripstream_domain::Step::RefinePlan),
                        ));
                        measure(&mut t, &d, &req, &plan, &catalog);
                    }
                }
            }
        }
    }
    scorecard(&t)
}

fn request(
    d: &Destination,
    start: &str,
    days: i64,
    budget: BudgetLevel,
    lang: &str,
    interests: &[&str],
    travelers: i64,
) -> PlanRequest {
    let start_date: jiff::civil::Date = start.parse().expect("corpus dates parse");
    let end = start_date.checked_add(jiff::Span::new().days(days - 1)).expect("in range").to_string();
    let raw = RawPlanRequest {
        location: Some(d.name.en.clone()),
        start_date: Some(start.into()),
        end_date: Some(end),
        budget: Some(budget.as_str().into()),
        language: Some(lang.into()),
        travelers: Some(travelers),
        interests: (!interests.is_empty()).then(|| interests.iter().map(|s| (*s).to_owned()).collect()),
    };
    PlanRequest::parse(raw, None, RequestLimits::default()).expect("corpus requests are valid")
}

fn measure(t: &mut Tally, d: &Destination, req: &PlanRequest, plan: &Plan, catalog: &Catalog) {
    let days = req.dates.len();
    let vctx = ValidationContext {
        dates: req.dates,
        budget_ceiling: d.budget.for_trip(req.budget, days, req.travelers),
        currency: d.currency.clone(),
    };
    let rules: Vec<Finding> = validate(plan, &vctx).into_iter().filter(|f| f.rule() < Rule::Commonsense).collect();
    t.rules_pass += u32::from(rules.is_empty());
    let ctx =
        PlanContext { request: req.clone(), destination: d.clone(), weather: vec![], weather_source: String::new() };
    let cctx = tripstream_engine::check_context(&ctx);
    let found = check(plan, &cctx);
    if std::env::var_os("TRIPSTREAM_EVAL_SHOW").is_some() {
        for f in rules
            .iter()
            .map(|f| f.message(tripstream_domain::Language::En))
            .chain(found.iter().map(|c| c.message(tripstream_domain::Language::En)))
        {
            eprintln!("{} {:?} {}d: {f}", d.id, req.budget, days);
        }
    }
    let count = |kind: &str| found.iter().filter(|c| c.kind() == kind).count() as u32;
    let days_with = |kind: &str| {
        let mut set: Vec<u32> = found
            .iter()
            .filter(|c| c.kind() == kind)
            .filter_map(|c| match c {
                Check::IdleGap { day, .. } | Check::DaySpread { day, .. } | Check::FewSights { day, .. } => Some(*day),
                _ => None,
            })
            .collect();
        set.dedup();
        set.len() as u32
    };
    t.idle_days += days_with("idle_gap");
    t.spread_days += days_with("day_spread");
    t.few_sight_days += days_with("few_sights");
    t.short_legs += count("travel_time");
    t.nature_in_dark += count("nature_in_dark");
    t.consecutive_meals += count("consecutive_meals");
    t.cafe_lunches += count("cafe_as_lunch");
    t.meal_time += count("meal_time");
    t.heat += count("midday_heat");
    t.closed.0 += count("closed_day");
    t.closed.1 += count("outside_hours");
    t.holidays += count("holiday");
    let data = catalog.get(&d.id);
    let profile = &cctx.profile;
    let mut uses: HashMap<String, u32> = HashMap::new();
    let mut sights_in_trip = Vec::new();
    for day in &plan.days {
        t.days += 1;
        let acts = &day.activities;
        t.legs += acts.windows(2).filter(|w| w[0].location.is_some() && w[1].location.is_some()).count() as u32;
        t.free_time_blocks += acts.iter().filter(|a| is_free_time(a)).count() as u32;
        if acts.first().is_some_and(|a| a.is_meal() && MealKind::at(a.time) == MealKind::Lunch) {
            t.lunch_first_days += 1;
        }
        for a in acts {
            if a.category == Category::Nightlife {
                t.nightlife_before_17 += u32::from(a.time < ClockTime::hm(17, 0));
                t.nightlife_before_18 += u32::from(a.time < checks::NIGHTLIFE_FROM);
            }
            if a.is_meal() {
                *uses.entry(normalize_name(&a.name)).or_default() += 1;
                if MealKind::at(a.time) == MealKind::Dinner {
                    let e = t
                        .dinners
                        .entry(d.id.clone())
                        .or_insert((Vec::new(), profile.meal_windows.dinner.from.minutes()));
                    e.0.push(a.time.minutes());
                }
            }
            if profile.meal_windows.lunch.contains(a.time) && matches!(a.category, Category::Food | Category::Cafe) {
                t.lunches += 1;
            }
            if is_sight(a) {
                sights_in_trip.push(a.name.clone());
            }
            if let Some((best @ (BestTime::Morning | BestTime::Afternoon | BestTime::Evening), at)) =
                data.and_then(|data| data.at_best_time(a, plan.language))
            {
                let e = t.best_time.entry(best).or_default();
                e.0 += u32::from(at);
                e.1 += 1;
            }
        }
        t.lunch_detours.extend(route::lunch_detours(day));
        if let Some(r) = route::route(day) {
            t.efficiency_sum += r.efficiency();
            t.efficiency_days += 1;
            t.efficiency_under_08 += u32::from(r.efficiency() < 0.8);
        }
        let sights = acts.iter().filter(|a| is_sight(a)).count();
        t.rest_days += u32::from(is_rest_day(day));
        t.themed_rest_days += u32::from(checks::is_themed_rest_day(day));
        if days == 14 && !is_rest_day(day) {
            t.sights_14.push(sights);
        }
        if day.weather.is_rainy() {
            t.rainy_days += 1;
            t.rainy_meals_only += u32::from(sights == 0);
        }
        if req.budget == BudgetLevel::High
            && let Some(data) = data
        {
            t.high_flagship_days.1 += 1;
            let flagship = acts.iter().any(|a| {
                data.places.iter().any(|p| p.flagship && p.name.get(plan.language) == a.name)
                    || data.meals.iter().any(|m| m.flagship && m.name.get(plan.language) == a.name)
            });
            t.high_flagship_days.0 += u32::from(flagship);
        }
    }
    let most = uses.values().copied().max().unwrap_or(0);
    t.reuse_over_2 += u32::from(most > checks::MAX_RESTAURANT_USES);
    if days == 14 {
        t.most_used_14.push(most);
    }
    if days >= 7 {
        t.day_trips_on_long_stays.1 += 1;
        t.day_trips_on_long_stays.0 += u32::from(plan.days.iter().any(checks::is_day_trip));
    }
    t.sights_by_budget
        .entry((format!("{}-{days}-{}", d.id, plan.start_date), req.budget))
        .or_default()
        .extend(sights_in_trip);
    if req.budget == BudgetLevel::High && vctx.budget_ceiling > 0 {
        t.high_spend.push(plan.total_cost as f64 / vctx.budget_ceiling as f64);
    }
}

fn pct(a: u32, b: u32) -> f64 {
    if b == 0 { 0.0 } else { 100.0 * f64::from(a) / f64::from(b) }
}

fn median<T: Copy + Ord + Default>(mut v: Vec<T>) -> T {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn scorecard(t: &Tally) -> Vec<Metric> {
    let m = |name, value: String, target, met: Option<bool>| Metric { name, value, target, met };
    let eff_mean = if t.efficiency_days == 0 { 1.0 } else { t.efficiency_sum / f64::from(t.efficiency_days) };
    let dinner_ok = t.dinners.values().filter(|(times, from)| median(times.clone()) >= *from).count();
    let sights_mean =
        if t.sights_14.is_empty() { 0.0 } else { t.sights_14.iter().sum::<usize>() as f64 / t.sights_14.len() as f64 };
    // Low and high budgets of the same city, length and season: how many sights they share.
    let mut overlaps = Vec::new();
    for ((key, level), low) in &t.sights_by_budget {
        if *level == BudgetLevel::Low
            && let Some(high) = t.sights_by_budget.get(&(key.clone(), BudgetLevel::High))
            && !low.is_empty()
        {
            let shared = low.iter().filter(|s| high.contains(s)).count();
            overlaps.push(shared as f64 / low.len() as f64);
        }
    }
    let overlap = if overlaps.is_empty() { 0.0 } else { overlaps.iter().sum::<f64>() / overlaps.len() as f64 };
    let spend =
        if t.high_spend.is_empty() { 0.0 } else { t.high_spend.iter().sum::<f64>() / t.high_spend.len() as f64 };
    let mut plan_ms = t.plan_ms_14.clone();
    plan_ms.sort_by(f64::total_cmp);
    let plan_ms_median = plan_ms.get(plan_ms.len() / 2).copied().unwrap_or(0.0);
    let plan_ms_max = plan_ms.last().copied().unwrap_or(0.0);
    let mut detours = t.lunch_detours.clone();
    detours.sort_by(f64::total_cmp);
    let detour_median = detours.get(detours.len() / 2).copied().unwrap_or(0.0);
    let legs_pct = pct(t.short_legs, t.legs);
    let idle_pct = pct(t.idle_days, t.days);
    vec![
        m(
            "plans generated / delivered",
            format!("{} / {}", t.plans, t.delivered),
            "100 % delivered",
            Some(t.plans == t.delivered),
        ),
        m(
            "rules 1–7 pass",
            format!("{:.1} %", pct(t.rules_pass, t.delivered)),
            "100 %",
            Some(t.rules_pass == t.delivered),
        ),
        m("plans that needed refinement", format!("{:.1} %", pct(t.refined, t.delivered)), "—", None),
        m(
            "legs shorter than a realistic trip",
            format!("{legs_pct:.1} % of {}", t.legs),
            "≤ 2 %",
            Some(legs_pct <= 2.0),
        ),
        m("days with an idle block > 90 min", format!("{idle_pct:.1} % of {}", t.days), "≤ 5 %", Some(idle_pct <= 5.0)),
        m(
            "declared free-time blocks per day",
            format!("{:.2}", f64::from(t.free_time_blocks) / f64::from(t.days.max(1))),
            "—",
            None,
        ),
        m(
            "nightlife before 17:00 / before 18:00",
            format!("{} / {}", t.nightlife_before_17, t.nightlife_before_18),
            "0",
            Some(t.nightlife_before_17 == 0),
        ),
        m("outdoor nature 20+ min after sunset", t.nature_in_dark.to_string(), "0", Some(t.nature_in_dark == 0)),
        m(
            "destinations whose median dinner ≥ window start",
            format!("{dinner_ok} / {}", t.dinners.len()),
            "all",
            Some(dinner_ok == t.dinners.len()),
        ),
        m("meals outside the local window", t.meal_time.to_string(), "—", None),
        m("days whose first activity is lunch", format!("{:.1} %", pct(t.lunch_first_days, t.days)), "—", None),
        m(
            "route efficiency, meals fixed: mean / days < 0.8",
            format!("{eff_mean:.3} / {}", t.efficiency_under_08),
            "≥ 0.97 / 0",
            Some(eff_mean >= 0.97 && t.efficiency_under_08 == 0),
        ),
        m(
            "lunch between two stops: walk it adds, median / over 1 km",
            format!("{:.2} km / {} of {}", detour_median, detours.iter().filter(|&&d| d > 1.0).count(), detours.len()),
            "—",
            None,
        ),
        m(
            "places with a best time of day visited at it: morning / afternoon / evening",
            [BestTime::Morning, BestTime::Afternoon, BestTime::Evening]
                .iter()
                .map(|b| {
                    let (at, all) = t.best_time.get(b).copied().unwrap_or_default();
                    format!("{:.0} % of {all}", pct(at, all))
                })
                .collect::<Vec<_>>()
                .join(" / "),
            "—",
            None,
        ),
        m("days spread over 50 km (not day trips)", t.spread_days.to_string(), "—", None),
        m("trips with a restaurant used > 2 times", t.reuse_over_2.to_string(), "0", Some(t.reuse_over_2 == 0)),
        m("same restaurant at consecutive meals", t.consecutive_meals.to_string(), "0", Some(t.consecutive_meals == 0)),
        m(
            "14-day trips: most-used restaurant, median / max",
            format!("{} / {}", median(t.most_used_14.clone()), t.most_used_14.iter().max().copied().unwrap_or(0)),
            "≤ 2",
            Some(t.most_used_14.iter().all(|&u| u <= 2)),
        ),
        m("14-day trips: sights per non-rest day", format!("{sights_mean:.2}"), "—", None),
        m(
            "days with < 2 sights (not rest days or day trips)",
            t.few_sight_days.to_string(),
            "0",
            Some(t.few_sight_days == 0),
        ),
        m(
            "rest days: all / a free day by its theme (the others hold a break of 2 h+)",
            format!("{} / {} of {}", t.rest_days, t.themed_rest_days, t.days),
            "—",
            None,
        ),
        m("rainy days with no sight", format!("{} of {}", t.rainy_meals_only, t.rainy_days), "—", None),
        m("cafés standing in for lunch", format!("{} of {} lunches", t.cafe_lunches, t.lunches), "—", None),
        m("exposed midday outdoor at ≥ 32 °C", t.heat.to_string(), "—", None),
        m(
            "places on a day they are closed / outside their opening hours",
            format!("{} / {}", t.closed.0, t.closed.1),
            "0 / 0",
            Some(t.closed == (0, 0)),
        ),
        m(
            "stays of 7+ days with a day trip",
            format!("{} / {}", t.day_trips_on_long_stays.0, t.day_trips_on_long_stays.1),
            "—",
            None,
        ),
        m("low vs high budget: sights shared", format!("{:.0} %", overlap * 100.0), "—", None),
        m(
            "high budget: days with a flagship place",
            format!("{:.0} %", pct(t.high_flagship_days.0, t.high_flagship_days.1)),
            "—",
            None,
        ),
        m("high budget: share of the ceiling spent", format!("{:.0} %", spend * 100.0), "—", None),
        m("public-holiday notices", t.holidays.to_string(), "—", None),
        m(
            "14-day offline plan, whole pipeline: median / max ms",
            format!("{plan_ms_median:.1} / {plan_ms_max:.1}"),
            "< 100 ms",
            Some(plan_ms_max < 100.0),
        ),
    ]
}

/// The scorecard as a Markdown table.
pub fn render(metrics: &[Metric]) -> String {
    let mut out = String::from("| metric | value | target | met |\n|---|---|---|---|\n");
    for m in metrics {
        let met = match m.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "",
        };
        out.push_str(&format!("| {} | {} | {} | {} |\n", m.name, m.value, m.target, met));
    }
    out
}
