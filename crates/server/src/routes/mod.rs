//! The router: one function from state to every route of the contract.

mod meta;
mod page;
mod plans;

pub use meta::exposition as metrics_exposition;
pub use page::Page;

use axum::Router;
use axum::routing::{get, post};

use crate::error::ApiError;
use crate::state::AppState;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(page::index))
        .route("/assets/app.js", get(page::script))
        .route("/assets/app.css", get(page::styles))
        .route("/health", get(meta::health))
        .route("/health/live", get(meta::live))
        .route("/health/ready", get(meta::ready))
        .route("/api/v1/destinations", get(meta::destinations))
        .route("/api/v1/stats", get(meta::stats))
        .route("/metrics", get(meta::metrics))
        .route("/api/v1/plans/generate", post(plans::generate))
        .route("/api/v1/plans/generate/stream", post(plans::generate_stream).get(plans::generate_stream_get))
        .route("/api/v1/plans/streams/{stream_id}/events", get(plans::resume))
        .route("/api/v1/plans/streams/{stream_id}/cancel", post(plans::cancel))
        .fallback(|| async { ApiError::not_found() })
        .with_state(state)
}
