//! A burst's first events go first: a running generation's next step (its weather look-up, its draft)
//! waits while other requests are on their way to their first bytes, and goes on once they have them.
//! Observed by order, not by time: the request kept on its way is one whose place is being looked up by a
//! geocoder that answers only when the test lets it. A stream to a place that costs a look-up does not wait
//! for it at all: its first step looks the place up, after the first event.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_trait::async_trait;
use eventsource_stream::Eventsource;
use futures::StreamExt;
use tokio::sync::Notify;
use tripstream_adapters::{BundledDestinations, Catalog};
use tripstream_domain::{Destination, Location};
use tripstream_engine::{Destinations, ResolveError};
use tripstream_server::ServerConfig;

use crate::helpers::*;

/// The bundled places, and "Slowtown", which the geocoder finds (as Seoul) only once released.
struct Geocoder {
    bundled: BundledDestinations,
    asked: Arc<Notify>,
    release: Arc<Notify>,
}

#[async_trait]
impl Destinations for Geocoder {
    async fn resolve(&self, location: &Location) -> Result<Destination, ResolveError> {
        if location.as_str() != "Slowtown" {
            return self.bundled.resolve(location).await;
        }
        self.asked.notify_one();
        self.release.notified().await;
        self.bundled.resolve(&Location::parse("Seoul").expect("a valid location")).await
    }

    fn list(&self) -> Vec<Destination> {
        self.bundled.list()
    }
}

/// The kinds of the last two events left in `events`.
async fn last_two_kinds(
    events: &mut (impl futures::Stream<Item = Result<eventsource_stream::Event, impl std::fmt::Debug>> + Unpin),
) -> Vec<String> {
    let mut kinds = Vec::new();
    while let Some(event) = events.next().await {
        let data: serde_json::Value = serde_json::from_str(&event.unwrap().data).unwrap();
        kinds.push(data["type"].as_str().unwrap().to_owned());
    }
    kinds.split_off(kinds.len().saturating_sub(2))
}

#[tokio::test]
async fn a_generation_drafts_only_once_a_request_that_arrived_meanwhile_has_its_first_event() {
    let mut config = ServerConfig::for_tests();
    // So long that only the arriving request's first event can let the draft go on.
    config.limits.first_event_priority_ms = Millis::new(3_600_000);
    let (mut services, drafts) = counting_services(&config, Duration::ZERO);
    let (asked, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let bundled = BundledDestinations::new(Catalog::bundled());
    services.destinations = Arc::new(Geocoder { bundled, asked: asked.clone(), release: release.clone() });
    let app = Arc::new(spawn_app_with(config, Some(services)).await);

    // A request on its way to its first bytes: its place is being looked up.
    let slow = tokio::spawn({
        let app = app.clone();
        async move {
            let body =
                r#"{"location": "Slowtown", "startDate": "2025-11-10", "endDate": "2025-11-10", "budget": "low"}"#;
            messages(app.stream(body).await).await
        }
    });
    asked.notified().await;

    // A stream opened meanwhile gets its first event at once...
    let response = app.stream(seoul_body()).await;
    assert_eq!(response.status(), 200);
    let mut events = response.bytes_stream().eventsource();
    let first = events.next().await.unwrap().unwrap();
    assert!(first.data.contains("\"gather_context\""), "{}", first.data);
    // ...but its generation goes no further while the other request is on its way (a round trip gives it
    // every chance to).
    assert_eq!(app.get("/health/live").await.status(), 200);
    assert_eq!(drafts.load(Ordering::SeqCst), 0, "the draft waits for the arriving request");

    // Once the place is found and that stream has its first event, both go on to the end.
    release.notify_one();
    assert_eq!(last_two_kinds(&mut events).await, ["complete", "done"]);
    let slow = slow.await.unwrap();
    assert_eq!(slow.first().map(Message::kind), Some("status"));
    assert_eq!(slow.last().map(Message::kind), Some("done"));
    assert_eq!(drafts.load(Ordering::SeqCst), 2);
}

/// The same geocoder, but one that says it costs a look-up for what is not bundled (as the OpenWeatherMap
/// and Open-Meteo geocoders do): a stream's first step asks it, after the first event.
struct Remote(Geocoder);

#[async_trait]
impl Destinations for Remote {
    async fn resolve(&self, location: &Location) -> Result<Destination, ResolveError> {
        self.0.resolve(location).await
    }

    fn list(&self) -> Vec<Destination> {
        self.0.list()
    }

    fn costs_a_lookup(&self, location: &Location) -> bool {
        self.0.bundled.catalog().find(location.as_str()).is_none()
    }
}

#[tokio::test]
async fn a_stream_to_a_place_being_looked_up_has_its_first_event_before_the_geocoder_answers() {
    let config = ServerConfig::for_tests();
    let (mut services, _) = counting_services(&config, Duration::ZERO);
    let (asked, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let bundled = BundledDestinations::new(Catalog::bundled());
    services.destinations = Arc::new(Remote(Geocoder { bundled, asked: asked.clone(), release: release.clone() }));
    let app = spawn_app_with(config, Some(services)).await;

    let slowtown = r#"{"location": "Slowtown", "startDate": "2025-11-10", "endDate": "2025-11-10", "budget": "low"}"#;
    let first = async {
        let response = app.stream(slowtown).await;
        assert_eq!(response.status(), 200);
        let mut events = response.bytes_stream().eventsource();
        let first = events.next().await.unwrap().unwrap();
        (events, first)
    };
    let (mut events, first) = tokio::time::timeout(Duration::from_secs(10), first)
        .await
        .expect("the first event does not wait for the geocoder");
    assert!(first.data.contains("\"gather_context\""), "{}", first.data);
    // The geocoder is asked after that event, and the stream goes on once it answers.
    asked.notified().await;
    release.notify_one();
    assert_eq!(last_two_kinds(&mut events).await, ["complete", "done"]);

    // A place the geocoder does not know: the stream says so in its error event, the JSON answer is a 422.
    let atlantis = slowtown.replace("Slowtown", "Atlantis");
    let streamed = messages(app.stream(&atlantis).await).await;
    let kinds: Vec<&str> = streamed.iter().map(Message::kind).collect();
    assert_eq!(kinds, ["status", "error", "done"]);
    assert_eq!(streamed[1].data["error"], "unknown_destination");
    assert_eq!(streamed[1].data["retryable"], false);
    let answered = app.generate(&atlantis).await;
    assert_eq!(answered.status(), 422);
    let body: serde_json::Value = answered.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unknown_destination");
}
