//! A saved plan's calendar over HTTP: its owner's `calendar.ics`, the same file through a share link, the
//! `404`s of someone else's plan and of a revoked link, and the file read back by PyPI's `icalendar`.

use serde_json::Value;

use crate::helpers::*;
use crate::saved::{as_key, assert_plan_not_found, generate_as, get_as, plan_id};

/// Paris across the night the clocks go back (26 October 2025).
const PARIS_BODY: &str =
    r#"{"location":"Paris","startDate":"2025-10-24","endDate":"2025-10-28","budget":"medium","language":"en"}"#;

/// `GET path` as `key`: the status, the headers that matter here, and the body.
async fn calendar_as(app: &TestApp, path: &str, key: Option<&str>) -> (u16, String, String, String) {
    let response = as_key(app, reqwest::Method::GET, path, key).send().await.unwrap();
    let header = |name: &str| response.headers().get(name).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    let (content_type, disposition) = (header("content-type"), header("content-disposition"));
    (response.status().as_u16(), content_type, disposition, response.text().await.unwrap())
}

/// Runs scripts/check_ics.py on the plan and its calendar; its JSON summary.
fn read_back(plan: &Value, ics: &str) -> Value {
    let dir = std::env::temp_dir().join(unique("tripstream-http-ics"));
    std::fs::create_dir_all(&dir).unwrap();
    let (plan_file, ics_file) = (dir.join("plan.json"), dir.join("plan.ics"));
    std::fs::write(&plan_file, plan.to_string()).unwrap();
    std::fs::write(&ics_file, ics).unwrap();
    let checker = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/check_ics.py");
    let out = std::process::Command::new("python3").arg(checker).arg(&plan_file).arg(&ics_file).output().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success(), "check_ics.py (needs PyPI icalendar): {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test]
async fn a_saved_plans_calendar_is_its_owners_and_a_share_links() {
    let app = spawn_app().await;
    let (alice, bob) = (app.key("alice", false).await, app.key("bob", false).await);
    let (_, plan) = generate_as(&app, PARIS_BODY, &alice).await;
    let id = plan_id(&plan);
    let path = format!("/api/v1/plans/{id}/calendar.ics");

    let (status, content_type, disposition, ics) = calendar_as(&app, &path, Some(&alice)).await;
    assert_eq!(status, 200, "{ics}");
    assert_eq!(content_type, "text/calendar; charset=utf-8");
    assert_eq!(disposition, r#"attachment; filename="paris-2025-10-24.ics""#);
    assert!(ics.starts_with("BEGIN:VCALENDAR\r\n") && ics.contains("\r\nTZID:Europe/Paris\r\n"), "{ics}");
    assert!(ics.contains(&format!("\r\nUID:{id}-d1-a1@tripstream\r\n")), "UIDs come from the saved plan's id");
    let summary = read_back(&plan, &ics);
    let activities: usize =
        plan["days"].as_array().unwrap().iter().map(|d| d["activities"].as_array().unwrap().len()).sum();
    assert_eq!(summary["events"], activities);
    assert_eq!(summary["offsets"], serde_json::json!(["+02:00", "+01:00"]));
    // The same plan, the same file: a re-import updates the events.
    assert_eq!(calendar_as(&app, &path, Some(&alice)).await.3, ics);

    // Someone else's plan, or nobody's, is an unknown one.
    let unknown = get_as(&app, "/api/v1/plans/plan_00000000000000000000000000/calendar.ics", Some(&alice)).await;
    assert_plan_not_found(unknown.clone());
    assert_eq!(get_as(&app, &path, Some(&bob)).await, unknown);
    assert_plan_not_found(get_as(&app, &path, None).await);
    assert_plan_not_found(get_as(&app, "/api/v1/plans/not-a-plan/calendar.ics", Some(&alice)).await);

    // A share link's calendar is the same file, for anyone, until the link is revoked.
    let created = as_key(&app, reqwest::Method::POST, &format!("/api/v1/plans/{id}/share"), Some(&alice));
    let created: Value = created.send().await.unwrap().json().await.unwrap();
    let share_id = created["shareId"].as_str().unwrap().to_owned();
    let shared = format!("/api/v1/shares/{share_id}/calendar.ics");
    let (status, content_type, disposition, public) = calendar_as(&app, &shared, None).await;
    assert_eq!((status, content_type.as_str()), (200, "text/calendar; charset=utf-8"));
    assert!(disposition.starts_with("attachment; filename="), "{disposition}");
    assert_eq!(public, ics);
    let revoke = as_key(&app, reqwest::Method::DELETE, &format!("/api/v1/shares/{share_id}"), Some(&alice));
    assert_eq!(revoke.send().await.unwrap().status(), 204);
    let (status, gone) = get_as(&app, &shared, None).await;
    assert_eq!((status, gone["error"]["code"].as_str()), (404, Some("share_not_found")), "{gone}");
    assert_eq!(get_as(&app, "/api/v1/shares/shr_nonsense/calendar.ics", None).await.0, 404);
}
