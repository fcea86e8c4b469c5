//! `tripstream serve`.

use std::process::ExitCode;

use tripstream_server::{Application, ServerConfig, shutdown_signal};

pub async fn run(config: ServerConfig) -> ExitCode {
    super::init_logging("info,tower_http=info");
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
