//! The fault-injected model corpus, end to end: each faulty reply served by a stubborn mock model (the
//! same reply to every request) in Gemini's and in OpenAI's wire format, read by the real adapters and
//! run through the engine. Every fault is delivered, and the delivered plan passes rules 1–7 and every
//! commonsense check.

use tripstream_adapters::eval::faults::{self, Outcome, Wire};
use tripstream_domain::StreamEvent;

async fn delivered_and_passing(name: &str) -> Vec<Outcome> {
    let fault = faults::fault(name).expect("the fault is in the corpus");
    let mut outcomes = Vec::new();
    for wire in Wire::ALL {
        let o = faults::run_one(fault, wire).await;
        assert!(
            matches!(o.events.last(), Some(StreamEvent::Done)),
            "{name} via {}: the stream ends with done",
            wire.name()
        );
        assert!(o.delivered(), "{name} via {}: not delivered: {:?}", wire.name(), o.error);
        assert!(o.failing.is_empty(), "{name} via {}: the delivered plan still fails: {:#?}", wire.name(), o.failing);
        let plan = o.plan.as_ref().unwrap();
        assert_eq!(plan.days.len(), 3, "{name} via {}: every day of the trip", wire.name());
        assert!(plan.days.iter().all(|d| !d.activities.is_empty()), "{name} via {}: no empty day", wire.name());
        outcomes.push(o);
    }
    outcomes
}

macro_rules! faults {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                delivered_and_passing(stringify!($name)).await;
            }
        )*

        #[test]
        fn every_fault_of_the_corpus_has_its_test() {
            let tested = [$(stringify!($name)),*];
            let corpus: Vec<&str> = faults::CORPUS.iter().map(|f| f.name).collect();
            assert_eq!(corpus, tested);
        }
    };
}

faults!(
    missing_cost,
    cost_as_string,
    two_days_for_three,
    empty_day,
    overlapping_times,
    nonexistent_places,
    over_budget,
    repeats_across_days,
    nightlife_morning,
    park_after_dark,
    dinner_too_early,
    zigzag_87km,
    truncated_max_tokens,
    prose_around_json,
    unknown_categories,
);

fn warnings_with<'a>(o: &'a Outcome, needle: &str) -> Vec<&'a String> {
    o.plan.as_ref().unwrap().warnings.iter().filter(|w| w.contains(needle)).collect()
}

fn cost_of(o: &Outcome, name: &str) -> u64 {
    let plan = o.plan.as_ref().unwrap();
    plan.days.iter().flat_map(|d| &d.activities).find(|a| a.name == name).unwrap().cost
}

#[tokio::test]
async fn a_missing_cost_is_filled_from_the_bundled_data_and_noted() {
    for o in delivered_and_passing("missing_cost").await {
        // 경복궁 is 3,000 won a person in the data; two travellers.
        assert_eq!(cost_of(&o, "경복궁"), 6000);
        assert_eq!(warnings_with(&o, "비용이 빠져 있어").len(), 3, "{:?}", o.plan.unwrap().warnings);
        assert_eq!(o.requests, 1, "nothing is asked again for a cost");
    }
}

#[tokio::test]
async fn costs_written_with_currency_signs_and_separators_are_read() {
    for o in delivered_and_passing("cost_as_string").await {
        assert_eq!((cost_of(&o, "경복궁"), cost_of(&o, "발우공양"), cost_of(&o, "청진옥")), (6000, 140_000, 24_000));
    }
}

#[tokio::test]
async fn a_stubborn_model_leaves_the_missing_day_to_the_offline_planner() {
    for o in delivered_and_passing("two_days_for_three").await {
        assert_eq!(o.requests, 2, "the draft, then day 3 alone");
        assert!(o.bodies[1].contains("Write day 3 again"), "the second request asks for day 3 only");
        assert_eq!(warnings_with(&o, "3일차는 모델이 쓰지 않아").len(), 1, "{:?}", o.plan.unwrap().warnings);
    }
    for o in delivered_and_passing("empty_day").await {
        assert!(o.bodies[1].contains("Write day 2 again"));
        assert_eq!(warnings_with(&o, "2일차는 모델이 쓰지 않아").len(), 1);
    }
}

#[tokio::test]
async fn a_reply_cut_by_the_token_limit_keeps_its_finished_days_and_asks_for_the_rest() {
    for o in delivered_and_passing("truncated_max_tokens").await {
        assert_eq!(o.requests, 3, "the draft, then days 2 and 3 one at a time");
        assert!(o.bodies[1].contains("Write day 2 again") && o.bodies[2].contains("Write day 3 again"));
        assert_eq!(warnings_with(&o, "출력 한도에서 잘려").len(), 1);
        let day1: Vec<&str> = o.plan.as_ref().unwrap().days[0].activities.iter().map(|a| a.name.as_str()).collect();
        assert!(day1.contains(&"발우공양"), "day 1, finished before the cut, is the model's: {day1:?}");
    }
}

#[tokio::test]
async fn a_model_asked_for_the_missing_day_alone_writes_it() {
    // Day 3 as a model writes one day: the places of the corpus's full plan, none of days 1 and 2.
    let full: serde_json::Value = serde_json::from_str(faults::fault("overlapping_times").unwrap().reply).unwrap();
    let day3 = serde_json::json!({"title": "", "days": [full["days"][2]], "tips": []}).to_string();
    let fault = faults::fault("two_days_for_three").unwrap();
    for wire in Wire::ALL {
        let o = faults::run_script(fault, wire, vec![&day3]).await;
        assert!(o.passing(), "{:?} {:?}", o.error, o.failing);
        assert_eq!(warnings_with(&o, "3일차는 모델의 답변에 빠져 있어").len(), 1, "{:?}", o.plan.unwrap().warnings);
        let names: Vec<&str> = o.plan.as_ref().unwrap().days[2].activities.iter().map(|a| a.name.as_str()).collect();
        assert!(names.contains(&"종묘") && names.contains(&"삼청동길"), "day 3 is the model's: {names:?}");
    }
}

#[tokio::test]
async fn a_repeated_sight_is_swapped_for_a_bundled_one_nearby() {
    for o in delivered_and_passing("repeats_across_days").await {
        assert_eq!(warnings_with(&o, "바꿨습니다").len(), 2, "{:?}", o.plan.unwrap().warnings);
        let day3 = &o.plan.as_ref().unwrap().days[2];
        assert!(day3.activities.iter().all(|a| a.name != "경복궁" && a.name != "국립고궁박물관"));
        assert!(day3.activities.len() >= 7, "no stop is dropped");
    }
}
