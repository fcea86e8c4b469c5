//! `/docs`: the interactive API reference, Swagger UI on `/openapi.json`, embedded in the binary like the
//! page so it works offline.
//!
//! `npm run build:web` copies Swagger UI from the pinned npm `swagger-ui-dist` into `web/dist/docs`, with
//! `web/src/docs` (the HTML, the script that starts Swagger UI, a stylesheet), and links each file by the
//! hash of its bytes as the page does. The reference gets the page's Content-Security-Policy without any
//! tile host: every script and stylesheet is a file of this origin, nothing inline, no `eval`.

use std::sync::LazyLock;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::page::{Asset, REVALIDATE, content_security_policy, fnv1a64, serve, serve_asset};
use crate::error::ApiError;

const DOCS_HTML: &str = include_str!("../../../../web/dist/docs/index.html");
const SWAGGER_JS: &str = include_str!("../../../../web/dist/docs/swagger-ui-bundle.js");
const SWAGGER_CSS: &str = include_str!("../../../../web/dist/docs/swagger-ui.css");
const DOCS_JS: &str = include_str!("../../../../web/dist/docs/docs.js");
const DOCS_CSS: &str = include_str!("../../../../web/dist/docs/docs.css");

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// Each file under `/docs/`, by name.
static FILES: [(&str, Asset); 4] = [
    ("swagger-ui-bundle.js", Asset { body: SWAGGER_JS, content_type: JS, hash: LazyLock::new(|| fnv1a64(SWAGGER_JS)) }),
    ("swagger-ui.css", Asset { body: SWAGGER_CSS, content_type: CSS, hash: LazyLock::new(|| fnv1a64(SWAGGER_CSS)) }),
    ("docs.js", Asset { body: DOCS_JS, content_type: JS, hash: LazyLock::new(|| fnv1a64(DOCS_JS)) }),
    ("docs.css", Asset { body: DOCS_CSS, content_type: CSS, hash: LazyLock::new(|| fnv1a64(DOCS_CSS)) }),
];

static HTML_HASH: LazyLock<String> = LazyLock::new(|| fnv1a64(DOCS_HTML));
static CSP: LazyLock<HeaderValue> =
    LazyLock::new(|| HeaderValue::from_str(&content_security_policy(None)).expect("the policy is a header value"));

/// `GET /docs`.
pub async fn index(headers: HeaderMap) -> Response {
    let html = Bytes::from_static(DOCS_HTML.as_bytes());
    let mut response = serve(html, "text/html; charset=utf-8", &HTML_HASH, &headers, REVALIDATE);
    let response_headers = response.headers_mut();
    response_headers.insert(header::CONTENT_SECURITY_POLICY, CSP.clone());
    response_headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

/// `GET /docs/{file}`: Swagger UI's files and ours; anything else is `404`.
pub async fn file(Path(name): Path<String>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    match FILES.iter().find(|(file, _)| *file == name) {
        Some((_, asset)) => serve_asset(asset, &headers, query.as_deref()),
        None => ApiError::not_found().into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_links_its_files_by_their_current_hash() {
        for (name, asset) in &FILES {
            let url = format!("/docs/{name}?v={}", *asset.hash);
            assert!(DOCS_HTML.contains(&url), "{url} is not linked: rebuild web/dist");
        }
        assert!(
            !DOCS_HTML.contains("<script>") && !DOCS_HTML.contains(" style="),
            "nothing inline: the CSP forbids it"
        );
    }
}
