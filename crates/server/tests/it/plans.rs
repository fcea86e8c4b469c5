//! `POST /api/v1/plans/generate`, `/health`, `/api/v1/destinations`.

use serde_json::Value;
use tripstream_domain::rules::{ValidationContext, validate};
use tripstream_domain::{Plan, TripDates};

use crate::helpers::*;

#[tokio::test]
async fn the_json_endpoint_returns_a_valid_plan() {
    let app = spawn_app().await;
    let response = app.generate(seoul_body()).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("x-request-id"));
    let body: Value = response.json().await.unwrap();
    insta::assert_json_snapshot!("seoul_plan_shape", shape(&body));
    let plan: Plan = serde_json::from_value(body).unwrap();
    let ctx = ValidationContext {
        dates: TripDates::new(plan.start_date, plan.end_date, 14).unwrap(),
        budget_ceiling: 150_000 * 3,
        currency: plan.currency.clone(),
    };
    assert_eq!(validate(&plan, &ctx), vec![], "the plan passes every rule");
    assert_eq!(plan.days.len(), 3);
    assert_eq!(plan.location, "Seoul");
    assert_eq!(plan.destination.timezone, "Asia/Seoul");
    assert!(!plan.metadata.cached);
}

/// The plan's keys and value types, so the snapshot pins the contract, not the itinerary.
fn shape(v: &Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), shape(v))).collect()),
        Value::Array(items) => Value::Array(items.first().map(shape).into_iter().collect()),
        Value::String(_) => "string".into(),
        Value::Number(_) => "number".into(),
        Value::Bool(_) => "bool".into(),
        Value::Null => Value::Null,
    }
}

#[tokio::test]
async fn an_english_request_gets_an_english_plan() {
    let app = spawn_app().await;
    let body = r#"{"location": "Tokyo", "startDate": "2025-04-01", "endDate": "2025-04-02", "budget": "low", "language": "en", "travelers": 2, "interests": ["food"]}"#;
    let plan: Plan = app.generate(body).await.json().await.unwrap();
    assert_eq!(plan.title, "2 days in Tokyo");
    assert_eq!(plan.currency, "JPY");
    assert_eq!(plan.travelers, 2);
    assert!(plan.days[0].weather.summary.is_ascii());
}

#[tokio::test]
async fn health_names_the_providers_and_destinations_are_listed() {
    let app = spawn_app().await;
    let health: Value = app.admin_get("/health").await.json().await.unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["llm"]["provider"], "offline");
    assert_eq!(health["weather"], "climatology");
    assert_eq!(health["destinations"], 12);

    let list: Value = app.get("/api/v1/destinations").await.json().await.unwrap();
    let list = list["destinations"].as_array().unwrap();
    assert_eq!(list.len(), 12);
    let seoul = list.iter().find(|d| d["id"] == "seoul").unwrap();
    assert_eq!(seoul["name"]["ko"], "서울");
    assert_eq!(seoul["currency"], "KRW");
    assert!(seoul["budget"]["medium"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn unknown_paths_get_the_json_error_shape() {
    let app = spawn_app().await;
    let response = app.get("/api/v1/nope").await;
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
}
