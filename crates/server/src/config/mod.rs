//! Typed configuration, from flags or the environment (flags win). Every default is written once, in
//! [`defaults`], and used both by the command line and by [`ServerConfig::for_tests`]. Durations are
//! [`Secs`] or [`Millis`], as their variables' names say; secrets are types whose `Debug` never shows
//! them.

mod auth;
mod engine;
mod limits;
mod store;
mod values;

use std::net::IpAddr;

pub use self::auth::{AuthMode, AuthSettings};
pub use self::engine::{EngineSettings, LlmChoice, LlmSettings, PlaceSearchSettings, WeatherChoice, WeatherSettings};
pub use self::limits::LimitSettings;
pub use self::store::StoreSettings;
pub use self::values::{Millis, SecretUrl, Secs, configured};

/// Every setting's default.
pub mod defaults {
    use std::net::{IpAddr, Ipv4Addr};

    use super::values::{Millis, Secs};

    pub const HOST: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    pub const PORT: u16 = 8000;
    pub const KEEP_ALIVE: Secs = Secs::new(15);
    pub const SHUTDOWN_GRACE: Secs = Secs::new(30);
    pub const STREAM_CANCEL_GRACE: Secs = Secs::new(30);
    pub const STREAM_RETENTION: Secs = Secs::new(120);
    pub const SSE_RETRY: Millis = Millis::new(3000);
    /// None: the page's own origin only.
    pub const CORS_ALLOW_ORIGINS: &str = "";
    pub const KEY_CACHE: Secs = Secs::new(5);

    pub const MAX_CONNECTIONS: usize = 10_000;
    pub const HEADER_READ_TIMEOUT: Secs = Secs::new(10);
    pub const BODY_READ_TIMEOUT: Secs = Secs::new(10);
    pub const HTTP2_MAX_STREAMS: u32 = 256;
    pub const RATE_LIMIT_ANONYMOUS: u32 = 30;
    pub const RATE_LIMIT_KEY: u32 = 120;
    pub const RATE_LIMIT_BURST: u32 = 10;
    pub const GEOCODE_LIMIT: u32 = 10;
    pub const MAX_GENERATIONS: usize = 2_000;
    pub const MAX_MODEL_CALLS: u32 = 500;
    pub const ADMISSION_WAIT: Millis = Millis::new(1_000);
    pub const FIRST_EVENT_PRIORITY: Millis = Millis::new(50);
    /// About what a burst of 400 new streams touches.
    pub const PREFAULT_MIB: usize = 32;
    pub const ADMISSION_QUEUE: usize = 64;
    pub const FINISHED_STREAMS_MAX_BYTES: usize = 64 * 1024 * 1024;

    pub const MAX_TRIP_DAYS: u32 = 14;
    pub const MAX_REFINE_ITERATIONS: u32 = 2;
    pub const GENERATION_TIMEOUT: Secs = Secs::new(180);
    pub const OFFLINE_CHUNK_DELAY: Millis = Millis::new(0);

    pub const GEMINI_MODEL: &str = "gemini-2.5-flash-lite";
    pub const GEMINI_BASE_URL: &str = "https://generativelanguage.googleapis.com";
    pub const OPENAI_MODEL: &str = "gpt-4o-mini";
    pub const LLM_CONNECT_TIMEOUT: Secs = Secs::new(5);
    pub const LLM_FIRST_BYTE_TIMEOUT: Secs = Secs::new(30);
    pub const LLM_IDLE_TIMEOUT: Secs = Secs::new(30);
    pub const LLM_TOTAL_TIMEOUT: Secs = Secs::new(120);
    pub const LLM_MAX_ATTEMPTS: u32 = 3;
    pub const LLM_RETRY_BASE: Millis = Millis::new(500);
    pub const LLM_STREAMS_PER_CONNECTION: u32 = 64;
    pub const LLM_MAX_CONNECTIONS: u32 = 256;

    pub const OPENWEATHER_BASE_URL: &str = "https://api.openweathermap.org";
    pub const OPEN_METEO_BASE_URL: &str = "https://api.open-meteo.com";
    pub const OPEN_METEO_GEOCODING_URL: &str = "https://geocoding-api.open-meteo.com";
    pub const OPEN_METEO_ARCHIVE_URL: &str = "https://archive-api.open-meteo.com";
    pub const WEATHER_TIMEOUT: Secs = Secs::new(5);
    pub const WEATHER_CACHE: Secs = Secs::new(3600);
    pub const PLACE_SEARCH_TIMEOUT: Millis = Millis::new(3_000);
    pub const PLACE_SEARCH_BUDGET: Millis = Millis::new(8_000);
    pub const PLACE_SEARCH_INTERVAL: Millis = Millis::new(1_000);
    pub const PLACE_SEARCH_CONCURRENCY: u32 = 4;

    pub const REDIS_KEY_PREFIX: &str = "tripstream:";
    pub const REDIS_TIMEOUT: Millis = Millis::new(250);
    pub const CACHE_TTL: Secs = Secs::new(86_400);
    pub const CACHE_CAPACITY: u64 = 10_000;
    pub const DATABASE_URL: &str = "sqlite://tripstream.db";
    pub const RUNLOG_BUFFER: usize = 100_000;
    pub const PLAN_RETENTION_DAYS: u32 = 90;

    pub const MAP_TILE_URL: &str = "https://tile.openstreetmap.org/{z}/{x}/{y}.png";
    pub const MAP_TILE_ATTRIBUTION: &str = "© [OpenStreetMap](https://www.openstreetmap.org/copyright) contributors";
}

use self::defaults as d;

#[derive(Debug, Clone, clap::Args)]
pub struct ServerConfig {
    /// Address to listen on.
    #[arg(long, env = "HOST", default_value_t = d::HOST)]
    pub host: IpAddr,
    /// Port to listen on; 0 picks a free one.
    #[arg(long, short, env = "PORT", default_value_t = d::PORT)]
    pub port: u16,
    /// Seconds between `: keep-alive` comments on a quiet stream.
    #[arg(long, env = "KEEP_ALIVE_SECS", default_value_t = d::KEEP_ALIVE, value_parser = Secs::positive)]
    pub keep_alive_secs: Secs,
    /// On SIGTERM/SIGINT, in-flight streams get this many seconds to finish before they are handed over to
    /// another replica (with Redis) or ended with a retryable error.
    #[arg(long, env = "SHUTDOWN_GRACE_SECS", default_value_t = d::SHUTDOWN_GRACE)]
    pub shutdown_grace_secs: Secs,
    /// Seconds a stream nobody is attached to keeps generating (for a client to resume) before it is
    /// cancelled and its upstream call closed; 0 cancels at once.
    #[arg(long, env = "STREAM_CANCEL_GRACE_SECS", default_value_t = d::STREAM_CANCEL_GRACE)]
    pub stream_cancel_grace_secs: Secs,
    /// Seconds a finished stream stays readable for resumes.
    #[arg(long, env = "STREAM_RETENTION_SECS", default_value_t = d::STREAM_RETENTION)]
    pub stream_retention_secs: Secs,
    /// The reconnection delay SSE clients are told (`retry:`), in milliseconds.
    #[arg(long, env = "SSE_RETRY_MS", default_value_t = d::SSE_RETRY)]
    pub sse_retry_ms: Millis,
    /// Other origins allowed to call the API from a browser, comma-separated, or `*`; by default only the
    /// page's own origin.
    #[arg(long, env = "CORS_ALLOW_ORIGINS", default_value = d::CORS_ALLOW_ORIGINS)]
    pub cors_allow_origins: String,
    #[command(flatten)]
    pub auth: AuthSettings,
    #[command(flatten)]
    pub limits: LimitSettings,
    #[command(flatten)]
    pub engine: EngineSettings,
    #[command(flatten)]
    pub store: StoreSettings,
    #[command(flatten)]
    pub map: MapSettings,
}

impl ServerConfig {
    /// The command line's defaults, but for a test: on a free port of the loopback interface, the run
    /// log in memory, a stream nobody listens to cancelled at once, and request rates a test's burst from
    /// one address does not reach (the tests of the limits set their own).
    pub fn for_tests() -> ServerConfig {
        ServerConfig {
            host: IpAddr::from([127, 0, 0, 1]),
            port: 0,
            keep_alive_secs: d::KEEP_ALIVE,
            shutdown_grace_secs: d::SHUTDOWN_GRACE,
            stream_cancel_grace_secs: Secs::ZERO,
            stream_retention_secs: d::STREAM_RETENTION,
            sse_retry_ms: d::SSE_RETRY,
            cors_allow_origins: d::CORS_ALLOW_ORIGINS.into(),
            auth: AuthSettings::default(),
            limits: LimitSettings {
                rate_limit_anonymous: 1_000_000,
                rate_limit_key: 1_000_000,
                rate_limit_burst: 1_000_000,
                geocode_limit: 1_000_000,
                ..LimitSettings::default()
            },
            engine: EngineSettings::default(),
            store: StoreSettings { database_url: SecretUrl::new("sqlite::memory:"), ..StoreSettings::default() },
            map: MapSettings::default(),
        }
    }
}

/// The web page's day maps: where their background tiles come from. Without tiles (`none`, or none reachable)
/// the page draws a sketch of the stops and legs; the page's Content-Security-Policy admits this host only.
#[derive(Debug, Clone, clap::Args)]
pub struct MapSettings {
    /// Raster tiles with `{z}`, `{x}` and `{y}` in the URL (`{s}` for a subdomain, `{r}` for `@2x`), or `none`.
    #[arg(long, env = "MAP_TILE_URL", default_value = d::MAP_TILE_URL)]
    pub map_tile_url: String,
    /// The credit the tile provider asks for, shown on the map; `[text](https://…)` makes a link.
    #[arg(long, env = "MAP_TILE_ATTRIBUTION", default_value = d::MAP_TILE_ATTRIBUTION)]
    pub map_tile_attribution: String,
}

impl Default for MapSettings {
    /// The command line's defaults: OpenStreetMap's tiles.
    fn default() -> Self {
        Self { map_tile_url: d::MAP_TILE_URL.into(), map_tile_attribution: d::MAP_TILE_ATTRIBUTION.into() }
    }
}

#[cfg(test)]
mod tests {
    use clap::{Args, Command, FromArgMatches};

    use super::*;

    /// Parses a command line with no flags and the given environment. clap reads the process's
    /// environment, so the tests that set it take turns.
    fn parse(env: &[(&str, &str)]) -> ServerConfig {
        static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _turn = TURN.lock().unwrap_or_else(|p| p.into_inner());
        for (k, v) in env {
            // SAFETY: test-only, and no other test reads these variables.
            unsafe { std::env::set_var(k, v) };
        }
        let matches = ServerConfig::augment_args(Command::new("serve")).try_get_matches_from(["serve"]).unwrap();
        let config = ServerConfig::from_arg_matches(&matches).unwrap();
        for (k, _) in env {
            // SAFETY: as above.
            unsafe { std::env::remove_var(k) };
        }
        config
    }

    #[test]
    fn the_test_configuration_is_the_command_lines_but_for_what_it_says() {
        let cli = format!("{:?}", parse(&[]));
        let mut tests = ServerConfig::for_tests();
        assert_eq!(tests.stream_cancel_grace_secs, Secs::ZERO);
        tests.host = d::HOST;
        tests.port = d::PORT;
        tests.stream_cancel_grace_secs = d::STREAM_CANCEL_GRACE;
        tests.store.database_url = SecretUrl::new(d::DATABASE_URL);
        tests.limits = LimitSettings::default();
        assert_eq!(format!("{tests:?}"), cli);
    }

    #[test]
    fn place_search_is_off_unless_its_url_is_set() {
        let off = parse(&[]).engine.places;
        assert_eq!(off.place_search_url, None);
        assert_eq!(off.place_search_interval_ms, d::PLACE_SEARCH_INTERVAL, "the public instance's 1 request/s");
        let on = parse(&[
            ("PLACE_SEARCH_URL", "http://nominatim.internal:8080"),
            ("PLACE_SEARCH_TIMEOUT_MS", "1500"),
            ("PLACE_SEARCH_BUDGET_MS", "4000"),
            ("PLACE_SEARCH_INTERVAL_MS", "0"),
            ("PLACE_SEARCH_CONCURRENCY", "8"),
            ("PLACE_SEARCH_USER_AGENT", "tripstream-test (ops@example.com)"),
        ])
        .engine
        .places;
        assert_eq!(on.place_search_url.as_deref(), Some("http://nominatim.internal:8080"));
        assert_eq!(on.place_search_timeout_ms.get(), std::time::Duration::from_millis(1500));
        assert_eq!(on.place_search_budget_ms.get(), std::time::Duration::from_millis(4000));
        assert!(on.place_search_interval_ms.get().is_zero());
        assert_eq!(on.place_search_concurrency, 8);
        assert_eq!(on.place_search_user_agent, "tripstream-test (ops@example.com)");
    }

    /// A provider's address that is not one stops the service at start, naming the setting; an empty
    /// optional one is the provider switched off, as before.
    #[test]
    fn provider_addresses_are_checked_at_start() {
        let with = |flag: &str, value: &str| {
            let command = ServerConfig::augment_args(Command::new("serve"));
            let matches = command.try_get_matches_from(["serve", flag, value])?;
            ServerConfig::from_arg_matches(&matches)
        };
        for flag in [
            "--gemini-base-url",
            "--openai-base-url",
            "--openweather-base-url",
            "--open-meteo-base-url",
            "--open-meteo-geocoding-url",
            "--open-meteo-archive-url",
            "--place-search-url",
        ] {
            for wrong in ["api.openai.com", "ftp://example.com", "http://", "https//example.com"] {
                let error = with(flag, wrong).unwrap_err().to_string();
                assert!(error.contains(flag), "{flag} {wrong}: {error}");
            }
            assert!(with(flag, " http://127.0.0.1:9101/ ").is_ok(), "{flag}");
        }
        let config = with("--openai-base-url", "  ").unwrap();
        assert_eq!(config.engine.llm.openai_base_url.as_deref(), Some(""), "empty: no OpenAI-compatible provider");
        let config = with("--gemini-base-url", " https://proxy.internal/gemini ").unwrap();
        assert_eq!(config.engine.llm.gemini_base_url, "https://proxy.internal/gemini");
    }

    #[test]
    fn a_thinking_budget_is_minus_one_to_the_largest_gemini_allows() {
        let budget = |value: &str| {
            let command = ServerConfig::augment_args(Command::new("serve"));
            let matches = command.try_get_matches_from(["serve", "--gemini-thinking-budget", value])?;
            ServerConfig::from_arg_matches(&matches).map(|c| c.engine.llm.gemini_thinking_budget)
        };
        assert_eq!(parse(&[]).engine.llm.gemini_thinking_budget, None, "the model's own default");
        assert_eq!(budget("0").unwrap(), Some(0), "Flash without thinking");
        assert_eq!(budget("-1").unwrap(), Some(-1), "the model decides");
        for wrong in ["-2", "32769", "lots"] {
            let error = budget(wrong).unwrap_err().to_string();
            assert!(error.contains("--gemini-thinking-budget"), "{wrong}: {error}");
        }
    }

    #[test]
    fn debug_output_never_shows_a_secret() {
        let config = parse(&[
            ("GEMINI_API_KEY", "gm-key-1234567"),
            ("OPENAI_API_KEY", "sk-key-7654321"),
            ("OPENWEATHER_API_KEY", "owm-key-99999"),
            ("REDIS_URL", "redis://:redis-pass-123@cache:6379"),
            ("DATABASE_URL", "postgres://app:pg-pass-456@db/trips"),
        ]);
        assert!(config.engine.llm.gemini_api_key.is_some());
        let shown = format!("{config:?} {config:#?}");
        for secret in ["gm-key-1234567", "sk-key-7654321", "owm-key-99999", "redis-pass-123", "pg-pass-456"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("postgres://app:***@db/trips"), "{shown}");
    }
}
