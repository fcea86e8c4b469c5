//! The web page at `/`: embedded, with its assets, their content types and caching, and nothing from elsewhere.

use crate::helpers::*;

fn header(response: &reqwest::Response, name: &str) -> String {
    response.headers().get(name).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default()
}

/// The `href`/`src` of the page's asset links, e.g. `/assets/app.js?v=…`.
fn asset_urls(html: &str) -> Vec<String> {
    html.split(['"', '\'']).filter(|part| part.starts_with("/assets/")).map(str::to_owned).collect()
}

#[tokio::test]
async fn the_page_is_served_at_the_root_with_its_assets() {
    let app = spawn_app().await;

    let page = app.get("/").await;
    assert_eq!(page.status(), 200);
    assert_eq!(header(&page, "content-type"), "text/html; charset=utf-8");
    assert_eq!(header(&page, "cache-control"), "no-cache");
    assert_eq!(header(&page, "x-content-type-options"), "nosniff");
    let csp = header(&page, "content-security-policy");
    assert!(csp.contains("default-src 'self'") && csp.contains("connect-src 'self'"), "{csp}");
    let etag = header(&page, "etag");
    assert!(etag.starts_with('"') && etag.len() == 18, "{etag}");
    let html = page.text().await.unwrap();
    assert!(html.starts_with("<!doctype html>"));
    assert!(html.contains(r#"<form id="plan-form""#));

    // Nothing is loaded from another origin: no CDN, no web fonts.
    for needle in ["src=\"http", "href=\"http", "src=\"//", "href=\"//", "@import", "fonts.g"] {
        assert!(!html.contains(needle), "the page refers to {needle}");
    }

    let urls = asset_urls(&html);
    assert_eq!(urls.len(), 2, "{urls:?}");
    for (url, content_type) in [(&urls[1], "text/javascript; charset=utf-8"), (&urls[0], "text/css; charset=utf-8")] {
        let asset = app.get(url).await;
        assert_eq!(asset.status(), 200, "{url}");
        assert_eq!(header(&asset, "content-type"), content_type, "{url}");
        assert_eq!(header(&asset, "cache-control"), "public, max-age=31536000, immutable", "{url}");
        let body = asset.text().await.unwrap();
        assert!(body.len() > 1000, "{url}");
        assert!(!body.contains("url(http") && !body.contains("@import"), "{url} loads nothing from elsewhere");

        // Without the current hash (or with a stale one) the asset is revalidated, not cached for good.
        let path = url.split('?').next().unwrap();
        for stale in [path.to_owned(), format!("{path}?v=0000000000000000")] {
            let asset = app.get(&stale).await;
            assert_eq!(asset.status(), 200, "{stale}");
            assert_eq!(header(&asset, "cache-control"), "no-cache", "{stale}");
        }
    }
}

#[tokio::test]
async fn a_revalidation_that_finds_nothing_new_is_a_304() {
    let app = spawn_app().await;
    let etag = header(&app.get("/").await, "etag");
    let again = app.client.get(format!("{}/", app.base)).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(header(&again, "etag"), etag);
    assert!(again.bytes().await.unwrap().is_empty());

    let other = app.client.get(format!("{}/", app.base)).header("if-none-match", "\"other\"").send().await.unwrap();
    assert_eq!(other.status(), 200);
}

#[tokio::test]
async fn the_page_does_not_shadow_the_api_or_unknown_paths() {
    let app = spawn_app().await;
    assert_eq!(app.get("/health").await.status(), 200);
    let missing = app.get("/assets/nope.js").await;
    assert_eq!(missing.status(), 404);
    assert_eq!(header(&missing, "content-type"), "application/json");
    let head = app.client.head(format!("{}/", app.base)).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(header(&head, "content-type"), "text/html; charset=utf-8");
}
