//! The web page at `/` and its two assets, embedded in the binary so the page works offline and needs no
//! build at run time.
//!
//! The sources are in `web/src`; `npm run build:web` (in `clients/typescript`) bundles them into `web/dist`,
//! which is committed. The page links its assets as `/assets/app.js?v=<hash>`, the hash being 64-bit FNV-1a of
//! the asset's bytes in hex: a request naming the current hash may be cached for good, any other is revalidated.
//! Every answer carries an `ETag`, so a revalidation that finds nothing new is a `304`.
//!
//! The page's day maps draw on raster tiles from `MAP_TILE_URL`: [`Page::new`] writes that setting into the page
//! (a `<meta>` its script reads) and admits that one host in the Content-Security-Policy's `img-src`.

use std::sync::LazyLock;

use anyhow::{Context, ensure};
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::config::MapSettings;
use crate::state::AppState;

const INDEX_HTML: &str = include_str!("../../../../web/dist/index.html");
const APP_JS: &str = include_str!("../../../../web/dist/app.js");
const APP_CSS: &str = include_str!("../../../../web/dist/app.css");

/// Where `web/src/index.html` leaves room for the map's tile settings (the `content` of a `<meta>`).
const MAP_TILES_SLOT: &str = "%MAP_TILES%";

/// The longest tile credit accepted; the map shows it in one line.
const MAX_ATTRIBUTION_CHARS: usize = 300;

pub(super) const REVALIDATE: &str = "no-cache";
const FOREVER: &str = "public, max-age=31536000, immutable";

/// Everything the page needs is on this origin but the map's tiles: nothing may be fetched from anywhere else.
pub(super) fn content_security_policy(tile_origin: Option<&str>) -> String {
    let tiles = tile_origin.map(|origin| format!(" {origin}")).unwrap_or_default();
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:{tiles}; connect-src 'self'; \
         font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

/// A file embedded in the binary, served at a URL that may name its hash.
pub(super) struct Asset {
    pub(super) body: &'static str,
    pub(super) content_type: &'static str,
    pub(super) hash: LazyLock<String>,
}

static SCRIPT: Asset =
    Asset { body: APP_JS, content_type: "text/javascript; charset=utf-8", hash: LazyLock::new(|| fnv1a64(APP_JS)) };
static STYLES: Asset =
    Asset { body: APP_CSS, content_type: "text/css; charset=utf-8", hash: LazyLock::new(|| fnv1a64(APP_CSS)) };

/// The page as served, made once at startup: its HTML with the tile settings written in, the hash of those
/// bytes (its `ETag`), and the Content-Security-Policy that admits the tile host.
pub struct Page {
    html: Bytes,
    hash: String,
    csp: HeaderValue,
}

impl Page {
    /// Fails, naming the setting, on a tile URL or credit the page could not use safely.
    pub fn new(map: &MapSettings) -> anyhow::Result<Page> {
        let url = map.map_tile_url.trim();
        let tiles = (!url.is_empty() && !url.eq_ignore_ascii_case("none")).then_some(url);
        let origin = tiles.map(tile_origin).transpose().with_context(|| format!("MAP_TILE_URL {url:?}"))?;
        let attribution = map.map_tile_attribution.trim();
        ensure!(
            attribution.chars().count() <= MAX_ATTRIBUTION_CHARS && !attribution.chars().any(char::is_control),
            "MAP_TILE_ATTRIBUTION must be one line of at most {MAX_ATTRIBUTION_CHARS} characters"
        );
        let settings = serde_json::json!({ "url": tiles.unwrap_or_default(), "attribution": attribution });
        let html = INDEX_HTML.replace(MAP_TILES_SLOT, &escape_attribute(&settings.to_string()));
        let csp = HeaderValue::from_str(&content_security_policy(origin.as_deref()))
            .context("MAP_TILE_URL's host cannot be written into the Content-Security-Policy")?;
        Ok(Page { hash: fnv1a64(&html), html: Bytes::from(html), csp })
    }
}

/// The scheme, host and port of a tile URL template as a CSP source: `https://tile.openstreetmap.org`, or
/// `https://*.tile.example.org` when the first label is a per-tile subdomain (`{s}`). Refuses user info, any
/// other placeholder or odd character in the host, and a template without `{z}`, `{x}` and `{y}`.
fn tile_origin(template: &str) -> anyhow::Result<String> {
    let (scheme, rest) = template.split_once("://").context("not a URL")?;
    ensure!(scheme == "https" || scheme == "http", "tiles are fetched over https or http, not {scheme:?}");
    for placeholder in ["{z}", "{x}", "{y}"] {
        ensure!(rest.contains(placeholder), "the URL needs {placeholder}");
    }
    ensure!(
        !template.chars().any(|c| c.is_whitespace() || c.is_control() || "\"'<>\\^`|".contains(c)),
        "the URL holds a character URLs may not"
    );
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        // An IPv6 address, `[::1]:8080`.
        let (address, after) = bracketed.split_once(']').context("an IPv6 host without its `]`")?;
        ensure!(
            !address.is_empty() && address.bytes().all(|b| b.is_ascii_hexdigit() || b == b':'),
            "not an IPv6 address"
        );
        (
            format!("[{address}]"),
            after.strip_prefix(':').map(str::to_owned).or_else(|| after.is_empty().then(String::new)),
        )
    } else {
        let (host, port) = authority.rsplit_once(':').map_or((authority, None), |(h, p)| (h, Some(p)));
        (host_source(host)?, Some(port.map(str::to_owned).unwrap_or_default()))
    };
    let port = port.context("an IPv6 host must end in `]` or `]:port`")?;
    ensure!(port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit()), "the port must be a number");
    Ok(if port.is_empty() { format!("{scheme}://{host}") } else { format!("{scheme}://{host}:{port}") })
}

/// A host name as a CSP host source, its first label `*` when it is a placeholder like `{s}` or `a-{s}`.
fn host_source(host: &str) -> anyhow::Result<String> {
    let mut labels: Vec<&str> = host.split('.').collect();
    if labels.len() >= 3 && labels[0].contains('{') {
        labels[0] = "*";
    }
    let plain = |label: &str| !label.is_empty() && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    let first_ok = labels.first().is_some_and(|first| *first == "*" || plain(first));
    ensure!(
        first_ok && labels.iter().skip(1).all(|label| plain(label)),
        "the host may hold letters, digits, dots and dashes, and a placeholder only as its first label"
    );
    Ok(labels.join("."))
}

/// Text made safe inside a double-quoted HTML attribute.
fn escape_attribute(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// 64-bit FNV-1a of `text`'s bytes, as 16 hex digits (the same as `scripts/build-web.mjs`).
pub(super) fn fnv1a64(text: &str) -> String {
    let hash = text
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3));
    format!("{hash:016x}")
}

/// `GET /`: the page.
pub async fn index(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let page = &state.page;
    let mut response = serve(page.html.clone(), "text/html; charset=utf-8", &page.hash, &headers, REVALIDATE);
    let response_headers = response.headers_mut();
    response_headers.insert(header::CONTENT_SECURITY_POLICY, page.csp.clone());
    response_headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    // The page calls the API through a session of its own origin: where keys are required it admits the
    // page, and in every mode it owns the plans the page generates.
    if !state.auth.sessions.is_valid(&headers) {
        response_headers.insert(header::SET_COOKIE, state.auth.sessions.issue(&headers));
    }
    response
}

/// The page for a share link (`/p/{shareId}`), with `status`: its script sees the path and renders the shared
/// plan instead of the form. `preview` (title, description) becomes the page's title and its Open Graph
/// tags, escaped; a link that does not exist has none.
pub fn shared(state: &AppState, status: StatusCode, preview: Option<(&str, &str)>) -> Response {
    let page = &state.page;
    let html = with_preview(std::str::from_utf8(&page.html).unwrap_or_default(), preview);
    let mut response = (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response();
    let response_headers = response.headers_mut();
    response_headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response_headers.insert(header::CONTENT_SECURITY_POLICY, page.csp.clone());
    response_headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response_headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

/// `html` with `preview` (title, description) as its title and Open Graph tags, escaped, and kept out of
/// search engines (a share link is for the people it was sent to).
fn with_preview(html: &str, preview: Option<(&str, &str)>) -> String {
    const NOINDEX: &str = "<meta name=\"robots\" content=\"noindex\">\n</head>";
    let Some((title, description)) = preview else { return html.replacen("</head>", NOINDEX, 1) };
    let (title, description) = (escape_attribute(title), escape_attribute(description));
    let tags = format!(
        "<meta property=\"og:type\" content=\"website\">\n<meta property=\"og:site_name\" content=\"tripstream\">\n\
         <meta property=\"og:title\" content=\"{title}\">\n<meta property=\"og:description\" content=\"{description}\">\n\
         {NOINDEX}"
    );
    html.replacen("<title>tripstream</title>", &format!("<title>{title} · tripstream</title>"), 1)
        .replacen("</head>", &tags, 1)
}

/// `GET /assets/app.js`.
pub async fn script(headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    serve_asset(&SCRIPT, &headers, query.as_deref())
}

/// `GET /assets/app.css`.
pub async fn styles(headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    serve_asset(&STYLES, &headers, query.as_deref())
}

/// Cached for good only when the URL names the bytes being served (`?v=<their hash>`).
pub(super) fn serve_asset(asset: &'static Asset, request: &HeaderMap, query: Option<&str>) -> Response {
    let current = query.unwrap_or("").split('&').any(|pair| pair.strip_prefix("v=") == Some(asset.hash.as_str()));
    let cache_control = if current { FOREVER } else { REVALIDATE };
    serve(Bytes::from_static(asset.body.as_bytes()), asset.content_type, &asset.hash, request, cache_control)
}

pub(super) fn serve(
    body: Bytes,
    content_type: &'static str,
    hash: &str,
    request: &HeaderMap,
    cache_control: &'static str,
) -> Response {
    let etag = format!("\"{hash}\"");
    let unchanged = request.get(header::IF_NONE_MATCH).and_then(|value| value.to_str().ok()).is_some_and(|tags| {
        tags.split(',').any(|tag| tag.trim().trim_start_matches("W/") == etag || tag.trim() == "*")
    });
    let mut response = if unchanged {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, content_type)], body).into_response()
    };
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache_control));
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
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
        assert_eq!(INDEX_HTML.matches(MAP_TILES_SLOT).count(), 1, "rebuild web/dist");
    }

    #[test]
    fn a_tile_template_gives_its_origin() {
        for (template, origin) in [
            ("https://tile.openstreetmap.org/{z}/{x}/{y}.png", "https://tile.openstreetmap.org"),
            ("https://{s}.tile.example.org/{z}/{x}/{y}{r}.png", "https://*.tile.example.org"),
            ("https://tiles-{s}.maps.example.org/v1/{z}/{x}/{y}.png?key=abc", "https://*.maps.example.org"),
            ("http://127.0.0.1:8081/{z}/{x}/{y}.png", "http://127.0.0.1:8081"),
            ("http://[::1]:9/{z}/{x}/{y}.png", "http://[::1]:9"),
            ("http://[::1]/{z}/{x}/{y}.png", "http://[::1]"),
        ] {
            assert_eq!(tile_origin(template).unwrap(), origin, "{template}");
        }
    }

    #[test]
    fn a_tile_template_the_page_cannot_use_is_refused() {
        for template in [
            "tile.openstreetmap.org/{z}/{x}/{y}.png",
            "ftp://tiles.example.org/{z}/{x}/{y}.png",
            "https://tiles.example.org/{z}/{x}.png",
            "https://user:pass@tiles.example.org/{z}/{x}/{y}.png",
            "https://tiles.example.org;script-src */{z}/{x}/{y}.png",
            "https://tiles.example.org /{z}/{x}/{y}.png",
            "https://tiles.{s}.example.org/{z}/{x}/{y}.png",
            "https://{s}.org/{z}/{x}/{y}.png",
            "https://tiles.example.org:80a/{z}/{x}/{y}.png",
            "https://[::1/{z}/{x}/{y}.png",
            "https:///{z}/{x}/{y}.png",
        ] {
            assert!(tile_origin(template).is_err(), "{template} was accepted");
        }
    }

    #[test]
    fn the_settings_are_written_into_the_page_escaped() {
        let map = MapSettings {
            map_tile_url: "https://tiles.example.org/{z}/{x}/{y}.png".into(),
            map_tile_attribution: "© \"Tiles\" <b>&</b> 'co'".into(),
        };
        let page = Page::new(&map).unwrap();
        let html = std::str::from_utf8(&page.html).unwrap();
        assert!(html.contains(
            r#"content="{&quot;url&quot;:&quot;https://tiles.example.org/{z}/{x}/{y}.png&quot;,&quot;attribution&quot;:&quot;© \&quot;Tiles\&quot; &lt;b&gt;&amp;&lt;/b&gt; &#39;co&#39;&quot;}""#
        ), "{html}");
        assert!(page.csp.to_str().unwrap().contains("img-src 'self' data: https://tiles.example.org;"));
        assert_eq!(page.hash, fnv1a64(html));
    }

    #[test]
    fn a_share_preview_is_escaped_into_the_head() {
        let html = with_preview(INDEX_HTML, Some(("Seoul \"<b>\", 3 days", "a & b <script>alert(1)</script>")));
        let head = &html[..html.find("</head>").unwrap()];
        assert!(head.contains(r#"<meta property="og:title" content="Seoul &quot;&lt;b&gt;&quot;, 3 days">"#), "{head}");
        assert!(head.contains(r#"content="a &amp; b &lt;script&gt;alert(1)&lt;/script&gt;""#), "{head}");
        assert!(head.contains("<title>Seoul &quot;&lt;b&gt;&quot;, 3 days · tripstream</title>"), "{head}");
        assert!(!html.contains("<script>alert"));
        let missing = with_preview(INDEX_HTML, None);
        assert!(!missing.contains("og:title") && missing.contains(r#"<meta name="robots" content="noindex">"#));
    }

    #[test]
    fn without_tiles_the_policy_admits_no_other_host() {
        for url in ["none", "", "  NONE "] {
            let page = Page::new(&MapSettings { map_tile_url: url.into(), ..MapSettings::default() }).unwrap();
            assert!(page.csp.to_str().unwrap().contains("img-src 'self' data:;"), "{url:?}");
            assert!(std::str::from_utf8(&page.html).unwrap().contains("&quot;url&quot;:&quot;&quot;"));
        }
        let long = MapSettings { map_tile_attribution: "x".repeat(301), ..MapSettings::default() };
        assert!(Page::new(&long).is_err());
        let two_lines = MapSettings { map_tile_attribution: "a\nb".into(), ..MapSettings::default() };
        assert!(Page::new(&two_lines).is_err());
    }
}
