//! What every handler shares.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tripstream_adapters::runlog::RunLog;
use tripstream_domain::RequestLimits;
use tripstream_engine::Destinations;

use crate::auth::Auth;
use crate::generations::Generations;
use crate::health::Readiness;

/// What every handler shares, behind one `Arc`: axum clones the state for each request and for each
/// extractor that takes it, and one reference count costs less than the dozen counts and the
/// cancellation token's mutex that cloning the fields would take (a burst's first events wait on it).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The parts of [`AppState`].
pub struct Shared {
    /// The life of every generation: start, join, replay, resume, cancel.
    pub generations: Generations,
    pub destinations: Arc<dyn Destinations>,
    /// What `/health` reports about the wiring.
    pub about: Arc<About>,
    pub limits: RequestLimits,
    /// How long a request body may take to arrive.
    pub body_read_timeout: Duration,
    pub keep_alive: Duration,
    /// The `retry:` hint at the start of every stream.
    pub sse_retry: Duration,
    pub started: Instant,
    pub runlog: RunLog,
    pub readiness: Readiness,
    /// Who is calling: keys, trusted proxies, the page's session.
    pub auth: Arc<Auth>,
    /// The web page, with the map's tile settings written in.
    pub page: Arc<crate::routes::Page>,
    /// Saved plans and their share links.
    pub plans: tripstream_adapters::plans::SavedPlans,
}

/// The wiring, decided once at start-up.
#[derive(Debug, Clone)]
pub struct About {
    /// The weather layers: `climatology`, `openweathermap+open-meteo+climatology`.
    pub weather: String,
    /// The generators in fallback order.
    pub generators: Vec<String>,
    /// `memory`, `redis` or `off`.
    pub cache: &'static str,
}
