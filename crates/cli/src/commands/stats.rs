//! `tripstream stats`: the monitoring numbers of `GET /api/v1/stats`, read from the run log's database.

use std::process::ExitCode;

use tripstream_adapters::runlog::Db;

#[derive(Debug, clap::Args)]
pub struct StatsArgs {
    /// The run log, as `serve` uses it.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://tripstream.db", hide_env_values = true)]
    database_url: String,
    /// Hours back to look.
    #[arg(long, default_value_t = 24, conflicts_with = "since")]
    hours: i64,
    /// An RFC 3339 time to look from (2025-11-10T00:00:00Z) instead of `--hours`.
    #[arg(long)]
    since: Option<jiff::Timestamp>,
    /// Print JSON (the API's shape) instead of a summary.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: StatsArgs) -> ExitCode {
    super::init_logging("warn");
    let since_ms = match args.since {
        Some(t) => t.as_millisecond(),
        None => jiff::Timestamp::now().as_millisecond().saturating_sub(args.hours.max(0).saturating_mul(3_600_000)),
    };
    // The operator's own query: not bounded to the API's window, but aggregated in the database and
    // under its statement timeout all the same.
    let s = match Db::open(&args.database_url).await {
        Ok(db) => db.stats(since_ms).await,
        Err(e) => Err(e),
    };
    let s = match s {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&s).expect("stats serialize"));
        return ExitCode::SUCCESS;
    }
    let pct = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{:.1}%", v * 100.0));
    let ms = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.0} ms"));
    let ims = |v: Option<i64>| v.map_or("-".to_owned(), |v| format!("{v} ms"));
    let since = jiff::Timestamp::from_millisecond(since_ms).map(|t| t.to_string()).unwrap_or_default();
    println!("since {since}: {} requests, {} streams", s.requests, s.streams);
    println!("  average stream duration  {}", ms(s.avg_stream_duration_ms));
    println!("  duration p50 / p95      {} / {}", ims(s.p50_duration_ms), ims(s.p95_duration_ms));
    println!("  error rate               {}", pct(s.error_rate));
    println!("  completion rate          {}", pct(s.completion_rate));
    println!("  cache hit rate           {}", pct(s.cache_hit_rate));
    println!("  coalesced / disconnected {} / {}", s.coalesced, s.client_disconnects);
    if !s.avg_events_by_step.is_empty() {
        println!("  average events per stream, by step:");
        for (step, n) in &s.avg_events_by_step {
            println!("    {step:<16} {n:.1}");
        }
    }
    for (provider, n) in &s.by_provider {
        println!("  provider {provider:<15} {n}");
    }
    for (code, n) in &s.errors_by_code {
        println!("  error {code:<18} {n}");
    }
    ExitCode::SUCCESS
}
