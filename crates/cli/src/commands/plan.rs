//! `tripstream plan <location> --from … --to … --budget …`: the same engine as the server, run here, with
//! a live progress bar and the draft as it is written, then the itinerary (or JSON).

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use tripstream_domain::{PlanRequest, RawPlanRequest, StreamEvent};
use tripstream_engine::sink;
use tripstream_server::EngineSettings;
use tripstream_server::wiring::Services;

use crate::render;

#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// Where to go: a bundled destination (see `tripstream destinations`).
    location: String,
    /// First day of the trip, YYYY-MM-DD.
    #[arg(long, value_name = "YYYY-MM-DD")]
    from: String,
    /// Last day of the trip, YYYY-MM-DD.
    #[arg(long, value_name = "YYYY-MM-DD")]
    to: String,
    #[arg(long, default_value = "medium", value_parser = ["low", "medium", "high"])]
    budget: String,
    /// Language of the plan and the messages.
    #[arg(long, default_value = "ko", value_parser = ["ko", "en"])]
    lang: String,
    #[arg(long, default_value_t = 1)]
    travelers: i64,
    /// Interests, comma-separated (food,history,…).
    #[arg(long, value_delimiter = ',')]
    interests: Vec<String>,
    /// Print the plan as JSON (exactly the API's plan object) instead of an itinerary.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    engine: EngineSettings,
}

pub async fn run(args: PlanArgs) -> ExitCode {
    super::init_logging("warn");
    let raw = RawPlanRequest {
        location: Some(args.location.clone()),
        start_date: Some(args.from.clone()),
        end_date: Some(args.to.clone()),
        budget: Some(args.budget.clone()),
        language: Some(args.lang.clone()),
        travelers: Some(args.travelers),
        interests: (!args.interests.is_empty()).then(|| args.interests.clone()),
    };
    let request = match PlanRequest::parse(raw, None, args.engine.request_limits()) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {}{}", e.field.map(|f| format!("{f}: ")).unwrap_or_default(), e.message);
            return ExitCode::from(2);
        }
    };
    let services = match Services::from_settings(&args.engine) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    let destination = match services.destinations.resolve(&request.location).await {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };

    let bar = progress_bar();
    let show_draft = !args.json && bar.is_some();
    let plain = bar.is_none();
    let lang = request.language;
    let mut events = sink::from_fn(|event: StreamEvent| match (&bar, &event) {
        (Some(bar), StreamEvent::Status(m) | StreamEvent::Progress(m)) => {
            bar.set_position(u64::from(m.progress));
            bar.set_message(m.message.clone());
        }
        (Some(bar), StreamEvent::Chunk(c)) => {
            bar.set_position(u64::from(c.progress));
            if show_draft {
                for line in c.content.lines() {
                    bar.println(format!("  \x1b[2m{line}\x1b[0m"));
                }
            }
        }
        (Some(bar), StreamEvent::Complete(c)) => {
            bar.set_position(100);
            bar.finish_with_message(c.message.clone());
        }
        (Some(bar), StreamEvent::Error(_)) => bar.abandon(),
        (None, StreamEvent::Status(m) | StreamEvent::Progress(m)) if plain => {
            eprintln!("[{:>3}%] {}", m.progress, m.message);
        }
        _ => {}
    });
    let result = services.engine.run(&request, &destination, &mut events).await;
    match result {
        Ok(plan) => {
            if args.json {
                println!("{}", serde_json::to_string_pretty(&plan).expect("plans serialize"));
            } else {
                print!("{}", render::itinerary(&plan, &destination));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            let message = tripstream_domain::messages::error(lang, e.code);
            eprintln!("error [{}]: {message}", e.code.as_str());
            tracing::debug!(detail = %e.detail, "generation failed");
            ExitCode::FAILURE
        }
    }
}

/// A bar on stderr when it is a terminal; `None` (plain progress lines instead) when it is not.
fn progress_bar() -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(100);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{bar:30}] {pos:>3}% {msg}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(100));
    Some(bar)
}
