//! The web page at `/`: embedded, with its assets, their content types and caching, and nothing from elsewhere
//! but the map's tiles, from the configured host alone.

use tripstream_server::config::MapSettings;
use tripstream_server::{Application, ServerConfig};

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
    // OpenStreetMap's tiles by default, and images from nowhere else.
    assert!(csp.contains("img-src 'self' data: https://tile.openstreetmap.org;"), "{csp}");
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

/// The `content` of the page's `<meta name="tripstream-map-tiles">`, unescaped and parsed.
fn map_tiles(html: &str) -> serde_json::Value {
    let start = html.find(r#"<meta name="tripstream-map-tiles" content=""#).expect("the page has the map's settings");
    let rest = &html[start..];
    let content = rest.split('"').nth(3).unwrap();
    let content = content
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    serde_json::from_str(&content).unwrap()
}

#[tokio::test]
async fn the_page_learns_its_tile_source_and_its_policy_admits_that_host_alone() {
    let map = MapSettings {
        map_tile_url: "https://{s}.tiles.example.org/{z}/{x}/{y}{r}.png".into(),
        map_tile_attribution: "© [Example](https://example.org/credits) & <friends>".into(),
    };
    let app = spawn_app_with(ServerConfig { map, ..ServerConfig::for_tests() }, None).await;
    let page = app.get("/").await;
    let csp = header(&page, "content-security-policy");
    assert!(csp.contains("img-src 'self' data: https://*.tiles.example.org;"), "{csp}");
    assert!(!csp.contains("openstreetmap"), "{csp}");
    let etag = header(&page, "etag");
    let html = page.text().await.unwrap();
    assert_eq!(
        map_tiles(&html),
        serde_json::json!({
            "url": "https://{s}.tiles.example.org/{z}/{x}/{y}{r}.png",
            "attribution": "© [Example](https://example.org/credits) & <friends>",
        })
    );
    assert!(!html.contains("<friends>"), "the credit is escaped");
    // The page as served is what the ETag names.
    let again = app.client.get(format!("{}/", app.base)).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(again.status(), 304);
}

#[tokio::test]
async fn without_tiles_the_page_draws_sketches_and_admits_no_image_host() {
    let map = MapSettings { map_tile_url: "none".into(), ..MapSettings::default() };
    let app = spawn_app_with(ServerConfig { map, ..ServerConfig::for_tests() }, None).await;
    let page = app.get("/").await;
    let csp = header(&page, "content-security-policy");
    assert!(csp.contains("img-src 'self' data:;"), "{csp}");
    assert_eq!(map_tiles(&page.text().await.unwrap())["url"], "");
}

#[tokio::test]
async fn a_tile_url_the_page_cannot_use_stops_the_start_with_a_clear_error() {
    for (url, reason) in [
        ("https://tiles.example.org/{z}/{x}.png", "the URL needs {y}"),
        ("https://tiles.example.org; script-src *;/{z}/{x}/{y}.png", "a character URLs may not"),
        ("ftp://tiles.example.org/{z}/{x}/{y}.png", "https or http"),
    ] {
        let map = MapSettings { map_tile_url: url.into(), ..MapSettings::default() };
        let config = ServerConfig { map, ..ServerConfig::for_tests() };
        let services = tripstream_server::wiring::Services::from_settings(&config.engine).unwrap();
        let error = match Application::with_services(config, services).await {
            Ok(_) => panic!("{url} was accepted"),
            Err(error) => format!("{error:#}"),
        };
        assert!(error.starts_with("MAP_TILE_URL") && error.contains(reason), "{url}: {error}");
    }
}
