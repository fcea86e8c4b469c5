//! What a generation may do and who generates it: the limits, the LLM providers and the weather
//! services. Shared by `serve` and `plan`.

use std::path::PathBuf;

use tripstream_adapters::http::Secret;
use tripstream_domain::RequestLimits;
use tripstream_engine::EngineConfig;

use super::defaults as d;
use super::values::{Millis, Secs, http_url, optional_http_url, secret};

#[derive(Debug, Clone, clap::Args)]
pub struct EngineSettings {
    /// The longest trip accepted, in days.
    #[arg(long, env = "MAX_TRIP_DAYS", default_value_t = d::MAX_TRIP_DAYS, value_parser = clap::value_parser!(u32).range(1..=60))]
    pub max_trip_days: u32,
    /// How many times a draft that breaks rules is sent back for refinement.
    #[arg(long, env = "MAX_REFINE_ITERATIONS", default_value_t = d::MAX_REFINE_ITERATIONS, value_parser = clap::value_parser!(u32).range(0..=5))]
    pub max_refine_iterations: u32,
    /// A whole generation ends with `timeout` after this many seconds.
    #[arg(long, env = "GENERATION_TIMEOUT_SECS", default_value_t = d::GENERATION_TIMEOUT, value_parser = Secs::positive)]
    pub generation_timeout_secs: Secs,
    /// Pause between the offline planner's streamed lines, to demo streaming (0 = none).
    #[arg(long, env = "OFFLINE_CHUNK_DELAY_MS", default_value_t = d::OFFLINE_CHUNK_DELAY)]
    pub offline_chunk_delay_ms: Millis,
    #[command(flatten)]
    pub llm: LlmSettings,
    #[command(flatten)]
    pub weather: WeatherSettings,
    #[command(flatten)]
    pub places: PlaceSearchSettings,
}

impl Default for EngineSettings {
    /// The command line's defaults.
    fn default() -> Self {
        Self {
            max_trip_days: d::MAX_TRIP_DAYS,
            max_refine_iterations: d::MAX_REFINE_ITERATIONS,
            generation_timeout_secs: d::GENERATION_TIMEOUT,
            offline_chunk_delay_ms: d::OFFLINE_CHUNK_DELAY,
            llm: LlmSettings::default(),
            weather: WeatherSettings::default(),
            places: PlaceSearchSettings::default(),
        }
    }
}

impl EngineSettings {
    pub fn engine_config(&self) -> EngineConfig {
        EngineConfig {
            max_refine_iterations: self.max_refine_iterations,
            total_timeout: self.generation_timeout_secs.get(),
        }
    }

    pub fn request_limits(&self) -> RequestLimits {
        RequestLimits { max_trip_days: self.max_trip_days }
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
    #[arg(long, env = "GEMINI_API_KEY", hide_env_values = true, value_parser = secret)]
    pub gemini_api_key: Option<Secret>,
    #[arg(long, env = "GEMINI_MODEL", default_value = d::GEMINI_MODEL)]
    pub gemini_model: String,
    #[arg(long, env = "GEMINI_BASE_URL", default_value = d::GEMINI_BASE_URL, value_parser = http_url)]
    pub gemini_base_url: String,
    /// Thinking tokens a Gemini 2.5 model may spend before answering, on top of the answer's own: `0` turns
    /// Flash's thinking off, `-1` lets the model decide (Pro needs at least 128). Unset, the model's own
    /// default, with room for as much thinking as its replies have shown.
    #[arg(long, env = "GEMINI_THINKING_BUDGET", allow_negative_numbers = true,
          value_parser = clap::value_parser!(i32).range(-1..=32_768))]
    pub gemini_thinking_budget: Option<i32>,
    /// An OpenAI-compatible server: `https://api.openai.com`, Ollama `http://localhost:11434`, llama.cpp
    /// `http://localhost:8080`, vLLM `http://localhost:8000`.
    #[arg(long, env = "OPENAI_BASE_URL", value_parser = optional_http_url)]
    pub openai_base_url: Option<String>,
    /// Not needed by local servers.
    #[arg(long, env = "OPENAI_API_KEY", hide_env_values = true, value_parser = secret)]
    pub openai_api_key: Option<Secret>,
    #[arg(long, env = "OPENAI_MODEL", default_value = d::OPENAI_MODEL)]
    pub openai_model: String,
    /// Seconds to set up a connection to a provider.
    #[arg(long, env = "LLM_CONNECT_TIMEOUT_SECS", default_value_t = d::LLM_CONNECT_TIMEOUT, value_parser = Secs::positive)]
    pub llm_connect_timeout_secs: Secs,
    /// Seconds from sending a request to the response headers.
    #[arg(long, env = "LLM_FIRST_BYTE_TIMEOUT_SECS", default_value_t = d::LLM_FIRST_BYTE_TIMEOUT, value_parser = Secs::positive)]
    pub llm_first_byte_timeout_secs: Secs,
    /// The longest quiet gap, in seconds, between two frames of a streamed reply.
    #[arg(long, env = "LLM_IDLE_TIMEOUT_SECS", default_value_t = d::LLM_IDLE_TIMEOUT, value_parser = Secs::positive)]
    pub llm_idle_timeout_secs: Secs,
    /// Seconds for one whole call, retries included.
    #[arg(long, env = "LLM_TOTAL_TIMEOUT_SECS", default_value_t = d::LLM_TOTAL_TIMEOUT, value_parser = Secs::positive)]
    pub llm_total_timeout_secs: Secs,
    /// Attempts per call (1 = no retries) for transient failures: 5xx, connection errors, short rate limits.
    #[arg(long, env = "LLM_MAX_ATTEMPTS", default_value_t = d::LLM_MAX_ATTEMPTS, value_parser = clap::value_parser!(u32).range(1..=10))]
    pub llm_max_attempts: u32,
    /// The first retry's backoff ceiling in milliseconds; doubled per attempt, with full jitter.
    #[arg(long, env = "LLM_RETRY_BASE_MS", default_value_t = d::LLM_RETRY_BASE)]
    pub llm_retry_base_ms: Millis,
    /// Streams one HTTP/2 connection to a provider carries before another is opened; keep it below the
    /// provider's concurrent-stream limit (Google's is 100), or streams beyond it wait in the client.
    #[arg(long, env = "LLM_STREAMS_PER_CONNECTION", default_value_t = d::LLM_STREAMS_PER_CONNECTION, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub llm_streams_per_connection: u32,
    /// HTTP/2 connections to a provider at most.
    #[arg(long, env = "LLM_MAX_CONNECTIONS", default_value_t = d::LLM_MAX_CONNECTIONS, value_parser = clap::value_parser!(u32).range(1..=10000))]
    pub llm_max_connections: u32,
    /// Calls to model providers in flight from this process at most (a provider's concurrency quota);
    /// more wait their turn.
    #[arg(long, env = "MAX_MODEL_CALLS", default_value_t = d::MAX_MODEL_CALLS, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_model_calls: u32,
    /// A directory with `system.yaml`, `draft.yaml` and `refine.yaml` replacing the bundled prompts.
    #[arg(long, env = "PROMPTS_DIR")]
    pub prompts_dir: Option<PathBuf>,
}

impl Default for LlmSettings {
    /// The command line's defaults: no provider configured.
    fn default() -> Self {
        Self {
            llm_provider: LlmChoice::Auto,
            llm_fallback: Vec::new(),
            gemini_api_key: None,
            gemini_model: d::GEMINI_MODEL.into(),
            gemini_base_url: d::GEMINI_BASE_URL.into(),
            gemini_thinking_budget: None,
            openai_base_url: None,
            openai_api_key: None,
            openai_model: d::OPENAI_MODEL.into(),
            llm_connect_timeout_secs: d::LLM_CONNECT_TIMEOUT,
            llm_first_byte_timeout_secs: d::LLM_FIRST_BYTE_TIMEOUT,
            llm_idle_timeout_secs: d::LLM_IDLE_TIMEOUT,
            llm_total_timeout_secs: d::LLM_TOTAL_TIMEOUT,
            llm_max_attempts: d::LLM_MAX_ATTEMPTS,
            llm_retry_base_ms: d::LLM_RETRY_BASE,
            llm_streams_per_connection: d::LLM_STREAMS_PER_CONNECTION,
            llm_max_connections: d::LLM_MAX_CONNECTIONS,
            max_model_calls: d::MAX_MODEL_CALLS,
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
    #[arg(long, env = "OPENWEATHER_API_KEY", hide_env_values = true, value_parser = secret)]
    pub openweather_api_key: Option<Secret>,
    #[arg(long, env = "OPENWEATHER_BASE_URL", default_value = d::OPENWEATHER_BASE_URL, value_parser = http_url)]
    pub openweather_base_url: String,
    #[arg(long, env = "OPEN_METEO_BASE_URL", default_value = d::OPEN_METEO_BASE_URL, value_parser = http_url)]
    pub open_meteo_base_url: String,
    /// Open-Meteo's geocoding, used to find places outside the bundled data for an LLM provider when
    /// `OPENWEATHER_API_KEY` is not set.
    #[arg(long, env = "OPEN_METEO_GEOCODING_URL", default_value = d::OPEN_METEO_GEOCODING_URL, value_parser = http_url)]
    pub open_meteo_geocoding_url: String,
    /// Open-Meteo's historical archive, for the climate normals of places outside the bundled data.
    #[arg(long, env = "OPEN_METEO_ARCHIVE_URL", default_value = d::OPEN_METEO_ARCHIVE_URL, value_parser = http_url)]
    pub open_meteo_archive_url: String,
    /// Seconds one weather request may take before the next source (or the normals) serves.
    #[arg(long, env = "WEATHER_TIMEOUT_SECS", default_value_t = d::WEATHER_TIMEOUT, value_parser = Secs::positive)]
    pub weather_timeout_secs: Secs,
    /// How long a place's forecast is reused.
    #[arg(long, env = "WEATHER_CACHE_SECS", default_value_t = d::WEATHER_CACHE, value_parser = Secs::positive)]
    pub weather_cache_secs: Secs,
}

impl Default for WeatherSettings {
    /// The command line's defaults: no forecast service configured.
    fn default() -> Self {
        Self {
            weather_sources: vec![WeatherChoice::Auto],
            openweather_api_key: None,
            openweather_base_url: d::OPENWEATHER_BASE_URL.into(),
            open_meteo_base_url: d::OPEN_METEO_BASE_URL.into(),
            open_meteo_geocoding_url: d::OPEN_METEO_GEOCODING_URL.into(),
            open_meteo_archive_url: d::OPEN_METEO_ARCHIVE_URL.into(),
            weather_timeout_secs: d::WEATHER_TIMEOUT,
            weather_cache_secs: d::WEATHER_CACHE,
        }
    }
}

/// Checking a model's places outside the bundled data against a place search (Nominatim's API). Off
/// unless `PLACE_SEARCH_URL` is set: those places are then listed once in `warnings` as not checked.
#[derive(Debug, Clone, clap::Args)]
pub struct PlaceSearchSettings {
    /// A Nominatim instance, e.g. `https://nominatim.openstreetmap.org` (its usage policy: at most one
    /// request per second, an identifying User-Agent, answers cached) or a self-hosted one.
    #[arg(long, env = "PLACE_SEARCH_URL", value_parser = optional_http_url)]
    pub place_search_url: Option<String>,
    /// One search request, connection to last byte.
    #[arg(long, env = "PLACE_SEARCH_TIMEOUT_MS", default_value_t = d::PLACE_SEARCH_TIMEOUT, value_parser = Millis::positive)]
    pub place_search_timeout_ms: Millis,
    /// All the searches of one plan together; places not answered by then are noted as not checked.
    #[arg(long, env = "PLACE_SEARCH_BUDGET_MS", default_value_t = d::PLACE_SEARCH_BUDGET, value_parser = Millis::positive)]
    pub place_search_budget_ms: Millis,
    /// The least time between two requests' starts, across the process (1000 for the public instance; 0
    /// for a self-hosted one without limits).
    #[arg(long, env = "PLACE_SEARCH_INTERVAL_MS", default_value_t = d::PLACE_SEARCH_INTERVAL)]
    pub place_search_interval_ms: Millis,
    /// Searches of one plan in flight at once.
    #[arg(long, env = "PLACE_SEARCH_CONCURRENCY", default_value_t = d::PLACE_SEARCH_CONCURRENCY, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub place_search_concurrency: u32,
    /// Sent with every search; the public instance requires one that names the application (add a contact).
    #[arg(long, env = "PLACE_SEARCH_USER_AGENT", default_value = tripstream_adapters::places::NominatimConfig::DEFAULT_USER_AGENT)]
    pub place_search_user_agent: String,
}

impl Default for PlaceSearchSettings {
    /// The command line's defaults: no place search.
    fn default() -> Self {
        Self {
            place_search_url: None,
            place_search_timeout_ms: d::PLACE_SEARCH_TIMEOUT,
            place_search_budget_ms: d::PLACE_SEARCH_BUDGET,
            place_search_interval_ms: d::PLACE_SEARCH_INTERVAL,
            place_search_concurrency: d::PLACE_SEARCH_CONCURRENCY,
            place_search_user_agent: tripstream_adapters::places::NominatimConfig::DEFAULT_USER_AGENT.into(),
        }
    }
}
