//! The router: one function from state to every route of the contract, and the OpenAPI document that
//! describes them, made from the same registrations so the two cannot disagree.
//!
//! # Adding a route
//!
//! - **An API route** (anything a program calls: `/api/…`, `/health…`, `/metrics`): write the handler with
//!   `#[utoipa::path(get|post, path = "/api/v1/…", tag = …, responses(…))]` above it (see
//!   `plans::generate` for a full one: request body, headers, every status with `ErrorResponse`, and
//!   `security` naming `bearer` and/or `{}` for anonymous), then register it in [`api`] with
//!   `.routes(routes!(module::handler))`. Handlers of the same path go in one `routes!(a, b)`. The path
//!   comes from the attribute; axum reads `{name}` segments as usual. New wire types derive
//!   `utoipa::ToSchema` (domain types behind the domain crate's `openapi` feature).
//! - **A page or asset** (HTML, JS, CSS for browsers): register it in [`pages`] with a plain `.route(…)`
//!   and add its path to `PAGES` in the tests below.
//!
//! The test `only_pages_are_routed_without_documentation` reads this crate's sources and fails on any
//! `.route("…")` whose path is not in `PAGES`; the integration test `openapi` checks the other
//! direction (every documented operation answers).

mod calendar;
mod docs;
mod examples;
mod meta;
mod openapi;
mod page;
mod plans;
mod saved;

pub use meta::exposition as metrics_exposition;
pub use page::Page;

use axum::Router;
use axum::routing::get;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::state::AppState;

pub fn router(state: AppState) -> Router {
    let (api, mut spec) = api().split_for_parts();
    openapi::finish(&mut spec);
    pages(openapi::Spec::new(&spec))
        .merge(api)
        .fallback(|| async { ApiError::not_found() })
        // Every route's 405 is an error body like any other; axum still adds `Allow`.
        .method_not_allowed_fallback(|method: axum::http::Method| async move { ApiError::method_not_allowed(&method) })
        .with_state(state)
}

/// Every API route, each with its OpenAPI operation.
fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::document())
        .routes(routes!(meta::health))
        .routes(routes!(meta::live))
        .routes(routes!(meta::ready))
        .routes(routes!(meta::destinations))
        .routes(routes!(meta::stats))
        .routes(routes!(meta::metrics))
        .routes(routes!(plans::generate))
        .routes(routes!(plans::generate_stream, plans::generate_stream_get))
        .routes(routes!(plans::resume))
        .routes(routes!(plans::cancel))
        .routes(routes!(saved::list))
        .routes(routes!(saved::latest))
        .routes(routes!(saved::versions))
        .routes(routes!(saved::version))
        .routes(routes!(saved::share))
        .routes(routes!(plans::regenerate_day))
        .routes(routes!(saved::get_share, saved::revoke_share))
        .routes(routes!(calendar::plan))
        .routes(routes!(calendar::share))
}

/// The pages, their assets and the API's description: for browsers, not programs.
fn pages(spec: openapi::Spec) -> Router<AppState> {
    Router::new()
        .route("/", get(page::index))
        .route("/assets/app.js", get(page::script))
        .route("/assets/app.css", get(page::styles))
        .route("/p/{share_id}", get(saved::share_page))
        .route(openapi::SPEC_PATH, get(move || async move { spec.response() }))
        .route("/docs", get(docs::index))
        .route("/docs/{file}", get(docs::file))
}

/// The OpenAPI document as served at `/openapi.json`.
pub fn spec() -> utoipa::openapi::OpenApi {
    let mut spec = api().into_openapi();
    openapi::finish(&mut spec);
    spec
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    use super::*;

    /// The routes registered without an OpenAPI operation: the page, its assets, the document itself and the
    /// docs page. Nothing a program calls belongs here.
    const PAGES: &[&str] =
        &["/", "/assets/app.js", "/assets/app.css", "/p/{share_id}", openapi::SPEC_PATH, "/docs", "/docs/{file}"];

    /// Every `.route("…")` path written in this crate's sources, with the file it is in.
    fn plain_routes(dir: &Path, found: &mut Vec<(String, String)>) {
        let needle = concat!(".route", "(");
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                plain_routes(&path, found);
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            // Code only, without whitespace: `.route(\n "/x"` is found as well as `.route("/x"`.
            let code = text.lines().filter(|line| !line.trim_start().starts_with("//"));
            let compact: String = code.flat_map(str::split_whitespace).collect();
            for (i, _) in compact.match_indices(needle) {
                let rest = &compact[i + needle.len()..];
                let literal = rest.strip_prefix('"').and_then(|r| r.split('"').next());
                let name = literal.map_or_else(|| rest.chars().take(40).collect(), str::to_owned);
                found.push((path.display().to_string(), name));
            }
        }
    }

    #[test]
    fn only_pages_are_routed_without_documentation() {
        let mut found = Vec::new();
        plain_routes(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut found);
        for (file, route) in &found {
            // `METRICS_ADDR`'s listener is a router of its own, for scrapers inside the cluster.
            let metrics_listener = file.ends_with("startup.rs") && route == "/metrics";
            let page = PAGES.contains(&route.as_str()) || route.starts_with("openapi::SPEC_PATH");
            assert!(
                page || metrics_listener,
                "{file} routes {route:?} with a plain `.route`: register API routes with `routes!` (see routes/mod.rs)"
            );
        }
        assert!(found.len() >= PAGES.len(), "{found:?}");
        let spec = spec();
        for page in PAGES {
            assert!(!spec.paths.paths.contains_key(*page), "{page} is both a page and an API route");
        }
    }

    #[test]
    fn every_api_route_is_documented_with_responses() {
        let spec = spec();
        let paths: BTreeSet<&str> = spec.paths.paths.keys().map(String::as_str).collect();
        for expected in ["/health", "/api/v1/plans/generate", "/api/v1/plans/generate/stream", "/metrics"] {
            assert!(paths.contains(expected), "{expected} missing from {paths:?}");
        }
        let json = serde_json::to_value(&spec).unwrap();
        assert_eq!(json["openapi"], "3.1.0");
        for (path, item) in json["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let responses = operation["responses"].as_object().unwrap();
                assert!(!responses.is_empty(), "{method} {path} documents no response");
                assert!(operation["operationId"].is_string(), "{method} {path}");
            }
        }
    }
}
