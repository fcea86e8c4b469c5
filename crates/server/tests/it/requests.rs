//! Bad requests get the documented status and JSON body, on both endpoints, and never open a stream.

use serde_json::Value;

use crate::helpers::*;

struct Case {
    name: &'static str,
    body: String,
    content_type: &'static str,
    status: u16,
    code: &'static str,
    field: Option<&'static str>,
}

fn case(name: &'static str, body: impl Into<String>, status: u16, field: Option<&'static str>) -> Case {
    Case { name, body: body.into(), content_type: "application/json", status, code: "invalid_request", field }
}

fn with(location: &str, start: &str, end: &str, budget: &str) -> String {
    serde_json::json!({"location": location, "startDate": start, "endDate": end, "budget": budget}).to_string()
}

fn cases() -> Vec<Case> {
    vec![
        case("end before start", with("Seoul", "2025-11-12", "2025-11-10", "medium"), 422, Some("endDate")),
        case("over 14 days", with("Seoul", "2025-11-01", "2025-11-15", "medium"), 422, Some("endDate")),
        case("unknown budget", with("Seoul", "2025-11-10", "2025-11-12", "luxury"), 422, Some("budget")),
        case(
            "missing location",
            r#"{"startDate":"2025-11-10","endDate":"2025-11-12","budget":"low"}"#,
            422,
            Some("location"),
        ),
        case("empty location", with("  ", "2025-11-10", "2025-11-12", "low"), 422, Some("location")),
        case("101-char location", with(&"a".repeat(101), "2025-11-10", "2025-11-12", "low"), 422, Some("location")),
        case("control characters", with("Seo\nul", "2025-11-10", "2025-11-12", "low"), 422, Some("location")),
        case(
            "unknown field",
            r#"{"location":"Seoul","startDate":"2025-11-10","endDate":"2025-11-12","budget":"low","budjet":"x"}"#,
            422,
            Some("budjet"),
        ),
        case(
            "wrong type",
            r#"{"location":"Seoul","startDate":"2025-11-10","endDate":"2025-11-12","budget":"low","travelers":"2"}"#,
            422,
            Some("travelers"),
        ),
        case("malformed JSON", r#"{"location": "Seoul", "#, 400, None),
        case("body over 16 KiB", with(&"a".repeat(17 * 1024), "2025-11-10", "2025-11-12", "low"), 413, None),
        case("impossible date", with("Seoul", "2025-02-30", "2025-03-01", "low"), 422, Some("startDate")),
        case("not a date", with("Seoul", "11/10/2025", "2025-11-12", "low"), 422, Some("startDate")),
        Case {
            content_type: "text/plain",
            status: 415,
            ..case("wrong content type", with("Seoul", "2025-11-10", "2025-11-12", "low"), 415, None)
        },
        Case {
            code: "unknown_destination",
            ..case("unknown destination", with("Atlantis", "2025-11-10", "2025-11-12", "low"), 422, Some("location"))
        },
    ]
}

#[tokio::test]
async fn bad_requests_get_the_documented_status_and_body_on_both_endpoints() {
    let app = spawn_app().await;
    for path in ["/api/v1/plans/generate", "/api/v1/plans/generate/stream"] {
        for c in cases() {
            let response = app.post(path, &c.body, c.content_type).await;
            let status = response.status().as_u16();
            let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
            let body: Value = response.json().await.unwrap_or_else(|e| panic!("{}: body is not JSON: {e}", c.name));
            assert_eq!(status, c.status, "{path} {}: {body}", c.name);
            assert_eq!(content_type, "application/json", "{path} {}: no stream opened", c.name);
            assert_eq!(body["error"]["code"], c.code, "{path} {}: {body}", c.name);
            assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{}", c.name);
            assert_eq!(body["error"]["field"].as_str(), c.field, "{path} {}: {body}", c.name);
        }
    }
}

#[tokio::test]
async fn an_unknown_destination_lists_the_known_ones() {
    let app = spawn_app().await;
    let body: Value = app.generate(&with("Atlantis", "2025-11-10", "2025-11-12", "low")).await.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    for known in ["Seoul", "Busan", "Tokyo", "Paris", "New York"] {
        assert!(message.contains(known), "{message}");
    }
}

#[tokio::test]
async fn the_longest_allowed_trip_is_accepted_and_the_limit_is_configurable() {
    let app = spawn_app().await;
    assert_eq!(app.generate(&with("Jeju", "2025-11-01", "2025-11-14", "low")).await.status(), 200);
    let mut config = tripstream_server::ServerConfig::for_tests();
    config.engine.max_trip_days = 3;
    let app = spawn_app_with(config, None).await;
    assert_eq!(app.generate(&with("Jeju", "2025-11-01", "2025-11-04", "low")).await.status(), 422);
}

/// The middleware wraps the whole router: a route's answer, the fallback's 404, a 405, a refused body and
/// a CORS preflight all carry a request id (the client's own when it fits) and, for an allowed origin,
/// CORS headers.
#[tokio::test]
async fn every_answer_passes_the_middleware() {
    let mut config = tripstream_server::ServerConfig::for_tests();
    config.cors_allow_origins = "https://app.example".into();
    let app = spawn_app_with(config, None).await;
    let url = |path: &str| format!("{}{path}", app.base);
    let origin = "https://app.example";
    let too_big = with(&"a".repeat(17 * 1024), "2025-11-10", "2025-11-12", "low");
    let requests = [
        ("a route", app.client.get(url("/health")), 200),
        ("no such path", app.client.get(url("/no/such/path")), 404),
        ("no such method", app.client.delete(url("/api/v1/plans/generate")), 405),
        (
            "a body over the limit",
            app.client.post(url("/api/v1/plans/generate")).header("content-type", "application/json").body(too_big),
            413,
        ),
        (
            "a preflight",
            app.client
                .request(reqwest::Method::OPTIONS, url("/api/v1/plans/generate/stream"))
                .header("access-control-request-method", "POST")
                .header("access-control-request-headers", "last-event-id"),
            200,
        ),
    ];
    for (name, request, status) in requests {
        let response = request.header("origin", origin).send().await.unwrap();
        assert_eq!(response.status(), status, "{name}");
        let headers = response.headers();
        assert!(headers.get("x-request-id").is_some_and(|id| !id.is_empty()), "{name}: {headers:?}");
        assert_eq!(headers["access-control-allow-origin"], origin, "{name}: {headers:?}");
        if name == "a preflight" {
            let allowed = headers["access-control-allow-headers"].to_str().unwrap();
            assert!(allowed.contains("last-event-id"), "{allowed}");
            assert!(headers["access-control-allow-methods"].to_str().unwrap().contains("POST"));
        } else {
            assert!(headers["access-control-expose-headers"].to_str().unwrap().contains("x-stream-id"), "{name}");
        }
    }
    // A 405 says which methods the endpoint takes, in `Allow` and in an error body like every other.
    let wrong = app.client.delete(url("/api/v1/plans/generate")).send().await.unwrap();
    assert_eq!((wrong.status().as_u16(), wrong.headers()["allow"].to_str().unwrap()), (405, "POST"));
    let body: serde_json::Value = wrong.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_request", "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("DELETE"), "{body}");
    let echoed = app.client.get(url("/no/such/path")).header("x-request-id", "trace-me-42").send().await.unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "trace-me-42");
    let other = app.client.get(url("/health")).header("origin", "https://elsewhere.example").send().await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none(), "{:?}", other.headers());
}
