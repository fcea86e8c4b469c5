//! Typed configuration, from flags or the environment (flags win).

use std::net::IpAddr;
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
}

impl Default for EngineSettings {
    fn default() -> Self {
        Self { max_trip_days: 14, max_refine_iterations: 2, generation_timeout_secs: 180, offline_chunk_delay_ms: 0 }
    }
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
    /// Origins allowed to call the API from a browser, comma-separated, or `*`.
    #[arg(long, env = "CORS_ALLOW_ORIGINS", default_value = "*")]
    pub cors_allow_origins: String,
    #[command(flatten)]
    pub engine: EngineSettings,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            host: IpAddr::from([127, 0, 0, 1]),
            port: 0,
            keep_alive_secs: 15,
            shutdown_grace_secs: 30,
            cors_allow_origins: "*".into(),
            engine: EngineSettings::default(),
        }
    }
}
