//! Who may read and cancel a stream: keys, owners, resume tokens, scoped idempotency keys, and the admin
//! surfaces. Keys are created in the app's own run-log database (a SQLite file per test).

use std::time::Duration;

use eventsource_stream::Eventsource;
use futures::StreamExt;
use serde_json::Value;
use tripstream_adapters::keys::{KeyStore, NewKey};
use tripstream_adapters::runlog::Db;
use tripstream_server::ServerConfig;
use tripstream_server::config::AuthMode;

use crate::helpers::*;

/// An app on a run-log file of its own, its key store, and the planner taking `delay` per line.
async fn app_with_keys(delay: Duration, config: impl FnOnce(&mut ServerConfig)) -> (TestApp, KeyStore, String) {
    let path = std::env::temp_dir().join(format!("{}.db", unique("tripstream-auth")));
    let url = format!("sqlite://{}", path.display());
    let mut c = ServerConfig { stream_cancel_grace_secs: Secs::new(30), ..ServerConfig::for_tests() };
    c.store.database_url = SecretUrl::new(url.clone());
    config(&mut c);
    let (services, _) = counting_services(&c, delay);
    let app = spawn_app_with(c, Some(services)).await;
    let store = KeyStore::new(Db::open(&url).await.unwrap());
    (app, store, url)
}

async fn key(store: &KeyStore, name: &str, admin: bool) -> String {
    let new = NewKey { name: name.into(), admin, ..NewKey::default() };
    store.create(new).await.unwrap().1.expose().to_owned()
}

const BODY: &str = r#"{"location":"Seoul","startDate":"2025-11-10","endDate":"2025-11-12","budget":"medium"}"#;

fn stream_request(app: &TestApp, key: Option<&str>) -> reqwest::RequestBuilder {
    let request = app
        .client
        .post(format!("{}/api/v1/plans/generate/stream", app.base))
        .header("content-type", "application/json")
        .body(BODY);
    match key {
        Some(k) => request.bearer_auth(k),
        None => request,
    }
}

type Events = std::pin::Pin<Box<dyn futures::Stream<Item = Value> + Send>>;

/// The first event of a response, the response's stream id and token headers, and the rest of its events.
async fn first_event(response: reqwest::Response) -> (Value, String, Option<String>, Events) {
    let id = response.headers()["x-stream-id"].to_str().unwrap().to_owned();
    let token = response.headers().get("x-resume-token").map(|v| v.to_str().unwrap().to_owned());
    let mut events =
        response.bytes_stream().eventsource().map(|e| serde_json::from_str::<Value>(&e.unwrap().data).unwrap());
    let first = events.next().await.unwrap();
    (first, id, token, Box::pin(events))
}

#[tokio::test]
async fn someone_else_who_attaches_to_my_request_cannot_cancel_my_stream() {
    // The issue's reproduction: a victim streams; another caller re-POSTs the same body with
    // Last-Event-ID, takes the X-Stream-Id it is given, and cancels it.
    let (app, _, _) = app_with_keys(Duration::from_millis(30), |_| {}).await;
    let victim = stream_request(&app, None).send().await.unwrap();
    let (first, victim_id, victim_token, victim_events) = first_event(victim).await;
    assert_eq!(first["streamId"], victim_id.as_str());
    assert_eq!(first["resumeToken"].as_str(), victim_token.as_deref());

    let attached = stream_request(&app, None).header("last-event-id", "0").send().await.unwrap();
    let their_id = attached.headers()["x-stream-id"].to_str().unwrap().to_owned();
    let their_token = attached.headers()["x-resume-token"].to_str().unwrap().to_owned();
    assert_ne!(their_id, victim_id, "an attach never learns the first caller's id");
    assert_ne!(Some(&their_token), victim_token.as_ref(), "nor their token");
    drop(attached);
    let cancel = |id: String| app.client.post(format!("{}/api/v1/plans/streams/{id}/cancel", app.base)).send();
    assert_eq!(cancel(their_id.clone()).await.unwrap().status(), 404, "no token, no stream");
    assert_eq!(cancel(victim_id.clone()).await.unwrap().status(), 404);

    let rest: Vec<Value> = victim_events.collect().await;
    let kinds: Vec<&str> = rest.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(&kinds[kinds.len() - 2..], ["complete", "done"], "the victim's stream completes");
    assert!(rest.iter().all(|e| e.get("streamId").is_none() && e.get("resumeToken").is_none()));
}

#[tokio::test]
async fn a_caller_reaches_their_stream_with_its_token_or_their_key_and_no_one_else_does() {
    let (app, store, _) = app_with_keys(Duration::from_millis(30), |_| {}).await;
    let (mine, theirs, admin) =
        (key(&store, "me", false).await, key(&store, "them", false).await, key(&store, "ops", true).await);
    let (_, id, token, events) = first_event(stream_request(&app, Some(&mine)).send().await.unwrap()).await;
    drop(events);
    let token = token.unwrap();
    let resume = |key: Option<&str>, token: Option<&str>| {
        let mut r =
            app.client.get(format!("{}/api/v1/plans/streams/{id}/events", app.base)).header("last-event-id", "0");
        if let Some(k) = key {
            r = r.bearer_auth(k);
        }
        if let Some(t) = token {
            r = r.header("x-resume-token", t);
        }
        r.send()
    };
    assert_eq!(resume(Some(&mine), None).await.unwrap().status(), 200, "the owner's key");
    assert_eq!(resume(None, Some(&token)).await.unwrap().status(), 200, "the token, without a key");
    assert_eq!(resume(Some(&admin), None).await.unwrap().status(), 200, "an admin");
    let url = format!("{}/api/v1/plans/streams/{id}/events?token={token}&lastEventId=0", app.base);
    assert_eq!(app.client.get(url).send().await.unwrap().status(), 200, "the token in the query, for EventSource");
    for (key, token) in [(Some(theirs.as_str()), None), (None, None), (None, Some("tok_wrong"))] {
        let response = resume(key, token).await.unwrap();
        assert_eq!(response.status(), 404, "{key:?} {token:?}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "not_found");
    }
    let bad = app.client.get(format!("{}/health", app.base)).bearer_auth("tsk_not_a_key").send().await.unwrap();
    assert_eq!(bad.status(), 401, "a key that is sent must be valid");
    let body: Value = bad.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
}

#[tokio::test]
async fn joined_callers_each_get_their_own_stream_and_one_cancelling_leaves_the_other_running() {
    let (app, _, _) = app_with_keys(Duration::from_millis(30), |_| {}).await;
    let (_, a_id, a_token, a_events) = first_event(stream_request(&app, None).send().await.unwrap()).await;
    let (b_first, b_id, b_token, b_events) = first_event(stream_request(&app, None).send().await.unwrap()).await;
    assert_ne!(a_id, b_id);
    assert_ne!(a_token, b_token);
    assert_eq!(b_first["streamId"], b_id.as_str(), "the joiner's first event names its own stream");
    let cancel = app
        .client
        .post(format!("{}/api/v1/plans/streams/{b_id}/cancel", app.base))
        .header("x-resume-token", b_token.unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(cancel.status(), 202);
    let kinds = |events: Vec<Value>| -> Vec<String> {
        events.into_iter().map(|e| e["type"].as_str().unwrap().to_owned()).collect()
    };
    let (a, b) = tokio::join!(a_events.collect::<Vec<_>>(), b_events.collect::<Vec<_>>());
    let (a, b) = (kinds(a), kinds(b));
    assert_eq!(&b[b.len() - 2..], ["error", "done"], "the canceller's stream ends: {b:?}");
    assert_eq!(&a[a.len() - 2..], ["complete", "done"], "the other's goes on to its plan: {a:?}");
}

#[tokio::test]
async fn idempotency_keys_are_each_callers_own_and_bound_to_their_request() {
    let (app, store, _) = app_with_keys(Duration::ZERO, |_| {}).await;
    let (alice, bob) = (key(&store, "alice", false).await, key(&store, "bob", false).await);
    let generate = |key: &str, body: &str| {
        app.client
            .post(format!("{}/api/v1/plans/generate", app.base))
            .header("content-type", "application/json")
            .header("idempotency-key", "order-1")
            .bearer_auth(key)
            .body(body.to_owned())
            .send()
    };
    let tokyo = r#"{"location":"Tokyo","startDate":"2025-11-10","endDate":"2025-11-11","budget":"high","interests":["secret"]}"#;
    let paris = r#"{"location":"Paris","startDate":"2025-06-01","endDate":"2025-06-02","budget":"low"}"#;
    let alices: Value = generate(&alice, tokyo).await.unwrap().json().await.unwrap();
    assert_eq!(alices["location"], "Tokyo");
    // Bob's order-1 is his own: it plans his trip, never Alice's.
    let bobs = generate(&bob, paris).await.unwrap();
    assert_eq!(bobs.status(), 200);
    let bobs: Value = bobs.json().await.unwrap();
    assert_eq!(bobs["location"], "Paris");
    // Alice reusing her key for another request is refused.
    let reused = generate(&alice, paris).await.unwrap();
    assert_eq!(reused.status(), 422);
    let body: Value = reused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "idempotency_key_reused");
    let again: Value = generate(&alice, tokyo).await.unwrap().json().await.unwrap();
    assert_eq!(again["id"], alices["id"], "the same request again: the same plan");
}

#[tokio::test]
async fn admin_surfaces_need_the_admin_scope() {
    let (app, store, _) = app_with_keys(Duration::ZERO, |_| {}).await;
    let (user, admin) = (key(&store, "user", false).await, key(&store, "ops", true).await);
    for path in ["/api/v1/stats", "/metrics"] {
        let get = |key: Option<&str>| {
            let r = app.client.get(format!("{}{path}", app.base));
            match key {
                Some(k) => r.bearer_auth(k),
                None => r,
            }
            .send()
        };
        assert_eq!(get(None).await.unwrap().status(), 401, "{path}");
        let forbidden = get(Some(&user)).await.unwrap();
        assert_eq!(forbidden.status(), 403, "{path}");
        let body: Value = forbidden.json().await.unwrap();
        assert_eq!(body["error"]["code"], "forbidden");
        assert_eq!(get(Some(&admin)).await.unwrap().status(), 200, "{path}");
    }
    let public: Value = app.get("/health").await.json().await.unwrap();
    assert_eq!(public, serde_json::json!({ "status": "ok" }), "the public sees the status only");
    let details: Value =
        app.client.get(format!("{}/health", app.base)).bearer_auth(&admin).send().await.unwrap().json().await.unwrap();
    assert!(details["llm"]["provider"].is_string() && details["runLog"] == "sqlite", "{details}");
}

#[tokio::test]
async fn with_keys_required_plans_need_a_key_and_the_page_its_session() {
    let (app, store, _) = app_with_keys(Duration::ZERO, |c| c.auth.auth_mode = AuthMode::Required).await;
    let user = key(&store, "user", false).await;
    let post = |key: Option<&str>, cookie: Option<&str>| {
        let mut r = app
            .client
            .post(format!("{}/api/v1/plans/generate", app.base))
            .header("content-type", "application/json")
            .body(BODY);
        if let Some(k) = key {
            r = r.bearer_auth(k);
        }
        if let Some(c) = cookie {
            r = r.header("cookie", c);
        }
        r.send()
    };
    let refused = post(None, None).await.unwrap();
    assert_eq!(refused.status(), 401);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
    assert_eq!(post(Some(&user), None).await.unwrap().status(), 200);
    // The page sets its session; the page's calls carry it.
    let page = app.get("/").await;
    let cookie = page.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    assert!(cookie.starts_with("tripstream_page="));
    assert_eq!(post(None, Some(&cookie)).await.unwrap().status(), 200);
    assert_eq!(post(None, Some("tripstream_page=ses_forged.00")).await.unwrap().status(), 401);
    assert_eq!(app.get("/api/v1/destinations").await.status(), 200, "public data stays public");
}

#[tokio::test]
async fn the_pages_session_cookie_is_secure_behind_https() {
    let app = spawn_app().await;
    let cookie = |response: reqwest::Response| response.headers()["set-cookie"].to_str().unwrap().to_owned();
    let plain = cookie(app.get("/").await);
    assert!(plain.contains("HttpOnly; SameSite=Strict") && !plain.contains("Secure"), "{plain}");
    // nginx (deploy/nginx) and ingress-nginx say which scheme the browser used.
    let proxied = app.client.get(format!("{}/", app.base)).header("x-forwarded-proto", "https").send().await.unwrap();
    let secure = cookie(proxied);
    assert!(secure.starts_with("tripstream_page=ses_") && secure.ends_with("; Secure"), "{secure}");
}
