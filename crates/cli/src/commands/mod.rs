pub mod destinations;
pub mod healthcheck;
pub mod keys;
pub mod plan;
pub mod serve;
pub mod stats;

pub use crate::telemetry::init_logging;
