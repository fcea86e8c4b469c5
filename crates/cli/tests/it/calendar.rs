//! `tripstream plan … --ics FILE`, read back by PyPI's `icalendar` (scripts/check_ics.py), which checks the
//! events against the plan's JSON: count, names, local times in the destination's zone at the right UTC
//! offsets (by the IANA database and by the file's own VTIMEZONE), durations, places, costs.

use std::path::{Path, PathBuf};
use std::process::Command;

use tripstream_adapters::plans::SavedPlans;
use tripstream_adapters::runlog::Db;
use tripstream_domain::RawPlanRequest;

use super::{stderr, stdout, tripstream};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tripstream-ics-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Plans the trip with `--json --ics`, has the checker read the calendar back, and returns its summary.
fn plan_and_check(location: &str, from: &str, to: &str) -> serde_json::Value {
    let ics = scratch(&format!("{location}.ics"));
    let out =
        tripstream(&["plan", location, "--from", from, "--to", to, "--lang", "en", "--json", "--ics", path(&ics)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains(&format!("written to {}", ics.display())), "{}", stderr(&out));
    check(&stdout(&out), &ics)
}

/// scripts/check_ics.py on a plan's JSON and its calendar file (whose folder it then removes); its summary.
fn check(plan_json: &str, ics: &Path) -> serde_json::Value {
    let plan_file = ics.with_extension("json");
    std::fs::write(&plan_file, plan_json).unwrap();
    let checker = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/check_ics.py");
    let check = Command::new("python3").arg(checker).arg(&plan_file).arg(ics).output().expect("python3 runs");
    assert!(
        check.status.success(),
        "check_ics.py failed (needs PyPI icalendar: python3 -m pip install icalendar): {}",
        stderr(&check)
    );
    let _ = std::fs::remove_dir_all(ics.parent().unwrap());
    serde_json::from_slice(&check.stdout).expect("the checker prints a JSON summary")
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 temporary path")
}

fn offsets(summary: &serde_json::Value) -> Vec<&str> {
    summary["offsets"].as_array().unwrap().iter().map(|o| o.as_str().unwrap()).collect()
}

#[test]
fn seoul_is_written_in_korean_time() {
    let summary = plan_and_check("Seoul", "2025-11-10", "2025-11-12");
    assert_eq!(summary["timeZone"], "Asia/Seoul");
    assert_eq!(offsets(&summary), ["+09:00"]);
    assert!(summary["events"].as_u64().unwrap() >= 9, "{summary}");
}

#[test]
fn paris_and_new_york_in_summer_are_at_their_daylight_offsets() {
    let paris = plan_and_check("Paris", "2025-06-02", "2025-06-04");
    assert_eq!((paris["timeZone"].as_str(), offsets(&paris)), (Some("Europe/Paris"), vec!["+02:00"]));
    let new_york = plan_and_check("New York", "2025-07-14", "2025-07-15");
    assert_eq!((new_york["timeZone"].as_str(), offsets(&new_york)), (Some("America/New_York"), vec!["-04:00"]));
}

#[test]
fn a_trip_across_a_clock_change_keeps_its_wall_clock_times() {
    // Paris goes back an hour in the night of 25 to 26 October 2025.
    let paris = plan_and_check("Paris", "2025-10-24", "2025-10-28");
    assert_eq!(offsets(&paris), ["+02:00", "+01:00"]);
    // New York goes forward an hour in the night of 8 to 9 March 2025.
    let new_york = plan_and_check("New York", "2025-03-07", "2025-03-11");
    assert_eq!(offsets(&new_york), ["-05:00", "-04:00"]);
}

#[test]
fn a_saved_plan_is_written_with_its_ids_uids_and_its_versions_sequence() {
    let db = scratch("plans.db");
    let url = format!("sqlite://{}", db.display());
    let paris = crate::plans::plan("Paris", "2025-10-24", "2025-10-28");
    let id = crate::plans::block_on(async {
        let store = SavedPlans::new(Db::open(&url).await.unwrap());
        let id = store.save("key:key_ALICE", &RawPlanRequest::default(), &paris).await.unwrap();
        store.add_version(&id, &paris).await.unwrap();
        id
    });
    let ics = db.with_file_name("saved.ics");
    let out = tripstream(&["plans", "--database-url", &url, "show", &id, "--ics", path(&ics)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("version 2 of 2"), "the itinerary as without --ics: {}", stdout(&out));
    let text = std::fs::read_to_string(&ics).unwrap();
    assert!(text.contains(&format!("\r\nUID:{id}-d1-a1@tripstream\r\nDTSTAMP:")), "{text}");
    assert!(text.contains("\r\nSEQUENCE:1\r\n"), "version 2: {text}");
    let unwritable = db.with_file_name("no-such-dir").join("x.ics");
    let out = tripstream(&["plans", "--database-url", &url, "show", &id, "--ics", path(&unwritable)]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("cannot write"), "{}", stderr(&out));

    let summary = check(&serde_json::to_string(&paris).unwrap(), &ics);
    assert_eq!(offsets(&summary), ["+02:00", "+01:00"]);
}

#[test]
fn a_calendar_file_that_cannot_be_written_fails_before_planning() {
    let missing = std::env::temp_dir().join(format!("tripstream-ics-missing-{}", uuid::Uuid::now_v7().simple()));
    let file = missing.join("trip.ics");
    let out = tripstream(&["plan", "Seoul", "--from", "2025-11-10", "--to", "2025-11-11", "--ics", path(&file)]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("cannot write"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("Gathering") && !stderr(&out).contains("[ 10%]"), "{}", stderr(&out));
}
