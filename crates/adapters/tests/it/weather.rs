//! The real weather adapters against mock services that answer in the services' exact formats.
//!
//! "Now" is fixed at 2025-11-10 10:30 in Seoul (01:30 UTC) for every test.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use jiff::civil::{Date, date};
use jiff::tz::Offset;
use serde_json::{Value, json};
use tripstream_adapters::Climatology;
use tripstream_adapters::http::{self, Secret};
use tripstream_adapters::weather::{
    Clock, Condition, ForecastSource, LayeredWeather, OpenMeteo, OpenWeatherMap, SourceError,
};
use tripstream_domain::plan::{DayWeather, WeatherSource};
use tripstream_domain::request::{RawPlanRequest, RequestLimits};
use tripstream_domain::{BudgetCeilings, ClimateNormal, Destination, Language, Localized, PlanRequest};
use tripstream_engine::{Weather, WeatherReport};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "test-key";
const NOW: &str = "2025-11-10T01:30:00Z";
const LAT: &str = "37.5665";
const LON: &str = "126.978";

// ---------------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------------

/// Seoul with made-up but plausible monthly normals, built here because the bundled file is not ready.
fn seoul() -> Destination {
    let highs = [1.5, 4.1, 10.2, 17.6, 23.0, 27.2, 28.8, 29.8, 25.9, 19.8, 11.6, 4.0];
    let lows = [-5.9, -3.8, 1.3, 7.0, 12.6, 17.9, 21.8, 22.4, 17.5, 10.4, 3.3, -3.3];
    let rain = [15, 17, 23, 25, 27, 33, 53, 47, 30, 20, 27, 20];
    let climate = (0..12)
        .map(|m| ClimateNormal {
            high_c: highs[m],
            low_c: lows[m],
            rain_chance: rain[m],
            summary: Localized {
                en: format!("Seoul normals, month {}", m + 1), ko: format!("서울 {}월 평년", m + 1)
            },
        })
        .collect();
    Destination {
        id: "seoul".into(),
        name: Localized { en: "Seoul".into(), ko: "서울".into() },
        country: "KR".into(),
        lat: 37.5665,
        lon: 126.978,
        timezone: "Asia/Seoul".into(),
        currency: "KRW".into(),
        budget: BudgetCeilings { low: 50_000, medium: 100_000, high: 250_000 },
        climate: Some(climate),
        profile: None,
    }
}

fn request(start: &str, end: &str, lang: &str) -> PlanRequest {
    let raw = RawPlanRequest {
        location: Some("Seoul".into()),
        start_date: Some(start.into()),
        end_date: Some(end.into()),
        budget: Some("medium".into()),
        language: Some(lang.into()),
        ..Default::default()
    };
    PlanRequest::parse(raw, None, RequestLimits::default()).unwrap()
}

fn fixed_clock() -> Clock {
    let now: Timestamp = NOW.parse().unwrap();
    Arc::new(move || now)
}

fn owm(server: &MockServer) -> OpenWeatherMap {
    OpenWeatherMap::new(Secret::new(KEY), http::client(Duration::from_secs(2)))
        .with_base_url(server.uri())
        .with_request_timeout(Duration::from_secs(2))
        .with_backoff(Duration::from_millis(10), Duration::from_millis(20))
}

fn open_meteo(server: &MockServer) -> OpenMeteo {
    OpenMeteo::new(http::client(Duration::from_secs(2)))
        .with_base_url(server.uri())
        .with_request_timeout(Duration::from_secs(2))
        .with_backoff(Duration::from_millis(10), Duration::from_millis(20))
}

fn layered(sources: Vec<Arc<dyn ForecastSource>>) -> LayeredWeather {
    LayeredWeather::new(sources).with_clock(fixed_clock())
}

fn sources_of(report: &WeatherReport) -> Vec<WeatherSource> {
    report.days.iter().map(|d| d.source).collect()
}

fn summaries_of(report: &WeatherReport) -> Vec<&str> {
    report.days.iter().map(|d| d.summary.as_str()).collect()
}

fn day(days: &[(Date, DayWeather)], d: Date) -> &DayWeather {
    &days.iter().find(|(date, _)| *date == d).unwrap_or_else(|| panic!("no forecast for {d}")).1
}

// ---------------------------------------------------------------------------------------------------
// OpenWeatherMap bodies
// ---------------------------------------------------------------------------------------------------

/// The 40 three-hour slots of one forecast, from 2025-11-10 03:00 UTC (12:00 in Seoul):
/// (temp_min, temp_max, weather group, pop). Local days are marked; 00:00 in Seoul is 15:00 UTC the day
/// before, so the first slot of each local day sits on the previous UTC date.
#[rustfmt::skip]
const SLOTS: [(f64, f64, &str, f64); 40] = [
    // 11-10, 12:00–21:00: Clear ×2, Clouds ×2 (a tie, broken toward Clouds); pop 12.
    (11.0, 12.4, "Clear", 0.0), (12.1, 13.6, "Clear", 0.0), (8.9, 10.2, "Clouds", 0.1), (7.4, 8.0, "Clouds", 0.12),
    // 11-11: Clouds ×3, Rain ×3 (a tie, broken toward Rain), Clear ×2; the coldest slot is 15:00 UTC 11-10.
    (-3.0, 6.5, "Clouds", 0.2), (4.2, 5.1, "Clouds", 0.3), (4.0, 6.0, "Rain", 0.55), (7.5, 9.9, "Rain", 0.87),
    (8.1, 10.3, "Rain", 0.6), (6.0, 7.7, "Clouds", 0.4), (5.0, 6.2, "Clear", 0.1), (4.4, 5.0, "Clear", 0.0),
    // 11-12: Clouds ×5 beats a single Rain; pop 35.
    (3.9, 4.6, "Clouds", 0.0), (3.1, 4.0, "Clouds", 0.05), (5.5, 8.2, "Clouds", 0.1), (9.0, 12.3, "Rain", 0.35),
    (10.2, 11.8, "Clouds", 0.2), (7.7, 9.0, "Clouds", 0.1), (5.1, 6.6, "Clear", 0.0), (4.0, 5.2, "Clear", 0.0),
    // 11-13: Snow ×4 ties Clear ×4 and wins; pop 64.
    (-1.5, 0.2, "Snow", 0.64), (-1.2, 0.5, "Snow", 0.6), (0.3, 2.1, "Snow", 0.5), (1.8, 3.9, "Snow", 0.3),
    (2.2, 4.4, "Clear", 0.1), (0.9, 2.0, "Clear", 0.0), (-0.4, 0.8, "Clear", 0.0), (-1.1, 0.1, "Clear", 0.0),
    // 11-14: Clear all day.
    (-2.0, -1.2, "Clear", 0.0), (-2.4, -1.9, "Clear", 0.0), (0.5, 3.3, "Clear", 0.0), (4.1, 7.6, "Clear", 0.0),
    (5.2, 8.1, "Clear", 0.0), (3.0, 4.4, "Clear", 0.0), (1.2, 2.0, "Clear", 0.0), (0.4, 1.1, "Clear", 0.0),
    // 11-15, 00:00–09:00 only: beyond the five-day horizon.
    (-0.5, 0.3, "Thunderstorm", 0.9), (-0.8, 0.0, "Thunderstorm", 0.9), (-1.0, -0.2, "Rain", 0.8), (0.0, 2.5, "Rain", 0.7),
];

/// What OpenWeatherMap says about a group: (condition id, description in the language, icon).
fn owm_weather(group: &str, lang: Language) -> (u16, &'static str, &'static str) {
    let (id, en, ko, icon) = match group {
        "Clear" => (800, "clear sky", "맑음", "01"),
        "Clouds" => (804, "overcast clouds", "온흐림", "04"),
        "Rain" => (500, "light rain", "실 비", "10"),
        "Snow" => (600, "light snow", "가벼운 눈", "13"),
        "Thunderstorm" => (211, "thunderstorm", "뇌우", "11"),
        other => panic!("no fixture for {other}"),
    };
    (id, if lang == Language::Ko { ko } else { en }, icon)
}

/// A complete `/data/2.5/forecast` answer for Seoul built from [`SLOTS`].
fn owm_forecast_body(lang: Language) -> Value {
    let first: Timestamp = "2025-11-10T03:00:00Z".parse().unwrap();
    let list: Vec<Value> = SLOTS
        .iter()
        .enumerate()
        .map(|(i, &(temp_min, temp_max, group, pop))| {
            let dt = first.as_second() + i as i64 * 3 * 3600;
            let utc = Offset::UTC.to_datetime(Timestamp::from_second(dt).unwrap());
            let local_hour = (utc.hour() + 9) % 24;
            let pod = if (6..18).contains(&local_hour) { "d" } else { "n" };
            let (id, description, icon) = owm_weather(group, lang);
            let temp = ((temp_min + temp_max) / 2.0 * 100.0_f64).round() / 100.0;
            let mut slot = json!({
                "dt": dt,
                "main": {
                    "temp": temp, "feels_like": temp - 1.8, "temp_min": temp_min, "temp_max": temp_max,
                    "pressure": 1021, "sea_level": 1021, "grnd_level": 1014, "humidity": 61, "temp_kf": 0.37
                },
                "weather": [{"id": id, "main": group, "description": description, "icon": format!("{icon}{pod}")}],
                "clouds": {"all": if group == "Clear" { 3 } else { 92 }},
                "wind": {"speed": 2.36, "deg": 297, "gust": 4.11},
                "visibility": 10000,
                "pop": pop,
                "sys": {"pod": pod},
                "dt_txt": utc.to_string().replace('T', " "),
            });
            match group {
                "Rain" | "Thunderstorm" => slot["rain"] = json!({"3h": 0.74}),
                "Snow" => slot["snow"] = json!({"3h": 0.31}),
                _ => {}
            }
            slot
        })
        .collect();
    json!({
        "cod": "200",
        "message": 0,
        "cnt": list.len(),
        "list": list,
        "city": {
            "id": 1835848,
            "name": if lang == Language::Ko { "서울" } else { "Seoul" },
            "coord": {"lat": 37.5665, "lon": 126.978},
            "country": "KR",
            "population": 10349312,
            "timezone": 32400,
            "sunrise": 1762725493,
            "sunset": 1762762594
        }
    })
}

/// A mock of the OpenWeatherMap forecast that only answers a request with every expected parameter.
fn owm_forecast(lang: &str) -> wiremock::MockBuilder {
    Mock::given(method("GET"))
        .and(path("/data/2.5/forecast"))
        .and(query_param("lat", LAT))
        .and(query_param("lon", LON))
        .and(query_param("units", "metric"))
        .and(query_param("lang", lang))
        .and(query_param("appid", KEY))
}

fn owm_ok(lang: Language) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(owm_forecast_body(lang))
}

// ---------------------------------------------------------------------------------------------------
// Open-Meteo bodies
// ---------------------------------------------------------------------------------------------------

/// One Open-Meteo day: (WMO code, max, min, precipitation probability); `None` is JSON null.
type OmDay = (Option<u16>, Option<f64>, Option<f64>, Option<u8>);

/// Sixteen days from 2025-11-10.
#[rustfmt::skip]
const OM_DAYS: [OmDay; 16] = [
    (Some(0), Some(14.2), Some(5.1), Some(0)),     // 11-10 clear
    (Some(2), Some(12.8), Some(4.4), Some(10)),    // 11-11 partly cloudy
    (Some(61), Some(9.7), Some(6.0), Some(80)),    // 11-12 rain
    (Some(3), Some(8.1), Some(1.9), None),         // 11-13 no probability: skipped
    (Some(45), Some(10.4), Some(2.3), Some(5)),    // 11-14 fog
    (Some(53), Some(11.0), Some(3.5), Some(45)),   // 11-15 drizzle
    (Some(73), Some(1.2), Some(-4.6), Some(70)),   // 11-16 snow
    (Some(81), Some(9.3), Some(2.0), Some(65)),    // 11-17 rain showers
    (Some(86), Some(0.4), Some(-6.1), Some(75)),   // 11-18 snow showers
    (Some(95), Some(15.5), Some(8.2), Some(90)),   // 11-19 thunderstorm
    (None, Some(12.0), Some(4.0), Some(20)),       // 11-20 no code: skipped
    (Some(1), Some(13.3), Some(4.9), Some(15)),    // 11-21 partly cloudy
    (Some(3), Some(11.9), Some(3.3), Some(25)),    // 11-22 cloudy
    (Some(0), Some(12.6), Some(2.8), Some(5)),     // 11-23 clear
    (Some(3), None, Some(3.1), Some(30)),          // 11-24 no maximum: skipped
    (Some(63), Some(10.1), Some(5.2), Some(85)),   // 11-25 rain
];

/// A complete `/v1/forecast` answer for the daily variables the adapter asks for.
fn open_meteo_body() -> Value {
    let start = date(2025, 11, 10);
    let time: Vec<String> =
        (0..16).map(|i| start.checked_add(jiff::Span::new().days(i)).unwrap().to_string()).collect();
    json!({
        "latitude": 37.55,
        "longitude": 127.0,
        "generationtime_ms": 0.0787973403930664,
        "utc_offset_seconds": 32400,
        "timezone": "Asia/Seoul",
        "timezone_abbreviation": "GMT+9",
        "elevation": 38.0,
        "daily_units": {
            "time": "iso8601",
            "weather_code": "wmo code",
            "temperature_2m_max": "°C",
            "temperature_2m_min": "°C",
            "precipitation_probability_max": "%"
        },
        "daily": {
            "time": time,
            "weather_code": OM_DAYS.iter().map(|d| d.0).collect::<Vec<_>>(),
            "temperature_2m_max": OM_DAYS.iter().map(|d| d.1).collect::<Vec<_>>(),
            "temperature_2m_min": OM_DAYS.iter().map(|d| d.2).collect::<Vec<_>>(),
            "precipitation_probability_max": OM_DAYS.iter().map(|d| d.3).collect::<Vec<_>>(),
        }
    })
}

fn open_meteo_forecast() -> wiremock::MockBuilder {
    Mock::given(method("GET"))
        .and(path("/v1/forecast"))
        .and(query_param("latitude", LAT))
        .and(query_param("longitude", LON))
        .and(query_param("daily", "weather_code,temperature_2m_max,temperature_2m_min,precipitation_probability_max"))
        .and(query_param("timezone", "Asia/Seoul"))
        .and(query_param("forecast_days", "16"))
}

fn open_meteo_ok() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(open_meteo_body())
}

fn owm_401() -> ResponseTemplate {
    ResponseTemplate::new(401).set_body_json(json!({
        "cod": 401,
        "message": "Invalid API key. Please see https://openweathermap.org/faq#error401 for more info."
    }))
}

fn open_meteo_400() -> ResponseTemplate {
    ResponseTemplate::new(400)
        .set_body_json(json!({"error": true, "reason": "Latitude must be in range of -90 to 90°. Given: 137.5665."}))
}

// ---------------------------------------------------------------------------------------------------
// Sources
// ---------------------------------------------------------------------------------------------------

#[tokio::test]
async fn owm_folds_three_hour_slots_into_local_days() {
    let server = MockServer::start().await;
    owm_forecast("en").respond_with(owm_ok(Language::En)).expect(1).mount(&server).await;

    let days = owm(&server).daily(37.5665, 126.978, "Asia/Seoul", Language::En).await.unwrap();

    let dates: Vec<Date> = days.iter().map(|(d, _)| *d).collect();
    assert_eq!(dates, (10..=15).map(|d| date(2025, 11, d)).collect::<Vec<_>>());
    let expect = |d: i8, min: f64, max: f64, summary: &str, pop: u8| {
        let w = day(&days, date(2025, 11, d));
        assert_eq!(
            (w.temp_min_c, w.temp_max_c, w.summary.as_str(), w.precipitation_chance, w.source),
            (min, max, summary, pop, WeatherSource::Forecast),
            "2025-11-{d}"
        );
    };
    // Only the four afternoon and evening slots belong to the 10th: the 15:00 UTC slot is the 11th.
    expect(10, 7.4, 13.6, "Cloudy", 12);
    expect(11, -3.0, 10.3, "Rain", 87);
    expect(12, 3.1, 12.3, "Cloudy", 35);
    expect(13, -1.5, 4.4, "Snow", 64);
    expect(14, -2.4, 8.1, "Clear", 0);
    expect(15, -1.0, 2.5, "Thunderstorm", 90);
}

#[tokio::test]
async fn owm_summaries_follow_the_request_language() {
    let server = MockServer::start().await;
    owm_forecast("kr").respond_with(owm_ok(Language::Ko)).expect(1).mount(&server).await;
    owm_forecast("en").respond_with(owm_ok(Language::En)).expect(1).mount(&server).await;
    let weather = layered(vec![Arc::new(owm(&server))]);

    let ko = weather.forecast(&seoul(), &request("2025-11-10", "2025-11-13", "ko")).await.unwrap();
    let en = weather.forecast(&seoul(), &request("2025-11-10", "2025-11-13", "en")).await.unwrap();

    assert_eq!(summaries_of(&ko), ["흐림", "비", "흐림", "눈"]);
    assert_eq!(summaries_of(&en), ["Cloudy", "Rain", "Cloudy", "Snow"]);
    for report in [&ko, &en] {
        assert_eq!(report.source, "openweathermap");
        assert_eq!(sources_of(report), [WeatherSource::Forecast; 4]);
    }
}

#[tokio::test]
async fn open_meteo_reads_daily_arrays_and_skips_days_with_nulls() {
    let server = MockServer::start().await;
    open_meteo_forecast().respond_with(open_meteo_ok()).expect(1).mount(&server).await;

    let days = open_meteo(&server).daily(37.5665, 126.978, "Asia/Seoul", Language::Ko).await.unwrap();

    let skipped = [13, 20, 24];
    let dates: Vec<Date> = days.iter().map(|(d, _)| *d).collect();
    let expected: Vec<Date> = (10..=25).filter(|d| !skipped.contains(d)).map(|d| date(2025, 11, d)).collect();
    assert_eq!(dates, expected);
    assert_eq!(
        day(&days, date(2025, 11, 12)),
        &DayWeather {
            summary: "비".into(),
            temp_min_c: 6.0,
            temp_max_c: 9.7,
            precipitation_chance: 80,
            source: WeatherSource::Forecast
        }
    );
    let summaries: Vec<&str> = days.iter().map(|(_, w)| w.summary.as_str()).collect();
    assert_eq!(
        summaries,
        [
            "맑음",
            "구름 조금",
            "비",
            "안개",
            "이슬비",
            "눈",
            "소나기",
            "소낙눈",
            "뇌우",
            "구름 조금",
            "흐림",
            "맑음",
            "비"
        ]
    );
    assert_eq!(day(&days, date(2025, 11, 16)).temp_min_c, -4.6);
}

#[test]
fn conditions_share_one_vocabulary_and_break_ties_toward_severity() {
    assert_eq!(Condition::from_owm_main("Clouds"), Condition::from_wmo(3));
    assert_eq!(Condition::from_owm_main("Rain"), Condition::from_wmo(63));
    assert_eq!(Condition::from_owm_main("Snow"), Condition::from_wmo(75));
    assert_eq!(Condition::from_owm_main("Drizzle"), Condition::from_wmo(55));
    assert_eq!(Condition::from_owm_main("Thunderstorm"), Condition::from_wmo(99));
    for group in ["Mist", "Fog", "Haze"] {
        assert_eq!(Condition::from_owm_main(group), Condition::from_wmo(48), "{group}");
    }
    assert_eq!(Condition::from_owm_main("Volcano"), None);
    assert_eq!(Condition::from_wmo(4), None);
    for c in Condition::ALL {
        assert!(!c.summary(Language::Ko).is_empty() && !c.summary(Language::En).is_empty());
    }
    use Condition::*;
    assert_eq!(Condition::dominant([Clear, Rain, Clear]), Some(Clear));
    assert_eq!(Condition::dominant([Rain, Clear, Clear, Rain]), Some(Rain));
    assert_eq!(Condition::dominant([Snow, Rain]), Some(Snow));
    assert_eq!(Condition::dominant([]), None);
}

#[tokio::test]
async fn upstream_error_messages_are_kept_and_4xx_is_not_retried() {
    let server = MockServer::start().await;
    owm_forecast("kr").respond_with(owm_401()).expect(1).mount(&server).await;
    Mock::given(method("GET")).and(path("/v1/forecast")).respond_with(open_meteo_400()).expect(1).mount(&server).await;

    let owm_error = owm(&server).daily(37.5665, 126.978, "Asia/Seoul", Language::Ko).await.unwrap_err();
    let om_error = open_meteo(&server).daily(37.5665, 126.978, "Asia/Seoul", Language::Ko).await.unwrap_err();

    assert!(
        matches!(&owm_error, SourceError::Status { status: 401, message } if message.starts_with("Invalid API key.")),
        "{owm_error:?}"
    );
    assert!(!owm_error.is_transient());
    assert!(
        matches!(&om_error, SourceError::Status { status: 400, message } if message.starts_with("Latitude must be")),
        "{om_error:?}"
    );
}

#[tokio::test]
async fn an_endless_answer_is_a_bad_body_read_no_further_than_a_mebibyte() {
    let server = MockServer::start().await;
    let huge = format!(r#"{{"list": [], "padding": "{}"}}"#, "x".repeat(2 << 20));
    owm_forecast("en").respond_with(ResponseTemplate::new(200).set_body_string(huge)).expect(1).mount(&server).await;

    let error = owm(&server).daily(37.5665, 126.978, "Asia/Seoul", Language::En).await.unwrap_err();

    assert!(matches!(&error, SourceError::BadBody(m) if m.contains("passed 1048576 bytes")), "{error:?}");
    assert!(!error.is_transient(), "not asked again");
}

#[tokio::test]
async fn a_broken_connection_is_a_transport_error_without_the_key() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let source = OpenWeatherMap::new(Secret::new(KEY), http::client(Duration::from_secs(1)))
        .with_base_url(format!("http://127.0.0.1:{port}"))
        .with_backoff(Duration::from_millis(5), Duration::from_millis(10));

    let error = source.daily(37.5665, 126.978, "Asia/Seoul", Language::En).await.unwrap_err();

    assert!(matches!(&error, SourceError::Transport(_)), "{error:?}");
    assert!(!error.to_string().contains(KEY), "{error}");
}

#[tokio::test]
async fn geocode_finds_a_place_and_its_korean_name() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/geo/1.0/direct"))
        .and(query_param("q", "Seoul"))
        .and(query_param("limit", "1"))
        .and(query_param("appid", KEY))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([{
            "name": "Seoul",
            "local_names": {"ko": "서울", "en": "Seoul", "ja": "ソウル", "zh": "首尔", "fr": "Séoul"},
            "lat": 37.5666791,
            "lon": 126.9782914,
            "country": "KR"
        }])))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/geo/1.0/direct"))
        .and(query_param("q", "Atlantis"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .expect(1)
        .mount(&server)
        .await;
    let source = owm(&server);

    let place = source.geocode("Seoul").await.unwrap().unwrap();
    assert_eq!((place.name.as_str(), place.name_ko.as_deref(), place.country.as_str()), ("Seoul", Some("서울"), "KR"));
    assert_eq!((place.lat, place.lon), (37.5666791, 126.9782914));
    assert_eq!(source.geocode("Atlantis").await.unwrap(), None);
}

// ---------------------------------------------------------------------------------------------------
// Layering
// ---------------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_rejected_key_falls_back_to_open_meteo() {
    let server = MockServer::start().await;
    owm_forecast("en").respond_with(owm_401()).expect(1).mount(&server).await;
    open_meteo_forecast().respond_with(open_meteo_ok()).expect(1).mount(&server).await;
    let weather = layered(vec![Arc::new(owm(&server)), Arc::new(open_meteo(&server))]);

    let report = weather.forecast(&seoul(), &request("2025-11-10", "2025-11-12", "en")).await.unwrap();

    assert_eq!(report.source, "open-meteo");
    assert_eq!(summaries_of(&report), ["Clear", "Partly cloudy", "Rain"]);
    assert_eq!(sources_of(&report), [WeatherSource::Forecast; 3]);
}

#[tokio::test]
async fn with_every_source_down_the_normals_serve() {
    let server = MockServer::start().await;
    // A 500 is transient: tried twice. A 400 is not: tried once.
    owm_forecast("kr")
        .respond_with(ResponseTemplate::new(500).set_body_string("Internal Server Error"))
        .expect(2)
        .mount(&server)
        .await;
    open_meteo_forecast().respond_with(open_meteo_400()).expect(1).mount(&server).await;
    let weather = layered(vec![Arc::new(owm(&server)), Arc::new(open_meteo(&server))]);
    let (destination, req) = (seoul(), request("2025-11-10", "2025-11-12", "ko"));

    let report = weather.forecast(&destination, &req).await.unwrap();

    assert_eq!(report.source, "climatology");
    let normals: Vec<DayWeather> =
        req.dates.iter().map(|d| Climatology::day(&destination, d, Language::Ko).unwrap()).collect();
    assert_eq!(report.days, normals);
    assert_eq!(summaries_of(&report), ["서울 11월 평년"; 3]);
}

#[tokio::test]
async fn a_trip_past_the_horizon_mixes_forecast_and_climatology() {
    let server = MockServer::start().await;
    owm_forecast("en").respond_with(owm_ok(Language::En)).expect(1).mount(&server).await;
    let weather = layered(vec![Arc::new(owm(&server))]);
    let destination = seoul();

    let report = weather.forecast(&destination, &request("2025-11-13", "2025-11-16", "en")).await.unwrap();

    assert_eq!(report.source, "openweathermap+climatology");
    use WeatherSource::{Climatology as C, Forecast as F};
    assert_eq!(sources_of(&report), [F, F, C, C]);
    assert_eq!(summaries_of(&report), ["Snow", "Clear", "Seoul normals, month 11", "Seoul normals, month 11"]);
    // OpenWeatherMap has a morning of the 15th, but a partial day is not a day's forecast.
    assert_eq!(report.days[2], Climatology::day(&destination, date(2025, 11, 15), Language::En).unwrap());
}

#[tokio::test]
async fn a_trip_beyond_every_horizon_calls_no_service() {
    let server = MockServer::start().await;
    owm_forecast("en").respond_with(owm_ok(Language::En)).expect(0).mount(&server).await;
    open_meteo_forecast().respond_with(open_meteo_ok()).expect(0).mount(&server).await;
    let weather = layered(vec![Arc::new(owm(&server)), Arc::new(open_meteo(&server))]);

    let report = weather.forecast(&seoul(), &request("2025-12-20", "2025-12-22", "en")).await.unwrap();

    assert_eq!(report.source, "climatology");
    assert_eq!(summaries_of(&report), ["Seoul normals, month 12"; 3]);
}

#[tokio::test]
async fn the_second_source_covers_dates_the_first_cannot_reach() {
    let server = MockServer::start().await;
    owm_forecast("en").respond_with(owm_ok(Language::En)).expect(0).mount(&server).await;
    open_meteo_forecast().respond_with(open_meteo_ok()).expect(1).mount(&server).await;
    let weather = layered(vec![Arc::new(owm(&server)), Arc::new(open_meteo(&server))]);

    // Nine days out: beyond OpenWeatherMap's five, within Open-Meteo's sixteen; the 20th has a null.
    let report = weather.forecast(&seoul(), &request("2025-11-19", "2025-11-21", "en")).await.unwrap();

    assert_eq!(report.source, "open-meteo+climatology");
    use WeatherSource::{Climatology as C, Forecast as F};
    assert_eq!(sources_of(&report), [F, C, F]);
    assert_eq!(summaries_of(&report), ["Thunderstorm", "Seoul normals, month 11", "Partly cloudy"]);
}

#[tokio::test]
async fn a_date_with_neither_forecast_nor_normals_fails_naming_it() {
    let server = MockServer::start().await;
    owm_forecast("en").respond_with(owm_ok(Language::En)).expect(1).mount(&server).await;
    let weather = layered(vec![Arc::new(owm(&server))]);
    let unbundled = Destination { climate: None, ..seoul() };

    let covered = weather.forecast(&unbundled, &request("2025-11-10", "2025-11-12", "en")).await.unwrap();
    let error = weather.forecast(&unbundled, &request("2025-11-13", "2025-11-16", "en")).await.unwrap_err();

    assert_eq!(covered.source, "openweathermap");
    assert!(error.0.contains("2025-11-15"), "{error}");
}

// ---------------------------------------------------------------------------------------------------
// Cache, retry, timeout
// ---------------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_forecast_is_reused_within_the_ttl() {
    let server = MockServer::start().await;
    owm_forecast("kr").respond_with(owm_ok(Language::Ko)).expect(1).mount(&server).await;
    owm_forecast("en").respond_with(owm_ok(Language::En)).expect(1).mount(&server).await;
    let weather = layered(vec![Arc::new(owm(&server))]);
    let nearby = Destination { lat: 37.5701, lon: 126.9822, ..seoul() };

    let first = weather.forecast(&seoul(), &request("2025-11-10", "2025-11-12", "ko")).await.unwrap();
    let again = weather.forecast(&seoul(), &request("2025-11-11", "2025-11-14", "ko")).await.unwrap();
    // Within the same hundredth of a degree: the same entry, though the mock would not match it.
    let close = weather.forecast(&nearby, &request("2025-11-10", "2025-11-10", "ko")).await.unwrap();
    // Another language is another entry.
    let english = weather.forecast(&seoul(), &request("2025-11-10", "2025-11-12", "en")).await.unwrap();

    assert_eq!(again.days[..2], first.days[1..]);
    assert_eq!(close.days[0], first.days[0]);
    assert_eq!(english.days[1].summary, "Rain");
    for report in [first, again, close, english] {
        assert_eq!(report.source, "openweathermap");
    }
}

#[tokio::test]
async fn a_forecast_is_fetched_again_after_the_ttl() {
    let server = MockServer::start().await;
    owm_forecast("en").respond_with(owm_ok(Language::En)).expect(2).mount(&server).await;
    // moka keeps its own clock, so expiry takes a real (short) wait.
    let weather = layered(vec![Arc::new(owm(&server))]).with_ttl(Duration::from_millis(50));
    let req = request("2025-11-10", "2025-11-11", "en");

    weather.forecast(&seoul(), &req).await.unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    let report = weather.forecast(&seoul(), &req).await.unwrap();

    assert_eq!(report.source, "openweathermap");
}

#[tokio::test]
async fn a_failed_answer_is_not_cached() {
    let server = MockServer::start().await;
    owm_forecast("en").respond_with(owm_401()).up_to_n_times(1).expect(1).mount(&server).await;
    owm_forecast("en").respond_with(owm_ok(Language::En)).expect(1).mount(&server).await;
    let weather = layered(vec![Arc::new(owm(&server))]);
    let req = request("2025-11-10", "2025-11-11", "en");

    let failed = weather.forecast(&seoul(), &req).await.unwrap();
    let recovered = weather.forecast(&seoul(), &req).await.unwrap();

    assert_eq!(failed.source, "climatology");
    assert_eq!(recovered.source, "openweathermap");
}

#[tokio::test]
async fn a_503_is_retried_once_and_then_succeeds() {
    let server = MockServer::start().await;
    owm_forecast("en")
        .respond_with(ResponseTemplate::new(503).set_body_string("Service Unavailable"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    owm_forecast("en").respond_with(owm_ok(Language::En)).expect(1).mount(&server).await;
    let weather = layered(vec![Arc::new(owm(&server))]);

    let report = weather.forecast(&seoul(), &request("2025-11-10", "2025-11-11", "en")).await.unwrap();

    assert_eq!(report.source, "openweathermap");
    assert_eq!(summaries_of(&report), ["Cloudy", "Rain"]);
}

#[tokio::test]
async fn a_slow_source_times_out_and_the_next_one_answers() {
    let server = MockServer::start().await;
    owm_forecast("en").respond_with(owm_ok(Language::En).set_delay(Duration::from_secs(5))).mount(&server).await;
    open_meteo_forecast().respond_with(open_meteo_ok()).expect(1).mount(&server).await;
    let timeout = Duration::from_millis(200);
    let slow = owm(&server).with_request_timeout(timeout);
    let weather = layered(vec![Arc::new(slow), Arc::new(open_meteo(&server))]);

    let started = Instant::now();
    let report = weather.forecast(&seoul(), &request("2025-11-10", "2025-11-11", "en")).await.unwrap();
    let elapsed = started.elapsed();

    assert_eq!(report.source, "open-meteo");
    // Two attempts of at most `timeout` each, a ≤ 20 ms backoff, and the fast second source.
    assert!(elapsed < 2 * timeout + Duration::from_millis(400), "took {elapsed:?}");
}

// ---------------------------------------------------------------------------------------------------
// Places outside the bundled data: Open-Meteo geocoding and archive normals
// ---------------------------------------------------------------------------------------------------

fn lisbon() -> Destination {
    Destination {
        id: "lisbon".into(),
        name: Localized { en: "Lisbon".into(), ko: "리스본".into() },
        country: "PT".into(),
        lat: 38.7167,
        lon: -9.1333,
        timezone: "Europe/Lisbon".into(),
        currency: "EUR".into(),
        budget: BudgetCeilings { low: 50, medium: 130, high: 330 },
        climate: None,
        profile: None,
    }
}

/// An archive answer for 2020-11-10 … 2024-11-12, each November 10–12 with known figures.
fn archive_body() -> Value {
    let from: Date = "2020-11-10".parse().unwrap();
    let to: Date = "2024-11-12".parse().unwrap();
    let (mut time, mut code, mut high, mut low, mut rain) = (vec![], vec![], vec![], vec![], vec![]);
    let mut d = from;
    while d <= to {
        time.push(d.to_string());
        let year = i32::from(d.year() - 2020); // 0..=4
        let nov10 = d.month() == 11 && d.day() == 10;
        code.push(json!(if nov10 && year < 3 { 61 } else { 3 }));
        high.push(json!(18.0 + f64::from(year)));
        low.push(if nov10 && year == 4 { Value::Null } else { json!(10.0 + f64::from(year)) });
        rain.push(json!(if nov10 && year < 3 { 4.2 } else { 0.0 }));
        d = d.tomorrow().unwrap();
    }
    json!({
        "latitude": 38.72, "longitude": -9.14, "generationtime_ms": 12.3, "utc_offset_seconds": 0,
        "timezone": "Europe/Lisbon", "timezone_abbreviation": "WET", "elevation": 45.0,
        "daily_units": {"time": "iso8601", "weather_code": "wmo code", "temperature_2m_max": "°C",
                        "temperature_2m_min": "°C", "precipitation_sum": "mm"},
        "daily": {"time": time, "weather_code": code, "temperature_2m_max": high,
                  "temperature_2m_min": low, "precipitation_sum": rain}
    })
}

#[tokio::test]
async fn open_meteo_finds_a_place_with_its_time_zone() {
    let server = MockServer::start().await;
    let body = |name: &str| {
        json!({"results": [{"id": 2267057, "name": name, "latitude": 38.71667, "longitude": -9.13333,
            "elevation": 45.0, "feature_code": "PPLC", "country_code": "PT", "timezone": "Europe/Lisbon",
            "population": 517802, "country": "Portugal", "admin1": "Lisbon"}], "generationtime_ms": 0.8})
    };
    for (lang, name) in [("en", "Lisbon"), ("ko", "리스본")] {
        Mock::given(method("GET"))
            .and(path("/v1/search"))
            .and(query_param("name", "lisbon"))
            .and(query_param("language", lang))
            .respond_with(ResponseTemplate::new(200).set_body_json(body(name)))
            .mount(&server)
            .await;
    }
    Mock::given(method("GET"))
        .and(path("/v1/search"))
        .and(query_param("name", "atlantis"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"generationtime_ms": 0.5})))
        .mount(&server)
        .await;
    let om = open_meteo(&server).with_geocoding_and_archive_urls(server.uri(), server.uri());
    let place = om.geocode("lisbon", Language::En).await.unwrap().unwrap();
    assert_eq!((place.name.as_str(), place.country.as_str()), ("Lisbon", "PT"));
    assert_eq!(place.timezone.as_deref(), Some("Europe/Lisbon"));
    assert_eq!(om.geocode("lisbon", Language::Ko).await.unwrap().unwrap().name, "리스본");
    assert_eq!(om.geocode("atlantis", Language::En).await.unwrap(), None);
}

fn raw_lisbon_request() -> RawPlanRequest {
    RawPlanRequest {
        location: Some("Lisbon".into()),
        start_date: Some("2025-11-10".into()),
        end_date: Some("2025-11-12".into()),
        budget: Some("low".into()),
        language: Some("en".into()),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_place_without_bundled_normals_gets_them_from_the_archive_once_a_month() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/archive"))
        .and(query_param("start_date", "2020-11-01"))
        .and(query_param("end_date", "2024-11-30"))
        .and(query_param("timezone", "Europe/Lisbon"))
        .respond_with(ResponseTemplate::new(200).set_body_json(archive_body()))
        .expect(1)
        .mount(&server)
        .await;
    let om = Arc::new(open_meteo(&server).with_geocoding_and_archive_urls(server.uri(), server.uri()));
    // No forecast source: the trip is a year out, and Lisbon has no bundled normals.
    let weather = layered(vec![]).with_archive_normals(om);
    let request = PlanRequest::parse(raw_lisbon_request(), None, RequestLimits::default()).unwrap();
    let report = weather.forecast(&lisbon(), &request).await.unwrap();
    assert_eq!(report.source, "climatology");
    assert_eq!(sources_of(&report), vec![WeatherSource::Climatology; 3]);
    // Nov 10: 2024 has no low, so that year is left out; highs 18..21 → 19.5, lows 10..13 → 11.5, rain on
    // 3 of 4 → 75 %, rain the most common condition.
    let nov10 = &report.days[0];
    assert_eq!((nov10.temp_max_c, nov10.temp_min_c, nov10.precipitation_chance), (19.5, 11.5, 75));
    assert_eq!(nov10.summary, Condition::Rain.summary(Language::En));
    assert_eq!((report.days[1].temp_min_c, report.days[1].precipitation_chance), (12.0, 0));
    assert_eq!(report.days[1].summary, Condition::Cloudy.summary(Language::En));

    // The place's November is cached: another trip that month, or the same one again, asks nothing more
    // (the mock expects one call).
    let again = RawPlanRequest {
        start_date: Some("2025-11-11".into()),
        end_date: Some("2025-11-12".into()),
        ..raw_lisbon_request()
    };
    let again = PlanRequest::parse(again, None, RequestLimits::default()).unwrap();
    let cached = weather.forecast(&lisbon(), &again).await.unwrap();
    assert_eq!(cached.days[..], report.days[1..]);
    weather.forecast(&lisbon(), &request).await.unwrap();

    // Without the archive, such a place has no weather at all: that is the one failure left.
    let err = layered(vec![]).forecast(&lisbon(), &request).await.unwrap_err();
    assert!(err.0.contains("lisbon"), "{err}");
}
