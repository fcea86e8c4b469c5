//! `/openapi.json` and `/docs`: the document describes the router it came from (every operation it lists
//! answers, none with the router's "no such endpoint"), and the reference page is served with its files.

use serde_json::Value;

use crate::helpers::*;

fn header(response: &reqwest::Response, name: &str) -> String {
    response.headers().get(name).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default()
}

#[tokio::test]
async fn every_documented_operation_is_routed() {
    let app = spawn_app().await;
    let response = app.get("/openapi.json").await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "content-type"), "application/json");
    let spec: Value = response.json().await.unwrap();
    assert_eq!(spec["openapi"], "3.1.0");
    let admin = app.key("openapi test", true).await;

    let mut operations = 0;
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            operations += 1;
            let url = format!("{}{}", app.base, path.replace("{streamId}", "str_0000000000000000000000000"));
            let mut request = app.client.request(method.to_uppercase().parse().unwrap(), url).bearer_auth(&admin);
            if operation.get("requestBody").is_some() {
                request = request.header("content-type", "application/json").body(seoul_body());
            }
            if path == "/api/v1/plans/generate/stream" && method == "get" {
                request = request.query(&[
                    ("location", "Seoul"),
                    ("startDate", "2025-11-10"),
                    ("endDate", "2025-11-12"),
                    ("budget", "medium"),
                ]);
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            assert_ne!(status, 405, "{method} {path} is documented but not routed for {method}");
            assert!(
                operation["responses"].get(status.to_string()).is_some(),
                "{method} {path} answered {status}, which it does not document"
            );
            if status == 404 {
                let body: Value = response.json().await.unwrap();
                let message = body["error"]["message"].as_str().unwrap();
                assert!(!message.starts_with("no such endpoint"), "{method} {path} is documented but not routed");
            }
        }
    }
    assert!(operations >= 11, "{operations} operations");
}

#[tokio::test]
async fn the_reference_is_served_with_its_files_and_a_strict_policy() {
    let app = spawn_app().await;
    let page = app.get("/docs").await;
    assert_eq!(page.status(), 200);
    assert_eq!(header(&page, "content-type"), "text/html; charset=utf-8");
    let csp = header(&page, "content-security-policy");
    assert!(csp.contains("script-src 'self';") && csp.contains("style-src 'self';"), "{csp}");
    assert!(!csp.contains("unsafe-"), "{csp}");
    let html = page.text().await.unwrap();
    let files: Vec<&str> = html.split('"').filter(|part| part.starts_with("/docs/")).collect();
    assert_eq!(files.len(), 4, "{html}");
    for file in files {
        let response = app.get(file).await;
        assert_eq!(response.status(), 200, "{file}");
        // Named by the hash of its bytes: cached for good.
        assert_eq!(header(&response, "cache-control"), "public, max-age=31536000, immutable", "{file}");
        assert!(header(&response, "content-type").starts_with("text/"), "{file}");
    }
    let missing = app.get("/docs/swagger-initializer.js").await;
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.json::<Value>().await.unwrap()["error"]["code"], "not_found");
}
