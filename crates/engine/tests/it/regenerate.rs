//! One day of a finished plan written again: the same event sequence as a generation, the other days
//! exactly as they were, the whole plan validated and refined through the new day only.

use std::sync::Arc;

use tripstream_domain::event::ErrorCode;
use tripstream_domain::plan::Category;
use tripstream_domain::rules::{ValidationContext, validate};
use tripstream_domain::{Day, Finding, Language, Plan, StreamEvent};
use tripstream_engine::{Engine, EngineConfig, EngineError, Regeneration};

use crate::support::*;

fn engine(generator: Arc<Scripted>, rainy_days: Vec<u32>) -> Engine {
    Engine::new(generator, Arc::new(FixedWeather { rainy_days }), EngineConfig::default())
}

/// A finished three-day plan, as a generation made it.
async fn finished(rainy_days: Vec<u32>) -> Plan {
    let generator = Arc::new(Scripted::new([Ok(draft(vec![day(1), day(2), day(3)]))]));
    engine(generator, rainy_days).run(&request(Language::Ko), &seoul(), &mut Vec::new()).await.unwrap()
}

/// A sound day whose places no other day has.
fn fresh_day(name: &str) -> Day {
    let mut d = day(2);
    d.activities[0] = activity("09:00", &format!("{name} 공원"), Category::Nature, 0, false);
    d.activities[2] = activity("15:00", &format!("{name} 미술관"), Category::Culture, 5000, true);
    d
}

async fn regenerate(
    engine: &Engine,
    plan: &Plan,
    day: u32,
    instruction: Option<&str>,
) -> (Vec<StreamEvent>, Result<Plan, EngineError>) {
    let mut events = Vec::new();
    let regeneration = Regeneration { plan, day, instruction };
    let never = std::future::pending();
    let result = engine.regenerate_until(&request(Language::Ko), &seoul(), &regeneration, &mut events, never).await;
    assert_well_formed(&events);
    (events, result)
}

fn vctx(plan: &Plan) -> ValidationContext {
    ValidationContext { dates: request(Language::Ko).dates, budget_ceiling: 900_000, currency: plan.currency.clone() }
}

#[tokio::test]
async fn a_day_is_written_again_with_a_generations_events_and_the_other_days_kept() {
    let before = finished(vec![]).await;
    let generator = Arc::new(Scripted::new([Ok(draft(vec![fresh_day("새")]))]));
    let (events, result) = regenerate(&engine(generator.clone(), vec![]), &before, 2, Some("more food")).await;
    insta::assert_snapshot!(transcript(&events));
    let after = result.unwrap();

    assert_eq!((&after.days[0], &after.days[2]), (&before.days[0], &before.days[2]), "other days untouched");
    assert_ne!(after.days[1], before.days[1]);
    assert_eq!(after.days[1].activities[0].name, "새 공원");
    assert_eq!((after.days[1].day, after.days[1].date), (2, before.days[1].date));
    assert_eq!(after.days[1].weather, before.days[1].weather, "the plan's weather for the day");
    assert_eq!((&after.id, &after.title, &after.tips), (&before.id, &before.title, &before.tips));
    assert_eq!(after.total_cost, after.days.iter().map(|d| d.daily_cost).sum::<u64>());
    assert_eq!(validate(&after, &vctx(&after)), vec![]);

    // The generator was asked for day 2 of the plan as it was, with the instruction.
    let asked = generator.day_requests.lock().unwrap().clone();
    assert_eq!(asked.len(), 1);
    assert_eq!((asked[0].index, asked[0].instruction.as_deref()), (1, Some("more food")));
    assert_eq!(asked[0].current, before.days);
    assert_eq!((asked[0].attempt.as_ref(), asked[0].findings.len()), (None, 0));

    // One `day` event, the new day's; `complete` carries the whole plan.
    let days: Vec<&Day> = events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::Day(d) => Some(&d.day),
            _ => None,
        })
        .collect();
    assert_eq!(days, vec![&after.days[1]]);
    let StreamEvent::Complete(complete) = &events[events.len() - 2] else { panic!("complete before done") };
    assert_eq!(*complete.plan, after);
}

#[tokio::test]
async fn a_new_day_that_breaks_rules_is_refined_alone() {
    let before = finished(vec![2]).await;
    // First answer: day 1's palace again, and two outdoor places on a rainy day.
    let mut repeats = fresh_day("첫");
    repeats.activities[0] = activity("09:00", "궁궐 1", Category::Sightseeing, 3000, false);
    repeats.activities[2].indoor = false;
    let generator = Arc::new(Scripted::new([Ok(draft(vec![repeats.clone()])), Ok(draft(vec![fresh_day("둘")]))]));
    let (events, result) = regenerate(&engine(generator.clone(), vec![2]), &before, 2, None).await;
    let after = result.unwrap();
    assert!(events.iter().any(|e| matches!(e, StreamEvent::Status(m) if m.iteration == Some(1))));

    let asked = generator.day_requests.lock().unwrap().clone();
    assert_eq!(asked.len(), 2);
    assert_eq!(asked[1].current, before.days, "refinement is told the plan as it was");
    assert_eq!(asked[1].attempt.as_ref().map(|d| &d.activities[0].name), Some(&"궁궐 1".to_owned()));
    assert!(asked[1].findings.iter().any(|f| matches!(f, Finding::Repeated { day: 2, .. })), "{:?}", asked[1]);
    assert!(asked[1].findings.iter().any(|f| matches!(f, Finding::RainyDayOutdoors { day: 2, .. })));

    assert_eq!((&after.days[0], &after.days[2]), (&before.days[0], &before.days[2]));
    assert_eq!(after.days[1].activities[0].name, "둘 공원");
    assert_eq!(validate(&after, &vctx(&after)), vec![]);
    assert_eq!(after.metadata.iterations, 2);
}

#[tokio::test]
async fn what_refinement_cannot_fix_is_repaired_in_the_new_day_only() {
    let before = finished(vec![]).await;
    // Day 2 names day 3's museum (a later day: a whole-plan repair would have dropped it there).
    let mut repeats = fresh_day("셋");
    repeats.activities.push(activity("20:00", "박물관 3", Category::Culture, 0, true));
    let generator = Arc::new(Scripted::new([
        Ok(draft(vec![repeats.clone()])),
        Ok(draft(vec![repeats.clone()])),
        Ok(draft(vec![repeats])),
    ]));
    let (_, result) = regenerate(&engine(generator, vec![]), &before, 2, None).await;
    let after = result.unwrap();
    assert_eq!((&after.days[0], &after.days[2]), (&before.days[0], &before.days[2]));
    assert!(after.days[1].activities.iter().all(|a| a.name != "박물관 3"), "{:?}", after.days[1]);
    assert_eq!(validate(&after, &vctx(&after)), vec![]);
    assert!(after.warnings.is_empty(), "{:?}", after.warnings);
}

#[tokio::test]
async fn an_unusable_day_is_asked_for_once_more_and_a_missing_day_fails_cleanly() {
    let before = finished(vec![]).await;
    let generator = Arc::new(Scripted::new([Err(bad_output()), Ok(draft(vec![fresh_day("새")]))]));
    let (_, result) = regenerate(&engine(generator.clone(), vec![]), &before, 3, None).await;
    let after = result.unwrap();
    assert_eq!(generator.day_requests.lock().unwrap().len(), 2);
    assert_eq!((&after.days[0], &after.days[1]), (&before.days[0], &before.days[1]));
    assert_eq!(after.days[2].day, 3);
    assert_eq!(after.metadata.usage.output_tokens, 205, "both calls' tokens");

    // An answer without a day, twice: llm_bad_output, with the plan untouched anywhere.
    let generator = Arc::new(Scripted::new([Ok(draft(vec![])), Ok(draft(vec![]))]));
    let (events, result) = regenerate(&engine(generator, vec![]), &before, 1, None).await;
    assert_eq!(result.unwrap_err().code, ErrorCode::LlmBadOutput);
    assert!(events.iter().any(|e| matches!(e, StreamEvent::Error(f) if f.error == ErrorCode::LlmBadOutput)));

    // A day the plan does not have never reaches the generator.
    let generator = Arc::new(Scripted::new([]));
    let (_, result) = regenerate(&engine(generator.clone(), vec![]), &before, 4, None).await;
    assert_eq!(result.unwrap_err().code, ErrorCode::Internal);
    assert!(generator.day_requests.lock().unwrap().is_empty());
}
