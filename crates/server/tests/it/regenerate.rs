//! `POST /api/v1/plans/{planId}/days/{n}/regenerate`: one day of a saved plan written again, streamed like
//! a generation, saved as the plan's next version; owner only; its errors; a resume of its stream.

use std::time::Duration;

use serde_json::Value;
use tripstream_server::ServerConfig;

use crate::helpers::*;

fn path(plan_id: &str, day: &str) -> String {
    format!("/api/v1/plans/{plan_id}/days/{day}/regenerate")
}

/// `POST` the regeneration of `day` as `key` (if any), with `body` (JSON) if any.
async fn regenerate(
    app: &TestApp,
    plan_id: &str,
    day: &str,
    key: Option<&str>,
    body: Option<&str>,
) -> reqwest::Response {
    let mut request = app.client.post(format!("{}{}", app.base, path(plan_id, day)));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    if let Some(body) = body {
        request = request.header("content-type", "application/json").body(body.to_owned());
    }
    request.send().await.unwrap()
}

async fn error_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    (status, body["error"].clone())
}

/// A plan generated and saved for `key`: its `planId` and its JSON.
async fn saved_plan(app: &TestApp, key: &str, body: &str) -> (String, Value) {
    let response = app
        .client
        .post(format!("{}/api/v1/plans/generate", app.base))
        .bearer_auth(key)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let plan: Value = response.json().await.unwrap();
    (plan["planId"].as_str().expect("a planId").to_owned(), plan)
}

async fn latest(app: &TestApp, plan_id: &str, key: &str) -> Value {
    let url = format!("{}/api/v1/plans/{plan_id}", app.base);
    let response = app.client.get(url).bearer_auth(key).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// Days as the bytes a client receives.
fn day_bytes(plan: &Value, n: usize) -> String {
    serde_json::to_string(&plan["days"][n]).unwrap()
}

fn complete(messages: &[Message]) -> &Value {
    &messages.iter().find(|m| m.kind() == "complete").expect("a complete event").data
}

#[tokio::test]
async fn a_day_is_written_again_as_a_new_version_with_the_other_days_byte_identical() {
    let app = spawn_app().await;
    let alice = app.key("alice", false).await;
    let (id, before) = saved_plan(&app, &alice, seoul_body()).await;

    let response = regenerate(&app, &id, "2", Some(&alice), Some(r#"{"instruction": "indoors, it will rain"}"#)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let (stream_id, token) = stream_handle(&response);
    assert!(stream_id.starts_with("str_") && token.starts_with("tok_"));
    let events = messages(response).await;

    // The same sequence as a generation: status and progress through the five steps, chunks, one `day`
    // (the new one), `complete`, `done`.
    let kinds: Vec<&str> = events.iter().map(Message::kind).collect();
    assert_eq!(kinds.first(), Some(&"status"));
    assert_eq!(&kinds[kinds.len() - 2..], ["complete", "done"]);
    assert!(kinds.contains(&"chunk") && kinds.contains(&"progress"));
    let days: Vec<&Value> = events.iter().filter(|m| m.kind() == "day").map(|m| &m.data["day"]).collect();
    assert_eq!(days.len(), 1);
    assert_eq!(days[0]["day"], 2);
    let done = complete(&events);
    assert_eq!(done["planId"], id.as_str());
    let after = &done["plan"];
    assert_eq!(&after["days"][1], days[0]);
    assert_eq!((day_bytes(after, 0), day_bytes(after, 2)), (day_bytes(&before, 0), day_bytes(&before, 2)));
    assert_ne!(day_bytes(after, 1), day_bytes(&before, 1));
    assert!(after["days"][1]["activities"].as_array().unwrap().iter().all(|a| a["indoor"] == true), "{after}");
    assert_eq!(after["warnings"], Value::Array(vec![]), "rules 1–7 hold");
    assert_eq!(after["id"], before["id"]);

    // Saved as version 2, which is what `complete` carried.
    let saved = latest(&app, &id, &alice).await;
    assert_eq!((saved["version"].as_u64(), saved["latestVersion"].as_u64()), (Some(2), Some(2)));
    assert_eq!(&saved["plan"], after);
    // Again, without a body: version 3, from version 2.
    let third = messages(regenerate(&app, &id, "3", Some(&alice), None).await).await;
    let third = &complete(&third)["plan"];
    assert_eq!((day_bytes(third, 0), day_bytes(third, 1)), (day_bytes(after, 0), day_bytes(after, 1)));
    assert_eq!(latest(&app, &id, &alice).await["version"], 3);
    let url = format!("{}/api/v1/plans/{id}/versions", app.base);
    let versions: Value = app.client.get(url).bearer_auth(&alice).send().await.unwrap().json().await.unwrap();
    assert_eq!(versions["versions"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn someone_elses_plan_a_missing_day_and_a_long_instruction_are_refused_before_any_stream() {
    let app = spawn_app().await;
    let (alice, bob) = (app.key("alice", false).await, app.key("bob", false).await);
    let (id, _) = saved_plan(&app, &alice, seoul_body()).await;

    let unknown = error_of(regenerate(&app, "plan_00000000000000000000000000", "1", Some(&alice), None).await).await;
    assert_eq!((unknown.0, unknown.1["code"].as_str()), (404, Some("plan_not_found")));
    assert_eq!(error_of(regenerate(&app, &id, "1", Some(&bob), None).await).await, unknown, "theirs is unknown");
    assert_eq!(error_of(regenerate(&app, &id, "1", None, None).await).await, unknown);
    assert_eq!(error_of(regenerate(&app, "not-an-id", "1", Some(&alice), None).await).await.0, 404);

    for day in ["0", "4", "x", "-1", "99999999999"] {
        let (status, error) = error_of(regenerate(&app, &id, day, Some(&alice), None).await).await;
        assert_eq!(
            (status, error["code"].as_str(), error["field"].as_str()),
            (422, Some("invalid_request"), Some("day")),
            "{day}"
        );
    }
    let long = format!(r#"{{"instruction": "{}"}}"#, "가".repeat(201));
    let (status, error) = error_of(regenerate(&app, &id, "1", Some(&alice), Some(&long)).await).await;
    assert_eq!(
        (status, error["code"].as_str(), error["field"].as_str()),
        (422, Some("invalid_request"), Some("instruction"))
    );
    let (status, error) =
        error_of(regenerate(&app, &id, "1", Some(&alice), Some(r#"{"instructions": "x"}"#)).await).await;
    assert_eq!((status, error["field"].as_str()), (422, Some("instructions")));
    assert_eq!(error_of(regenerate(&app, &id, "1", Some(&alice), Some("{")).await).await.0, 400);
    let url = format!("{}{}", app.base, path(&id, "1"));
    let plain = app.client.post(url).bearer_auth(&alice).header("content-type", "text/plain").body("more food");
    assert_eq!(plain.send().await.unwrap().status(), 415);
    // Nothing was written: the plan is still at version 1.
    assert_eq!(latest(&app, &id, &alice).await["latestVersion"], 1);

    // Two hundred characters are fine.
    let fine = format!(r#"{{"instruction": "{}"}}"#, "맛집".repeat(100));
    let response = regenerate(&app, &id, "1", Some(&alice), Some(&fine)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(complete(&messages(response).await)["planId"], id.as_str());
}

#[tokio::test]
async fn a_dropped_regeneration_stream_is_resumed_by_id_and_by_last_event_id() {
    let config = ServerConfig { stream_cancel_grace_secs: Secs::new(5), ..ServerConfig::for_tests() };
    let (services, _) = counting_services(&config, Duration::from_millis(5));
    let app = spawn_app_with(config, Some(services)).await;
    let alice = app.key("alice", false).await;
    let (id, before) = saved_plan(&app, &alice, seoul_body()).await;

    let response = regenerate(&app, &id, "1", Some(&alice), Some(r#"{"instruction": "museums"}"#)).await;
    let (stream_id, token) = stream_handle(&response);
    let head = read_some(response, 5).await;
    let ids: Vec<String> = head.iter().map(|m| m.id.clone()).collect();
    assert_eq!(ids, ["0", "1", "2", "3", "4"]);

    // By id, with the resume token, after the last event seen.
    let rest = messages(app.resume(&stream_id, Some("4"), &token).await).await;
    assert_eq!(rest.first().map(|m| m.id.as_str()), Some("5"));
    assert_eq!(rest.last().map(Message::kind), Some("done"));
    let done = complete(&rest);
    assert_eq!(done["planId"], id.as_str());
    assert_eq!(day_bytes(&done["plan"], 1), day_bytes(&before, 1));

    // The same POST again with Last-Event-ID: the rest of the same stream, not a new regeneration.
    let again = app
        .client
        .post(format!("{}{}", app.base, path(&id, "1")))
        .bearer_auth(&alice)
        .header("content-type", "application/json")
        .header("last-event-id", "4")
        .body(r#"{"instruction": "museums"}"#)
        .send()
        .await
        .unwrap();
    let replayed = messages(again).await;
    assert_eq!(replayed.first().map(|m| m.id.as_str()), Some("5"));
    let shared = |ms: &[Message]| ms.iter().map(|m| shared_part(&m.data)).collect::<Vec<_>>();
    assert_eq!(shared(&replayed), shared(&rest));
    assert_eq!(latest(&app, &id, &alice).await["latestVersion"], 2, "one regeneration, one version");
}
