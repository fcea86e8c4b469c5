//! The composition root: which adapter serves each port, decided once from configuration and logged.

use std::sync::Arc;
use std::time::Duration;

use tripstream_adapters::{BundledDestinations, Catalog, Climatology, OfflineConfig, OfflinePlanner};
use tripstream_engine::{Destinations, Engine};

use crate::config::EngineSettings;

/// Everything a generation needs, wired.
#[derive(Clone)]
pub struct Services {
    pub engine: Engine,
    pub destinations: Arc<dyn Destinations>,
    /// The generators in fallback order, for `/health`.
    pub generators: Vec<String>,
    /// The weather source, for `/health`.
    pub weather: String,
}

impl Services {
    /// Fails, naming the problem, on configuration that cannot work.
    pub fn from_settings(settings: &EngineSettings) -> anyhow::Result<Services> {
        let catalog = Catalog::bundled();
        let offline = OfflineConfig { chunk_delay: Duration::from_millis(settings.offline_chunk_delay_ms) };
        let generator = Arc::new(OfflinePlanner::new(catalog.clone(), offline));
        let engine = Engine::new(generator, Arc::new(Climatology), settings.engine_config());
        let info = engine.generator_info();
        tracing::info!(provider = %info.provider, model = %info.model, weather = Climatology::SOURCE, "providers chosen");
        Ok(Services {
            engine,
            destinations: Arc::new(BundledDestinations::new(catalog)),
            generators: vec![info.provider],
            weather: Climatology::SOURCE.to_owned(),
        })
    }
}
