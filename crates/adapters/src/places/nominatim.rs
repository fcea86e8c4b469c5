//! Nominatim's search API (OpenStreetMap): `GET {base}/search?q=…&format=jsonv2&limit=1&viewbox=…&bounded=1`,
//! answered with a JSON array of places whose `lat` and `lon` are strings.
//!
//! The public instance (`https://nominatim.openstreetmap.org`) allows at most one request per second from
//! an application, asks for a User-Agent that names it, and for answers to be cached: every request here
//! waits its turn behind the previous one by `min_interval`, names tripstream, and the verifier keeps the
//! answers. A self-hosted instance may set the interval to 0.

use std::time::Duration;

use serde::Deserialize;
use tokio::time::Instant;
use tripstream_domain::{GeoPoint, Language};

/// How to reach the service.
#[derive(Debug, Clone)]
pub struct NominatimConfig {
    /// Without a trailing `/search`: `https://nominatim.openstreetmap.org`.
    pub base_url: String,
    /// One request, connection to last byte.
    pub timeout: Duration,
    /// The least time between two requests' starts (1 s for the public instance).
    pub min_interval: Duration,
    /// Sent with every request; the public instance's policy asks for one that names the application.
    pub user_agent: String,
    /// An answer longer than this is refused: one place is about a kilobyte.
    pub max_body_bytes: usize,
}

impl NominatimConfig {
    pub const DEFAULT_USER_AGENT: &str =
        concat!("tripstream/", env!("CARGO_PKG_VERSION"), " (travel-plan place check)");

    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            timeout: Duration::from_secs(3),
            min_interval: Duration::from_secs(1),
            user_agent: Self::DEFAULT_USER_AGENT.to_owned(),
            max_body_bytes: 64 * 1024,
        }
    }
}

/// Why a search gave no answer (as opposed to answering "nothing there").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SearchError {
    #[error("place search timed out")]
    Timeout,
    #[error("place search could not connect: {0}")]
    Connect(String),
    #[error("place search answered HTTP {0}")]
    Status(u16),
    #[error("place search answered more than {0} bytes")]
    TooLarge(usize),
    #[error("place search answered something that is not a place list: {0}")]
    Garbage(String),
}

impl SearchError {
    /// Worth one more try: the service or the way to it failed for a moment. A timeout is not (the time
    /// is spent), nor a 429 (asking again is what it refuses), nor garbage (it would say it again).
    pub fn is_transient(&self) -> bool {
        matches!(self, SearchError::Connect(_) | SearchError::Status(500..=599))
    }
}

/// An area to search in: a centre and how far from it, in degrees of latitude.
#[derive(Debug, Clone, Copy)]
pub struct Near {
    pub center: GeoPoint,
    pub radius_deg: f64,
}

impl Near {
    /// `lon1,lat1,lon2,lat2`, the box around the centre, wider in longitude away from the equator.
    fn viewbox(&self) -> String {
        let dlat = self.radius_deg;
        let dlon = self.radius_deg / self.center.lat.to_radians().cos().abs().max(0.1);
        let c = self.center;
        format!("{:.4},{:.4},{:.4},{:.4}", c.lon - dlon, c.lat + dlat, c.lon + dlon, c.lat - dlat)
    }
}

pub struct Nominatim {
    client: reqwest::Client,
    config: NominatimConfig,
    /// When the next request may start.
    next_start: tokio::sync::Mutex<Instant>,
}

impl Nominatim {
    pub fn new(config: NominatimConfig) -> Self {
        let client = crate::http::client(config.timeout);
        Self { client, next_start: tokio::sync::Mutex::new(Instant::now()), config }
    }

    /// The first place called `name` inside `near`: `Ok(None)` when the service found none.
    #[tracing::instrument(name = "place_search", skip_all)]
    pub async fn search(&self, name: &str, near: Near, lang: Language) -> Result<Option<GeoPoint>, SearchError> {
        self.wait_turn().await;
        let url = format!("{}/search", self.config.base_url.trim_end_matches('/'));
        let language = match lang {
            Language::Ko => "ko,en",
            Language::En => "en",
        };
        let response = self
            .client
            .get(url)
            .header(reqwest::header::USER_AGENT, &self.config.user_agent)
            .query(&[
                ("q", name),
                ("format", "jsonv2"),
                ("limit", "1"),
                ("viewbox", near.viewbox().as_str()),
                ("bounded", "1"),
                ("accept-language", language),
            ])
            .timeout(self.config.timeout)
            .send()
            .await
            .map_err(transport)?;
        let status = response.status();
        if !status.is_success() {
            return Err(SearchError::Status(status.as_u16()));
        }
        let body = read_capped(response, self.config.max_body_bytes).await?;
        parse(&body)
    }

    /// Waits until this request may start, keeping `min_interval` between starts across all callers.
    async fn wait_turn(&self) {
        if self.config.min_interval.is_zero() {
            return;
        }
        let start = {
            let mut next = self.next_start.lock().await;
            let start = (*next).max(Instant::now());
            *next = start + self.config.min_interval;
            start
        };
        tokio::time::sleep_until(start).await;
    }
}

/// The error without the URL reqwest would print (the query holds what a traveller planned).
fn transport(e: reqwest::Error) -> SearchError {
    if e.is_timeout() { SearchError::Timeout } else { SearchError::Connect(e.without_url().to_string()) }
}

async fn read_capped(mut response: reqwest::Response, max: usize) -> Result<Vec<u8>, SearchError> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(transport)? {
        if body.len() + chunk.len() > max {
            return Err(SearchError::TooLarge(max));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// One place of a `jsonv2` answer; the other fields (`place_id`, `category`, `display_name`, …) are
/// not needed.
#[derive(Deserialize)]
struct Place {
    lat: String,
    lon: String,
}

fn parse(body: &[u8]) -> Result<Option<GeoPoint>, SearchError> {
    let garbage = |e: &dyn std::fmt::Display| SearchError::Garbage(e.to_string());
    let places: Vec<Place> = serde_json::from_slice(body).map_err(|e| garbage(&e))?;
    let Some(first) = places.into_iter().next() else { return Ok(None) };
    let lat: f64 = first.lat.trim().parse().map_err(|e| garbage(&e))?;
    let lon: f64 = first.lon.trim().parse().map_err(|e| garbage(&e))?;
    if !((-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon)) {
        return Err(SearchError::Garbage(format!("coordinates out of range: {lat}, {lon}")));
    }
    Ok(Some(GeoPoint { lat, lon }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_as_the_api_writes_them() {
        let found = br#"[{"place_id":1,"licence":"Data","osm_type":"way","osm_id":2,"lat":"35.0","lon":"135.78",
            "category":"amenity","type":"place_of_worship","place_rank":30,"importance":0.5,"addresstype":"amenity",
            "name":"Kiyomizu-dera","display_name":"Kiyomizu-dera, Kyoto","boundingbox":["34.9","35.1","135.7","135.8"]}]"#;
        assert_eq!(parse(found), Ok(Some(GeoPoint { lat: 35.0, lon: 135.78 })));
        assert_eq!(parse(b"[]"), Ok(None));
        for bad in [
            &b"<html>busy</html>"[..],
            b"{\"error\":\"x\"}",
            b"[{\"lat\":\"north\",\"lon\":\"1\"}]",
            b"[{\"lat\":\"95\",\"lon\":\"1\"}]",
        ] {
            assert!(matches!(parse(bad), Err(SearchError::Garbage(_))), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn the_viewbox_is_lon_lat_corners_around_the_centre() {
        let near = Near { center: GeoPoint { lat: 0.0, lon: 10.0 }, radius_deg: 0.5 };
        assert_eq!(near.viewbox(), "9.5000,0.5000,10.5000,-0.5000");
        assert!(SearchError::Status(503).is_transient() && !SearchError::Status(429).is_transient());
        assert!(!SearchError::Timeout.is_transient());
    }
}
