//! The `tripstream` command line, run as a user runs it.

mod abuse;
mod auth;
mod calendar;
mod healthcheck;
mod hostile;
mod http2_provider;
mod keys;
mod otlp;
mod plans;
mod process;
mod regenerate;
mod replicas;

use std::process::{Command, Output};

use tripstream_domain::rules::{ValidationContext, validate};
use tripstream_domain::{Plan, TripDates};

fn tripstream(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tripstream")).args(args).env_remove("RUST_LOG").output().expect("the binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn openapi_prints_the_document_the_server_serves() {
    let out = tripstream(&["openapi"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let spec: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    assert_eq!(spec["openapi"], "3.1.0");
    assert!(spec["paths"]["/api/v1/plans/generate/stream"]["post"]["responses"]["200"].is_object());
    assert!(spec["components"]["schemas"]["StreamEventData"].is_object());
}

/// Issue 15's whole-process figure: `tripstream plan` for 14 days offline, from exec to exit. The time
/// is printed (`--nocapture`), never asserted: a loaded test machine is no benchmark (the release figure
/// is in the README's scorecard).
#[test]
fn a_fourteen_day_offline_plan_from_the_command_line_passes_the_checks_and_prints_its_time() {
    let started = std::time::Instant::now();
    let out = tripstream(&["plan", "Kyoto", "--from", "2026-04-06", "--to", "2026-04-19", "--json", "--lang", "en"]);
    let elapsed = started.elapsed();
    assert!(out.status.success(), "{}", stderr(&out));
    let plan: Plan = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(plan.days.len(), 14);
    assert_eq!(plan.metadata.provider, "offline");
    // Only a public holiday's notice may remain: the offline planner's 14 days pass every check.
    assert!(plan.warnings.iter().all(|w| w.contains("public holiday")), "{:?}", plan.warnings);
    eprintln!("tripstream plan, 14 days offline, whole process: {} ms", elapsed.as_millis());
}

#[test]
fn the_readme_example_prints_a_three_day_itinerary() {
    let out = tripstream(&["plan", "Seoul", "--from", "2025-11-10", "--to", "2025-11-12", "--budget", "medium"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("서울 3일 여행\n"), "{text}");
    for day in ["1일차 — ", "2일차 — ", "3일차 — "] {
        assert!(text.contains(day), "{text}");
    }
    assert!(text.contains("총비용: ₩"), "{text}");
    assert!(text.contains("offline · tripstream-offline-planner · climatology"), "{text}");
    // Not a terminal: progress arrives as plain lines on stderr, in order.
    let progress = stderr(&out);
    let first = progress.find("[ 10%] Seoul의 날씨 정보를 수집하고 있습니다...").expect("gather status");
    let last = progress.find("[ 95%] 최종 계획을 완성하고 있습니다...").expect("finalize status");
    assert!(first < last, "{progress}");
}

#[test]
fn json_output_is_the_api_plan_and_passes_every_rule() {
    let out = tripstream(&[
        "plan",
        "paris",
        "--from",
        "2025-06-01",
        "--to",
        "2025-06-04",
        "--budget",
        "high",
        "--lang",
        "en",
        "--travelers",
        "2",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let plan: Plan = serde_json::from_slice(&out.stdout).expect("stdout is exactly one plan");
    assert_eq!(plan.title, "4 days in Paris");
    assert_eq!(plan.currency, "EUR");
    let ctx = ValidationContext {
        dates: TripDates::new(plan.start_date, plan.end_date, 14).unwrap(),
        budget_ceiling: u64::MAX,
        currency: plan.currency.clone(),
    };
    assert_eq!(validate(&plan, &ctx), vec![]);
}

#[test]
fn bad_input_is_a_clear_error_with_exit_code_2() {
    let out = tripstream(&["plan", "Seoul", "--from", "2025-11-12", "--to", "2025-11-10"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stderr(&out).trim(), "error: --to must not be before --from");
    let out = tripstream(&["plan", "Seoul", "--from", "2025-11-10", "--to", "2026-11-10"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stderr(&out).trim(), "error: --to: the trip must be at most 14 days long (got 366)");
    let out = tripstream(&["plan", "Seoul", "--from", "2025-02-30", "--to", "2025-03-02"]);
    assert_eq!(stderr(&out).trim(), "error: --from is not a real calendar date");
    let out = tripstream(&["plan", " ", "--from", "2025-11-10", "--to", "2025-11-12"]);
    assert_eq!(stderr(&out).trim(), "error: location must not be empty");
    let out = tripstream(&["plan", "Seoul", "--from", "2025-11-10", "--to", "2025-11-12", "--interests", "a,,b"]);
    assert!(stderr(&out).trim().starts_with("error: --interests: "), "{}", stderr(&out));

    let out = tripstream(&["plan", "Atlantis", "--from", "2025-11-10", "--to", "2025-11-12"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("unknown destination \"Atlantis\"; known destinations: Seoul"), "{}", stderr(&out));

    let out = tripstream(&["plan", "Seoul", "--from", "2025-11-10", "--to", "2025-11-12", "--budget", "luxury"]);
    assert_eq!(out.status.code(), Some(2), "clap rejects it");
    assert!(stderr(&out).contains("possible values: low, medium, high"));
}

#[test]
fn destinations_lists_the_bundled_catalog() {
    let out = tripstream(&["destinations"]);
    assert!(out.status.success());
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 13, "a header and 12 destinations:\n{text}");
    assert!(text.contains("new-york") && text.contains("뉴욕") && text.contains("₩"));
    let json: serde_json::Value = serde_json::from_slice(&tripstream(&["destinations", "--json"]).stdout).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 12);
}

#[test]
fn help_names_every_command() {
    let text = stdout(&tripstream(&["--help"]));
    for command in ["serve", "plan", "destinations"] {
        assert!(text.contains(command), "{text}");
    }
}

#[test]
fn stats_reads_the_run_log() {
    use tripstream_adapters::runlog::{Db, RunRecord};
    let path = std::env::temp_dir().join(format!("tripstream-cli-stats-{}.db", std::process::id()));
    let url = format!("sqlite://{}", path.display());
    let rows: Vec<RunRecord> = (0..4)
        .map(|i| RunRecord {
            endpoint: "stream".into(),
            location: "Seoul".into(),
            started_at_ms: 1_762_732_800_000 + i,
            duration_ms: 100 * (i + 1),
            received_complete: i != 3,
            has_error: i == 3,
            error_code: (i == 3).then(|| "llm_timeout".into()),
            cache_hit: i == 0,
            provider: Some("offline".into()),
            events_by_step: [("generate_draft".to_owned(), 20)].into(),
            ..RunRecord::default()
        })
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async { Db::open(&url).await.unwrap().insert(&rows).await.unwrap() });

    let out = tripstream(&["stats", "--database-url", &url, "--since", "2025-11-10T00:00:00Z", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let stats: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!((stats["requests"].as_u64(), stats["errorRate"].as_f64()), (Some(4), Some(0.25)));
    assert_eq!((stats["avgStreamDurationMs"].as_f64(), stats["cacheHitRate"].as_f64()), (Some(250.0), Some(0.25)));

    let out = tripstream(&["stats", "--database-url", &url, "--since", "2025-11-10T00:00:00Z"]);
    let text = stdout(&out);
    assert!(text.contains("4 requests, 4 streams") && text.contains("error rate               25.0%"), "{text}");
    assert!(text.contains("error llm_timeout"), "{text}");

    // Any number of hours back is everything, not an overflow.
    let out = tripstream(&["stats", "--database-url", &url, "--hours", &i64::MAX.to_string(), "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let stats: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(stats["requests"].as_u64(), Some(4));
    let _ = std::fs::remove_file(&path);
}
