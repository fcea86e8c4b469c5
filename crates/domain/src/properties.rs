//! Property tests (proptest) of the domain's two ways in for untrusted input: the request parser, and
//! repair of a plan a model wrote. A fixed seed, so a failure is the same failure on every machine; 256
//! cases unless `PROPTEST_CASES` says otherwise.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

use crate::plan::{Activity, Category, ClockTime, Day, DayWeather, WeatherSource};
use crate::repair::repair;
use crate::request::{PlanRequest, RawPlanRequest, RequestLimits};
use crate::rules::tests::{ctx, plan};
use crate::rules::{Finding, Rule, validate};

/// The suite's settings: `PROPTEST_CASES` (default 256) and a fixed seed; no regression files.
pub fn config() -> Config {
    Config { rng_seed: RngSeed::Fixed(0x7219_5EED), failure_persistence: None, ..Config::default() }
}

/// Strings as clients send them: mostly near the valid shape, sometimes anything at all.
fn field(valid: &'static str) -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        Just(Some(valid.to_owned())),
        valid.prop_map(Some),
        any::<String>().prop_map(Some),
        "[0-9]{1,5}-[0-9]{1,3}-[0-9]{1,3}".prop_map(Some),
    ]
}

fn raw_request() -> impl Strategy<Value = RawPlanRequest> {
    (
        field("[ \\PC]{0,120}"),
        field("2025-1[01]-[0-3][0-9]"),
        field("202[5-9]-[01][0-9]-[0-3][0-9]"),
        field("low|medium|high|luxury"),
        field("ko|en|fr"),
        prop::option::of(any::<i64>()),
        prop::option::of(prop::collection::vec(any::<String>(), 0..14)),
    )
        .prop_map(|(location, start_date, end_date, budget, language, travelers, interests)| RawPlanRequest {
            location,
            start_date,
            end_date,
            budget,
            language,
            travelers,
            interests,
        })
}

fn activity() -> impl Strategy<Value = Activity> {
    (
        0u16..1500,
        any::<u16>(),
        prop_oneof!["[A-Za-z ]{0,12}", Just("Lunch".to_owned()), Just(" ".to_owned())],
        prop::sample::select(Category::ALL.to_vec()),
        prop_oneof![0u64..100_000, any::<u64>()],
        any::<bool>(),
    )
        .prop_map(|(minutes, duration, name, category, cost, indoor)| Activity {
            time: ClockTime::from_minutes(minutes),
            duration_minutes: duration % 600,
            name,
            description: String::new(),
            category,
            area: String::new(),
            cost,
            indoor,
            location: None,
        })
}

fn day() -> impl Strategy<Value = Day> {
    (0u32..6, 0u8..=100, prop::collection::vec(activity(), 0..12), any::<u64>()).prop_map(
        |(n, chance, activities, daily_cost)| Day {
            day: n,
            date: jiff::civil::date(2025, 11, 10),
            theme: String::new(),
            weather: DayWeather {
                summary: String::new(),
                temp_min_c: 0.0,
                temp_max_c: 10.0,
                precipitation_chance: chance,
                source: WeatherSource::Climatology,
            },
            activities,
            daily_cost,
        },
    )
}

proptest! {
    #![proptest_config(config())]

    /// Whatever a client sends, the parser answers: a request that keeps the contract's promises, or an
    /// error naming a field. It never panics.
    #[test]
    fn the_request_parser_never_panics_and_keeps_its_promises(raw in raw_request(), max_days in 1u32..30) {
        match PlanRequest::parse(raw, None, RequestLimits { max_trip_days: max_days }) {
            Ok(request) => {
                let days = request.dates.len();
                prop_assert!((1..=max_days).contains(&days));
                prop_assert!((1..=20).contains(&request.travelers));
                prop_assert!(!request.location.as_str().trim().is_empty());
                prop_assert!(request.location.as_str().chars().count() <= 100);
            }
            Err(e) => prop_assert!(e.field.is_some() || !e.message.is_empty()),
        }
    }

    /// Any JSON text, too: the body's own deserializer never panics either.
    #[test]
    fn any_body_text_is_a_request_or_an_error(text in any::<String>()) {
        if let Ok(raw) = serde_json::from_str::<RawPlanRequest>(&text) {
            let _ = PlanRequest::parse(raw, None, RequestLimits::default());
        }
    }

    /// Repair of any draft, however broken (days out of order, overlaps, absurd costs, repeats, rain):
    /// what it returns is exactly what the repaired plan still breaks, so a plan either satisfies rules
    /// 1–7 or is rejected with findings; and what repair can always fix (numbering, sums that fit, extra
    /// days) is fixed.
    #[test]
    fn a_repaired_plan_satisfies_the_rules_or_says_which_it_breaks(
        days in prop::collection::vec(day(), 0..6),
        total in any::<u64>(),
        ceiling in prop_oneof![0u64..200_000, any::<u64>()],
    ) {
        let mut p = plan(days);
        p.total_cost = total;
        let context = ctx(ceiling);
        let remaining = repair(&mut p, &context);
        let mut found = validate(&p, &context);
        found.sort_by_key(Finding::rule);
        prop_assert_eq!(&remaining, &found);
        prop_assert!(p.days.len() <= 3);
        let numbering = remaining.iter().any(|f| matches!(f, Finding::DayNumbering { .. }));
        prop_assert!(!numbering, "{:?}", remaining);
        let overflow = remaining.iter().any(|f| matches!(f, Finding::CostOverflow { .. }));
        prop_assert!(overflow || !remaining.iter().any(|f| f.rule() == Rule::Sums), "{:?}", remaining);
        if remaining.iter().all(|f| !f.is_hard()) {
            prop_assert_eq!(p.checked_total_cost(), Some(p.total_cost));
        }
    }
}
