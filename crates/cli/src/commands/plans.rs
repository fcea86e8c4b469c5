//! `tripstream plans list|show|regenerate`: the saved plans in the database `serve` uses (every owner's:
//! whoever can read the database can read every plan). `regenerate ID DAY [--instruction …]` writes one
//! day of a plan again here, by the same engine and generator settings as `plan`, with the same progress
//! display, and saves it as the plan's next version.

use std::process::ExitCode;

use serde_json::json;
use tripstream_adapters::plans::{LIST_MAX, PlanStoreError, PlanSummary, SavedPlans, is_plan_id};
use tripstream_adapters::{BundledDestinations, Catalog};
use tripstream_domain::{Location, Plan, PlanRequest, messages};
use tripstream_engine::{Destinations, Regeneration};
use tripstream_server::EngineSettings;
use tripstream_server::wiring::Services;

use super::plan::Progress;
use crate::render;

#[derive(Debug, clap::Args)]
pub struct PlansArgs {
    /// The database `serve` uses (the run log's).
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://tripstream.db", hide_env_values = true, global = true)]
    database_url: String,
    #[command(subcommand)]
    command: PlansCommand,
}

#[derive(Debug, clap::Subcommand)]
// Parsed once per process: its size does not matter.
#[allow(clippy::large_enum_variant)]
enum PlansCommand {
    /// List saved plans, the most recently changed first: id, owner, destination, dates, versions.
    List(ListArgs),
    /// Print a saved plan as an itinerary (its latest version, or `--version N`).
    Show(ShowArgs),
    /// Write one day of a saved plan again (different places, none of the other days'), as a new version.
    Regenerate(RegenerateArgs),
}

#[derive(Debug, clap::Args)]
struct ListArgs {
    /// Only this owner's plans: `key:key_…`, `session:ses_…` or `anonymous`.
    #[arg(long)]
    owner: Option<String>,
    /// At most this many plans.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=i64::from(LIST_MAX)))]
    limit: u32,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct ShowArgs {
    /// The plan's id (plan_…).
    #[arg(value_name = "ID")]
    id: String,
    /// This version instead of the latest.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    version: Option<u32>,
    /// Print the saved plan (its request, version and plan) as JSON.
    #[arg(long)]
    json: bool,
    /// Also write the plan as an iCalendar file (RFC 5545) with the same event UIDs as its
    /// `calendar.ics` endpoint, so importing either updates the same events.
    #[arg(long, value_name = "FILE")]
    ics: Option<std::path::PathBuf>,
}

pub async fn run(args: PlansArgs) -> ExitCode {
    super::init_logging("warn");
    let store = match super::open_db(&args.database_url).await {
        Ok(db) => SavedPlans::new(db),
        Err(code) => return code,
    };
    let done = match args.command {
        PlansCommand::List(args) => list(&store, args).await,
        PlansCommand::Show(args) => show(&store, args).await,
        PlansCommand::Regenerate(args) => Ok(regenerate(&store, args).await),
    };
    done.unwrap_or_else(|e| {
        eprintln!("error: {e}");
        ExitCode::FAILURE
    })
}

async fn list(store: &SavedPlans, args: ListArgs) -> Result<ExitCode, PlanStoreError> {
    let plans = store.list(args.owner.as_deref(), args.limit).await?;
    if args.json {
        // Here, unlike over HTTP, the owner is shown: whoever reads the database sees it anyway.
        let rows: Vec<_> = plans.iter().map(|p| json!({ "owner": p.owner, "summary": p })).collect();
        println!("{}", serde_json::to_string_pretty(&rows).expect("JSON values serialize"));
        return Ok(ExitCode::SUCCESS);
    }
    if plans.is_empty() {
        eprintln!("No saved plans.");
        return Ok(ExitCode::SUCCESS);
    }
    println!("{:<31}  {:<36}  {:<20}  {:<23}  {:>8}  UPDATED", "ID", "OWNER", "LOCATION", "DATES", "VERSIONS");
    for p in &plans {
        println!(
            "{:<31}  {:<36}  {:<20}  {:<23}  {:>8}  {}",
            p.plan_id,
            p.owner,
            p.location,
            format!("{} – {}", p.start_date, p.end_date),
            p.latest_version,
            time(p)
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn show(store: &SavedPlans, args: ShowArgs) -> Result<ExitCode, PlanStoreError> {
    if !is_plan_id(&args.id) {
        eprintln!(
            "error: not a plan id: ids are plan_ followed by 26 letters and digits (see `tripstream plans list`)"
        );
        return Ok(ExitCode::from(2));
    }
    let Some(saved) = store.version(&args.id, args.version).await? else {
        match args.version {
            Some(n) => eprintln!("error: the plan {} has no version {n}", args.id),
            None => eprintln!("error: no saved plan has the id {}", args.id),
        }
        return Ok(ExitCode::from(2));
    };
    if let Some(path) = &args.ics {
        let file = match std::fs::File::create(path) {
            Ok(file) => file,
            Err(e) => {
                eprintln!("error: cannot write {}: {e}", path.display());
                return Ok(ExitCode::from(2));
            }
        };
        let sequence = saved.version.saturating_sub(1);
        let written = super::plan::write_calendar(&saved.plan, &saved.summary.plan_id, sequence, path, file);
        if written != ExitCode::SUCCESS {
            return Ok(written);
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&saved).expect("saved plans serialize"));
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{} · version {} of {} · {}\n",
        saved.summary.plan_id, saved.version, saved.summary.latest_version, saved.summary.owner
    );
    print!("{}", render::itinerary(&saved.plan, ceiling(&saved.plan).await));
    Ok(ExitCode::SUCCESS)
}

/// The trip's budget ceiling, when its destination is a bundled one.
async fn ceiling(plan: &Plan) -> Option<u64> {
    let location = Location::parse(&plan.location).ok()?;
    let destination = BundledDestinations::new(Catalog::bundled()).resolve(&location).await.ok()?;
    Some(destination.budget.for_trip(plan.budget, plan.days.len() as u32, plan.travelers))
}

fn time(p: &PlanSummary) -> String {
    jiff::Timestamp::from_millisecond(p.updated_at_ms)
        .map_or_else(|_| p.updated_at_ms.to_string(), |t| t.strftime("%Y-%m-%d %H:%M:%SZ").to_string())
}

#[derive(Debug, clap::Args)]
struct RegenerateArgs {
    /// The saved plan's id (plan_…).
    #[arg(value_name = "ID")]
    id: String,
    /// The day to write again: 1 for the first.
    #[arg(value_name = "DAY", value_parser = clap::value_parser!(u32).range(1..))]
    day: u32,
    /// What the day should be like ("more food, less walking", "실내 위주로"), at most 200 characters.
    #[arg(long, value_name = "TEXT")]
    instruction: Option<String>,
    /// Print the plan as JSON (exactly the API's plan object) instead of an itinerary.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    engine: EngineSettings,
}

async fn regenerate(plans: &SavedPlans, args: RegenerateArgs) -> ExitCode {
    let max = Regeneration::MAX_INSTRUCTION_CHARS;
    if args.instruction.as_ref().is_some_and(|i| i.chars().count() > max) {
        eprintln!("error: instruction: must be at most {max} characters");
        return ExitCode::from(2);
    }
    let saved = match plans.latest(&args.id).await {
        Ok(Some(saved)) => saved,
        Ok(None) => {
            eprintln!("error: no saved plan {:?}", args.id);
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let days = saved.plan.days.len();
    if args.day as usize > days {
        eprintln!("error: day: the plan has {days} days; there is no day {}", args.day);
        return ExitCode::from(2);
    }
    let request = match PlanRequest::parse(saved.request.clone(), None, Default::default()) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: the saved plan's request does not parse: {}", e.message);
            return ExitCode::FAILURE;
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
            return ExitCode::FAILURE;
        }
    };
    let instruction = args.instruction.as_deref().map(str::trim).filter(|i| !i.is_empty());
    let regeneration = Regeneration { plan: &saved.plan, day: args.day, instruction };
    let mut events = Progress::new(!args.json);
    let never = std::future::pending();
    let plan = match services.engine.regenerate_until(&request, &destination, &regeneration, &mut events, never).await {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("error [{}]: {}", e.code.as_str(), messages::error(request.language, e.code));
            tracing::debug!(detail = %e.detail, "regeneration failed");
            return ExitCode::FAILURE;
        }
    };
    let version = match plans.add_version(&args.id, &plan).await {
        Ok(Some(version)) => version,
        Ok(None) => {
            eprintln!("error: the plan {} was deleted meanwhile", args.id);
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&plan).expect("plans serialize"));
    } else {
        let ceiling = destination.budget.for_trip(plan.budget, plan.days.len() as u32, plan.travelers);
        print!("{}", render::itinerary(&plan, Some(ceiling)));
    }
    eprintln!("Saved as version {version} of {}.", args.id);
    ExitCode::SUCCESS
}
