//! Building and running the application, separately, so tests can run exactly what `serve` runs.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method, Request};
use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::config::ServerConfig;
use crate::extract::BODY_LIMIT;
use crate::routes::{Page, router};
use crate::state::AppState;
use crate::wiring::{Services, Stores};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub struct Application {
    listener: TcpListener,
    router: Router,
    grace: Duration,
    hard_stop: CancellationToken,
    stores: Stores,
}

impl Application {
    /// Binds the listener and wires the services; nothing is served until [`Self::run_until_stopped`].
    pub async fn build(config: ServerConfig) -> anyhow::Result<Application> {
        let services = Services::from_settings(&config.engine)?;
        Self::with_services(config, services).await
    }

    /// As [`Self::build`], with the services given (tests swap in scripted generators).
    pub async fn with_services(config: ServerConfig, services: Services) -> anyhow::Result<Application> {
        let page = Arc::new(Page::new(&config.map)?);
        let listener = TcpListener::bind(SocketAddr::new(config.host, config.port)).await?;
        let stores = Stores::open(&config.store, Duration::from_secs(config.stream_retention_secs)).await?;
        crate::observe::prometheus();
        let hard_stop = CancellationToken::new();
        let state = AppState {
            engine: services.engine,
            destinations: services.destinations,
            weather: services.weather,
            generators: services.generators,
            limits: config.engine.request_limits(),
            keep_alive: Duration::from_secs(config.keep_alive_secs),
            hard_stop: hard_stop.clone(),
            started: Instant::now(),
            hub: crate::hub::Hub::new(
                crate::hub::HubConfig {
                    cancel_grace: Duration::from_secs(config.stream_cancel_grace_secs),
                    retention: Duration::from_secs(config.stream_retention_secs),
                },
                stores.event_log.clone(),
            ),
            sse_retry: Duration::from_millis(config.sse_retry_ms),
            cache: stores.cache.clone(),
            runlog: stores.runlog.clone(),
            page,
        };
        crate::takeover::watch(state.clone());
        let router = router(state)
            .layer(DefaultBodyLimit::max(BODY_LIMIT))
            .layer(cors(&config.cors_allow_origins)?)
            .layer(PropagateRequestIdLayer::new(REQUEST_ID))
            .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                let id = req.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
                tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
            }))
            .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid));
        Ok(Application { listener, router, grace: Duration::from_secs(config.shutdown_grace_secs), hard_stop, stores })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// Serves until `shutdown` resolves, then stops accepting, gives in-flight streams the grace period,
    /// and ends whatever is still running with a retryable error.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let stopping = CancellationToken::new();
        let stop = stopping.clone();
        let grace = self.grace;
        let hard_stop = self.hard_stop.clone();
        tokio::spawn(async move {
            shutdown.await;
            tracing::info!(grace_secs = grace.as_secs(), "shutting down: no new requests, finishing streams");
            stop.cancel();
            tokio::time::sleep(grace).await;
            hard_stop.cancel();
        });
        // Events are small writes that must leave at once, not wait on Nagle's algorithm.
        let listener = self.listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "TCP_NODELAY not set");
            }
        });
        axum::serve(listener, self.router).with_graceful_shutdown(stopping.cancelled_owned()).await?;
        // Every request has been answered; the rows they left are written before the process ends.
        self.stores.runlog.close(Duration::from_secs(10)).await;
        tracing::info!("stopped");
        Ok(())
    }
}

fn cors(origins: &str) -> anyhow::Result<CorsLayer> {
    let allow = if origins.trim() == "*" {
        AllowOrigin::any()
    } else {
        let list = origins
            .split(',')
            .map(|o| HeaderValue::from_str(o.trim()))
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
            HeaderName::from_static("last-event-id"),
            HeaderName::from_static("idempotency-key"),
        ])
        .expose_headers([REQUEST_ID, HeaderName::from_static("x-stream-id"), HeaderName::from_static("x-cache")]))
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
