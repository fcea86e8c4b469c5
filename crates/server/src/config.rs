//! Typed configuration, from flags or the environment (flags win).

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use tripstream_domain::RequestLimits;
use tripstream_engine::EngineConfig;

/// What a generation may do; shared by `serve` and `plan`.
#[derive(Debug, Clone, clap::Args)]
pub struct EngineSettings {
    /// The longest trip accepted, in days.
    #[arg(long, env = "MAX_TRIP_DAYS", default_value_t = 14, value_parser = clap::value_parser!(u32).range(1..=60))]
    pub max_trip_days: u32,
    /// How many times a draft that breaks rules is sent back for refinement.
    #[arg(long, env = "MAX_REFINE_ITERATIONS", default_value_t = 2, value_parser = clap::value_parser!(u32).range(0..=5))]
    pub max_refine_iterations: u32,
    /// A whole generation ends with `timeout` after this many seconds.
    #[arg(long, env = "GENERATION_TIMEOUT_SECS", default_value_t = 180)]
    pub generation_timeout_secs: u64,
    /// Pause between the offline planner's streamed lines, to demo streaming (0 = none).
    #[arg(long, env = "OFFLINE_CHUNK_DELAY_MS", default_value_t = 0)]
    pub offline_chunk_delay_ms: u64,
    #[command(flatten)]
    pub llm: LlmSettings,
    #[command(flatten)]
    pub weather: WeatherSettings,
}

impl Default for EngineSettings {
    fn default() -> Self {
        Self {
            max_trip_days: 14,
            max_refine_iterations: 2,
            generation_timeout_secs: 180,
            offline_chunk_delay_ms: 0,
            llm: LlmSettings::default(),
            weather: WeatherSettings::default(),
        }
    }
}

/// Which plan generator, in which order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LlmChoice {
    /// Gemini if `GEMINI_API_KEY` is set, else OpenAI-compatible if `OPENAI_BASE_URL` is set, else offline.
    #[default]
    Auto,
    Offline,
    Gemini,
    Openai,
    /// In `LLM_FALLBACK` only: no fallback.
    None,
}

impl LlmChoice {
    pub fn name(self) -> &'static str {
        match self {
            LlmChoice::Auto => "auto",
            LlmChoice::Offline => "offline",
            LlmChoice::Gemini => "gemini",
            LlmChoice::Openai => "openai",
            LlmChoice::None => "none",
        }
    }
}

/// The LLM providers (README "Providers").
#[derive(Debug, Clone, clap::Args)]
pub struct LlmSettings {
    /// The plan generator.
    #[arg(long, env = "LLM_PROVIDER", value_enum, default_value_t = LlmChoice::Auto)]
    pub llm_provider: LlmChoice,
    /// Generators tried in order when the chosen one is unavailable before it has streamed anything:
    /// comma-separated `gemini`, `openai`, `offline`, or `none`. Default: the other configured providers,
    /// then `offline`.
    #[arg(long, env = "LLM_FALLBACK", value_delimiter = ',')]
    pub llm_fallback: Vec<LlmChoice>,
    #[arg(long, env = "GEMINI_API_KEY", hide_env_values = true)]
    pub gemini_api_key: Option<String>,
    #[arg(long, env = "GEMINI_MODEL", default_value = "gemini-2.5-flash-lite")]
    pub gemini_model: String,
    #[arg(long, env = "GEMINI_BASE_URL", default_value = "https://generativelanguage.googleapis.com")]
    pub gemini_base_url: String,
    /// An OpenAI-compatible server: `https://api.openai.com`, Ollama `http://localhost:11434`, llama.cpp
    /// `http://localhost:8080`, vLLM `http://localhost:8000`.
    #[arg(long, env = "OPENAI_BASE_URL")]
    pub openai_base_url: Option<String>,
    /// Not needed by local servers.
    #[arg(long, env = "OPENAI_API_KEY", hide_env_values = true)]
    pub openai_api_key: Option<String>,
    #[arg(long, env = "OPENAI_MODEL", default_value = "gpt-4o-mini")]
    pub openai_model: String,
    /// Seconds to set up a connection to a provider.
    #[arg(long, env = "LLM_CONNECT_TIMEOUT_SECS", default_value_t = 5.0, value_parser = positive_secs)]
    pub llm_connect_timeout_secs: f64,
    /// Seconds from sending a request to the response headers.
    #[arg(long, env = "LLM_FIRST_BYTE_TIMEOUT_SECS", default_value_t = 30.0, value_parser = positive_secs)]
    pub llm_first_byte_timeout_secs: f64,
    /// The longest quiet gap, in seconds, between two frames of a streamed reply.
    #[arg(long, env = "LLM_IDLE_TIMEOUT_SECS", default_value_t = 30.0, value_parser = positive_secs)]
    pub llm_idle_timeout_secs: f64,
    /// Seconds for one whole call, retries included.
    #[arg(long, env = "LLM_TOTAL_TIMEOUT_SECS", default_value_t = 120.0, value_parser = positive_secs)]
    pub llm_total_timeout_secs: f64,
    /// Attempts per call (1 = no retries) for transient failures: 5xx, connection errors, short rate limits.
    #[arg(long, env = "LLM_MAX_ATTEMPTS", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=10))]
    pub llm_max_attempts: u32,
    /// The first retry's backoff ceiling in milliseconds; doubled per attempt, with full jitter.
    #[arg(long, env = "LLM_RETRY_BASE_MS", default_value_t = 500)]
    pub llm_retry_base_ms: u64,
    /// Streams one HTTP/2 connection to a provider carries before another is opened; keep it below the
    /// provider's concurrent-stream limit (Google's is 100), or streams beyond it wait in the client.
    #[arg(long, env = "LLM_STREAMS_PER_CONNECTION", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub llm_streams_per_connection: u32,
    /// HTTP/2 connections to a provider at most.
    #[arg(long, env = "LLM_MAX_CONNECTIONS", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=10000))]
    pub llm_max_connections: u32,
    /// A directory with `system.yaml`, `draft.yaml` and `refine.yaml` replacing the bundled prompts.
    #[arg(long, env = "PROMPTS_DIR")]
    pub prompts_dir: Option<PathBuf>,
}

impl Default for LlmSettings {
    fn default() -> Self {
        Self {
            llm_provider: LlmChoice::Auto,
            llm_fallback: Vec::new(),
            gemini_api_key: None,
            gemini_model: "gemini-2.5-flash-lite".into(),
            gemini_base_url: "https://generativelanguage.googleapis.com".into(),
            openai_base_url: None,
            openai_api_key: None,
            openai_model: "gpt-4o-mini".into(),
            llm_connect_timeout_secs: 5.0,
            llm_first_byte_timeout_secs: 30.0,
            llm_idle_timeout_secs: 30.0,
            llm_total_timeout_secs: 120.0,
            llm_max_attempts: 3,
            llm_retry_base_ms: 500,
            llm_streams_per_connection: 64,
            llm_max_connections: 256,
            prompts_dir: None,
        }
    }
}

/// Which weather services, over the bundled climate normals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WeatherChoice {
    /// OpenWeatherMap then Open-Meteo when `OPENWEATHER_API_KEY` is set; climate normals only otherwise.
    Auto,
    Openweathermap,
    OpenMeteo,
    /// Climate normals only.
    None,
}

#[derive(Debug, Clone, clap::Args)]
pub struct WeatherSettings {
    /// Forecast services in order, comma-separated; dates beyond their horizon use the climate normals.
    #[arg(long, env = "WEATHER_SOURCES", value_enum, value_delimiter = ',', default_value = "auto")]
    pub weather_sources: Vec<WeatherChoice>,
    #[arg(long, env = "OPENWEATHER_API_KEY", hide_env_values = true)]
    pub openweather_api_key: Option<String>,
    #[arg(long, env = "OPENWEATHER_BASE_URL", default_value = "https://api.openweathermap.org")]
    pub openweather_base_url: String,
    #[arg(long, env = "OPEN_METEO_BASE_URL", default_value = "https://api.open-meteo.com")]
    pub open_meteo_base_url: String,
    /// Open-Meteo's geocoding, used to find places outside the bundled data for an LLM provider when
    /// `OPENWEATHER_API_KEY` is not set.
    #[arg(long, env = "OPEN_METEO_GEOCODING_URL", default_value = "https://geocoding-api.open-meteo.com")]
    pub open_meteo_geocoding_url: String,
    /// Open-Meteo's historical archive, for the climate normals of places outside the bundled data.
    #[arg(long, env = "OPEN_METEO_ARCHIVE_URL", default_value = "https://archive-api.open-meteo.com")]
    pub open_meteo_archive_url: String,
    /// Seconds one weather request may take before the next source (or the normals) serves.
    #[arg(long, env = "WEATHER_TIMEOUT_SECS", default_value_t = 5.0, value_parser = positive_secs)]
    pub weather_timeout_secs: f64,
    /// How long a place's forecast is reused.
    #[arg(long, env = "WEATHER_CACHE_SECS", default_value_t = 3600)]
    pub weather_cache_secs: u64,
}

impl Default for WeatherSettings {
    fn default() -> Self {
        Self {
            weather_sources: vec![WeatherChoice::Auto],
            openweather_api_key: None,
            openweather_base_url: "https://api.openweathermap.org".into(),
            open_meteo_base_url: "https://api.open-meteo.com".into(),
            open_meteo_geocoding_url: "https://geocoding-api.open-meteo.com".into(),
            open_meteo_archive_url: "https://archive-api.open-meteo.com".into(),
            weather_timeout_secs: 5.0,
            weather_cache_secs: 3600,
        }
    }
}

fn positive_secs(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 86_400.0 => Ok(v),
        _ => Err(format!("{s:?} is not a number of seconds between 0 and 86400")),
    }
}

/// A configured secret: unset and empty are the same.
pub(crate) fn secret(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

impl EngineSettings {
    pub fn engine_config(&self) -> EngineConfig {
        EngineConfig {
            max_refine_iterations: self.max_refine_iterations,
            total_timeout: Duration::from_secs(self.generation_timeout_secs),
        }
    }

    pub fn request_limits(&self) -> RequestLimits {
        RequestLimits { max_trip_days: self.max_trip_days }
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct ServerConfig {
    /// Address to listen on.
    #[arg(long, env = "HOST", default_value = "0.0.0.0")]
    pub host: IpAddr,
    /// Port to listen on; 0 picks a free one.
    #[arg(long, short, env = "PORT", default_value_t = 8000)]
    pub port: u16,
    /// Seconds between `: keep-alive` comments on a quiet stream.
    #[arg(long, env = "KEEP_ALIVE_SECS", default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..))]
    pub keep_alive_secs: u64,
    /// On SIGTERM/SIGINT, in-flight streams get this many seconds to finish before they are ended with a
    /// retryable error.
    #[arg(long, env = "SHUTDOWN_GRACE_SECS", default_value_t = 30)]
    pub shutdown_grace_secs: u64,
    /// Seconds a stream nobody is attached to keeps generating (for a client to resume) before it is
    /// cancelled and its upstream call closed; 0 cancels at once.
    #[arg(long, env = "STREAM_CANCEL_GRACE_SECS", default_value_t = 30)]
    pub stream_cancel_grace_secs: u64,
    /// Seconds a finished stream stays readable for resumes.
    #[arg(long, env = "STREAM_RETENTION_SECS", default_value_t = 120)]
    pub stream_retention_secs: u64,
    /// The reconnection delay SSE clients are told (`retry:`), in milliseconds.
    #[arg(long, env = "SSE_RETRY_MS", default_value_t = 3000)]
    pub sse_retry_ms: u64,
    /// Origins allowed to call the API from a browser, comma-separated, or `*`.
    #[arg(long, env = "CORS_ALLOW_ORIGINS", default_value = "*")]
    pub cors_allow_origins: String,
    #[command(flatten)]
    pub engine: EngineSettings,
    #[command(flatten)]
    pub store: StoreSettings,
}

/// Where finished plans and the run log are kept.
#[derive(Debug, Clone, clap::Args)]
pub struct StoreSettings {
    /// Redis for the plan cache (shared by replicas); the cache is in-process when unset.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// Prefix of every Redis key, so several deployments (or tests) can share one Redis.
    #[arg(long, env = "REDIS_KEY_PREFIX", default_value = "tripstream:")]
    pub redis_key_prefix: String,
    /// Milliseconds a Redis command may take before the request goes on without the cache.
    #[arg(long, env = "REDIS_TIMEOUT_MS", default_value_t = 250)]
    pub redis_timeout_ms: u64,
    /// How long a finished plan is served from the cache; 0 turns caching off.
    #[arg(long, env = "CACHE_TTL_SECS", default_value_t = 86_400)]
    pub cache_ttl_secs: u64,
    /// Plans the in-process cache holds.
    #[arg(long, env = "CACHE_CAPACITY", default_value_t = 10_000)]
    pub cache_capacity: u64,
    /// The run log: `sqlite://tripstream.db` (created on first start), `sqlite::memory:`, or `postgres://…`.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://tripstream.db", hide_env_values = true)]
    pub database_url: String,
    /// Rows the run log keeps while its database is unreachable; beyond it the oldest are dropped and counted.
    #[arg(long, env = "RUNLOG_BUFFER", default_value_t = 100_000)]
    pub runlog_buffer: usize,
}

impl Default for StoreSettings {
    /// What tests and embedders get: no Redis, an in-memory run log.
    fn default() -> Self {
        Self {
            redis_url: None,
            redis_key_prefix: "tripstream:".into(),
            redis_timeout_ms: 250,
            cache_ttl_secs: 86_400,
            cache_capacity: 10_000,
            database_url: "sqlite::memory:".into(),
            runlog_buffer: 100_000,
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            host: IpAddr::from([127, 0, 0, 1]),
            port: 0,
            keep_alive_secs: 15,
            shutdown_grace_secs: 30,
            stream_cancel_grace_secs: 0,
            stream_retention_secs: 120,
            sse_retry_ms: 3000,
            cors_allow_origins: "*".into(),
            engine: EngineSettings::default(),
            store: StoreSettings::default(),
        }
    }
}
