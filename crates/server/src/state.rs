//! What every handler shares.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tripstream_adapters::cache::Resilient;
use tripstream_adapters::runlog::RunLog;
use tripstream_domain::RequestLimits;
use tripstream_engine::{Destinations, Engine};

#[derive(Clone)]
pub struct AppState {
    pub engine: Engine,
    pub destinations: Arc<dyn Destinations>,
    /// The weather layers, for `/health`.
    pub weather: String,
    /// The generators in fallback order, for `/health`.
    pub generators: Vec<String>,
    pub limits: RequestLimits,
    pub keep_alive: Duration,
    /// The `retry:` hint at the start of every stream.
    pub sse_retry: Duration,
    /// Cancelled when the shutdown grace period is over: streams still running end with a retryable error.
    pub hard_stop: CancellationToken,
    pub started: Instant,
    /// Generations in flight, joined by identical requests.
    pub hub: Arc<crate::hub::Hub>,
    /// Finished plans; `None` when caching is off.
    pub cache: Option<Arc<Resilient>>,
    pub runlog: RunLog,
    /// The web page, with the map's tile settings written in.
    pub page: Arc<crate::routes::Page>,
}
