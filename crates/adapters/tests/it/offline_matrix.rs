//! Every bundled destination × budget level × 1-, 3- and 7-day trip × season yields a plan that passes
//! rules 1–7 from the first draft and every commonsense check: no refinement needed, no warnings but a
//! public holiday's notice. Lunch sits on the way, and places are seen at their time of day.

use std::sync::Arc;

use tripstream_adapters::catalog::BestTime;
use tripstream_adapters::{BundledDestinations, Catalog, Climatology, OfflineConfig, OfflinePlanner};
use tripstream_domain::checks::route::lunch_detours;
use tripstream_domain::request::{RawPlanRequest, RequestLimits};
use tripstream_domain::rules::{ValidationContext, validate};
use tripstream_domain::{BudgetLevel, Category, Location, PlanRequest, StreamEvent};
use tripstream_engine::{Destinations, Engine, EngineConfig};

fn engine() -> Engine {
    let planner = OfflinePlanner::new(Catalog::bundled(), OfflineConfig::default());
    Engine::new(Arc::new(planner), Arc::new(Climatology), EngineConfig::default())
}

fn request(location: &str, start: &str, end: &str, budget: BudgetLevel, travelers: i64, lang: &str) -> PlanRequest {
    let raw = RawPlanRequest {
        location: Some(location.into()),
        start_date: Some(start.into()),
        end_date: Some(end.into()),
        budget: Some(budget.as_str().into()),
        language: Some(lang.into()),
        travelers: Some(travelers),
        interests: None,
    };
    PlanRequest::parse(raw, None, RequestLimits::default()).unwrap()
}

#[tokio::test]
async fn every_destination_budget_length_and_season_passes_every_rule() {
    let engine = engine();
    let catalog = Catalog::bundled();
    let destinations = BundledDestinations::new(catalog.clone());
    let seasons =
        [("2025-01-13", "winter"), ("2025-04-14", "spring"), ("2025-07-14", "summer"), ("2025-10-13", "autumn")];
    let mut checked = 0;
    let mut problems = Vec::new();
    // Lunches between two stops, and those that add over a kilometre to the way between them.
    let (mut lunches, mut off_the_way) = (0, 0);
    // Visits to places best in the morning and in the evening (not day trips), and those at that time.
    let (mut mornings, mut evenings) = ((0, 0), (0, 0));
    for d in destinations.list() {
        for budget in BudgetLevel::ALL {
            for days in [1i64, 3, 7] {
                for (i, (start, season)) in seasons.iter().enumerate() {
                    let start_date: jiff::civil::Date = start.parse().unwrap();
                    let end = start_date.checked_add(jiff::Span::new().days(days - 1)).unwrap().to_string();
                    let travelers = 1 + (i as i64 % 2);
                    let lang = if i % 2 == 0 { "ko" } else { "en" };
                    let req = request(&d.name.en, start, &end, budget, travelers, lang);
                    let mut events = Vec::new();
                    let plan = match engine.run(&req, &d, &mut events).await {
                        Ok(plan) => plan,
                        Err(e) => {
                            problems.push(format!("{} {budget:?} {days}d {season}: {e}", d.id));
                            continue;
                        }
                    };
                    let ctx = ValidationContext {
                        dates: req.dates,
                        budget_ceiling: d.budget.for_trip(budget, days as u32, travelers as u32),
                        currency: d.currency.clone(),
                    };
                    for detour in plan.days.iter().flat_map(lunch_detours) {
                        lunches += 1;
                        off_the_way += usize::from(detour > 1.0);
                    }
                    let data = catalog.get(&d.id).unwrap();
                    for a in plan.days.iter().flat_map(|day| &day.activities) {
                        let (tally, at) = match data.at_best_time(a, plan.language) {
                            Some((BestTime::Morning, at)) => (&mut mornings, at),
                            Some((BestTime::Evening, at)) => (&mut evenings, at),
                            _ => continue,
                        };
                        tally.0 += usize::from(at);
                        tally.1 += 1;
                    }
                    let findings = validate(&plan, &ctx);
                    // The first draft, as its `day` events carried it, must already pass.
                    let mut draft = plan.clone();
                    draft.days = events
                        .iter()
                        .filter_map(|e| if let StreamEvent::Day(d) = e { Some(d.day.clone()) } else { None })
                        .collect();
                    draft.recompute_costs();
                    let draft_findings = validate(&draft, &ctx);
                    let refined = events
                        .iter()
                        .any(|e| matches!(e, StreamEvent::Status(m) if m.step == tripstream_domain::Step::RefinePlan));
                    let holiday = |w: &String| w.contains("public holiday") || w.contains("공휴일");
                    let warned = plan.warnings.iter().any(|w| !holiday(w));
                    if !findings.is_empty() || !draft_findings.is_empty() || warned || refined {
                        let en = |f: &[tripstream_domain::Finding]| {
                            f.iter().map(|f| f.message(tripstream_domain::Language::En)).collect::<Vec<_>>()
                        };
                        problems.push(format!(
                            "{} {budget:?} {days}d {season}: draft {:?}, final {:?}, warnings {:?}, refined {refined}",
                            d.id,
                            en(&draft_findings),
                            en(&findings),
                            plan.warnings
                        ));
                    }
                    checked += 1;
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} of {} plans have problems:\n{}",
        problems.len(),
        checked + problems.len(),
        problems.join("\n")
    );
    assert_eq!(checked, 12 * 3 * 3 * 4);
    // Lunch is chosen again once the day is ordered, to sit on the way (a third added over a kilometre
    // when it was chosen near the day's centre alone).
    assert!(lunches > checked, "most plans have a lunch between two stops: {lunches} in {checked} plans");
    assert!(off_the_way * 4 <= lunches, "{off_the_way} of {lunches} lunches add over 1 km to the way");
    // A palace before the crowds, a lit street after dinner: the planner orders the day for them (a
    // fifth of morning places were seen in the morning, half the evening ones in the evening, when it
    // did not), as far as the day's route and meals allow.
    assert!(mornings.0 * 4 >= mornings.1 * 3, "{} of {} morning places seen in the morning", mornings.0, mornings.1);
    assert!(evenings.0 * 3 >= evenings.1 * 2, "{} of {} evening places seen in the evening", evenings.0, evenings.1);
}

#[tokio::test]
async fn the_original_seoul_example_is_a_good_plan() {
    let engine = engine();
    let seoul = BundledDestinations::new(Catalog::bundled()).resolve(&Location::parse("Seoul").unwrap()).await.unwrap();
    let req = request("Seoul", "2025-11-10", "2025-11-12", BudgetLevel::Medium, 1, "ko");
    let mut events = Vec::new();
    let plan = engine.run(&req, &seoul, &mut events).await.unwrap();
    assert_eq!(plan.title, "서울 3일 여행");
    assert_eq!(plan.currency, "KRW");
    assert_eq!(plan.metadata.provider, "offline");
    assert_eq!(plan.metadata.weather_source, "climatology");
    let mut seen_areas = std::collections::HashSet::new();
    for day in &plan.days {
        assert!(day.activities.iter().any(|a| a.category == Category::Food), "meals every day");
        assert!(day.activities.iter().filter(|a| a.category != Category::Food).count() >= 2, "things to do every day");
        assert!(day.activities.iter().all(|a| a.location.is_some() && !a.description.is_empty()));
        seen_areas.insert(day.theme.clone());
    }
    assert_eq!(seen_areas.len(), 3, "each day explores its own part of town");
    // The draft streamed as readable text with a day event per day, before complete.
    let chunks: String = events
        .iter()
        .filter_map(|e| if let StreamEvent::Chunk(c) = e { Some(c.content.as_str()) } else { None })
        .collect();
    assert!(chunks.starts_with("1일차 — "), "{chunks}");
    assert!(chunks.contains("₩") && !chunks.contains('{'), "readable text, not JSON");
    let days = events.iter().filter(|e| matches!(e, StreamEvent::Day(_))).count();
    assert_eq!(days, 3);
}

#[tokio::test]
async fn rain_moves_the_day_indoors_and_interests_shape_the_choice() {
    let engine = engine();
    let bangkok =
        BundledDestinations::new(Catalog::bundled()).resolve(&Location::parse("Bangkok").unwrap()).await.unwrap();
    // September in Bangkok: most days rain.
    let req = request("Bangkok", "2025-09-08", "2025-09-10", BudgetLevel::Medium, 1, "en");
    let plan = engine.run(&req, &bangkok, &mut Vec::new()).await.unwrap();
    for day in &plan.days {
        if day.weather.precipitation_chance >= 60 {
            assert!(day.activities.iter().filter(|a| !a.indoor).count() <= 1, "day {} is rainy", day.day);
        }
    }
    let mut raw = RawPlanRequest {
        location: Some("Seoul".into()),
        start_date: Some("2025-11-10".into()),
        end_date: Some("2025-11-11".into()),
        budget: Some("medium".into()),
        ..Default::default()
    };
    let seoul = BundledDestinations::new(Catalog::bundled()).resolve(&Location::parse("Seoul").unwrap()).await.unwrap();
    raw.interests = Some(vec!["history".into()]);
    let historian = engine
        .run(&PlanRequest::parse(raw.clone(), None, RequestLimits::default()).unwrap(), &seoul, &mut Vec::new())
        .await
        .unwrap();
    raw.interests = Some(vec!["shopping".into()]);
    let shopper = engine
        .run(&PlanRequest::parse(raw, None, RequestLimits::default()).unwrap(), &seoul, &mut Vec::new())
        .await
        .unwrap();
    let shopping = |p: &tripstream_domain::Plan| {
        p.days.iter().flat_map(|d| &d.activities).filter(|a| a.category == Category::Shopping).count()
    };
    assert!(shopping(&shopper) > shopping(&historian), "interests should pull in more shopping");
}

#[tokio::test]
async fn the_same_trip_always_gets_the_same_itinerary() {
    let engine = engine();
    let tokyo = BundledDestinations::new(Catalog::bundled()).resolve(&Location::parse("Tokyo").unwrap()).await.unwrap();
    let req = request("Tokyo", "2025-05-01", "2025-05-05", BudgetLevel::Low, 2, "en");
    let a = engine.run(&req, &tokyo, &mut Vec::new()).await.unwrap();
    let b = engine.run(&req, &tokyo, &mut Vec::new()).await.unwrap();
    assert_eq!(a.days, b.days);
}
