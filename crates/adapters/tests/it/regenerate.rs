//! One day of a finished plan written again by the real generators: the offline planner (different
//! places, the instruction's categories) and both LLM wire formats (the prompt shows the other days).

use std::sync::Arc;

use serde_json::{Value, json};
use tripstream_adapters::http::Secret;
use tripstream_adapters::llm::{ChatModel, Gemini, GeminiConfig, OpenAi, OpenAiConfig};
use tripstream_adapters::{Catalog, Climatology, OfflineConfig, OfflinePlanner};
use tripstream_domain::rules::{ValidationContext, normalize_name, validate};
use tripstream_domain::{Category, Day, Plan, StreamEvent};
use tripstream_engine::{Engine, EngineConfig, Regeneration};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::llm_support::*;

fn offline() -> Engine {
    let planner = OfflinePlanner::new(Catalog::bundled(), OfflineConfig::default());
    Engine::new(Arc::new(planner), Arc::new(Climatology), EngineConfig::default())
}

/// A finished three-day plan of Kyoto, from the offline planner.
async fn finished() -> Plan {
    offline().run(&request(3), &destination().await, &mut Vec::new()).await.unwrap()
}

async fn regenerate(engine: &Engine, plan: &Plan, day: u32, instruction: Option<&str>) -> (Vec<StreamEvent>, Plan) {
    let mut events = Vec::new();
    let regeneration = Regeneration { plan, day, instruction };
    let dest = destination().await;
    let result = engine.regenerate_until(&request(3), &dest, &regeneration, &mut events, std::future::pending()).await;
    assert_eq!(error_code(&events), None, "{events:#?}");
    (events, result.unwrap())
}

async fn assert_passes_every_rule(plan: &Plan) {
    let dest = destination().await;
    let req = request(3);
    let ctx = ValidationContext {
        dates: req.dates,
        budget_ceiling: dest.budget.for_trip(req.budget, req.dates.len(), req.travelers),
        currency: dest.currency.clone(),
    };
    assert_eq!(validate(plan, &ctx), vec![], "{plan:#?}");
}

/// The places (not meals) of some days, as rule 7 compares them.
fn places<'a>(days: impl IntoIterator<Item = &'a Day>) -> Vec<String> {
    days.into_iter().flat_map(|d| &d.activities).filter(|a| !a.is_meal()).map(|a| normalize_name(&a.name)).collect()
}

/// Day `n`'s event and the plan `complete` carried.
fn day_and_complete(events: &[StreamEvent]) -> (Vec<&Day>, &Plan) {
    let days = events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::Day(d) => Some(&d.day),
            _ => None,
        })
        .collect();
    let StreamEvent::Complete(c) = &events[events.len() - 2] else { panic!("complete before done: {events:#?}") };
    (days, &c.plan)
}

#[tokio::test]
async fn the_offline_planner_writes_a_different_day_with_none_of_the_other_days_places() {
    let before = finished().await;
    let (events, after) = regenerate(&offline(), &before, 2, None).await;
    assert_eq!((&after.days[0], &after.days[2]), (&before.days[0], &before.days[2]), "other days untouched");
    let new = places([&after.days[1]]);
    assert!(!new.is_empty());
    for old in places([&before.days[1]]).iter().chain(&places([&before.days[0], &before.days[2]])) {
        assert!(!new.contains(old), "{old} is back in {new:?}");
    }
    assert_passes_every_rule(&after).await;
    let (days, complete) = day_and_complete(&events);
    assert_eq!((days, complete), (vec![&after.days[1]], &after));
    // Deterministic, as every offline plan.
    assert_eq!(regenerate(&offline(), &before, 2, None).await.1.days, after.days);
}

#[tokio::test]
async fn the_offline_planner_follows_the_instruction_where_it_can() {
    let before = finished().await;
    let (_, after) = regenerate(&offline(), &before, 2, Some("Indoors please, it will rain")).await;
    assert!(after.days[1].activities.iter().all(|a| a.indoor), "{:#?}", after.days[1]);
    assert_eq!((&after.days[0], &after.days[2]), (&before.days[0], &before.days[2]));
    assert_passes_every_rule(&after).await;

    let (_, after) = regenerate(&offline(), &before, 1, Some("박물관이랑 미술관 위주로 부탁해요")).await;
    assert!(after.days[0].activities.iter().any(|a| a.category == Category::Culture), "{:#?}", after.days[0]);
    assert_passes_every_rule(&after).await;

    let (_, plain) = regenerate(&offline(), &before, 3, None).await;
    let (_, after) = regenerate(&offline(), &before, 3, Some("more food, less walking")).await;
    let eating =
        |d: &Day| d.activities.iter().filter(|a| matches!(a.category, Category::Food | Category::Cafe)).count();
    let sights = |d: &Day| d.activities.len() - eating(d);
    assert!(eating(&after.days[2]) >= 3, "breakfast too: {:#?}", after.days[2]);
    assert!(sights(&after.days[2]) < sights(&plain.days[2]), "{:#?} {:#?}", after.days[2], plain.days[2]);
    assert_passes_every_rule(&after).await;
}

/// A model's answer for day 2: the offline planner's regenerated day in the model's JSON shape.
async fn model_reply(before: &Plan) -> (Day, String) {
    let (_, offline) = regenerate(&offline(), before, 2, None).await;
    let day = offline.days[1].clone();
    let json = json!({ "title": "", "days": [day_json(&day, request(3).travelers)], "tips": [] });
    (day, json.to_string())
}

/// Regenerates day 2 through `model` and checks the prompt and the plan; returns the prompt.
async fn through_a_model(model: Arc<dyn ChatModel>, server: &MockServer, before: &Plan, day: &Day) -> String {
    let (events, after) = regenerate(&engine(model), before, 2, Some("more food, less walking")).await;
    assert_eq!((&after.days[0], &after.days[2]), (&before.days[0], &before.days[2]));
    let names = |d: &Day| d.activities.iter().map(|a| a.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&after.days[1]), names(day));
    assert_eq!((after.days[1].day, after.days[1].date), (2, before.days[1].date));
    assert_passes_every_rule(&after).await;
    let (days, complete) = day_and_complete(&events);
    assert_eq!((days, complete), (vec![&after.days[1]], &after));
    let text = chunk_text(&events);
    assert!(text.starts_with("2일차 — "), "{text}");
    assert!(!text.contains('{'), "{text}");

    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    let body = String::from_utf8(requests[0].body.clone()).unwrap();
    let sent: Value = serde_json::from_str(&body).unwrap();
    let prompt = sent.to_string();
    // The other days are shown, so that the model repeats none of their places; so are the day's own.
    for a in before.days[0].activities.iter().chain(&before.days[2].activities).chain(&before.days[1].activities) {
        assert!(prompt.contains(&a.name), "{} is not in the prompt", a.name);
    }
    assert!(prompt.contains("Write day 2 again: Tuesday 2025-11-11"), "{prompt}");
    assert!(prompt.contains("\\\"more food, less walking\\\""), "{prompt}");
    prompt
}

#[tokio::test]
async fn gemini_writes_one_day_shown_the_others() {
    let before = finished().await;
    let (day, reply) = model_reply(&before).await;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1beta/models/gemini-2.5-flash-lite:streamGenerateContent"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "text/event-stream")
                .set_body_string(gemini_sse(&reply, "STOP")),
        )
        .mount(&server)
        .await;
    let mut config = GeminiConfig::new(Secret::new("test-key"));
    config.base_url = server.uri();
    config.timeouts = fast_timeouts();
    config.retry = fast_retry();
    through_a_model(Arc::new(Gemini::new(config)), &server, &before, &day).await;
    let sent: Value = server.received_requests().await.unwrap()[0].body_json().unwrap();
    assert_eq!(sent["generationConfig"]["maxOutputTokens"], 2 * 1024, "one day's worth");
}

#[tokio::test]
async fn openai_writes_one_day_shown_the_others() {
    let before = finished().await;
    let (day, reply) = model_reply(&before).await;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "text/event-stream")
                .set_body_string(openai_sse(&reply, "stop")),
        )
        .mount(&server)
        .await;
    let mut config = OpenAiConfig::new(server.uri());
    config.model = "llama3.1:8b".into();
    config.timeouts = fast_timeouts();
    config.retry = fast_retry();
    through_a_model(Arc::new(OpenAi::new(config)), &server, &before, &day).await;
}
