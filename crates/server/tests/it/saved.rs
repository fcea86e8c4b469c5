//! Saved plans and share links over HTTP: `planId` on the JSON answer and the `complete` event, the plan
//! read back by its owner only (a key, or the page's session), versions, cache hits that make no copy, and
//! share links created, read by anyone and revoked.

use serde_json::Value;

use crate::helpers::*;

const EN_BODY: &str =
    r#"{"location":"Seoul","startDate":"2025-11-10","endDate":"2025-11-12","budget":"medium","language":"en"}"#;

/// A request to `path` with `key` as its bearer, if any.
pub fn as_key(app: &TestApp, method: reqwest::Method, path: &str, key: Option<&str>) -> reqwest::RequestBuilder {
    let request = app.client.request(method, format!("{}{path}", app.base));
    match key {
        Some(key) => request.bearer_auth(key),
        None => request,
    }
}

pub async fn get_as(app: &TestApp, path: &str, key: Option<&str>) -> (u16, Value) {
    let response = as_key(app, reqwest::Method::GET, path, key).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

pub async fn generate_as(app: &TestApp, body: &str, key: &str) -> (String, Value) {
    let response = as_key(app, reqwest::Method::POST, "/api/v1/plans/generate", Some(key))
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let cache = response.headers()["x-cache"].to_str().unwrap().to_owned();
    (cache, response.json().await.unwrap())
}

async fn stream_as(app: &TestApp, key: &str) -> reqwest::Response {
    as_key(app, reqwest::Method::POST, "/api/v1/plans/generate/stream", Some(key))
        .header("content-type", "application/json")
        .body(seoul_body())
        .send()
        .await
        .unwrap()
}

pub fn plan_id(body: &Value) -> String {
    let id = body["planId"].as_str().expect("a planId").to_owned();
    assert!(id.starts_with("plan_") && id.len() == 31, "{id}");
    id
}

pub fn assert_plan_not_found((status, body): (u16, Value)) {
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "plan_not_found", "{body}");
}

#[tokio::test]
async fn a_generated_plan_is_read_back_by_its_owner_only() {
    let app = spawn_app().await;
    let (alice, bob, admin) = (app.key("alice", false).await, app.key("bob", false).await, app.key("ops", true).await);
    let (cache, body) = generate_as(&app, seoul_body(), &alice).await;
    assert_eq!(cache, "MISS");
    let id = plan_id(&body);

    let (status, saved) = get_as(&app, &format!("/api/v1/plans/{id}"), Some(&alice)).await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved["planId"], id.as_str());
    assert_eq!((saved["version"].as_u64(), saved["latestVersion"].as_u64()), (Some(1), Some(1)));
    assert_eq!(saved["plan"]["days"], body["days"]);
    assert_eq!(saved["plan"]["id"], body["id"]);
    assert_eq!(saved["request"]["location"], "Seoul");
    assert!(saved.get("owner").is_none(), "owners are never sent");

    let (status, versions) = get_as(&app, &format!("/api/v1/plans/{id}/versions"), Some(&alice)).await;
    assert_eq!(status, 200);
    assert_eq!(versions["versions"].as_array().unwrap().len(), 1);
    assert_eq!(versions["versions"][0]["version"], 1);
    let (status, first) = get_as(&app, &format!("/api/v1/plans/{id}/versions/1"), Some(&alice)).await;
    assert_eq!((status, &first["plan"]), (200, &saved["plan"]));
    assert_plan_not_found(get_as(&app, &format!("/api/v1/plans/{id}/versions/2"), Some(&alice)).await);
    for bad in ["0", "x", "-1", "99999999999"] {
        let (status, body) = get_as(&app, &format!("/api/v1/plans/{id}/versions/{bad}"), Some(&alice)).await;
        assert_eq!((status, body["error"]["field"].as_str()), (422, Some("version")), "{bad}: {body}");
    }

    // Someone else's plan is exactly an unknown one: the same status, code and message.
    let unknown = get_as(&app, "/api/v1/plans/plan_00000000000000000000000000", Some(&alice)).await;
    for path in [
        format!("/api/v1/plans/{id}"),
        format!("/api/v1/plans/{id}/versions"),
        format!("/api/v1/plans/{id}/versions/1"),
    ] {
        let theirs = get_as(&app, &path, Some(&bob)).await;
        assert_eq!(theirs, unknown, "{path}");
        assert_plan_not_found(get_as(&app, &path, None).await);
    }
    assert_plan_not_found(unknown);
    assert_plan_not_found(get_as(&app, "/api/v1/plans/not-a-plan-id", Some(&alice)).await);
    // An admin reads every plan.
    assert_eq!(get_as(&app, &format!("/api/v1/plans/{id}"), Some(&admin)).await.0, 200);

    // Lists: the caller's own plans only.
    let (status, list) = get_as(&app, "/api/v1/plans", Some(&alice)).await;
    assert_eq!(status, 200);
    assert_eq!(list["plans"].as_array().unwrap().len(), 1);
    assert_eq!(list["plans"][0]["planId"], id.as_str());
    assert_eq!(list["plans"][0]["location"], "Seoul");
    assert_eq!(get_as(&app, "/api/v1/plans", Some(&bob)).await.1["plans"], Value::Array(vec![]));
    assert_eq!(get_as(&app, "/api/v1/plans", None).await.1["plans"], Value::Array(vec![]), "anonymous owns none");
    for bad in ["0", "101", "ten"] {
        let (status, body) = get_as(&app, &format!("/api/v1/plans?limit={bad}"), Some(&alice)).await;
        assert_eq!((status, body["error"]["field"].as_str()), (422, Some("limit")), "{bad}");
    }
}

#[tokio::test]
async fn a_cache_hit_returns_the_callers_plan_and_makes_no_copy() {
    let app = spawn_app().await;
    let (alice, bob) = (app.key("alice", false).await, app.key("bob", false).await);
    let (_, first) = generate_as(&app, seoul_body(), &alice).await;
    let (cache, again) = generate_as(&app, seoul_body(), &alice).await;
    assert_eq!(cache, "HIT");
    assert_eq!(plan_id(&again), plan_id(&first), "the same caller, the same plan: no copy");
    let (cache, theirs) = generate_as(&app, seoul_body(), &bob).await;
    assert_eq!(cache, "HIT");
    assert_ne!(plan_id(&theirs), plan_id(&first), "another caller gets a copy of their own");
    assert_eq!(get_as(&app, "/api/v1/plans", Some(&alice)).await.1["plans"].as_array().unwrap().len(), 1);
    assert_eq!(get_as(&app, "/api/v1/plans", Some(&bob)).await.1["plans"].as_array().unwrap().len(), 1);

    // The stream of the same request (a cache replay) names the same saved plan in its `complete`.
    let response = stream_as(&app, &alice).await;
    assert_eq!(response.headers()["x-cache"], "HIT");
    let events = messages(response).await;
    let complete = events.iter().find(|m| m.kind() == "complete").unwrap();
    assert_eq!(complete.data["planId"], first["planId"]);
}

#[tokio::test]
async fn a_streamed_plan_is_saved_before_complete_is_sent() {
    let app = spawn_app().await;
    let alice = app.key("alice", false).await;
    let response = stream_as(&app, &alice).await;
    assert_eq!(response.headers()["x-cache"], "MISS");
    let mut events =
        Box::pin(futures::StreamExt::map(eventsource_stream::Eventsource::eventsource(response.bytes_stream()), |e| {
            serde_json::from_str::<Value>(&e.unwrap().data).unwrap()
        }));
    let complete = loop {
        let event = futures::StreamExt::next(&mut events).await.expect("a complete event");
        if event["type"] == "complete" {
            break event;
        }
    };
    // Read while the stream is still open: the plan is there already.
    let id = plan_id(&complete);
    let (status, saved) = get_as(&app, &format!("/api/v1/plans/{id}"), Some(&alice)).await;
    assert_eq!(status, 200);
    assert_eq!(saved["plan"]["days"], complete["plan"]["days"]);
}

/// `cookie` with its last character changed (to another one: a forgery, never the cookie itself).
fn forged_cookie(cookie: &str) -> String {
    let (head, last) = cookie.split_at(cookie.len() - 1);
    format!("{head}{}", if last == "0" { '1' } else { '0' })
}

#[tokio::test]
async fn the_page_session_owns_the_pages_plans_in_open_mode() {
    let app = spawn_app().await;
    let page = app.get("/").await;
    let cookie = page.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    assert!(cookie.starts_with("tripstream_page=ses_"), "{cookie}");
    let with_cookie = |request: reqwest::RequestBuilder| request.header("cookie", cookie.clone());
    let response = with_cookie(app.client.post(format!("{}/api/v1/plans/generate", app.base)))
        .header("content-type", "application/json")
        .body(seoul_body())
        .send()
        .await
        .unwrap();
    let id = plan_id(&response.json().await.unwrap());
    let mine = with_cookie(app.client.get(format!("{}/api/v1/plans/{id}", app.base))).send().await.unwrap();
    assert_eq!(mine.status(), 200);
    let list: Value =
        with_cookie(app.client.get(format!("{}/api/v1/plans", app.base))).send().await.unwrap().json().await.unwrap();
    assert_eq!(list["plans"][0]["planId"], id.as_str());
    // A plain anonymous caller, or another page, cannot read it.
    assert_plan_not_found(get_as(&app, &format!("/api/v1/plans/{id}"), None).await);
    let forged = app
        .client
        .get(format!("{}/api/v1/plans/{id}", app.base))
        .header("cookie", forged_cookie(&cookie))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 404);
}

#[tokio::test]
async fn a_share_link_is_read_by_anyone_until_its_owner_revokes_it() {
    let app = spawn_app().await;
    let (alice, bob) = (app.key("alice", false).await, app.key("bob", false).await);
    let (_, body) = generate_as(&app, EN_BODY, &alice).await;
    let id = plan_id(&body);
    let share = |key: &str| as_key(&app, reqwest::Method::POST, &format!("/api/v1/plans/{id}/share"), Some(key)).send();

    let theirs = share(&bob).await.unwrap();
    assert_eq!(theirs.status(), 404);
    assert_eq!(theirs.json::<Value>().await.unwrap()["error"]["code"], "plan_not_found");
    let unknown =
        as_key(&app, reqwest::Method::POST, "/api/v1/plans/plan_00000000000000000000000000/share", Some(&alice));
    assert_eq!(unknown.send().await.unwrap().status(), 404);

    let created = share(&alice).await.unwrap();
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    let share_id = created["shareId"].as_str().unwrap().to_owned();
    assert!(share_id.starts_with("shr_") && share_id.len() == 30, "{share_id}");
    assert_eq!(created["url"], format!("/p/{share_id}"));

    // Anyone with the link reads the plan, anonymously.
    let (status, shared) = get_as(&app, &format!("/api/v1/shares/{share_id}"), None).await;
    assert_eq!(status, 200, "{shared}");
    assert_eq!(shared["plan"]["days"], body["days"]);
    assert!(shared.get("planId").is_none() && shared.get("request").is_none(), "a link shows the plan only");
    let page = app.get(&format!("/p/{share_id}")).await;
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-security-policy"].to_str().unwrap().contains("script-src 'self'"));
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"<meta property="og:title" content="Seoul, 3 days">"#), "{html}");
    assert!(html.contains(r#"<meta property="og:description" content=""#));

    // Only the owner revokes it; then it is gone for everyone.
    let revoke =
        |key: &str| as_key(&app, reqwest::Method::DELETE, &format!("/api/v1/shares/{share_id}"), Some(key)).send();
    let refused = revoke(&bob).await.unwrap();
    assert_eq!(refused.status(), 404);
    assert_eq!(refused.json::<Value>().await.unwrap()["error"]["code"], "share_not_found");
    assert_eq!(get_as(&app, &format!("/api/v1/shares/{share_id}"), None).await.0, 200, "still there");
    assert_eq!(revoke(&alice).await.unwrap().status(), 204);
    let (status, gone) = get_as(&app, &format!("/api/v1/shares/{share_id}"), None).await;
    assert_eq!((status, gone["error"]["code"].as_str()), (404, Some("share_not_found")));
    assert_eq!(revoke(&alice).await.unwrap().status(), 404);
    let page = app.get(&format!("/p/{share_id}")).await;
    assert_eq!(page.status(), 404);
    assert!(!page.text().await.unwrap().contains("og:title"));
    assert_eq!(app.get("/p/shr_nonsense").await.status(), 404);
    assert_eq!(get_as(&app, "/api/v1/shares/whatever", None).await.0, 404);
}
