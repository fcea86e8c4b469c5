//! The composition root: which adapter serves each port, decided once from configuration and logged.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use tripstream_adapters::fallback::FallbackChain;
use tripstream_adapters::geocoded::Geocoder;
use tripstream_adapters::http::{self, PoolLimits, Secret};
use tripstream_adapters::limited::Limited;
use tripstream_adapters::llm::{
    ChatModel, Gemini, GeminiConfig, LlmPlanner, OpenAi, OpenAiConfig, Prompts, RetryPolicy, Timeouts,
};
use tripstream_adapters::places::{CheckedPlaces, Nominatim, NominatimConfig, PlaceSettings};
use tripstream_adapters::weather::{ForecastSource, LayeredWeather, OpenMeteo, OpenWeatherMap};
use tripstream_adapters::{
    BundledDestinations, Catalog, Climatology, GeocodedDestinations, OfflineConfig, OfflinePlanner,
};
use tripstream_engine::{Destinations, Engine, PlanGenerator, Weather};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tripstream_adapters::cache::{MemoryCache, PlanStore, RedisCache, Resilient};
use tripstream_adapters::eventlog::{EventLog, RedisEventLog};
use tripstream_adapters::plans::SavedPlans;
use tripstream_adapters::runlog::{Db, RunLog, RunLogConfig};

use crate::config::{
    EngineSettings, LlmChoice, LlmSettings, PlaceSearchSettings, StoreSettings, WeatherChoice, WeatherSettings,
    configured,
};

/// Everything a generation needs, wired.
#[derive(Clone)]
pub struct Services {
    pub engine: Engine,
    pub destinations: Arc<dyn Destinations>,
    /// The generators in fallback order, for `/health`.
    pub generators: Vec<String>,
    /// The weather layers, for `/health`: `climatology`, `openweathermap+open-meteo+climatology`.
    pub weather: String,
}

impl Services {
    /// Fails, naming the problem, on configuration that cannot work: a provider chosen without its
    /// settings, a prompt file that does not compile.
    pub fn from_settings(settings: &EngineSettings) -> anyhow::Result<Services> {
        let catalog = Catalog::bundled();
        let offline = OfflineConfig { chunk_delay: settings.offline_chunk_delay_ms.get() };
        let offline: Arc<dyn PlanGenerator> = Arc::new(OfflinePlanner::new(catalog.clone(), offline));

        let chain = generator_order(&settings.llm)?;
        let prompts = match &settings.llm.prompts_dir {
            _ if chain == [LlmChoice::Offline] => None,
            Some(dir) => Some(Prompts::from_dir(dir)?),
            None => Some(Prompts::embedded().context("the bundled prompts are broken")?),
        }
        .map(Arc::new);
        // Every model's calls count against one cap: a provider's concurrency is the process's.
        let model_calls = Arc::new(tokio::sync::Semaphore::new(settings.llm.max_model_calls as usize));
        let links: Vec<Arc<dyn PlanGenerator>> = chain
            .iter()
            .map(|choice| match (choice, &prompts) {
                (LlmChoice::Gemini | LlmChoice::Openai, Some(prompts)) => {
                    let model = chat_model(*choice, &settings.llm);
                    let planner = Arc::new(LlmPlanner::new(model, prompts.clone(), catalog.clone()));
                    Arc::new(Limited::new(planner, model_calls.clone())) as Arc<dyn PlanGenerator>
                }
                _ => offline.clone(),
            })
            .collect();
        let generators: Vec<String> = chain.iter().map(|c| c.name().to_owned()).collect();
        let generator: Arc<dyn PlanGenerator> =
            if links.len() == 1 { links[0].clone() } else { Arc::new(FallbackChain::new(links)) };

        // A model can plan anywhere: the bundled data serves where it can, geocoding and the weather
        // archive elsewhere. The offline planner knows only the bundled places.
        let llm_first = chain[0] != LlmChoice::Offline;
        let (weather, weather_name, geocoder) = weather(&settings.weather, llm_first);
        let destinations: Arc<dyn Destinations> = match geocoder {
            Some(geocoder) => Arc::new(GeocodedDestinations::new(catalog.clone(), geocoder)),
            None => Arc::new(BundledDestinations::new(catalog.clone())),
        };
        let places = place_checks(&settings.places, catalog);
        let engine = Engine::new(generator, weather, settings.engine_config()).with_places(Arc::new(places));
        let info = engine.generator_info();
        tracing::info!(
            provider = %info.provider,
            model = %info.model,
            prompt_version = %info.prompt_version,
            fallback = %generators[1..].join(","),
            weather = %weather_name,
            place_search = if settings.places.place_search_url.is_some() { "nominatim" } else { "off" },
            "providers chosen"
        );
        Ok(Services { engine, destinations, generators, weather: weather_name })
    }
}

/// The chosen generator first, then the fallbacks, without repeats.
fn generator_order(llm: &LlmSettings) -> anyhow::Result<Vec<LlmChoice>> {
    let gemini = configured(&llm.gemini_api_key).is_some();
    let openai = llm.openai_base_url.as_deref().is_some_and(|u| !u.trim().is_empty());
    let configured = |c: LlmChoice| match c {
        LlmChoice::Gemini => gemini,
        LlmChoice::Openai => openai,
        _ => true,
    };
    let first = match llm.llm_provider {
        LlmChoice::Auto if gemini => LlmChoice::Gemini,
        LlmChoice::Auto if openai => LlmChoice::Openai,
        LlmChoice::Auto => LlmChoice::Offline,
        LlmChoice::None => bail!("LLM_PROVIDER=none: choose auto, offline, gemini or openai"),
        LlmChoice::Gemini if !gemini => bail!("LLM_PROVIDER=gemini needs GEMINI_API_KEY"),
        LlmChoice::Openai if !openai => bail!("LLM_PROVIDER=openai needs OPENAI_BASE_URL"),
        chosen => chosen,
    };
    let rest: Vec<LlmChoice> = if llm.llm_fallback.is_empty() {
        [LlmChoice::Gemini, LlmChoice::Openai, LlmChoice::Offline].into_iter().filter(|c| configured(*c)).collect()
    } else if llm.llm_fallback.contains(&LlmChoice::None) {
        Vec::new()
    } else {
        for c in &llm.llm_fallback {
            if !configured(*c) || *c == LlmChoice::Auto {
                bail!("LLM_FALLBACK names {}, which is not configured", c.name());
            }
        }
        llm.llm_fallback.clone()
    };
    let mut order = vec![first];
    for c in rest {
        if !order.contains(&c) {
            order.push(c);
        }
    }
    Ok(order)
}

fn chat_model(choice: LlmChoice, llm: &LlmSettings) -> Arc<dyn ChatModel> {
    let timeouts = Timeouts {
        connect: llm.llm_connect_timeout_secs.get(),
        first_byte: llm.llm_first_byte_timeout_secs.get(),
        idle: llm.llm_idle_timeout_secs.get(),
        total: llm.llm_total_timeout_secs.get(),
    };
    let retry = RetryPolicy {
        max_attempts: llm.llm_max_attempts,
        backoff_base: llm.llm_retry_base_ms.get(),
        ..RetryPolicy::default()
    };
    let pool = PoolLimits {
        streams_per_connection: llm.llm_streams_per_connection as usize,
        max_connections: llm.llm_max_connections as usize,
    };
    match choice {
        LlmChoice::Gemini => {
            let mut config =
                GeminiConfig::new(configured(&llm.gemini_api_key).cloned().unwrap_or_else(|| Secret::new("")));
            config.model = llm.gemini_model.clone();
            config.thinking_budget = llm.gemini_thinking_budget;
            config.base_url = llm.gemini_base_url.clone();
            config.timeouts = timeouts;
            config.retry = retry;
            config.pool = pool;
            Arc::new(Gemini::new(config))
        }
        _ => {
            let mut config = OpenAiConfig::new(llm.openai_base_url.clone().unwrap_or_default());
            config.api_key = configured(&llm.openai_api_key).cloned();
            config.model = llm.openai_model.clone();
            config.timeouts = timeouts;
            config.retry = retry;
            config.pool = pool;
            Arc::new(OpenAi::new(config))
        }
    }
}

/// Place verification: the bundled data always, Nominatim when `PLACE_SEARCH_URL` is set.
fn place_checks(settings: &PlaceSearchSettings, catalog: Arc<Catalog>) -> CheckedPlaces {
    let search = settings.place_search_url.as_deref().filter(|u| !u.trim().is_empty()).map(|url| {
        Nominatim::new(NominatimConfig {
            timeout: settings.place_search_timeout_ms.get(),
            min_interval: settings.place_search_interval_ms.get(),
            user_agent: settings.place_search_user_agent.clone(),
            ..NominatimConfig::new(url.trim())
        })
    });
    let places = PlaceSettings {
        budget: settings.place_search_budget_ms.get(),
        concurrency: settings.place_search_concurrency as usize,
        ..PlaceSettings::default()
    };
    CheckedPlaces::new(catalog, search, places)
}

/// The weather port, its name for `/health`, and, for a model that may plan anywhere, the geocoder.
fn weather(settings: &WeatherSettings, plans_anywhere: bool) -> (Arc<dyn Weather>, String, Option<Geocoder>) {
    let timeout = settings.weather_timeout_secs.get();
    let client = http::client(timeout);
    let owm = configured(&settings.openweather_api_key).map(|key| {
        Arc::new(
            OpenWeatherMap::new(key.clone(), client.clone())
                .with_base_url(&settings.openweather_base_url)
                .with_request_timeout(timeout),
        )
    });
    let meteo = Arc::new(
        OpenMeteo::new(client.clone())
            .with_base_url(&settings.open_meteo_base_url)
            .with_geocoding_and_archive_urls(&settings.open_meteo_geocoding_url, &settings.open_meteo_archive_url)
            .with_request_timeout(timeout),
    );
    let mut sources: Vec<Arc<dyn ForecastSource>> = Vec::new();
    for choice in &settings.weather_sources {
        match choice {
            WeatherChoice::Auto => {
                if let Some(owm) = &owm {
                    sources.push(owm.clone());
                    sources.push(meteo.clone());
                }
            }
            WeatherChoice::Openweathermap => match &owm {
                Some(owm) => sources.push(owm.clone()),
                None => {
                    tracing::warn!("WEATHER_SOURCES names openweathermap but OPENWEATHER_API_KEY is not set; skipped")
                }
            },
            WeatherChoice::OpenMeteo => sources.push(meteo.clone()),
            WeatherChoice::None => {}
        }
    }
    sources.dedup_by_key(|s| s.name());
    if sources.is_empty() && !plans_anywhere {
        return (Arc::new(Climatology), Climatology::SOURCE.to_owned(), None);
    }
    let mut layered = LayeredWeather::new(sources).with_ttl(settings.weather_cache_secs.get());
    let mut names: Vec<&str> = layered.source_names();
    names.push(Climatology::SOURCE);
    let geocoder = plans_anywhere.then(|| {
        layered = layered.clone().with_archive_normals(meteo.clone());
        match owm {
            Some(owm) => Geocoder::OpenWeatherMap(owm),
            None => Geocoder::OpenMeteo(meteo.clone()),
        }
    });
    let name = names.join("+");
    (Arc::new(layered), name, geocoder)
}

/// The plan cache, the run log and the shared event log, opened from configuration.
#[derive(Clone)]
pub struct Stores {
    /// `None` when caching is off (`CACHE_TTL_SECS=0`).
    pub cache: Option<Arc<Resilient>>,
    pub runlog: RunLog,
    /// Every delivered plan, in the run log's database; swept of plans past `PLAN_RETENTION_DAYS`.
    pub plans: SavedPlans,
    /// Stream event logs shared by replicas, with Redis.
    pub event_log: Option<Arc<dyn EventLog>>,
    /// Redis for what replicas count together (request rates, token budgets), with its key prefix.
    pub counters: Option<(ConnectionManager, String)>,
}

impl Stores {
    /// Opens the run log's database and the cache, starting the run log's writer on `tasks`. Redis is
    /// connected lazily, so a Redis that is down at start-up is a warning, not a failure. So is a
    /// PostgreSQL that is not up yet: its migrations are retried on `tasks` until they apply (the
    /// replica is not ready meanwhile, and rows wait in the run log's buffer) or `stopped`. A SQLite
    /// file is migrated at once, and a database URL that cannot work at all fails here.
    pub async fn open(
        settings: &StoreSettings,
        stream_retention: Duration,
        tasks: &TaskTracker,
        stopped: CancellationToken,
    ) -> anyhow::Result<Stores> {
        let ttl = settings.cache_ttl_secs.get();
        let redis_url = settings.redis();
        let cache: Option<Arc<dyn PlanStore>> = match redis_url {
            _ if ttl.is_zero() => None,
            Some(url) => {
                let timeout = settings.redis_timeout_ms.get().max(Duration::from_millis(1));
                Some(Arc::new(RedisCache::new(url, settings.redis_key_prefix.clone(), ttl, timeout)?))
            }
            None => Some(Arc::new(MemoryCache::new(settings.cache_capacity, ttl))),
        };
        let db = Db::connect(settings.database_url.expose()).await.context("DATABASE_URL")?;
        if db.kind() == "sqlite" {
            db.migrate().await.context("DATABASE_URL")?;
        } else {
            tasks.spawn(migrate_until_done(db.clone(), stopped.clone()));
        }
        let config = RunLogConfig { buffer: settings.runlog_buffer, ..RunLogConfig::default() };
        tracing::info!(cache = cache.as_ref().map_or("off", |c| c.name()), run_log = db.kind(), "stores opened");
        let event_log: Option<Arc<dyn EventLog>> = match redis_url {
            Some(url) => Some(Arc::new(RedisEventLog::new(url, settings.redis_key_prefix.clone(), stream_retention)?)),
            None => None,
        };
        let counters = match redis_url {
            Some(url) => {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(Duration::from_secs(1)))
                    .set_response_timeout(Some(Duration::from_millis(500)));
                let connection = ConnectionManager::new_lazy_with_config(redis::Client::open(url)?, config)?;
                Some((connection, settings.redis_key_prefix.clone()))
            }
            None => None,
        };
        let plans = SavedPlans::new(db.clone()).tracked_by(tasks.clone());
        if settings.plan_retention_days > 0 {
            tasks.spawn(sweep_plans(plans.clone(), settings.plan_retention_days, stopped));
        }
        let runlog = RunLog::start(db, config, tasks);
        Ok(Stores { cache: cache.map(|c| Arc::new(Resilient::new(c))), runlog, plans, event_log, counters })
    }
}

/// How often saved plans past their retention are looked for.
const PLAN_SWEEP_EVERY: Duration = Duration::from_secs(3600);

/// Deletes saved plans whose latest version is older than `days`, at start-up and then every
/// [`PLAN_SWEEP_EVERY`], until the replica stops. A sweep that fails (a database not up yet) is logged and
/// tried again at the next one.
async fn sweep_plans(plans: SavedPlans, days: u32, stopped: CancellationToken) {
    let mut tick = tokio::time::interval(PLAN_SWEEP_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stopped.cancelled() => return,
            _ = tick.tick() => {}
        }
        let cutoff = jiff::Timestamp::now().as_millisecond() - i64::from(days) * 86_400_000;
        if let Err(e) = plans.delete_older_than(cutoff).await {
            tracing::warn!(error = %e, "saved plans were not swept; trying again later");
        }
    }
}

/// Applies the run log's migrations, retrying with backoff until they apply or the replica stops.
async fn migrate_until_done(db: Db, stopped: CancellationToken) {
    let mut failures = 0u32;
    loop {
        match db.migrate().await {
            Ok(()) => {
                if failures > 0 {
                    tracing::info!(failures, "run log database reachable; migrations applied");
                }
                return;
            }
            Err(e) => {
                if failures == 0 {
                    tracing::warn!(error = %e, "run log database not reachable yet; retrying in the background (not ready until it is)");
                }
                failures += 1;
            }
        }
        let wait = http::backoff(failures, Duration::from_millis(500), Duration::from_secs(10));
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = stopped.cancelled() => return,
        }
    }
}
