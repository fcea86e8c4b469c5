//! Building and running the application, separately, so tests can run exactly what `serve` runs.

use std::future::Future;

use anyhow::Context;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method, Request};
use axum::response::IntoResponse;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::util::BoxCloneSyncService;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnFailure, TraceLayer};
use tripstream_adapters::eventlog::EventLog;
use tripstream_adapters::keys::{CachedKeys, KeyStore};
use tripstream_adapters::runlog::{Db, RunLog};

use crate::admission::{Admission, AdmissionSettings, Rate};
use crate::auth::{Auth, PageSessions};
use crate::config::{AuthMode, AuthSettings, LimitSettings, ServerConfig};
use crate::extract::BODY_LIMIT;
use crate::generations::{Generations, GenerationsConfig, RegistryConfig};
use crate::health::Readiness;
use crate::intake::Intake;
use crate::routes::{Page, router};
use crate::serve;
use crate::state::{About, AppState, Shared};
use crate::wiring::{Services, Stores};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub struct Application {
    listener: TcpListener,
    /// `METRICS_ADDR`: Prometheus without credentials, for a scraper on a private network.
    metrics_listener: Option<TcpListener>,
    limits: serve::Limits,
    app: serve::App,
    grace: Duration,
    generations: Generations,
    runlog: RunLog,
    /// Cancelled on the shutdown signal: no new connections, `/health/ready` says draining.
    draining: CancellationToken,
    /// Requests on their way to their first bytes, which generations let go first.
    intake: Arc<Intake>,
    /// Tasks of the stores: the run log's writer, background migrations.
    tasks: TaskTracker,
    stores_stopped: CancellationToken,
}

/// How often an idle HTTP/2 connection is pinged (and how long it has to answer).
const HTTP2_KEEP_ALIVE: Duration = Duration::from_secs(20);
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
        // The time zone database is found and indexed on first use (a walk of the system's zoneinfo
        // directory, milliseconds of file system calls): here, not on the runtime's thread in the first
        // generation's weather step, where a fresh replica's first burst waited behind it.
        let zones = jiff::tz::db();
        tracing::debug!(?zones, "time zone database loaded");
        let listener = serve::bind(SocketAddr::new(config.host, config.port))?;
        let tasks = TaskTracker::new();
        let stores_stopped = CancellationToken::new();
        let retention = config.stream_retention_secs.get();
        let stores = Stores::open(&config.store, retention, &tasks, stores_stopped.clone()).await?;
        let shared = shared.or(stores.event_log);
        crate::observe::prometheus();
        let admission = Arc::new(Admission::new(admission_settings(&config.limits), stores.counters.clone()));
        let intake = Intake::new(config.limits.first_event_priority_ms.get());
        let engine = match intake.paces() {
            true => services.engine.with_pacing(intake.clone()),
            false => services.engine,
        };
        let generations = Generations::new(
            engine,
            services.destinations.clone(),
            stores.cache.clone(),
            Some(stores.plans.clone()),
            shared.clone(),
            admission.clone(),
            GenerationsConfig {
                registry: RegistryConfig {
                    cancel_grace: config.stream_cancel_grace_secs.get(),
                    retention,
                    finished_bytes: config.limits.finished_streams_max_bytes,
                },
                limits: config.engine.request_limits(),
            },
        );
        let draining = CancellationToken::new();
        let auth = Arc::new(auth(&config.auth, stores.runlog.db()));
        let metrics_listener = match config.auth.metrics_addr {
            Some(addr) => Some(serve::bind(addr).with_context(|| format!("METRICS_ADDR {addr}"))?),
            None => None,
        };
        let state = AppState::new(Shared {
            generations: generations.clone(),
            destinations: services.destinations,
            about: Arc::new(About {
                weather: services.weather,
                generators: services.generators,
                cache: stores.cache.as_ref().map_or("off", |c| c.name()),
            }),
            limits: config.engine.request_limits(),
            body_read_timeout: config.limits.body_read_timeout_secs.get(),
            keep_alive: config.keep_alive_secs.get(),
            sse_retry: config.sse_retry_ms.get(),
            started: Instant::now(),
            runlog: stores.runlog.clone(),
            readiness: Readiness::new(draining.clone(), stores.runlog.db().clone(), shared, admission),
            auth,
            page,
            plans: stores.plans.clone(),
        });
        // The middleware wraps the router once, not each route (`Router::layer` would box every layer
        // again around every route, and clone all of them for every request).
        let app = tower::ServiceBuilder::new()
            // Outermost: a client's oversized or odd ids never reach a log line, a row or a map.
            .map_request(bounded_ids)
            .map_response(IntoResponse::into_response)
            .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
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
            .layer(PropagateRequestIdLayer::new(REQUEST_ID))
            .layer(cors(&config.cors_allow_origins)?)
            .layer(DefaultBodyLimit::max(BODY_LIMIT))
            .service(router(state));
        Ok(Application {
            listener,
            metrics_listener,
            limits: serve::Limits {
                max_connections: serve::connection_cap(config.limits.max_connections),
                header_read_timeout: config.limits.header_read_timeout_secs.get(),
                http2_max_streams: config.limits.http2_max_streams,
                http2_keep_alive: HTTP2_KEEP_ALIVE,
            },
            app: BoxCloneSyncService::new(app),
            grace: config.shutdown_grace_secs.get(),
            generations,
            runlog: stores.runlog,
            draining,
            intake,
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
        if let Some(metrics) = self.metrics_listener {
            let router =
                Router::new().route("/metrics", axum::routing::get(|| async { crate::routes::metrics_exposition() }));
            self.tasks.spawn(serve::serve(
                metrics,
                router,
                self.limits,
                self.draining.clone(),
                Intake::new(Duration::ZERO),
            ));
        }
        let serve = serve::serve(self.listener, self.app, self.limits, self.draining.clone(), self.intake);
        let mut serve = std::pin::pin!(serve);
        tokio::select! {
            () = &mut serve => {}
            () = shutdown => {
                tracing::info!(grace_secs = self.grace.as_secs(), "shutting down: no new requests, finishing streams");
                self.draining.cancel();
                if tokio::time::timeout(self.grace, &mut serve).await.is_err() {
                    tracing::info!("shutdown grace period over; ending the streams still running");
                    self.generations.stop();
                    let _ = tokio::time::timeout(CLOSE_DEADLINE, serve).await;
                }
            }
        }
        self.generations.shutdown(TASKS_DEADLINE).await;
        // Every request has been answered; the rows they left are written before the process ends.
        self.runlog.close(TASKS_DEADLINE).await;
        self.stores_stopped.cancel();
        self.tasks.close();
        if tokio::time::timeout(TASKS_DEADLINE, self.tasks.wait()).await.is_err() {
            tracing::warn!(tasks = self.tasks.len(), "store tasks still running at the shutdown deadline");
        }
        tracing::info!("stopped");
        Ok(())
    }
}

fn admission_settings(limits: &LimitSettings) -> AdmissionSettings {
    let rate = |per_minute| Rate { per_minute, burst: limits.rate_limit_burst };
    AdmissionSettings {
        anonymous: rate(limits.rate_limit_anonymous),
        key: rate(limits.rate_limit_key),
        lookups: rate(limits.geocode_limit),
        max_generations: limits.max_generations,
        wait: limits.admission_wait_ms.get(),
        queue: limits.admission_queue,
    }
}

/// The longest request id or idempotency key kept as sent.
const MAX_ID_CHARS: usize = 128;

/// Keeps client-chosen ids to at most 128 visible ASCII characters: a longer or odd `X-Request-Id` is
/// dropped (a fresh one is made, as for a request without one); a longer or odd `Idempotency-Key` is
/// replaced by its SHA-256, so it still names the same request without its size.
fn bounded_ids<B>(mut request: Request<B>) -> Request<B> {
    let fits = |v: &HeaderValue| v.len() <= MAX_ID_CHARS && v.as_bytes().iter().all(|b| b.is_ascii_graphic());
    let headers = request.headers_mut();
    if headers.get(&REQUEST_ID).is_some_and(|v| !fits(v)) {
        headers.remove(&REQUEST_ID);
    }
    let idempotency = HeaderName::from_static("idempotency-key");
    if let Some(key) = headers.get(&idempotency).filter(|v| !fits(v)) {
        let digest: String =
            crate::auth::secret::digest_bytes(key.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
        let replaced = HeaderValue::from_str(&format!("sha256:{digest}")).expect("hex is a header value");
        headers.insert(idempotency, replaced);
    }
    request
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
