//! `tripstream plans regenerate ID DAY [--instruction …]`, run as a user runs it against a SQLite file
//! holding a saved plan: the other days kept byte for byte, the new version saved, and its errors.

use tripstream_adapters::plans::SavedPlans;
use tripstream_adapters::runlog::Db;
use tripstream_domain::{Plan, RawPlanRequest};

use crate::{stderr, stdout, tripstream};

fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
}

#[test]
fn a_saved_plans_day_is_written_again_as_its_next_version() {
    let path = std::env::temp_dir().join(format!("tripstream-cli-plans-{}.db", uuid::Uuid::now_v7().simple()));
    let url = format!("sqlite://{}", path.display());
    // A plan as `serve` would have saved it.
    let out = tripstream(&["plan", "Seoul", "--from", "2025-11-10", "--to", "2025-11-12", "--lang", "en", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let before: Plan = serde_json::from_str(&stdout(&out)).unwrap();
    let request = RawPlanRequest {
        location: Some("Seoul".into()),
        start_date: Some("2025-11-10".into()),
        end_date: Some("2025-11-12".into()),
        budget: Some("medium".into()),
        language: Some("en".into()),
        travelers: Some(1),
        interests: None,
    };
    let plans = block_on(async { SavedPlans::new(Db::open(&url).await.unwrap()) });
    let id = block_on(plans.save("anonymous", &request, &before)).unwrap();

    let regenerate = |args: &[&str]| {
        let mut all = vec!["plans", "regenerate", "--database-url", &url];
        all.extend_from_slice(args);
        tripstream(&all)
    };
    let out = regenerate(&[&id, "2", "--instruction", "indoors, it will rain", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let after: Plan = serde_json::from_str(&stdout(&out)).unwrap();
    let bytes = |plan: &Plan, i: usize| serde_json::to_string(&plan.days[i]).unwrap();
    assert_eq!((bytes(&after, 0), bytes(&after, 2)), (bytes(&before, 0), bytes(&before, 2)));
    assert_ne!(bytes(&after, 1), bytes(&before, 1));
    assert!(after.days[1].activities.iter().all(|a| a.indoor), "{:#?}", after.days[1]);
    assert!(after.warnings.is_empty(), "{:?}", after.warnings);
    // The same progress as `plan` (plain lines: stderr is not a terminal), then where it was saved.
    let err = stderr(&out);
    assert!(err.contains("[ 30%] AI is redrafting day 2..."), "{err}");
    assert!(err.contains(&format!("Saved as version 2 of {id}.")), "{err}");
    let saved = block_on(plans.latest(&id)).unwrap().unwrap();
    assert_eq!((saved.version, &saved.plan), (2, &after));

    // An itinerary by default.
    let out = regenerate(&[&id, "3"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("Day 3 — "), "{}", stdout(&out));
    assert_eq!(block_on(plans.latest(&id)).unwrap().unwrap().version, 3);

    // Bad input is exit 2 with a clear line, and saves nothing.
    let long = "x".repeat(201);
    for (args, says) in [
        (vec![id.as_str(), "4"], "no day 4"),
        (vec![id.as_str(), "0"], "DAY"),
        (vec!["plan_00000000000000000000000000", "1"], "no saved plan"),
        (vec![id.as_str(), "1", "--instruction", long.as_str()], "at most 200 characters"),
    ] {
        let out = regenerate(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
    }
    assert_eq!(block_on(plans.latest(&id)).unwrap().unwrap().version, 3);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}
