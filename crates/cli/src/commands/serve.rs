//! `tripstream serve`.

use std::process::ExitCode;
use std::time::Duration;

use tripstream_server::{Application, ServerConfig, shutdown_signal};

use crate::telemetry::{self, TelemetrySettings};

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    server: ServerConfig,
    #[command(flatten)]
    telemetry: TelemetrySettings,
}

pub async fn run(args: ServeArgs) -> ExitCode {
    let telemetry = match telemetry::init(&args.telemetry) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: cannot start the server: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let code = serve(args.server).await;
    // The spans of the last requests leave before the process does.
    telemetry.shutdown(Duration::from_secs(5)).await;
    code
}

async fn serve(config: ServerConfig) -> ExitCode {
    tripstream_server::tune_memory();
    let prefaulted = tripstream_server::prefault_heap(config.limits.prefault_mib);
    tracing::debug!(prefaulted, "heap faulted in ahead");
    let app = match Application::build(config).await {
        Ok(app) => app,
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            eprintln!("error: cannot start the server: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let addr = app.local_addr();
    tracing::info!(%addr, "listening on http://{addr}");
    match app.run_until_stopped(shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "server failed");
            ExitCode::FAILURE
        }
    }
}
