//! The processes besides the driver: the paced OpenAI-compatible mock, and the tripstream server.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tripstream_adapters::http::Secret;
use tripstream_server::config::{Millis, SecretUrl, Secs};

pub const CHUNKS: usize = 40;

/// An OpenAI-compatible server whose every reply is a valid one-day Kyoto plan, `CHUNKS` pieces, one per
/// `pace`.
pub fn openai_mock(pace: Duration) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async move {
        let plan = tripstream_testkit::one_day_plan();
        let chars: Vec<char> = plan.chars().collect();
        let pieces: Arc<Vec<String>> =
            Arc::new(chars.chunks(chars.len().div_ceil(CHUNKS)).map(|c| c.iter().collect()).collect());
        let app = axum::Router::new().fallback(move || {
            let pieces = pieces.clone();
            async move {
                let frames = futures::stream::iter(0..pieces.len() + 2).then(move |i| {
                    let pieces = pieces.clone();
                    async move {
                        tokio::time::sleep(pace).await;
                        let frame = match i {
                            i if i < pieces.len() => serde_json::json!({"choices": [{"index": 0, "delta": {"content": pieces[i]}, "finish_reason": null}]}).to_string(),
                            i if i == pieces.len() => serde_json::json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 10, "completion_tokens": 100}}).to_string(),
                            _ => "[DONE]".to_owned(),
                        };
                        Ok::<_, std::io::Error>(axum::body::Bytes::from(format!("data: {frame}\n\n")))
                    }
                });
                ([("content-type", "text/event-stream")], axum::body::Body::from_stream(frames))
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("PORT {}", listener.local_addr().unwrap().port());
        axum::serve(listener, app).await.unwrap();
    });
}

/// Which upstreams the server is pointed at.
pub enum Upstreams {
    /// The paced OpenAI-compatible mock; weather from the bundled normals.
    OpenAi(String),
    /// Gemini at the first URL; OpenWeatherMap (geocoding and forecasts) at the second, if any, else
    /// the bundled normals.
    Gemini(String, Option<String>),
}

/// The real application on one thread, pointed at the upstreams; no plan cache, so every stream
/// generates. The run log is a SQLite file, as the binary's default is.
pub fn server(upstreams: Upstreams, runlog: &str) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async move {
        let mut config = tripstream_server::ServerConfig::for_tests();
        let llm = &mut config.engine.llm;
        match upstreams {
            Upstreams::OpenAi(url) => llm.openai_base_url = Some(url),
            Upstreams::Gemini(url, weather) => {
                llm.gemini_api_key = Some(Secret::new("bench-key"));
                llm.gemini_base_url = url;
                if let Some(weather) = weather {
                    config.engine.weather.openweather_api_key = Some(Secret::new("bench-key"));
                    config.engine.weather.openweather_base_url = weather;
                }
            }
        }
        config.engine.llm.llm_fallback = vec![tripstream_server::config::LlmChoice::None];
        config.store.cache_ttl_secs = Secs::new(0);
        // A replica sized for the benchmark's 10,000 streams: the defaults (2,000 generations, 500 model
        // calls at once) are a small deployment's, and would refuse or queue most of them.
        config.limits.max_generations = 20_000;
        config.engine.llm.max_model_calls = 20_000;
        // To compare with the generations' pacing off (`0`), in the same build.
        if let Some(ms) = std::env::var("FIRST_EVENT_PRIORITY_MS").ok().and_then(|ms| ms.parse().ok()) {
            config.limits.first_event_priority_ms = Millis::new(ms);
        }
        config.store.database_url = SecretUrl::new(format!("sqlite://{runlog}"));
        // As `tripstream serve` does (`PREFAULT_MIB=0` to compare without).
        if let Some(mib) = std::env::var("PREFAULT_MIB").ok().and_then(|mib| mib.parse().ok()) {
            config.limits.prefault_mib = mib;
        }
        tripstream_server::prefault_heap(config.limits.prefault_mib);
        let app = tripstream_server::Application::build(config).await.expect("the app builds");
        println!("PORT {}", app.local_addr().port());
        app.run_until_stopped(std::future::pending()).await.unwrap();
    });
}
