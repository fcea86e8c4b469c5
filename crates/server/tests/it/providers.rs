//! The server with a real provider configured: the choice shows in `/health`, and a client that leaves
//! closes the upstream request.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::response::IntoResponse;
use futures::StreamExt;
use serde_json::json;
use tripstream_server::ServerConfig;
use tripstream_server::config::{LlmChoice, SecretUrl};

use crate::helpers::*;

/// A Gemini that starts a reply and then trickles whitespace forever, one frame every 50 ms, noting when
/// its response body is dropped (the connection was closed).
async fn slow_gemini() -> (String, Arc<Mutex<Option<Instant>>>) {
    struct Note(Arc<Mutex<Option<Instant>>>);
    impl Drop for Note {
        fn drop(&mut self) {
            *self.0.lock().unwrap() = Some(Instant::now());
        }
    }
    let closed = Arc::new(Mutex::new(None));
    let seen = closed.clone();
    let app = axum::Router::new().fallback(move || {
        let note = Note(seen.clone());
        async move {
            let frame = |text: &str| {
                let f = json!({"candidates": [{"content": {"parts": [{"text": text}], "role": "model"}, "index": 0}]});
                Ok::<_, std::io::Error>(Bytes::from(format!("data: {f}\r\n\r\n")))
            };
            let first = futures::stream::once(async move { frame("{\"title\": \"t\", \"days\": [") });
            let rest = futures::stream::unfold(note, move |note| async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                Some((frame(" "), note))
            });
            axum::response::Response::builder()
                .header("content-type", "text/event-stream")
                .body(Body::from_stream(first.chain(rest)))
                .unwrap()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), closed)
}

fn gemini_config(base: &str) -> ServerConfig {
    let mut config = ServerConfig::for_tests();
    config.engine.llm.gemini_api_key = Some(Secret::new("test-key"));
    config.engine.llm.gemini_base_url = base.to_owned();
    config
}

#[tokio::test]
async fn health_shows_the_chosen_provider_and_its_fallbacks() {
    let app = spawn_app_with(gemini_config("http://127.0.0.1:9"), None).await;
    let health: serde_json::Value = app.admin_get("/health").await.json().await.unwrap();
    assert_eq!(health["llm"]["provider"], "gemini");
    assert_eq!(health["llm"]["model"], "gemini-2.5-flash-lite");
    assert_eq!(health["llm"]["chain"], json!(["gemini", "offline"]));

    let mut config = gemini_config("http://127.0.0.1:9");
    config.engine.llm.llm_provider = LlmChoice::Offline;
    config.engine.llm.llm_fallback = vec![LlmChoice::None];
    let app = spawn_app_with(config, None).await;
    let health: serde_json::Value = app.admin_get("/health").await.json().await.unwrap();
    assert_eq!(health["llm"]["chain"], json!(["offline"]));
}

#[tokio::test]
async fn an_unreachable_provider_falls_back_to_the_offline_planner() {
    let mut config = gemini_config("http://127.0.0.1:9");
    config.engine.llm.llm_max_attempts = 1;
    let app = spawn_app_with(config, None).await;
    let body = r#"{"location": "Kyoto", "startDate": "2025-11-10", "endDate": "2025-11-11", "budget": "low"}"#;
    let response = app.generate(body).await;
    assert_eq!(response.status(), 200);
    let plan: serde_json::Value = response.json().await.unwrap();
    assert_eq!(plan["metadata"]["provider"], "offline");
    assert_eq!(plan["days"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn the_upstream_request_is_closed_within_a_second_of_the_client_leaving() {
    let (base, closed) = slow_gemini().await;
    let app = spawn_app_with(gemini_config(&base), None).await;
    let body = r#"{"location": "Kyoto", "startDate": "2025-11-10", "endDate": "2025-11-11", "budget": "low"}"#;
    let response = app.stream(body).await;
    assert_eq!(response.status(), 200);
    let mut events = eventsource_stream::Eventsource::eventsource(response.bytes_stream());
    // Read until the draft step has begun: the upstream request is open.
    while let Some(event) = events.next().await {
        if event.unwrap().data.contains("\"step\":\"generate_draft\"") {
            break;
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(closed.lock().unwrap().is_none(), "the upstream is still streaming while the client listens");
    drop(events);
    let left = Instant::now();
    while closed.lock().unwrap().is_none() {
        assert!(left.elapsed() < Duration::from_secs(1), "the upstream request outlived the client");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn an_abandoned_stream_keeps_generating_for_the_grace_period_then_closes_upstream() {
    let (base, closed) = slow_gemini().await;
    let mut config = gemini_config(&base);
    config.stream_cancel_grace_secs = Secs::new(1);
    let app = spawn_app_with(config, None).await;
    let body = r#"{"location": "Kyoto", "startDate": "2025-11-10", "endDate": "2025-11-11", "budget": "low"}"#;
    let response = app.stream(body).await;
    let mut events = eventsource_stream::Eventsource::eventsource(response.bytes_stream());
    while let Some(event) = events.next().await {
        if event.unwrap().data.contains("\"step\":\"generate_draft\"") {
            break;
        }
    }
    drop(events);
    let left = Instant::now();
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(closed.lock().unwrap().is_none(), "within the grace period the generation goes on, for a resume");
    while closed.lock().unwrap().is_none() {
        assert!(left.elapsed() < Duration::from_secs(2), "not closed within grace + 1 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(left.elapsed() >= Duration::from_secs(1));
}

/// A mock of every outside service a model-planned trip to a place outside the bundled data touches:
/// Gemini, Open-Meteo's geocoding (counting its calls, and down with a 503 while `down` is set) and its
/// archive.
async fn lisbon_services() -> (String, Arc<AtomicUsize>, Arc<AtomicBool>) {
    let searches = Arc::new(AtomicUsize::new(0));
    let counted = searches.clone();
    let down = Arc::new(AtomicBool::new(false));
    let geocoder_down = down.clone();
    let plan = json!({
        "title": "Lisbon in a day",
        "days": [{"day": 1, "theme": "Belém & Baixa", "activities": [
            {"time": "09:00", "durationMinutes": 90, "name": "Belém Tower", "description": "A 16th-century fort.",
             "category": "sightseeing", "area": "Belém", "costPerPerson": 10, "indoor": false},
            {"time": "12:00", "durationMinutes": 60, "name": "Time Out Market", "description": "Food hall.",
             "category": "food", "area": "Cais do Sodré", "costPerPerson": 15, "indoor": true},
            {"time": "14:00", "durationMinutes": 120, "name": "Gulbenkian Museum", "description": "Art from Egypt to Monet.",
             "category": "culture", "area": "Avenidas Novas", "costPerPerson": 10, "indoor": true},
            {"time": "18:30", "durationMinutes": 90, "name": "Taberna da Rua das Flores", "description": "Petiscos.",
             "category": "food", "area": "Chiado", "costPerPerson": 15, "indoor": true}]}],
        "tips": ["Buy a Viva Viagem card."]
    });
    let frame = json!({"candidates": [{"content": {"parts": [{"text": plan.to_string()}], "role": "model"},
        "finishReason": "STOP", "index": 0}], "usageMetadata": {"promptTokenCount": 500, "candidatesTokenCount": 300}});
    let sse = format!("data: {frame}\r\n\r\n");
    let app = axum::Router::new()
        .route(
            "/v1beta/models/{call}",
            axum::routing::post(move || {
                let sse = sse.clone();
                async move { ([("content-type", "text/event-stream")], sse) }
            }),
        )
        .route(
            "/v1/search",
            axum::routing::get(move || async move {
                counted.fetch_add(1, Ordering::SeqCst);
                if geocoder_down.load(Ordering::SeqCst) {
                    return axum::http::StatusCode::SERVICE_UNAVAILABLE.into_response();
                }
                axum::Json(json!({"results": [{"id": 2267057, "name": "Lisbon", "latitude": 38.71667,
                    "longitude": -9.13333, "country_code": "PT", "timezone": "Europe/Lisbon", "country": "Portugal"}]}))
                .into_response()
            }),
        )
        .route(
            "/v1/archive",
            axum::routing::get(|| async {
                let years = ["2020", "2021", "2022", "2023", "2024"];
                let time: Vec<String> = years.iter().map(|y| format!("{y}-11-10")).collect();
                axum::Json(json!({"timezone": "Europe/Lisbon", "daily": {"time": time,
                    "weather_code": [3, 3, 61, 3, 3], "temperature_2m_max": [19.0, 20.0, 18.0, 21.0, 19.5],
                    "temperature_2m_min": [12.0, 11.0, 13.0, 12.5, 11.5], "precipitation_sum": [0.0, 0.2, 6.0, 0.0, 0.0]}}))
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), searches, down)
}

#[tokio::test]
async fn a_model_plans_a_place_outside_the_bundled_data_with_geocoding_and_archive_normals() {
    let (base, searches, _) = lisbon_services().await;
    let mut config = gemini_config(&base);
    config.engine.weather.open_meteo_geocoding_url = base.clone();
    config.engine.weather.open_meteo_archive_url = base.clone();
    let app = spawn_app_with(config, None).await;
    let body = r#"{"location": "Lisbon", "startDate": "2025-11-10", "endDate": "2025-11-10", "budget": "low", "language": "en"}"#;
    let response = app.generate(body).await;
    assert_eq!(response.status(), 200);
    let plan: serde_json::Value = response.json().await.unwrap();
    assert_eq!(plan["destination"]["country"], "PT");
    assert_eq!(plan["destination"]["timezone"], "Europe/Lisbon");
    assert_eq!((plan["currency"].as_str(), plan["totalCost"].as_u64()), (Some("EUR"), Some(50)));
    assert_eq!(plan["metadata"]["provider"], "gemini");
    assert_eq!(plan["days"][0]["weather"]["source"], "climatology");
    assert_eq!(plan["days"][0]["weather"]["tempMaxC"], 19.5);
    assert_eq!(plan["days"][0]["activities"].as_array().unwrap().len(), 4);
    // No place search is configured: the model's places, none of them bundled, are named once as not checked.
    let warnings: Vec<&str> = plan["warnings"].as_array().unwrap().iter().filter_map(|w| w.as_str()).collect();
    let unchecked: Vec<&&str> = warnings.iter().filter(|w| w.contains("not checked against a map")).collect();
    assert_eq!(
        unchecked,
        [
            &"These places were not checked against a map: Belém Tower, Time Out Market, Gulbenkian Museum, Taberna da Rua das Flores"
        ],
        "{plan}"
    );
    // English, then Korean names: one search each. Another trip there is not geocoded again.
    assert_eq!(searches.load(Ordering::SeqCst), 2);
    let later = body.replace("Lisbon", "lisbon");
    assert_eq!(app.generate(&later).await.status(), 200);
    assert_eq!(searches.load(Ordering::SeqCst), 2, "the place was geocoded once");

    // The offline planner alone still knows only its bundled places.
    let offline = spawn_app().await;
    assert_eq!(offline.generate(body).await.status(), 422);
}

/// A plan made on one replica is served from the shared cache by another whose geocoder has never heard
/// of the place, and is down: a cache hit reads the plan's own destination, as one document and as a
/// replayed stream, and asks the geocoder nothing.
#[tokio::test]
async fn a_cached_plan_for_a_geocoded_place_needs_no_geocoder() {
    let (base, searches, down) = lisbon_services().await;
    let prefix = format!("{}:", unique("tripstream_test"));
    let config = || {
        let mut config = gemini_config(&base);
        config.engine.weather.open_meteo_geocoding_url = base.clone();
        config.engine.weather.open_meteo_archive_url = base.clone();
        config.store.redis_url = Some(SecretUrl::new(redis_url()));
        config.store.redis_key_prefix = prefix.clone();
        config
    };
    let one = spawn_app_with(config(), None).await;
    let two = spawn_app_with(config(), None).await;
    let body = r#"{"location": "Lisbon", "startDate": "2025-11-10", "endDate": "2025-11-10", "budget": "low", "language": "en"}"#;
    let made = one.generate(body).await;
    assert_eq!(made.headers()["x-cache"], "MISS");
    let made: serde_json::Value = made.json().await.unwrap();
    assert_eq!(searches.load(Ordering::SeqCst), 2, "English, then Korean names");

    down.store(true, Ordering::SeqCst);
    let hit = two.generate(body).await;
    assert_eq!((hit.status().as_u16(), hit.headers()["x-cache"].to_str().unwrap()), (200, "HIT"));
    let hit: serde_json::Value = hit.json().await.unwrap();
    assert_eq!((&hit["id"], &hit["destination"]), (&made["id"], &made["destination"]));

    let replay = two.stream(body).await;
    assert_eq!((replay.status().as_u16(), replay.headers()["x-cache"].to_str().unwrap()), (200, "HIT"));
    let events = messages(replay).await;
    let kinds: Vec<&str> = events.iter().map(|m| m.kind()).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "day").count(), 1, "{kinds:?}");
    assert_eq!(kinds[kinds.len() - 2..], ["complete", "done"], "{kinds:?}");
    let complete = &events[events.len() - 2].data;
    assert_eq!((&complete["plan"]["id"], &complete["plan"]["destination"]), (&made["id"], &made["destination"]));
    assert_eq!(complete["plan"]["metadata"]["cached"], true);
    assert_eq!(searches.load(Ordering::SeqCst), 2, "neither hit asked the geocoder");

    // A place not in the cache still needs it: the outage is the client's clear 503, not a plan.
    let elsewhere = body.replace("2025-11-10", "2025-11-11");
    let refused = two.generate(&elsewhere).await;
    assert_eq!(refused.status(), 503, "{}", refused.text().await.unwrap());
}

#[tokio::test]
async fn a_fallback_plan_is_never_served_from_the_cache_as_the_first_providers() {
    // Gemini is unreachable: the offline planner writes the plan instead.
    let app = spawn_app_with(gemini_config("http://127.0.0.1:9"), None).await;
    let body = r#"{"location":"Seoul","startDate":"2025-11-10","endDate":"2025-11-11","budget":"low"}"#;
    for attempt in ["first", "second"] {
        let response = app.generate(body).await;
        assert_eq!(response.status(), 200, "{attempt}");
        assert_eq!(response.headers()["x-cache"], "MISS", "{attempt}: the fallback's plan was not cached as Gemini's");
        let plan: serde_json::Value = response.json().await.unwrap();
        assert_eq!(plan["metadata"]["provider"], "offline", "{attempt}");
        assert_eq!(plan["metadata"]["cached"], false, "{attempt}");
    }
}

/// The benchmark's model reply (`tripstream_testkit::one_day_plan`, streamed in pieces by the Gemini mock)
/// is a plan that passes every check as written: the benchmark measures one model call per stream, as its
/// targets are stated, not a draft and its refinements.
#[tokio::test]
async fn the_benchmarks_plan_needs_no_refinement() {
    use tripstream_testkit::{Gemini, Protocol, Reply, one_day_plan};
    let gemini = Gemini::start(Protocol::Http1, Reply::new(&one_day_plan(), 8, Duration::ZERO)).await.unwrap();
    let mut config = gemini_config(&gemini.base_url());
    config.engine.llm.llm_fallback = vec![LlmChoice::None];
    let app = spawn_app_with(config, None).await;
    let body = r#"{"location": "Kyoto", "startDate": "2025-11-10", "endDate": "2025-11-10", "budget": "medium"}"#;
    let response = app.generate(body).await;
    assert_eq!(response.status(), 200);
    let plan: serde_json::Value = response.json().await.unwrap();
    assert_eq!(plan["metadata"]["provider"], "gemini", "{plan}");
    assert_eq!(plan["warnings"], json!([]), "{plan}");
    assert_eq!(plan["metadata"]["iterations"], 1, "{plan}");
    assert_eq!(gemini.arrivals().len(), 1, "one model call");
}
