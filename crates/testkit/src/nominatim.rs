//! Nominatim's search API (`GET /search?q=…&format=jsonv2&limit=1&viewbox=…&bounded=1`) over plain
//! HTTP/1.1, answering by what the name asks for: a name with `invented` in it is not found (`[]`), one
//! with `broken` gets a 500, `garbled` an HTML page with status 200, `slow` an answer after 30 s, `huge`
//! a body of a megabyte; any other is found at the centre of the request's viewbox, in `jsonv2`'s exact
//! shape (coordinates as strings). A request without `format=jsonv2` or without a User-Agent is refused
//! with 400 / 403, as the public instance does.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::json;

use crate::serve::{self, Body, Protocol, Server};
use crate::weather::query;

/// One request's query parameters, percent-decoded.
pub type Query = Vec<(String, String)>;

/// A running mock Nominatim.
pub struct Nominatim {
    server: Server,
    calls: Arc<AtomicUsize>,
    queries: Arc<Mutex<Vec<Query>>>,
}

impl Nominatim {
    pub async fn start() -> std::io::Result<Self> {
        let calls = Arc::new(AtomicUsize::new(0));
        let queries = Arc::new(Mutex::new(Vec::new()));
        let (counted, seen) = (calls.clone(), queries.clone());
        let handler: serve::Handler = Arc::new(move |request| {
            counted.fetch_add(1, Ordering::Relaxed);
            let seen = seen.clone();
            Box::pin(async move { handle(&seen, request).await })
        });
        let server = serve::start(SocketAddr::from(([127, 0, 0, 1], 0)), Protocol::Http1, handler).await?;
        Ok(Self { server, calls, queries })
    }

    /// What `PLACE_SEARCH_URL` is set to.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.server.addr)
    }

    /// Requests answered.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::Relaxed)
    }

    /// Every request's query parameters, percent-decoded, in order.
    pub fn queries(&self) -> Vec<Query> {
        self.queries.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

async fn handle(seen: &Mutex<Vec<Query>>, request: Request<Incoming>) -> Response<Body> {
    let params = query(request.uri().query().unwrap_or(""));
    seen.lock().unwrap_or_else(|p| p.into_inner()).push(params.clone());
    let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    if !request.headers().contains_key(hyper::header::USER_AGENT) {
        return reply(StatusCode::FORBIDDEN, "text/html", "<html>Access blocked: no User-Agent</html>".into());
    }
    if request.uri().path() != "/search" || param("format").as_deref() != Some("jsonv2") {
        return reply(
            StatusCode::BAD_REQUEST,
            "application/json",
            json!({"error": {"code": 400, "message": "bad request"}}).to_string(),
        );
    }
    let q = param("q").unwrap_or_default().to_lowercase();
    if q.contains("invented") {
        return reply(StatusCode::OK, "application/json", "[]".into());
    }
    if q.contains("broken") {
        return reply(StatusCode::INTERNAL_SERVER_ERROR, "text/html", "<html>Internal Server Error</html>".into());
    }
    if q.contains("garbled") {
        return reply(StatusCode::OK, "text/html", "<html><body>Service busy</body></html>".into());
    }
    if q.contains("huge") {
        return reply(StatusCode::OK, "application/json", format!("[{}]", " ".repeat(1 << 20)));
    }
    if q.contains("slow") {
        tokio::time::sleep(Duration::from_secs(30)).await;
    }
    let (lat, lon) = centre(param("viewbox").as_deref().unwrap_or(""));
    let place = json!([{
        "place_id": 123_456, "licence": "Data © OpenStreetMap contributors, ODbL 1.0. http://osm.org/copyright",
        "osm_type": "way", "osm_id": 987_654, "lat": format!("{lat:.7}"), "lon": format!("{lon:.7}"),
        "category": "tourism", "type": "attraction", "place_rank": 30, "importance": 0.35, "addresstype": "tourism",
        "name": param("q").unwrap_or_default(), "display_name": format!("{}, Mock City", param("q").unwrap_or_default()),
        "boundingbox": [format!("{:.7}", lat - 0.001), format!("{:.7}", lat + 0.001), format!("{:.7}", lon - 0.001), format!("{:.7}", lon + 0.001)],
    }]);
    reply(StatusCode::OK, "application/json", place.to_string())
}

/// The centre of `lon1,lat1,lon2,lat2`.
fn centre(viewbox: &str) -> (f64, f64) {
    let v: Vec<f64> = viewbox.split(',').filter_map(|x| x.trim().parse().ok()).collect();
    match v[..] {
        [lon1, lat1, lon2, lat2] => ((lat1 + lat2) / 2.0, (lon1 + lon2) / 2.0),
        _ => (0.0, 0.0),
    }
}

fn reply(status: StatusCode, content_type: &'static str, body: String) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body)).boxed_unsync());
    *response.status_mut() = status;
    response.headers_mut().insert("content-type", hyper::header::HeaderValue::from_static(content_type));
    response
}
