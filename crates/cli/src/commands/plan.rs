//! `tripstream plan <location> --from … --to … --budget …`: the same engine as the server, run here, with
//! a live progress bar and the draft as it is written, then the itinerary (or JSON).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use tripstream_domain::{PlanRequest, RawPlanRequest, StreamEvent};
use tripstream_engine::EventSink;
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
    /// Also write the plan as an iCalendar file (RFC 5545), one event per activity, to import into a
    /// calendar.
    #[arg(long, value_name = "FILE")]
    ics: Option<PathBuf>,
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
            eprintln!("error: {}", in_flags(&e));
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

    // Opened before generating, so that a path that cannot be written fails before the work is done.
    let ics = match args.ics.as_deref().map(|path| std::fs::File::create(path).map(|file| (path, file))) {
        None => None,
        Some(Ok(opened)) => Some(opened),
        Some(Err(e)) => {
            eprintln!("error: cannot write {}: {e}", args.ics.as_deref().unwrap_or(Path::new("")).display());
            return ExitCode::from(2);
        }
    };

    let lang = request.language;
    let mut events = Progress::new(!args.json);
    let result = services.engine.run(&request, &destination, &mut events).await;
    match result {
        Ok(plan) => {
            if args.json {
                println!("{}", serde_json::to_string_pretty(&plan).expect("plans serialize"));
            } else {
                let ceiling = destination.budget.for_trip(plan.budget, plan.days.len() as u32, plan.travelers);
                print!("{}", render::itinerary(&plan, Some(ceiling)));
            }
            match ics {
                Some((path, file)) => write_calendar(&plan, &plan.id, 0, path, file),
                None => ExitCode::SUCCESS,
            }
        }
        Err(e) => {
            if let Some((path, file)) = ics {
                drop(file);
                let _ = std::fs::remove_file(path);
            }
            let message = tripstream_domain::messages::error(lang, e.code);
            eprintln!("error [{}]: {message}", e.code.as_str());
            tracing::debug!(detail = %e.detail, "generation failed");
            ExitCode::FAILURE
        }
    }
}

/// Writes the plan's calendar (UIDs from `uid_base`, `SEQUENCE` `sequence`) to the file `--ics` opened,
/// and says on stderr what time it is written in.
pub(super) fn write_calendar(
    plan: &tripstream_domain::Plan,
    uid_base: &str,
    sequence: u32,
    path: &Path,
    mut file: std::fs::File,
) -> ExitCode {
    use std::io::Write;
    let calendar = tripstream_server::calendar::plan_calendar(plan, uid_base, sequence);
    if let Err(e) = file.write_all(calendar.body.as_bytes()).and_then(|()| file.sync_all()) {
        eprintln!("error: cannot write {}: {e}", path.display());
        return ExitCode::FAILURE;
    }
    match calendar.time_zone {
        Some(tz) => eprintln!("calendar: {} events in {tz} time written to {}", calendar.events, path.display()),
        None => eprintln!(
            "calendar: {} events written to {} in floating local time (the time zone of {} is not known)",
            calendar.events,
            path.display(),
            plan.destination.name
        ),
    }
    ExitCode::SUCCESS
}

/// The progress display of a run on stderr: a bar with the draft as it is written when stderr is a
/// terminal, plain `[ 30%] …` lines when it is not. For `plan` and `plans regenerate`.
pub struct Progress {
    bar: Option<ProgressBar>,
    show_draft: bool,
}

impl Progress {
    /// `draft`: print the draft's lines above the bar (not when the plan goes out as JSON).
    pub fn new(draft: bool) -> Self {
        let bar = progress_bar();
        let show_draft = draft && bar.is_some();
        Progress { bar, show_draft }
    }
}

impl EventSink for Progress {
    fn emit(&mut self, event: StreamEvent) {
        match (&self.bar, &event) {
            (Some(bar), StreamEvent::Status(m) | StreamEvent::Progress(m)) => {
                bar.set_position(u64::from(m.progress));
                bar.set_message(m.message.clone());
            }
            (Some(bar), StreamEvent::Chunk(c)) => {
                bar.set_position(u64::from(c.progress));
                if self.show_draft {
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
            (None, StreamEvent::Status(m) | StreamEvent::Progress(m)) => {
                eprintln!("[{:>3}%] {}", m.progress, m.message);
            }
            _ => {}
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

/// A request error in this command's own terms: `--from` and `--to` where the API says `startDate` and
/// `endDate`, and the field named only when the message does not name it already.
fn in_flags(e: &tripstream_domain::RequestError) -> String {
    const FLAGS: [(&str, &str); 6] = [
        ("startDate", "--from"),
        ("endDate", "--to"),
        ("interests", "--interests"),
        ("travelers", "--travelers"),
        ("budget", "--budget"),
        ("language", "--lang"),
    ];
    // Only the API's own spellings are replaced inside a message; "interests" there is a word.
    let message = FLAGS[..2].iter().fold(e.message.clone(), |m, (field, flag)| m.replace(field, flag));
    match e.field.as_deref() {
        Some(field) if !e.message.contains(field) => {
            let flag = FLAGS.iter().find(|(f, _)| *f == field).map_or(field, |(_, flag)| flag);
            format!("{flag}: {message}")
        }
        _ => message,
    }
}
