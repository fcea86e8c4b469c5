//! The HTTP service: axum routes for the contract in API.md, SSE encoding, the one JSON error shape,
//! request ids in logs and graceful shutdown.
//!
//! `Application::build(config)` binds and wires everything; `run_until_stopped` serves until a shutdown
//! signal. Tests build the same `Application` on port 0.

pub mod admission;
pub mod auth;
pub mod calendar;
pub mod config;
mod error;
mod extract;
pub mod generations;
mod health;
mod intake;
mod observe;
mod routes;
mod serve;
mod sse;
mod startup;
mod state;
pub mod wiring;

pub use config::{EngineSettings, ServerConfig, StoreSettings};
pub use error::ApiError;
pub use routes::spec as openapi_document;
pub use serve::{prefault_heap, tune_memory};
pub use startup::{Application, shutdown_signal};
pub use state::AppState;
