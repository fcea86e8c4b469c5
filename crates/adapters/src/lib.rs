//! Implementations of the engine's ports. This crate holds the embedded defaults that make tripstream
//! work with nothing configured: the bundled destination catalog, climatology weather and the offline
//! planner.

pub mod catalog;
pub mod climatology;
pub mod http;
pub mod offline;

pub use catalog::{BundledDestinations, Catalog};
pub use climatology::Climatology;
pub use offline::{OfflineConfig, OfflinePlanner};
