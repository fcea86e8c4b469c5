//! Admission: the replica's places for generations (503 overloaded, with Retry-After; joins and cached
//! replays take none; readiness says saturated), and a key's daily token budget (429 quota_exceeded).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use tripstream_domain::Finding;
use tripstream_domain::plan::Usage;
use tripstream_engine::{Draft, DraftSink, GenerateError, GeneratorInfo, PlanContext, PlanGenerator};
use tripstream_server::ServerConfig;

use crate::helpers::*;

fn trip(day: u32) -> String {
    format!(r#"{{"location":"Seoul","startDate":"2025-11-{day:02}","endDate":"2025-11-{day:02}","budget":"low"}}"#)
}

#[tokio::test]
async fn a_replica_at_capacity_refuses_new_generations_but_not_joins_or_replays() {
    let mut config = ServerConfig { stream_cancel_grace_secs: Secs::new(30), ..ServerConfig::for_tests() };
    config.limits.max_generations = 1;
    config.limits.admission_wait_ms = Millis::new(50);
    let (services, _) = endless_services(&config);
    let app = spawn_app_with(config, Some(services)).await;

    let first = app.stream(&trip(10)).await;
    assert_eq!(first.status(), 200, "the one place is taken");
    let refused = app.stream(&trip(11)).await;
    assert_eq!(refused.status(), 503);
    assert!(refused.headers()["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "overloaded");
    let joined = app.stream(&trip(10)).await;
    assert_eq!(joined.status(), 200, "joining the generation in flight takes no place");
    let ready = app.get("/health/ready").await;
    assert_eq!(ready.status(), 503);
    let report: Value = ready.json().await.unwrap();
    assert_eq!(report["status"], "saturated");
    drop((first, joined));
}

#[tokio::test]
async fn a_cached_plan_is_served_at_capacity() {
    let mut config = ServerConfig { stream_cancel_grace_secs: Secs::new(30), ..ServerConfig::for_tests() };
    config.limits.max_generations = 1;
    config.limits.admission_wait_ms = Millis::new(50);
    let (services, _) = counting_services(&config, Duration::from_millis(100));
    let app = spawn_app_with(config, Some(services)).await;
    assert_eq!(app.generate(&trip(12)).await.status(), 200, "cached now");
    // Another trip holds the one place while it streams.
    let holding = app.stream(&trip(13)).await;
    assert_eq!(holding.status(), 200);
    let replay = app.stream(&trip(12)).await;
    assert_eq!((replay.status().as_u16(), replay.headers()["x-cache"].to_str().unwrap()), (200, "HIT"));
    assert_eq!(app.stream(&trip(14)).await.status(), 503, "a third trip has no place");
    drop(holding);
}

/// The offline planner, spending `tokens` a draft as a model would.
struct Spending {
    inner: tripstream_adapters::OfflinePlanner,
    tokens: u64,
}

#[async_trait]
impl PlanGenerator for Spending {
    fn info(&self) -> GeneratorInfo {
        self.inner.info()
    }

    async fn generate_draft(&self, ctx: &PlanContext, sink: &mut dyn DraftSink) -> Result<Draft, GenerateError> {
        let draft = self.inner.generate_draft(ctx, sink).await?;
        Ok(Draft { usage: Usage { input_tokens: self.tokens / 2, output_tokens: self.tokens / 2 }, ..draft })
    }

    async fn refine_plan(
        &self,
        ctx: &PlanContext,
        current: &Draft,
        findings: &[Finding],
        sink: &mut dyn DraftSink,
    ) -> Result<Draft, GenerateError> {
        self.inner.refine_plan(ctx, current, findings, sink).await
    }
}

#[tokio::test]
async fn a_key_that_spent_its_daily_tokens_is_refused_new_generations() {
    let config = ServerConfig::for_tests();
    let planner = tripstream_adapters::OfflinePlanner::new(
        tripstream_adapters::Catalog::bundled(),
        tripstream_adapters::OfflineConfig { chunk_delay: Duration::ZERO },
    );
    let services = services_with(Arc::new(Spending { inner: planner, tokens: 600 }), &config);
    let app = spawn_app_with(config, Some(services)).await;
    let store = tripstream_adapters::keys::KeyStore::new(
        tripstream_adapters::runlog::Db::open(&app.database_url).await.unwrap(),
    );
    let new =
        tripstream_adapters::keys::NewKey { name: "budgeted".into(), daily_tokens: Some(1000), ..Default::default() };
    let key = store.create(new).await.unwrap().1.expose().to_owned();
    let generate = |day: u32| {
        app.client
            .post(format!("{}/api/v1/plans/generate", app.base))
            .header("content-type", "application/json")
            .bearer_auth(&key)
            .body(trip(day))
            .send()
    };
    assert_eq!(generate(13).await.unwrap().status(), 200, "600 of 1,000 spent");
    assert_eq!(generate(14).await.unwrap().status(), 200, "the budget is checked before: 1,200 spent now");
    let refused = generate(15).await.unwrap();
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"), "until the next UTC day");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "quota_exceeded");
    assert_eq!(generate(13).await.unwrap().status(), 200, "a cached plan costs no tokens");
    assert_eq!(app.generate(&trip(16)).await.status(), 200, "an anonymous caller has no key budget");
}

#[tokio::test]
async fn look_ups_of_places_beyond_the_bundled_list_are_metered_per_caller() {
    let owm = tripstream_testkit::weather::OpenWeatherMap::start().await.unwrap();
    let mut config = ServerConfig::for_tests();
    // A model provider (unreachable: the plans themselves do not matter here) plans anywhere, so places
    // beyond the list are geocoded, by OpenWeatherMap.
    config.engine.llm.gemini_api_key = Some(Secret::new("test-key"));
    config.engine.llm.gemini_base_url = "http://127.0.0.1:9".into();
    config.engine.weather.openweather_api_key = Some(Secret::new("owm-key"));
    config.engine.weather.openweather_base_url = owm.base_url();
    config.limits.geocode_limit = 2;
    config.limits.rate_limit_burst = 2;
    let app = spawn_app_with(config, None).await;
    let body = |location: &str| {
        format!(r#"{{"location":"{location}","startDate":"2025-11-10","endDate":"2025-11-10","budget":"low"}}"#)
    };
    for place in ["Lisbon", "Porto"] {
        assert_ne!(app.generate(&body(place)).await.status(), 429, "{place}: within the look-up rate");
    }
    let refused = app.generate(&body("Madrid")).await;
    assert_eq!(refused.status(), 429);
    let error: Value = refused.json().await.unwrap();
    assert_eq!(error["error"]["code"], "rate_limited");
    assert_ne!(app.generate(&body("Lisbon")).await.status(), 429, "an answer already kept costs no look-up");
    assert_ne!(app.generate(&body("Seoul")).await.status(), 429, "the bundled data costs none");
    let geocoded = owm.calls().geocode.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(geocoded, 2, "Madrid was never looked up");
}
