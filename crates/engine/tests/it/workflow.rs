use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tripstream_domain::event::ErrorCode;
use tripstream_domain::plan::Category;
use tripstream_domain::{Language, Rule, StreamEvent};
use tripstream_engine::{Draft, DraftSink, Engine, EngineConfig, GenerateError, PlanContext};

use crate::support::*;

fn engine(generator: Arc<dyn tripstream_engine::PlanGenerator>, rainy_days: Vec<u32>) -> Engine {
    Engine::new(generator, Arc::new(FixedWeather { rainy_days }), EngineConfig::default())
}

async fn run(
    engine: &Engine,
    lang: Language,
) -> (Vec<StreamEvent>, Result<tripstream_domain::Plan, tripstream_engine::EngineError>) {
    let mut events = Vec::new();
    let result = engine.run(&request(lang), &seoul(), &mut events).await;
    assert_well_formed(&events);
    (events, result)
}

#[tokio::test]
async fn a_sound_draft_goes_straight_to_complete() {
    let generator = Arc::new(Scripted::new([Ok(draft(vec![day(1), day(2), day(3)]))]));
    let (events, result) = run(&engine(generator.clone(), vec![]), Language::Ko).await;
    insta::assert_snapshot!(transcript(&events));
    let plan = result.unwrap();
    assert_eq!(generator.calls.load(Ordering::SeqCst), 1);
    assert_eq!(plan.title, "서울 3일 여행");
    assert_eq!(plan.total_cost, 99_000);
    assert_eq!(plan.days[2].date.to_string(), "2025-11-12");
    assert_eq!(plan.days[0].weather.summary, "맑음", "the gathered weather replaces the model's");
    assert_eq!(plan.metadata.iterations, 1);
    assert_eq!(plan.metadata.provider, "scripted");
    assert_eq!(plan.metadata.usage.output_tokens, 200);
    assert!(plan.id.starts_with("pln_"));
    let StreamEvent::Complete(complete) = &events[events.len() - 2] else { panic!("complete before done") };
    assert_eq!(*complete.plan, plan);
}

#[tokio::test]
async fn a_broken_draft_is_refined_then_repaired() {
    // Draft: two days for a three-day trip, an outdoor-heavy rainy day 2, and a pricey extra.
    let mut rainy = day(2);
    rainy.activities[2].indoor = false;
    let mut pricey = day(1);
    pricey.activities.push(activity("20:00", "스카이 라운지", Category::Nightlife, 250_000, true));
    let first = draft(vec![pricey.clone(), rainy]);
    // Refinement 1 fixes the days and the rain but not the budget; refinement 2 changes nothing.
    let second = draft(vec![pricey.clone(), day(2), day(3)]);
    let generator = Arc::new(Scripted::new([Ok(first), Ok(second.clone()), Ok(second)]));
    let (events, result) = run(&engine(generator.clone(), vec![2]), Language::Ko).await;
    insta::assert_snapshot!(transcript(&events));

    let told = generator.refine_findings.lock().unwrap().clone();
    let rules: Vec<Rule> = told[0].iter().map(|f| f.rule()).collect();
    assert!(rules.contains(&Rule::DayCount) && rules.contains(&Rule::RainyDay), "{rules:?}");
    assert_eq!(told[1].iter().map(|f| f.rule()).collect::<Vec<_>>(), vec![Rule::Budget]);

    let plan = result.unwrap();
    assert_eq!(plan.metadata.iterations, 3);
    assert_eq!(plan.days.len(), 3);
    assert!(plan.total_cost <= 300_000, "repair dropped the costliest optional activity");
    assert!(plan.days[0].activities.iter().all(|a| a.name != "스카이 라운지"));
    assert!(plan.warnings.is_empty());
    assert_eq!(plan.metadata.usage.input_tokens, 300);
}

#[tokio::test]
async fn what_cannot_be_repaired_becomes_a_warning_in_the_request_language() {
    let mut rich = day(1);
    rich.activities[1].cost = 400_000; // a meal: never dropped
    let script = vec![Ok(draft(vec![rich, day(2), day(3)])); 3];
    let generator = Arc::new(Scripted::new(script));
    let (events, result) = run(&engine(generator.clone(), vec![]), Language::En).await;
    insta::assert_snapshot!(transcript(&events));
    let plan = result.unwrap();
    assert_eq!(plan.warnings, ["The total cost ₩489,000 is over the budget ceiling of ₩300,000."]);
    // The model answered the findings with the same plan: it is not asked a third time.
    assert_eq!(generator.calls.load(Ordering::SeqCst), 2);
    assert_eq!(plan.metadata.iterations, 2);
}

#[tokio::test]
async fn a_plan_still_missing_days_is_never_delivered() {
    let script = vec![Ok(draft(vec![day(1), day(2)])); 3];
    let (events, result) = run(&engine(Arc::new(Scripted::new(script)), vec![]), Language::Ko).await;
    insta::assert_snapshot!(transcript(&events));
    let err = result.unwrap_err();
    assert_eq!(err.code, ErrorCode::LlmBadOutput);
    // The draft and one refinement that changed nothing (a second is not asked for).
    assert_eq!(err.usage.input_tokens, 200, "usage of every call is reported");
    let StreamEvent::Error(failure) = &events[events.len() - 2] else { panic!() };
    assert_eq!(failure.usage.map(|u| u.output_tokens), Some(400));
}

#[tokio::test]
async fn unparseable_output_is_asked_for_once_more() {
    let generator = Arc::new(Scripted::new([Err(bad_output()), Ok(draft(vec![day(1), day(2), day(3)]))]));
    let (_, result) = run(&engine(generator.clone(), vec![]), Language::Ko).await;
    let plan = result.unwrap();
    assert_eq!(generator.calls.load(Ordering::SeqCst), 2);
    assert_eq!(plan.metadata.usage.input_tokens, 110);

    let generator = Arc::new(Scripted::new([Err(bad_output()), Err(bad_output())]));
    let (events, result) = run(&engine(generator, vec![]), Language::Ko).await;
    assert_eq!(result.unwrap_err().code, ErrorCode::LlmBadOutput);
    assert!(transcript(&events).ends_with(
        "error llm_bad_output AI가 올바른 여행 계획을 만들지 못했습니다. 다시 시도해 주세요. retryable=true\ndone\n"
    ));
}

#[tokio::test]
async fn a_provider_failure_ends_with_error_then_done() {
    let generator = Arc::new(Scripted::new([Err(GenerateError::new(ErrorCode::LlmRateLimited, "429"))]));
    let (events, _) = run(&engine(generator, vec![]), Language::En).await;
    insta::assert_snapshot!(transcript(&events));
}

#[tokio::test]
async fn no_weather_at_all_is_weather_unavailable() {
    let generator = Arc::new(Scripted::new([]));
    let engine = Engine::new(generator, Arc::new(NoWeather), EngineConfig::default());
    let (events, result) = run(&engine, Language::Ko).await;
    assert_eq!(result.unwrap_err().code, ErrorCode::WeatherUnavailable);
    assert_eq!(events.len(), 3, "status, error, done");
}

#[tokio::test(start_paused = true)]
async fn a_generation_that_never_ends_times_out() {
    let config = EngineConfig { total_timeout: Duration::from_secs(30), ..EngineConfig::default() };
    let engine = Engine::new(Arc::new(Stalled), Arc::new(FixedWeather { rainy_days: vec![] }), config);
    let (events, result) = run(&engine, Language::En).await;
    assert_eq!(result.unwrap_err().code, ErrorCode::Timeout);
    insta::assert_snapshot!(transcript(&events));
}

/// Answers as scripted while the script lasts, then never answers again.
struct ThenStall(Scripted);

impl ThenStall {
    async fn next(&self, answer: impl Future<Output = Result<Draft, GenerateError>>) -> Result<Draft, GenerateError> {
        if self.0.drafts.lock().unwrap().is_empty() {
            return std::future::pending().await;
        }
        answer.await
    }
}

#[async_trait::async_trait]
impl tripstream_engine::PlanGenerator for ThenStall {
    fn info(&self) -> tripstream_engine::GeneratorInfo {
        self.0.info()
    }

    async fn generate_draft(&self, ctx: &PlanContext, sink: &mut dyn DraftSink) -> Result<Draft, GenerateError> {
        self.next(self.0.generate_draft(ctx, sink)).await
    }

    async fn refine_plan(
        &self,
        ctx: &PlanContext,
        current: &Draft,
        findings: &[tripstream_domain::Finding],
        sink: &mut dyn DraftSink,
    ) -> Result<Draft, GenerateError> {
        self.next(self.0.refine_plan(ctx, current, findings, sink)).await
    }
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_generation_ends_with_the_days_so_far_and_the_tokens_spent() {
    // Two days for a three-day trip: the refinement starts, and hangs until the cancellation.
    let generator = Arc::new(ThenStall(Scripted::new([Ok(draft(vec![day(1), day(2)]))])));
    let engine = engine(generator, vec![]);
    let mut events = Vec::new();
    let cancelled = tokio::time::sleep(Duration::from_secs(5));
    let result = engine.run_until(&request(Language::En), &seoul(), &mut events, cancelled).await;
    assert_well_formed(&events);
    let err = result.unwrap_err();
    assert_eq!((err.code, err.usage.output_tokens), (ErrorCode::Cancelled, 200));
    let StreamEvent::Error(failure) = &events[events.len() - 2] else { panic!("{events:#?}") };
    assert_eq!(failure.error, ErrorCode::Cancelled);
    assert!(!failure.retryable);
    assert_eq!(failure.usage.map(|u| (u.input_tokens, u.output_tokens)), Some((100, 200)));
    assert_eq!(failure.partial_days.as_ref().map(Vec::len), Some(2));
    insta::assert_snapshot!(transcript(&events));
}

#[tokio::test(start_paused = true)]
async fn a_cancel_during_the_second_draft_reports_the_first_drafts_tokens() {
    let generator = Arc::new(ThenStall(Scripted::new([Err(bad_output())])));
    let mut events = Vec::new();
    let cancelled = tokio::time::sleep(Duration::from_secs(5));
    let result = engine(generator, vec![]).run_until(&request(Language::En), &seoul(), &mut events, cancelled).await;
    assert_well_formed(&events);
    let err = result.unwrap_err();
    assert_eq!((err.code, err.usage.input_tokens, err.usage.output_tokens), (ErrorCode::Cancelled, 10, 5));
    let StreamEvent::Error(failure) = &events[events.len() - 2] else { panic!("{events:#?}") };
    assert_eq!(failure.usage.map(|u| (u.input_tokens, u.output_tokens)), Some((10, 5)));
}

#[tokio::test]
async fn a_replay_takes_the_same_five_steps_and_delivers_the_stored_plan() {
    let generator = Arc::new(Scripted::new([Ok(draft(vec![day(1), day(2), day(3)]))]));
    let engine = engine(generator.clone(), vec![2]);
    let (generated, plan) = run(&engine, Language::Ko).await;
    let plan = plan.unwrap();

    let mut replayed = Vec::new();
    engine.replay(&request(Language::Ko), &plan, &mut replayed).await;
    assert_well_formed(&replayed);
    assert_eq!(generator.calls.load(Ordering::SeqCst), 1, "a replay asks the generator nothing");
    let steps = |events: &[StreamEvent]| -> Vec<(&'static str, Option<u8>, Option<&'static str>)> {
        events
            .iter()
            .filter(|e| !matches!(e, StreamEvent::Chunk(_)))
            .map(|e| (e.kind(), e.progress(), e.step().map(|s| s.as_str())))
            .collect()
    };
    assert_eq!(steps(&replayed), steps(&generated), "the same milestones, days and progress");
    let StreamEvent::Complete(complete) = &replayed[replayed.len() - 2] else { panic!("complete before done") };
    assert!(complete.plan.metadata.cached);
    assert_eq!(complete.plan.id, plan.id);
    assert_eq!(complete.plan.days, plan.days);
    assert_eq!(complete.plan.days[1].weather.precipitation_chance, 80, "the stored weather, not a new look-up");
}

#[tokio::test]
async fn commonsense_faults_are_repaired_and_only_the_rest_goes_to_refinement() {
    // Nightlife at 10:30 and dinner at 16:15 are fixed by moving times; the empty afternoon that leaves
    // needs judgement, so that alone is what the model is told about.
    let mut odd = day(1);
    odd.activities[0] = activity("10:30", "클럽", Category::Nightlife, 0, true);
    odd.activities[2].time = tripstream_domain::ClockTime::hm(13, 45);
    odd.activities[3].time = tripstream_domain::ClockTime::hm(16, 15);
    let first = draft(vec![odd, day(2), day(3)]);
    let generator = Arc::new(Scripted::new([Ok(first.clone()), Ok(first.clone()), Ok(first)]));
    let (_, result) = run(&engine(generator.clone(), vec![]), Language::En).await;
    let plan = result.unwrap();
    let told = generator.refine_findings.lock().unwrap().clone();
    let messages: Vec<String> = told[0].iter().map(|f| f.message(Language::En)).collect();
    assert!(messages.iter().all(|m| !m.contains("nightlife") && !m.contains("dinner")), "{messages:?}");
    assert!(messages.iter().any(|m| m.contains("nothing planned")), "{messages:?}");
    let club = plan.days[0].activities.iter().find(|a| a.name == "클럽").unwrap();
    assert!(club.time >= tripstream_domain::ClockTime::hm(18, 0), "{:?}", plan.days[0].activities);
    let dinner = plan.days[0].activities.iter().find(|a| a.name == "저녁 1").unwrap();
    assert!(dinner.time >= tripstream_domain::ClockTime::hm(18, 0), "{:?}", plan.days[0].activities);
    assert!(plan.warnings.iter().any(|w| w.contains("nothing planned")), "{:?}", plan.warnings);
}

/// A geocoder of one place: "Seoul" is found (after the test lets it answer), anything else is unknown.
struct OnePlace(tokio::sync::Semaphore);

#[async_trait::async_trait]
impl tripstream_engine::Destinations for OnePlace {
    async fn resolve(
        &self,
        location: &tripstream_domain::Location,
    ) -> Result<tripstream_domain::Destination, tripstream_engine::ResolveError> {
        let _answer = self.0.acquire().await.expect("the semaphore stays open");
        match location.as_str() {
            "Seoul" => Ok(seoul()),
            other => Err(tripstream_engine::ResolveError::Unknown { location: other.to_owned(), known: vec![] }),
        }
    }

    fn list(&self) -> Vec<tripstream_domain::Destination> {
        vec![seoul()]
    }

    fn costs_a_lookup(&self, _: &tripstream_domain::Location) -> bool {
        true
    }
}

#[tokio::test]
async fn a_place_looked_up_in_the_first_step_is_found_after_the_first_event_or_ends_the_stream() {
    use tripstream_engine::Destined;
    let generator = Arc::new(Scripted::new([Ok(draft(vec![day(1), day(2), day(3)]))]));
    let engine = engine(generator, vec![]);
    let geocoder = OnePlace(tokio::sync::Semaphore::new(0));

    // The first event is out while the geocoder has not answered; the plan is made once it has.
    let (mut sink, mut received) = tokio::sync::mpsc::unbounded_channel();
    let seoul_trip = request(Language::En);
    let run = engine.run_until(&seoul_trip, Destined::Lookup(&geocoder), &mut sink, std::future::pending());
    tokio::pin!(run);
    for _ in 0..10 {
        tokio::select! {
            biased;
            _ = &mut run => panic!("the run ended before its place was found"),
            () = tokio::task::yield_now() => {}
        }
    }
    let Ok(StreamEvent::Status(first)) = received.try_recv() else { panic!("the first step's status comes first") };
    assert_eq!((first.step, first.progress), (tripstream_domain::Step::GatherContext, 10));
    assert!(received.try_recv().is_err(), "nothing else before the place is found");
    geocoder.0.add_permits(10);
    let plan = run.await.expect("Seoul is found");
    assert_eq!(plan.destination.name, "Seoul");
    let mut events = vec![StreamEvent::Status(first)];
    while let Ok(event) = received.try_recv() {
        events.push(event);
    }
    assert_well_formed(&events);

    // A place the geocoder does not know ends the stream as the contract's unknown destination.
    let mut events = Vec::new();
    let mut unknown = request(Language::En);
    unknown.location = tripstream_domain::Location::parse("Atlantis").unwrap();
    let err = engine.run_until(&unknown, Destined::Lookup(&geocoder), &mut events, std::future::pending()).await;
    assert_eq!(err.unwrap_err().code, ErrorCode::UnknownDestination);
    assert_well_formed(&events);
    let kinds: Vec<&str> = events.iter().map(StreamEvent::kind).collect();
    assert_eq!(kinds, ["status", "error", "done"]);
    let StreamEvent::Error(failure) = &events[1] else { unreachable!() };
    assert_eq!((failure.message.as_str(), failure.retryable), ("We do not know this destination.", false));
}
