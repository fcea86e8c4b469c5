//! Building and running the application, separately, so tests can run exactly what `serve` runs.

use std::future::{Future, IntoFuture};

use anyhow::Context;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method, Request};
use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnFailure, TraceLayer};
use tripstream_adapters::eventlog::EventLog;
use tripstream_adapters::keys::{CachedKeys, KeyStore};
use tripstream_adapters::runlog::{Db, RunLog};

use crate::auth::{Auth, PageSessions};
use crate::config::{AuthMode, AuthSettings, ServerConfig};
use crate::extract::BODY_LIMIT;
use crate::generations::{Generations, GenerationsConfig, RegistryConfig};
use crate::health::Readiness;
use crate::routes::{Page, router};
use crate::state::{About, AppState};
use crate::wiring::{Services, Stores};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub struct Application {
    listener: TcpListener,
    /// `METRICS_ADDR`: Prometheus without credentials, for a scraper on a private network.
    metrics_listener: Option<TcpListener>,
    router: Router,
    grace: Duration,
    generations: Generations,
    runlog: RunLog,
    /// Cancelled on the shutdown signal: no new connections, `/health/ready` says draining.
    draining: CancellationToken,
    /// Tasks of the stores: the run log's writer, background migrations.
    tasks: TaskTracker,
    stores_stopped: CancellationToken,
}

/// After the grace period, how long the remaining connections get to close once their streams ended.
const CLOSE_DEADLINE: Duration = Duration::from_secs(5);
/// How long shutdown waits for the service's tasks (log writers releasing leases, run-log flush).
const TASKS_DEADLINE: Duration = Duration::from_secs(10);

impl Application {
    /// Binds the listener and wires the services; nothing is served until [`Self::run_until_stopped`].
    pub async fn build(config: ServerConfig) -> anyhow::Result<Application> {
        let services = Services::from_settings(&config.engine)?;
        Self::with_services(config, services).await
    }

    /// As [`Self::build`], with the services given (tests swap in scripted generators).
    pub async fn with_services(config: ServerConfig, services: Services) -> anyhow::Result<Application> {
        Self::with_shared_log(config, services, None).await
    }

    /// As [`Self::with_services`], sharing streams with other replicas through `shared` instead of the
    /// configured Redis (replicas in one process, in tests).
    pub async fn with_shared_log(
        config: ServerConfig,
        services: Services,
        shared: Option<Arc<dyn EventLog>>,
    ) -> anyhow::Result<Application> {
        let page = Arc::new(Page::new(&config.map)?);
        let listener = TcpListener::bind(SocketAddr::new(config.host, config.port)).await?;
        let tasks = TaskTracker::new();
        let stores_stopped = CancellationToken::new();
        let retention = config.stream_retention_secs.get();
        let stores = Stores::open(&config.store, retention, &tasks, stores_stopped.clone()).await?;
        let shared = shared.or(stores.event_log);
        crate::observe::prometheus();
        let generations = Generations::new(
            services.engine,
            services.destinations.clone(),
            stores.cache.clone(),
            shared.clone(),
            GenerationsConfig {
                registry: RegistryConfig { cancel_grace: config.stream_cancel_grace_secs.get(), retention },
                limits: config.engine.request_limits(),
            },
        );
        let draining = CancellationToken::new();
        let auth = Arc::new(auth(&config.auth, stores.runlog.db()));
        let metrics_listener = match config.auth.metrics_addr {
            Some(addr) => Some(TcpListener::bind(addr).await.with_context(|| format!("METRICS_ADDR {addr}"))?),
            None => None,
        };
        let state = AppState {
            generations: generations.clone(),
            destinations: services.destinations,
            about: Arc::new(About {
                weather: services.weather,
                generators: services.generators,
                cache: stores.cache.as_ref().map_or("off", |c| c.name()),
            }),
            limits: config.engine.request_limits(),
            keep_alive: config.keep_alive_secs.get(),
            sse_retry: config.sse_retry_ms.get(),
            started: Instant::now(),
            runlog: stores.runlog.clone(),
            readiness: Readiness::new(draining.clone(), stores.runlog.db().clone(), shared),
            auth,
            page,
        };
        let router = router(state)
            .layer(DefaultBodyLimit::max(BODY_LIMIT))
            .layer(cors(&config.cors_allow_origins)?)
            .layer(PropagateRequestIdLayer::new(REQUEST_ID))
            .layer(
                TraceLayer::new_for_http()
                    .make_span_with(|req: &Request<_>| {
                        let id = req.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
                        tracing::info_span!(
                            "request",
                            method = %req.method(),
                            path = %req.uri().path(),
                            request_id = %id,
                            stream_id = tracing::field::Empty,
                        )
                    })
                    // A 5xx is logged once, where it is made (`ApiError`); a probe's 503 is no error at all.
                    .on_failure(DefaultOnFailure::new().level(tracing::Level::DEBUG)),
            )
            .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid));
        Ok(Application {
            listener,
            metrics_listener,
            router,
            grace: config.shutdown_grace_secs.get(),
            generations,
            runlog: stores.runlog,
            draining,
            tasks,
            stores_stopped,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// Serves until `shutdown` resolves, then stops accepting and gives in-flight streams the grace
    /// period; what is still running then is handed over to another replica (with a shared log) or ended
    /// with a retryable error. Waits for every task, then flushes the run log.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        self.generations.watch();
        // Events are small writes that must leave at once, not wait on Nagle's algorithm.
        let listener = self.listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "TCP_NODELAY not set");
            }
        });
        if let Some(metrics) = self.metrics_listener {
            let router =
                Router::new().route("/metrics", axum::routing::get(|| async { crate::routes::metrics_exposition() }));
            let stop = self.draining.clone().cancelled_owned();
            self.tasks.spawn(async move {
                if let Err(e) = axum::serve(metrics, router).with_graceful_shutdown(stop).await {
                    tracing::warn!(error = %e, "the metrics listener failed");
                }
            });
        }
        // The peer's address is what anonymous callers are known by (or the trusted proxy in front).
        let service = self.router.into_make_service_with_connect_info::<SocketAddr>();
        let serve = axum::serve(listener, service).with_graceful_shutdown(self.draining.clone().cancelled_owned());
        let mut serve = std::pin::pin!(serve.into_future());
        let served = tokio::select! {
            result = &mut serve => result,
            () = shutdown => {
                tracing::info!(grace_secs = self.grace.as_secs(), "shutting down: no new requests, finishing streams");
                self.draining.cancel();
                match tokio::time::timeout(self.grace, &mut serve).await {
                    Ok(result) => result,
                    Err(_) => {
                        tracing::info!("shutdown grace period over; ending the streams still running");
                        self.generations.stop();
                        tokio::time::timeout(CLOSE_DEADLINE, serve).await.unwrap_or(Ok(()))
                    }
                }
            }
        };
        self.generations.shutdown(TASKS_DEADLINE).await;
        // Every request has been answered; the rows they left are written before the process ends.
        self.runlog.close(TASKS_DEADLINE).await;
        self.stores_stopped.cancel();
        self.tasks.close();
        if tokio::time::timeout(TASKS_DEADLINE, self.tasks.wait()).await.is_err() {
            tracing::warn!(tasks = self.tasks.len(), "store tasks still running at the shutdown deadline");
        }
        tracing::info!("stopped");
        Ok(served?)
    }
}

/// Callers told apart: API keys from the run log's database (look-ups cached for `KEY_CACHE_SECS`),
/// trusted proxies, the page's session.
fn auth(settings: &AuthSettings, db: &Db) -> Auth {
    if settings.auth_mode == AuthMode::Required && settings.session_secret.is_none() {
        tracing::warn!(
            "AUTH_MODE=required without SESSION_SECRET: the page's sessions work only on the replica that issued them"
        );
    }
    Auth {
        mode: settings.auth_mode,
        trusted_proxies: settings.trusted_proxies.clone(),
        keys: Some(CachedKeys::new(KeyStore::new(db.clone()), settings.key_cache_secs.get(), KEY_CACHE_CAPACITY)),
        sessions: PageSessions::new(settings.session_secret.as_ref()),
    }
}

/// API keys whose look-ups are held at once.
const KEY_CACHE_CAPACITY: u64 = 10_000;

/// Browsers on other origins may call the API only when `CORS_ALLOW_ORIGINS` names them (or is `*`); by
/// default only the page's own origin does, which needs no CORS.
fn cors(origins: &str) -> anyhow::Result<CorsLayer> {
    let allow = if origins.trim() == "*" {
        AllowOrigin::any()
    } else {
        let list = origins
            .split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .map(HeaderValue::from_str)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| anyhow::anyhow!("CORS_ALLOW_ORIGINS: {e}"))?;
        AllowOrigin::list(list)
    };
    Ok(CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([
            axum::http::header::CONTENT_TYPE,
            axum::http::header::ACCEPT_LANGUAGE,
            axum::http::header::AUTHORIZATION,
            HeaderName::from_static("last-event-id"),
            HeaderName::from_static("idempotency-key"),
            HeaderName::from_static("x-resume-token"),
        ])
        .expose_headers([
            REQUEST_ID,
            HeaderName::from_static("x-stream-id"),
            HeaderName::from_static("x-resume-token"),
            HeaderName::from_static("x-cache"),
        ]))
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
