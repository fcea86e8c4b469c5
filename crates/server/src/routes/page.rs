//! The web page at `/` and its two assets, embedded in the binary so the page works offline and needs no
//! build at run time.
//!
//! The sources are in `web/src`; `npm run build:web` (in `clients/typescript`) bundles them into `web/dist`,
//! which is committed. The page links its assets as `/assets/app.js?v=<hash>`, the hash being 64-bit FNV-1a of
//! the asset's bytes in hex: a request naming the current hash may be cached for good, any other is revalidated.
//! Every answer carries an `ETag`, so a revalidation that finds nothing new is a `304`.

use std::sync::LazyLock;

use axum::extract::RawQuery;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

const INDEX_HTML: &str = include_str!("../../../../web/dist/index.html");
const APP_JS: &str = include_str!("../../../../web/dist/app.js");
const APP_CSS: &str = include_str!("../../../../web/dist/app.css");

/// Everything the page needs is on this origin; nothing may be fetched from anywhere else.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const REVALIDATE: &str = "no-cache";
const FOREVER: &str = "public, max-age=31536000, immutable";

struct Asset {
    body: &'static str,
    content_type: &'static str,
    hash: LazyLock<String>,
}

static INDEX: Asset =
    Asset { body: INDEX_HTML, content_type: "text/html; charset=utf-8", hash: LazyLock::new(|| fnv1a64(INDEX_HTML)) };
static SCRIPT: Asset =
    Asset { body: APP_JS, content_type: "text/javascript; charset=utf-8", hash: LazyLock::new(|| fnv1a64(APP_JS)) };
static STYLES: Asset =
    Asset { body: APP_CSS, content_type: "text/css; charset=utf-8", hash: LazyLock::new(|| fnv1a64(APP_CSS)) };

/// 64-bit FNV-1a of `text`'s bytes, as 16 hex digits (the same as `scripts/build-web.mjs`).
fn fnv1a64(text: &str) -> String {
    let hash = text
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3));
    format!("{hash:016x}")
}

/// `GET /`: the page.
pub async fn index(headers: HeaderMap) -> Response {
    serve(&INDEX, &headers, REVALIDATE)
}

/// `GET /assets/app.js`.
pub async fn script(headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    serve(&SCRIPT, &headers, cache_control(&SCRIPT, query.as_deref()))
}

/// `GET /assets/app.css`.
pub async fn styles(headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    serve(&STYLES, &headers, cache_control(&STYLES, query.as_deref()))
}

/// Cached for good only when the URL names the bytes being served (`?v=<their hash>`).
fn cache_control(asset: &Asset, query: Option<&str>) -> &'static str {
    let current = query.unwrap_or("").split('&').any(|pair| pair.strip_prefix("v=") == Some(asset.hash.as_str()));
    if current { FOREVER } else { REVALIDATE }
}

fn serve(asset: &'static Asset, request: &HeaderMap, cache_control: &'static str) -> Response {
    let etag = format!("\"{}\"", *asset.hash);
    let unchanged = request.get(header::IF_NONE_MATCH).and_then(|value| value.to_str().ok()).is_some_and(|tags| {
        tags.split(',').any(|tag| tag.trim().trim_start_matches("W/") == etag || tag.trim() == "*")
    });
    let mut response = if unchanged {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, asset.content_type)], asset.body).into_response()
    };
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache_control));
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if asset.content_type.starts_with("text/html") {
        headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
        headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_matches_the_reference_values() {
        assert_eq!(fnv1a64(""), "cbf29ce484222325");
        assert_eq!(fnv1a64("a"), "af63dc4c8601ec8c");
        assert_eq!(fnv1a64("foobar"), "85944171f73967e8");
    }

    #[test]
    fn the_page_links_its_assets_by_their_current_hash() {
        assert!(INDEX_HTML.contains(&format!("/assets/app.js?v={}", fnv1a64(APP_JS))), "rebuild web/dist");
        assert!(INDEX_HTML.contains(&format!("/assets/app.css?v={}", fnv1a64(APP_CSS))), "rebuild web/dist");
    }
}
