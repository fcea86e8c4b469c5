//! A scripted generator, a fixed weather source and a transcript renderer for snapshots.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use jiff::civil::date;
use tripstream_domain::event::ErrorCode;
use tripstream_domain::plan::*;
use tripstream_domain::request::{RawPlanRequest, RequestLimits};
use tripstream_domain::{BudgetCeilings, Destination, Finding, Language, Localized, PlanRequest, StreamEvent};
use tripstream_engine::{
    DayRequest, Draft, DraftSink, GenerateError, GeneratorInfo, PlanContext, PlanGenerator, Weather, WeatherError,
    WeatherReport,
};

pub type Script = Result<Draft, GenerateError>;

/// Answers each call with the next scripted result; records the findings each refine call was given,
/// and what each day regeneration was asked.
pub struct Scripted {
    pub drafts: Mutex<VecDeque<Script>>,
    pub calls: AtomicUsize,
    pub refine_findings: Mutex<Vec<Vec<Finding>>>,
    pub day_requests: Mutex<Vec<AskedDay>>,
}

/// A [`DayRequest`] as the generator saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct AskedDay {
    pub index: u32,
    pub instruction: Option<String>,
    pub current: Vec<Day>,
    pub attempt: Option<Day>,
    pub findings: Vec<Finding>,
}

impl Scripted {
    pub fn new(script: impl IntoIterator<Item = Script>) -> Self {
        Self {
            drafts: Mutex::new(script.into_iter().collect()),
            calls: AtomicUsize::new(0),
            refine_findings: Mutex::new(Vec::new()),
            day_requests: Mutex::new(Vec::new()),
        }
    }

    fn next(&self, sink: &mut dyn DraftSink) -> Script {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let next = self.drafts.lock().unwrap().pop_front().expect("the script ran out");
        if let Ok(draft) = &next {
            for day in &draft.days {
                sink.text(&format!("Day {} — {}\n", day.day, day.theme));
                for a in &day.activities {
                    sink.text(&format!("{} {}\n", a.time, a.name));
                }
                sink.day(day);
            }
        }
        next
    }
}

#[async_trait]
impl PlanGenerator for Scripted {
    fn info(&self) -> GeneratorInfo {
        GeneratorInfo { provider: "scripted".into(), model: "script-1".into(), prompt_version: "test-v1".into() }
    }

    async fn generate_draft(&self, _: &PlanContext, sink: &mut dyn DraftSink) -> Result<Draft, GenerateError> {
        self.next(sink)
    }

    async fn refine_plan(
        &self,
        _: &PlanContext,
        _: &Draft,
        findings: &[Finding],
        sink: &mut dyn DraftSink,
    ) -> Result<Draft, GenerateError> {
        self.refine_findings.lock().unwrap().push(findings.to_vec());
        self.next(sink)
    }

    async fn regenerate_day(
        &self,
        _: &PlanContext,
        ask: &DayRequest<'_>,
        sink: &mut dyn DraftSink,
    ) -> Result<Draft, GenerateError> {
        self.day_requests.lock().unwrap().push(AskedDay {
            index: ask.index,
            instruction: ask.instruction.map(str::to_owned),
            current: ask.current.days.clone(),
            attempt: ask.refining.map(|(day, _)| day.clone()),
            findings: ask.findings().to_vec(),
        });
        self.next(sink)
    }
}

/// Never answers: for timeouts.
pub struct Stalled;

#[async_trait]
impl PlanGenerator for Stalled {
    fn info(&self) -> GeneratorInfo {
        GeneratorInfo { provider: "stalled".into(), model: "m".into(), prompt_version: "v".into() }
    }
    async fn generate_draft(&self, _: &PlanContext, _: &mut dyn DraftSink) -> Result<Draft, GenerateError> {
        std::future::pending().await
    }
    async fn refine_plan(
        &self,
        _: &PlanContext,
        _: &Draft,
        _: &[Finding],
        _: &mut dyn DraftSink,
    ) -> Result<Draft, GenerateError> {
        std::future::pending().await
    }
}

/// Dry days except the ones listed as rainy (1-based).
pub struct FixedWeather {
    pub rainy_days: Vec<u32>,
}

#[async_trait]
impl Weather for FixedWeather {
    async fn forecast(&self, _: &Destination, request: &PlanRequest) -> Result<WeatherReport, WeatherError> {
        let days = (1..=request.dates.len())
            .map(|d| DayWeather {
                summary: if self.rainy_days.contains(&d) { "비".into() } else { "맑음".into() },
                temp_min_c: 5.0,
                temp_max_c: 14.0,
                precipitation_chance: if self.rainy_days.contains(&d) { 80 } else { 10 },
                source: WeatherSource::Climatology,
            })
            .collect();
        Ok(WeatherReport { days, source: "climatology".into() })
    }
}

pub struct NoWeather;

#[async_trait]
impl Weather for NoWeather {
    async fn forecast(&self, _: &Destination, _: &PlanRequest) -> Result<WeatherReport, WeatherError> {
        Err(WeatherError("every source failed".into()))
    }
}

pub fn seoul() -> Destination {
    Destination {
        id: "seoul".into(),
        name: Localized { en: "Seoul".into(), ko: "서울".into() },
        country: "KR".into(),
        lat: 37.5665,
        lon: 126.978,
        timezone: "Asia/Seoul".into(),
        currency: "KRW".into(),
        budget: BudgetCeilings { low: 50_000, medium: 100_000, high: 300_000 },
        climate: None,
        profile: None,
    }
}

pub fn request(lang: Language) -> PlanRequest {
    let raw = RawPlanRequest {
        location: Some("Seoul".into()),
        start_date: Some("2025-11-10".into()),
        end_date: Some("2025-11-12".into()),
        budget: Some("medium".into()),
        language: Some(lang.as_str().into()),
        ..Default::default()
    };
    PlanRequest::parse(raw, None, RequestLimits::default()).unwrap()
}

pub fn activity(time: &str, name: &str, category: Category, cost: u64, indoor: bool) -> Activity {
    Activity {
        time: ClockTime::parse(time).unwrap(),
        duration_minutes: 90,
        name: name.into(),
        description: String::new(),
        category,
        area: "종로".into(),
        cost,
        indoor,
        location: None,
    }
}

/// A sound day (cost 33,000): two sights around two meals, no idle gap, at Seoul's meal times. The model's weather is deliberately off.
pub fn day(n: u32) -> Day {
    Day {
        day: n,
        date: date(2000, 1, 1),
        theme: format!("테마 {n}"),
        weather: DayWeather {
            summary: "model's guess".into(),
            temp_min_c: 0.0,
            temp_max_c: 0.0,
            precipitation_chance: 0,
            source: WeatherSource::Forecast,
        },
        activities: vec![
            activity("09:00", &format!("궁궐 {n}"), Category::Sightseeing, 3000, false),
            activity("12:00", &format!("점심 {n}"), Category::Food, 10000, true),
            activity("15:00", &format!("박물관 {n}"), Category::Culture, 0, true),
            activity("18:00", &format!("저녁 {n}"), Category::Food, 20000, true),
        ],
        daily_cost: 0,
    }
}

pub fn draft(days: Vec<Day>) -> Draft {
    Draft {
        title: None,
        days,
        tips: vec!["팁".into()],
        usage: Usage { input_tokens: 100, output_tokens: 200 },
        generator: None,
        notes: Vec::new(),
    }
}

pub fn bad_output() -> GenerateError {
    GenerateError {
        code: ErrorCode::LlmBadOutput,
        detail: "unparseable".into(),
        usage: Usage { input_tokens: 10, output_tokens: 5 },
    }
}

/// One line per event: `type progress step text`, with chunk text kept and plans summarized.
pub fn transcript(events: &[StreamEvent]) -> String {
    let mut out = String::new();
    for e in events {
        let line = match e {
            StreamEvent::Status(m) | StreamEvent::Progress(m) => format!(
                "{} {} {} {}{}",
                e.kind(),
                m.progress,
                m.step.as_str(),
                m.message,
                m.iteration.map(|i| format!(" [iteration {i}]")).unwrap_or_default()
            ),
            StreamEvent::Chunk(c) => {
                format!("chunk {} {} {:?}", c.progress, c.step.as_str(), c.content)
            }
            StreamEvent::Day(d) => format!(
                "day {} {} day={} date={} weather={}% activities={} cost={}",
                d.progress,
                d.step.as_str(),
                d.day.day,
                d.day.date,
                d.day.weather.precipitation_chance,
                d.day.activities.len(),
                d.day.daily_cost
            ),
            StreamEvent::Complete(c) => format!(
                "complete {} {} {} (days={} total={} warnings={:?})",
                c.progress,
                c.step.as_str(),
                c.message,
                c.plan.days.len(),
                c.plan.total_cost,
                c.plan.warnings
            ),
            StreamEvent::Error(f) => format!("error {} {} retryable={}", f.error.as_str(), f.message, f.retryable),
            StreamEvent::Done => "done".into(),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// What every stream must satisfy: progress never decreases, exactly one `done`, last.
pub fn assert_well_formed(events: &[StreamEvent]) {
    let mut last = 0;
    for e in events {
        if let Some(p) = e.progress() {
            assert!(p >= last, "progress went back from {last} to {p}");
            last = p;
        }
    }
    assert_eq!(events.iter().filter(|e| matches!(e, StreamEvent::Done)).count(), 1);
    assert!(matches!(events.last(), Some(StreamEvent::Done)));
    let terminal = events.iter().filter(|e| e.is_terminal()).count();
    assert_eq!(terminal, 1, "exactly one complete or error");
}
