pub mod destinations;
pub mod eval;
pub mod healthcheck;
pub mod keys;
pub mod openapi;
pub mod plan;
pub mod plans;
pub mod serve;
pub mod stats;

pub use crate::telemetry::init_logging;

/// Opens (and migrates) the database `serve` uses, for the commands that read it; the exit code to end
/// with when it cannot be.
pub async fn open_db(url: &str) -> Result<tripstream_adapters::runlog::Db, std::process::ExitCode> {
    tripstream_adapters::runlog::Db::open(url).await.map_err(|e| {
        eprintln!("error: {e}");
        // A URL of an unknown kind is the user's to fix; anything else is the database's doing.
        if matches!(e, tripstream_adapters::runlog::DbError::Scheme { .. }) {
            std::process::ExitCode::from(2)
        } else {
            std::process::ExitCode::FAILURE
        }
    })
}
