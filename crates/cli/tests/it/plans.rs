//! `tripstream plans list|show`, run as a user runs them, on a SQLite file holding plans saved as the
//! server saves them.

use tripstream_adapters::plans::SavedPlans;
use tripstream_adapters::runlog::Db;
use tripstream_domain::{Plan, RawPlanRequest};

use crate::{stderr, stdout, tripstream};

pub fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
}

/// A plan `tripstream plan --json` writes.
pub fn plan(location: &str, from: &str, to: &str) -> Plan {
    let out = tripstream(&["plan", location, "--from", from, "--to", to, "--json", "--lang", "en"]);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str(&stdout(&out)).unwrap()
}

#[test]
fn plans_are_listed_and_shown_from_the_database() {
    let path = std::env::temp_dir().join(format!("tripstream-cli-plans-{}-{:016x}.db", std::process::id(), fastrand()));
    let url = format!("sqlite://{}", path.display());
    let request = RawPlanRequest { location: Some("Seoul".into()), ..RawPlanRequest::default() };
    let (seoul, busan) = (plan("Seoul", "2026-05-01", "2026-05-03"), plan("Busan", "2026-06-01", "2026-06-02"));
    let (a, b) = block_on(async {
        let store = SavedPlans::new(Db::open(&url).await.unwrap());
        // Saved in this order, `a` is the latest both by time and by insertion (ties of a millisecond).
        let b = store.save("session:ses_PAGE", &request, &busan).await.unwrap();
        let a = store.save("key:key_ALICE", &request, &seoul).await.unwrap();
        let mut second = seoul.clone();
        second.days.truncate(1);
        store.add_version(&a, &second).await.unwrap();
        (a, b)
    });
    let run = |args: &[&str]| {
        let mut all = vec!["plans", "--database-url", &url];
        all.extend_from_slice(args);
        tripstream(&all)
    };

    let out = run(&["list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let table = stdout(&out);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("ID") && lines.len() == 3, "{table}");
    assert!(
        lines[1].starts_with(&a) && lines[1].contains("key:key_ALICE") && lines[1].contains("2026-05-01"),
        "{table}"
    );
    assert!(lines[2].starts_with(&b) && lines[2].contains("Busan"), "{table}");
    let out = run(&["list", "--owner", "session:ses_PAGE", "--json"]);
    let rows: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 1);
    assert_eq!(
        (rows[0]["owner"].as_str(), rows[0]["summary"]["planId"].as_str()),
        (Some("session:ses_PAGE"), Some(b.as_str()))
    );

    // The latest version as an itinerary; an older one on request; JSON.
    let out = run(&["show", &a]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with(&format!("{a} · version 2 of 2 · key:key_ALICE\n")), "{text}");
    assert!(text.contains("Day 1") && !text.contains("Day 2"), "{text}");
    assert!(text.contains("budget ceiling"), "a bundled destination's ceiling: {text}");
    let text = stdout(&run(&["show", &a, "--version", "1"]));
    assert!(text.contains("version 1 of 2") && text.contains("Day 3"), "{text}");
    let json: serde_json::Value = serde_json::from_str(&stdout(&run(&["show", &b, "--json"]))).unwrap();
    assert_eq!((json["planId"].as_str(), json["version"].as_u64()), (Some(b.as_str()), Some(1)));
    assert_eq!(serde_json::from_value::<Plan>(json["plan"].clone()).unwrap(), busan);

    // What is not there says so, with exit code 2.
    for (args, says) in [
        (vec!["show", "plan_00000000000000000000000000"], "no saved plan has the id"),
        (vec!["show", &a, "--version", "3"], "has no version 3"),
        (vec!["show", "pln_123"], "not a plan id"),
    ] {
        let out = run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
    }
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

fn fastrand() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}
