//! The `tripstream` binary. `main` only parses arguments and dispatches to a command.

mod commands;
mod render;
mod telemetry;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc rather than the system allocator: a stream allocates and frees many small buffers, and the
/// streams benchmark measured about 14 % less CPU per stream with it.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(name = "tripstream", version, about = "Day-by-day travel plans, generated, validated and streamed.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once at start-up and matched at once: the variants' sizes cost nothing worth a Box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the HTTP API (and its SSE streams).
    Serve(commands::serve::ServeArgs),
    /// Plan a trip here, showing progress and the draft as it is written.
    Plan(commands::plan::PlanArgs),
    /// List the bundled destinations.
    Destinations(commands::destinations::DestinationsArgs),
    /// Generate a corpus of offline plans and print the commonsense scorecard.
    Eval(commands::eval::EvalArgs),
    /// Print the monitoring numbers from the run log.
    Stats(commands::stats::StatsArgs),
    /// Create, list and revoke the API keys callers send as `Authorization: Bearer …`.
    Keys(commands::keys::KeysArgs),
    /// Saved plans in the database `serve` uses: list them, print one (`plans show ID`), write one day of
    /// one again (`plans regenerate ID DAY`).
    Plans(commands::plans::PlansArgs),
    /// Ask the server on this machine whether it is ready (a container's health check): exit 0 if so.
    Healthcheck(commands::healthcheck::HealthcheckArgs),
    /// Print the API's OpenAPI 3.1 document (what `serve` answers at /openapi.json).
    Openapi,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => commands::serve::run(args).await,
            Command::Plan(args) => commands::plan::run(args).await,
            Command::Destinations(args) => commands::destinations::run(args),
            Command::Eval(args) => commands::eval::run(args).await,
            Command::Stats(args) => commands::stats::run(args).await,
            Command::Keys(args) => commands::keys::run(args).await,
            Command::Plans(args) => commands::plans::run(args).await,
            Command::Healthcheck(args) => commands::healthcheck::run(args).await,
            Command::Openapi => commands::openapi::run(),
        }
    })
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        super::Cli::command().debug_assert();
    }
}
