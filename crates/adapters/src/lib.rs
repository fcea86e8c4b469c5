//! Implementations of the engine's ports. This crate holds the embedded defaults that make tripstream
//! work with nothing configured: the bundled destination catalog, climatology weather and the offline
//! planner.

pub mod cache;
pub mod catalog;
pub mod climatology;
pub mod eval;
pub mod eventlog;
pub mod fallback;
pub mod geocoded;
pub mod http;
pub mod keys;
pub mod limited;
pub mod llm;
pub mod offline;
pub mod places;
pub mod plans;
pub mod runlog;
pub mod weather;

pub use catalog::{BundledDestinations, Catalog};
pub use climatology::Climatology;
pub use geocoded::GeocodedDestinations;
pub use offline::{OfflineConfig, OfflinePlanner};
