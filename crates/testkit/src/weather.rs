//! OpenWeatherMap's geocoding (`/geo/1.0/direct`) and 5-day forecast (`/data/2.5/forecast`, by
//! coordinates or by name) over plain HTTP/1.1. Every name is found, in Japan, at coordinates of its own
//! (so no two places share a cached forecast); every forecast is 40 three-hour slots from now, clear and
//! mild.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::{Value, json};

use crate::serve::{self, Body, Protocol, Server};

/// Calls answered, by endpoint.
#[derive(Debug, Default)]
pub struct Calls {
    pub geocode: AtomicUsize,
    pub forecast: AtomicUsize,
    pub refused: AtomicUsize,
}

/// A running mock OpenWeatherMap.
pub struct OpenWeatherMap {
    server: Server,
    calls: Arc<Calls>,
}

impl OpenWeatherMap {
    pub async fn start() -> std::io::Result<Self> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    pub async fn start_on(addr: SocketAddr) -> std::io::Result<Self> {
        let calls = Arc::new(Calls::default());
        let counted = calls.clone();
        let handler: serve::Handler = Arc::new(move |request| {
            let calls = counted.clone();
            Box::pin(async move { handle(&calls, request) })
        });
        Ok(Self { server: serve::start(addr, Protocol::Http1, handler).await?, calls })
    }

    /// What `OPENWEATHER_BASE_URL` is set to.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.server.addr)
    }

    pub fn calls(&self) -> &Calls {
        &self.calls
    }
}

fn handle(calls: &Calls, request: Request<Incoming>) -> Response<Body> {
    let query = query(request.uri().query().unwrap_or(""));
    let param = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    if param("appid").is_none_or(str::is_empty) {
        calls.refused.fetch_add(1, Ordering::Relaxed);
        return reply(StatusCode::UNAUTHORIZED, json!({"cod": 401, "message": "Invalid API key."}));
    }
    match (request.uri().path(), param("q"), param("lat").zip(param("lon"))) {
        ("/geo/1.0/direct", Some(name), _) => {
            calls.geocode.fetch_add(1, Ordering::Relaxed);
            let (lat, lon) = place(name);
            reply(
                StatusCode::OK,
                json!([{"name": name, "local_names": {"en": name}, "lat": lat, "lon": lon, "country": "JP"}]),
            )
        }
        ("/data/2.5/forecast", _, Some((lat, lon))) => {
            calls.forecast.fetch_add(1, Ordering::Relaxed);
            reply(StatusCode::OK, forecast(lat.parse().unwrap_or_default(), lon.parse().unwrap_or_default()))
        }
        // By name, as a client without geocoding of its own asks.
        ("/data/2.5/forecast", Some(name), None) => {
            calls.forecast.fetch_add(1, Ordering::Relaxed);
            let (lat, lon) = place(name);
            reply(StatusCode::OK, forecast(lat, lon))
        }
        (path, ..) => {
            calls.refused.fetch_add(1, Ordering::Relaxed);
            reply(StatusCode::NOT_FOUND, json!({"cod": "404", "message": format!("no such call: {path}")}))
        }
    }
}

/// Coordinates of a name's own, 0.01° apart at least, within Japan.
fn place(name: &str) -> (f64, f64) {
    // FNV-1a: stable across runs and processes.
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    (33.0 + (hash % 800) as f64 / 100.0, 131.0 + ((hash / 800) % 1000) as f64 / 100.0)
}

/// 40 three-hour slots from the last whole three hours.
fn forecast(lat: f64, lon: f64) -> Value {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let first = now - now % (3 * 3600);
    let list: Vec<Value> = (0..40)
        .map(|i| {
            let temp = 12.0 + f64::from(i % 8) * 0.5;
            json!({
                "dt": first + i64::from(i) * 3 * 3600,
                "main": {"temp": temp, "feels_like": temp - 1.0, "temp_min": temp - 1.5, "temp_max": temp + 1.5,
                         "pressure": 1021, "humidity": 61},
                "weather": [{"id": 800, "main": "Clear", "description": "clear sky", "icon": "01d"}],
                "clouds": {"all": 3}, "wind": {"speed": 2.4, "deg": 297}, "visibility": 10000, "pop": 0.1,
            })
        })
        .collect();
    json!({"cod": "200", "message": 0, "cnt": list.len(), "list": list,
           "city": {"name": "Benchtown", "coord": {"lat": lat, "lon": lon}, "country": "JP", "timezone": 32400}})
}

fn reply(status: StatusCode, body: Value) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())).boxed_unsync());
    *response.status_mut() = status;
    response.headers_mut().insert("content-type", hyper::header::HeaderValue::from_static("application/json"));
    response
}

/// `a=1&b=x+y%20z` as pairs, percent-decoded.
pub(crate) fn query(raw: &str) -> Vec<(String, String)> {
    raw.split('&').filter_map(|pair| pair.split_once('=')).map(|(k, v)| (decode(k), decode(v))).collect()
}

fn decode(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex: Vec<u8> = bytes.by_ref().take(2).collect();
                match std::str::from_utf8(&hex).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(byte) => out.push(byte),
                    None => {
                        out.push(b'%');
                        out.extend_from_slice(&hex);
                    }
                }
            }
            b => out.push(b),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
