//! Place verification: the Nominatim client against a mock that speaks its `jsonv2` search exactly
//! (found, nothing, 500, garbage, too slow, too big), and model plans through the engine with an
//! invented place.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use tripstream_adapters::Catalog;
use tripstream_adapters::llm::prompts::Rendered;
use tripstream_adapters::llm::{ChatModel, Completion, Finish, LlmPlanner, Prompts};
use tripstream_adapters::places::{CheckedPlaces, Near, Nominatim, NominatimConfig, PlaceSettings, SearchError};
use tripstream_domain::places::PlaceNote;
use tripstream_domain::{Category, Destination, GeoPoint, Language, Localized, Plan};
use tripstream_engine::{Draft, Engine, EngineConfig, GenerateError, PlaceVerifier, PlanContext};
use tripstream_testkit::nominatim::Nominatim as MockNominatim;

use crate::llm_support::{destination, plan_json, request};

fn client(mock: &MockNominatim, timeout: Duration) -> Nominatim {
    Nominatim::new(NominatimConfig { timeout, min_interval: Duration::ZERO, ..NominatimConfig::new(mock.base_url()) })
}

const KYOTO: Near = Near { center: GeoPoint { lat: 35.0116, lon: 135.7681 }, radius_deg: 0.5 };

#[tokio::test]
async fn the_client_sends_a_bounded_jsonv2_search_and_reads_each_kind_of_answer() {
    let mock = MockNominatim::start().await.unwrap();
    let search = client(&mock, Duration::from_millis(500));

    let found = search.search("Philosopher's Path", KYOTO, Language::Ko).await.unwrap().unwrap();
    assert!((found.lat - 35.0116).abs() < 1e-4 && (found.lon - 135.7681).abs() < 1e-4, "{found:?}");
    let sent = &mock.queries()[0];
    let param = |k: &str| sent.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    assert_eq!(param("q"), Some("Philosopher's Path"));
    assert_eq!((param("format"), param("limit"), param("bounded")), (Some("jsonv2"), Some("1"), Some("1")));
    assert_eq!(param("accept-language"), Some("ko,en"));
    let viewbox: Vec<f64> = param("viewbox").unwrap().split(',').map(|x| x.parse().unwrap()).collect();
    assert!(viewbox[0] < 135.7681 && viewbox[2] > 135.7681 && viewbox[1] > 35.0116 && viewbox[3] < 35.0116);

    assert_eq!(search.search("Invented Moon Temple", KYOTO, Language::En).await, Ok(None));
    assert_eq!(search.search("Broken Shrine", KYOTO, Language::En).await, Err(SearchError::Status(500)));
    assert!(matches!(search.search("Garbled Hall", KYOTO, Language::En).await, Err(SearchError::Garbage(_))));
    assert!(matches!(search.search("Huge Market", KYOTO, Language::En).await, Err(SearchError::TooLarge(_))));
    assert_eq!(search.search("Slow Garden", KYOTO, Language::En).await, Err(SearchError::Timeout));
}

/// A model that answers every call with the same text.
struct Canned(String);

#[async_trait]
impl ChatModel for Canned {
    fn provider(&self) -> &'static str {
        "openai"
    }
    fn model(&self) -> &str {
        "canned"
    }
    async fn stream(
        &self,
        _prompt: Rendered,
        _max_output_tokens: u32,
        on_text: &mut (dyn for<'t> FnMut(&'t str) + Send),
    ) -> Result<Completion, GenerateError> {
        on_text(&self.0);
        Ok(Completion { finish: Finish::Stop, usage: Default::default() })
    }
}

/// A one-day Kyoto plan in the model's shape with its first sight renamed `name` (and its category).
async fn plan_naming(names: &[&str]) -> (String, Category) {
    let mut plan = plan_json(1).await;
    let activities = plan["days"][0]["activities"].as_array_mut().unwrap();
    let sights: Vec<&mut Value> =
        activities.iter_mut().filter(|a| a["category"] != "food" && a["category"] != "rest").collect();
    assert!(sights.len() >= names.len(), "the offline day has enough sights");
    let category: Category = serde_json::from_value(sights[0]["category"].clone()).unwrap();
    for (sight, name) in sights.into_iter().zip(names) {
        sight["name"] = Value::from(*name);
    }
    (plan.to_string(), category)
}

async fn deliver(reply: String, verifier: CheckedPlaces) -> Plan {
    let planner = LlmPlanner::new(Arc::new(Canned(reply)), Arc::new(Prompts::embedded().unwrap()), Catalog::bundled());
    let engine = Engine::new(Arc::new(planner), Arc::new(tripstream_adapters::Climatology), EngineConfig::default())
        .with_places(Arc::new(verifier));
    let mut events = Vec::new();
    engine.run(&request(1), &destination().await, &mut events).await.expect("the plan is delivered")
}

fn names(plan: &Plan) -> Vec<&str> {
    plan.days.iter().flat_map(|d| &d.activities).map(|a| a.name.as_str()).collect()
}

#[tokio::test]
async fn an_invented_place_is_replaced_by_a_bundled_one_of_its_kind_and_a_found_one_gets_coordinates() {
    let mock = MockNominatim::start().await.unwrap();
    let search = client(&mock, Duration::from_secs(2));
    let (reply, category) = plan_naming(&["Invented Moon Temple", "Kamo Riverside Teahouse"]).await;
    let plan = deliver(reply, CheckedPlaces::new(Catalog::bundled(), Some(search), PlaceSettings::default())).await;

    assert!(!names(&plan).contains(&"Invented Moon Temple"), "{:?}", names(&plan));
    let kyoto = Catalog::bundled().find("Kyoto").unwrap().clone();
    let by = plan.days[0]
        .activities
        .iter()
        .find(|a| a.category == category && kyoto.places.iter().any(|p| p.name.ko == a.name))
        .expect("a bundled place of the same kind");
    assert!(by.location.is_some());
    let warning = plan.warnings.iter().find(|w| w.contains("Invented Moon Temple")).expect("the replacement is said");
    assert!(warning.contains("바꿨습니다"), "{warning}");
    let teahouse = plan.days[0].activities.iter().find(|a| a.name == "Kamo Riverside Teahouse").expect("found: kept");
    assert!(teahouse.location.is_some(), "found places get the search's coordinates");
    assert!(!plan.warnings.iter().any(|w| w.contains("Kamo Riverside Teahouse")), "{:?}", plan.warnings);
    // The bundled places cost no search: only the two unknown names were asked for.
    assert_eq!(mock.calls(), 2, "{:?}", mock.queries());
}

#[tokio::test]
async fn the_search_asks_for_the_venue_and_the_activity_keeps_the_models_words() {
    let mock = MockNominatim::start().await.unwrap();
    let search = client(&mock, Duration::from_secs(2));
    let (reply, _) = plan_naming(&["Stroll through Kamo Riverside Teahouse", "Invented Moon Temple 방문"]).await;
    let plan = deliver(reply, CheckedPlaces::new(Catalog::bundled(), Some(search), PlaceSettings::default())).await;

    let mut asked: Vec<String> =
        mock.queries().iter().filter_map(|q| q.iter().find(|(k, _)| k == "q").map(|(_, v)| v.clone())).collect();
    asked.sort();
    assert_eq!(asked, ["Invented Moon Temple", "Kamo Riverside Teahouse"]);
    let stroll = plan.days[0].activities.iter().find(|a| a.name == "Stroll through Kamo Riverside Teahouse");
    assert!(stroll.expect("found: kept as the model wrote it").location.is_some());
    assert!(!names(&plan).contains(&"Invented Moon Temple 방문"), "not found: replaced, {:?}", names(&plan));
}

#[tokio::test]
async fn without_a_search_the_places_outside_the_data_are_listed_once_as_not_checked() {
    let (reply, _) = plan_naming(&["Invented Moon Temple", "Kamo Riverside Teahouse"]).await;
    let plan = deliver(reply, CheckedPlaces::new(Catalog::bundled(), None, PlaceSettings::default())).await;
    let listed: Vec<&String> = plan.warnings.iter().filter(|w| w.contains("확인하지 못했습니다")).collect();
    assert_eq!(listed.len(), 1, "{:?}", plan.warnings);
    assert!(listed[0].contains("Invented Moon Temple") && listed[0].contains("Kamo Riverside Teahouse"), "{listed:?}");
    assert!(names(&plan).contains(&"Invented Moon Temple"), "nothing is replaced on a guess");
}

#[tokio::test]
async fn a_failing_or_hanging_search_never_fails_the_plan() {
    let mock = MockNominatim::start().await.unwrap();
    let search = client(&mock, Duration::from_millis(300));
    let settings = PlaceSettings { budget: Duration::from_millis(600), ..PlaceSettings::default() };
    let (reply, _) = plan_naming(&["Broken Shrine", "Slow Garden", "Garbled Hall"]).await;
    let plan = deliver(reply, CheckedPlaces::new(Catalog::bundled(), Some(search), settings)).await;
    let listed: Vec<&String> = plan.warnings.iter().filter(|w| w.contains("확인하지 못했습니다")).collect();
    assert_eq!(listed.len(), 1, "{:?}", plan.warnings);
    for name in ["Broken Shrine", "Slow Garden", "Garbled Hall"] {
        assert!(listed[0].contains(name), "{name} in {listed:?}");
    }
    // A 500 is tried once more; the others are not.
    let asked = |q: &str| mock.queries().iter().filter(|p| p.iter().any(|(k, v)| k == "q" && v == q)).count();
    assert_eq!((asked("Broken Shrine"), asked("Garbled Hall")), (2, 1));
}

#[tokio::test]
async fn where_the_destination_has_no_data_an_invented_place_is_kept_and_marked_unverified() {
    let mock = MockNominatim::start().await.unwrap();
    let verifier =
        CheckedPlaces::new(Catalog::bundled(), Some(client(&mock, Duration::from_secs(2))), PlaceSettings::default());
    let kyoto = destination().await;
    let elsewhere = Destination {
        id: "atlantis".into(),
        name: Localized { en: "Atlantis".into(), ko: "아틀란티스".into() },
        climate: None,
        profile: None,
        ..kyoto
    };
    let (reply, _) = plan_naming(&["Invented Moon Temple", "Harbour Lookout"]).await;
    let model: Value = serde_json::from_str(&reply).unwrap();
    let mut day = tripstream_domain::Day {
        day: 1,
        date: request(1).dates.start(),
        theme: String::new(),
        weather: tripstream_domain::DayWeather {
            summary: String::new(),
            temp_min_c: 10.0,
            temp_max_c: 15.0,
            precipitation_chance: 10,
            source: tripstream_domain::WeatherSource::Climatology,
        },
        activities: Vec::new(),
        daily_cost: 0,
    };
    for a in model["days"][0]["activities"].as_array().unwrap() {
        let name = a["name"].as_str().unwrap();
        if name == "Invented Moon Temple" || name == "Harbour Lookout" {
            day.activities.push(tripstream_domain::Activity {
                time: tripstream_domain::ClockTime::hm(10, 0),
                duration_minutes: 60,
                name: name.into(),
                description: String::new(),
                category: Category::Sightseeing,
                area: String::new(),
                cost: 0,
                indoor: false,
                location: None,
            });
        }
    }
    let ctx = PlanContext {
        request: request(1),
        destination: elsewhere,
        weather: vec![day.weather.clone()],
        weather_source: "climatology".into(),
    };
    let mut draft = Draft { days: vec![day], ..Draft::default() };
    let notes = verifier.verify(&ctx, &mut draft, None).await;
    assert_eq!(notes, [PlaceNote::Unverified { name: "Invented Moon Temple".into() }]);
    assert_eq!(draft.days[0].activities.len(), 2, "nothing to replace it with: kept");
    assert!(draft.days[0].activities.iter().find(|a| a.name == "Harbour Lookout").unwrap().location.is_some());
}

#[tokio::test]
async fn a_bundled_place_closed_that_day_is_replaced_by_one_open_then_without_asking_the_model() {
    // 2025-11-10 is a Monday, when Kyoto National Museum is closed; the model has it at the day's first
    // sight. No search is configured: the bundled data alone mends it, and refinement is not needed.
    let (reply, category) = plan_naming(&["교토 국립박물관"]).await;
    let plan = deliver(reply, CheckedPlaces::new(Catalog::bundled(), None, PlaceSettings::default())).await;

    assert!(!names(&plan).contains(&"교토 국립박물관"), "{:?}", names(&plan));
    assert_eq!(plan.metadata.iterations, 1, "no refinement: {:?}", plan.warnings);
    let kyoto = destination().await;
    let profile = kyoto.profile.as_ref().unwrap();
    let warning = plan.warnings.iter().find(|w| w.contains("교토 국립박물관")).expect("the replacement is said");
    assert!(warning.starts_with("1일차: '교토 국립박물관'은(는) 그 시간에 문을 닫아 '"), "{warning}");
    let by = plan.days[0]
        .activities
        .iter()
        .find(|a| warning.contains(&format!("'{}'(으)로", a.name)))
        .expect("the place named in the warning is in the day");
    assert_eq!(by.category, category);
    assert_eq!(profile.closure(&by.name, plan.days[0].date, by.time, by.end_minutes()), None, "open then");
    assert!(
        !plan.warnings.iter().any(|w| w.contains("문을 닫습니다") || w.contains("운영 시간")),
        "no closed place is left: {:?}",
        plan.warnings
    );
}

#[tokio::test]
async fn a_lunch_only_restaurant_at_dinner_is_replaced_by_one_open_for_dinner() {
    // Hinode Udon serves 11:00–15:00; the model books it for the day's dinner.
    let mut plan = plan_json(1).await;
    let dinner =
        plan["days"][0]["activities"].as_array_mut().unwrap().iter_mut().rfind(|a| a["category"] == "food").unwrap();
    assert!(dinner["time"].as_str().unwrap() >= "17:00", "the day's last meal is dinner: {dinner}");
    dinner["name"] = Value::from("히노데 우동");
    let plan = deliver(plan.to_string(), CheckedPlaces::new(Catalog::bundled(), None, PlaceSettings::default())).await;

    assert!(!names(&plan).contains(&"히노데 우동"), "{:?}", names(&plan));
    assert_eq!(plan.metadata.iterations, 1, "{:?}", plan.warnings);
    let profile = destination().await.profile.unwrap();
    let dinner = plan.days[0].activities.iter().rev().find(|a| a.category == Category::Food).unwrap();
    assert_eq!(profile.closure(&dinner.name, plan.days[0].date, dinner.time, dinner.end_minutes()), None);
    let warning = plan.warnings.iter().find(|w| w.contains("히노데 우동")).expect("the replacement is said");
    assert!(warning.contains(&format!("'{}'(으)로 바꿨습니다", dinner.name)), "{warning}");
}
