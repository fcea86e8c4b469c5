//! Place verification in the workflow: what the verifier changes is what the plan delivers, and what it
//! says becomes warnings, once per place.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tripstream_domain::places::PlaceNote;
use tripstream_domain::{Language, StreamEvent};
use tripstream_engine::{Draft, Engine, EngineConfig, PlaceVerifier, PlanContext};

use crate::support::*;

/// Replaces `궁궐 1` by `경복궁` and has not checked `박물관 2`; records each call's `only`.
#[derive(Default)]
struct Fake {
    calls: Mutex<Vec<Option<usize>>>,
}

#[async_trait]
impl PlaceVerifier for Fake {
    async fn verify(&self, _ctx: &PlanContext, draft: &mut Draft, only: Option<usize>) -> Vec<PlaceNote> {
        self.calls.lock().unwrap().push(only);
        let mut notes = Vec::new();
        for day in &mut draft.days {
            for a in &mut day.activities {
                if a.name == "궁궐 1" {
                    a.name = "경복궁".into();
                    notes.push(PlaceNote::Replaced { day: day.day, name: "궁궐 1".into(), by: "경복궁".into() });
                }
                if a.name == "박물관 2" {
                    notes.push(PlaceNote::NotChecked { name: a.name.clone() });
                }
            }
        }
        notes
    }
}

#[tokio::test]
async fn the_verified_places_are_delivered_and_what_the_verifier_said_is_a_warning() {
    let generator = Arc::new(Scripted::new([Ok(draft(vec![day(1), day(2), day(3)]))]));
    let fake = Arc::new(Fake::default());
    let engine = Engine::new(generator, Arc::new(FixedWeather { rainy_days: vec![] }), EngineConfig::default())
        .with_places(fake.clone());
    let mut events = Vec::new();
    let plan = engine.run(&request(Language::En), &seoul(), &mut events).await.unwrap();
    assert_well_formed(&events);
    assert!(plan.days[0].activities.iter().any(|a| a.name == "경복궁"), "{:?}", plan.days[0].activities);
    let about_places: Vec<&String> =
        plan.warnings.iter().filter(|w| w.contains("궁궐 1") || w.contains("박물관 2")).collect();
    assert_eq!(about_places.len(), 2, "{:?}", plan.warnings);
    assert!(about_places[0].contains("\"경복궁\" takes its place"), "{about_places:?}");
    assert_eq!(about_places[1], "These places were not checked against a map: 박물관 2");
    assert_eq!(*fake.calls.lock().unwrap(), [None], "one check of the whole draft, no refinement needed");
    let StreamEvent::Complete(complete) = &events[events.len() - 2] else { panic!("complete before done") };
    assert_eq!(complete.plan.warnings, plan.warnings);
}
