//! What one replica takes on: connections and their deadlines, callers' request rates and token budgets,
//! concurrent generations and model calls, and the memory finished streams may hold.

use super::defaults as d;
use super::values::{Millis, Secs};

#[derive(Debug, Clone, clap::Args)]
pub struct LimitSettings {
    /// Open connections at most (clamped below the process's file-descriptor limit); more wait to be
    /// accepted.
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = d::MAX_CONNECTIONS)]
    pub max_connections: usize,
    /// The longest a client may take to send a request's headers (and to start its first request), in
    /// seconds; an idle HTTP/1.1 connection is closed after it too.
    #[arg(long, env = "HEADER_READ_TIMEOUT_SECS", default_value_t = d::HEADER_READ_TIMEOUT, value_parser = Secs::positive)]
    pub header_read_timeout_secs: Secs,
    /// The longest a request body may take to arrive, in seconds.
    #[arg(long, env = "BODY_READ_TIMEOUT_SECS", default_value_t = d::BODY_READ_TIMEOUT, value_parser = Secs::positive)]
    pub body_read_timeout_secs: Secs,
    /// Concurrent streams on one HTTP/2 connection.
    #[arg(long, env = "HTTP2_MAX_STREAMS", default_value_t = d::HTTP2_MAX_STREAMS)]
    pub http2_max_streams: u32,
    /// Plan requests per minute from one anonymous address (shared by every replica with Redis).
    #[arg(long, env = "RATE_LIMIT_ANONYMOUS", default_value_t = d::RATE_LIMIT_ANONYMOUS)]
    pub rate_limit_anonymous: u32,
    /// Plan requests per minute for an API key that names no rate of its own.
    #[arg(long, env = "RATE_LIMIT_KEY", default_value_t = d::RATE_LIMIT_KEY)]
    pub rate_limit_key: u32,
    /// Requests above the rate a caller may make at once (a burst) before being slowed to it.
    #[arg(long, env = "RATE_LIMIT_BURST", default_value_t = d::RATE_LIMIT_BURST)]
    pub rate_limit_burst: u32,
    /// Look-ups of places beyond the bundled list (geocoding, a third party's quota) per minute per caller.
    #[arg(long, env = "GEOCODE_LIMIT", default_value_t = d::GEOCODE_LIMIT)]
    pub geocode_limit: u32,
    /// Generations running on this replica at most; more wait briefly, then get `503 overloaded`.
    #[arg(long, env = "MAX_GENERATIONS", default_value_t = d::MAX_GENERATIONS)]
    pub max_generations: usize,
    /// How long a new generation waits for a free place before `503 overloaded`, in milliseconds.
    #[arg(long, env = "ADMISSION_WAIT_MS", default_value_t = d::ADMISSION_WAIT)]
    pub admission_wait_ms: Millis,
    /// Requests that may wait for a place at once; beyond it they are refused at once.
    #[arg(long, env = "ADMISSION_QUEUE", default_value_t = d::ADMISSION_QUEUE)]
    pub admission_queue: usize,
    /// How long a running generation's next step (its weather look-up, its draft) may wait for the requests
    /// that arrived meanwhile to get their first bytes (a stream's first event), in milliseconds; 0 lets
    /// them take turns as they come.
    #[arg(long, env = "FIRST_EVENT_PRIORITY_MS", default_value_t = d::FIRST_EVENT_PRIORITY)]
    pub first_event_priority_ms: Millis,
    /// Bytes the finished streams kept for resumes may hold; beyond it the oldest are forgotten first
    /// (with Redis they stay resumable from its log).
    #[arg(long, env = "FINISHED_STREAMS_MAX_BYTES", default_value_t = d::FINISHED_STREAMS_MAX_BYTES)]
    pub finished_streams_max_bytes: usize,
    /// MiB of the allocator's memory faulted in at start, so that a fresh replica's first burst does not
    /// wait for the kernel to map each page its streams touch; 0 leaves it to the first touches.
    #[arg(long, env = "PREFAULT_MIB", default_value_t = d::PREFAULT_MIB)]
    pub prefault_mib: usize,
}

impl Default for LimitSettings {
    /// The command line's defaults.
    fn default() -> Self {
        Self {
            max_connections: d::MAX_CONNECTIONS,
            header_read_timeout_secs: d::HEADER_READ_TIMEOUT,
            body_read_timeout_secs: d::BODY_READ_TIMEOUT,
            http2_max_streams: d::HTTP2_MAX_STREAMS,
            rate_limit_anonymous: d::RATE_LIMIT_ANONYMOUS,
            rate_limit_key: d::RATE_LIMIT_KEY,
            rate_limit_burst: d::RATE_LIMIT_BURST,
            geocode_limit: d::GEOCODE_LIMIT,
            max_generations: d::MAX_GENERATIONS,
            admission_wait_ms: d::ADMISSION_WAIT,
            admission_queue: d::ADMISSION_QUEUE,
            first_event_priority_ms: d::FIRST_EVENT_PRIORITY,
            finished_streams_max_bytes: d::FINISHED_STREAMS_MAX_BYTES,
            prefault_mib: d::PREFAULT_MIB,
        }
    }
}
