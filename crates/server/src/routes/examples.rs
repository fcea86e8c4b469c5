//! The examples of the OpenAPI document: a plan and stream transcripts, made from the domain's own types.
//! Each event is parsed into [`StreamEvent`] and written back as the server writes it, so an example that
//! stopped fitting its type fails the tests that build the document.

use serde_json::{Value, json};
use tripstream_domain::event::WireEvent;
use tripstream_domain::plan::Plan;
use tripstream_domain::{ErrorCode, Language, StreamEvent, messages};

const EN: Language = Language::En;
const STREAM_ID: &str = "str_01JCB3X9K4W8Z2N5Q7R1T6V0YD";
const RESUME_TOKEN: &str = "rtk_3q2Jx0fV…";

/// A one-day plan, as `complete` and `/plans/generate` carry it.
pub fn plan() -> Value {
    let plan = json!({
        "id": "pln_01JCB3X9K4W8Z2N5Q7R1T6V0YD",
        "title": "Seoul, 1 day",
        "location": "Seoul",
        "destination": {"name": "Seoul", "country": "KR", "lat": 37.5665, "lon": 126.978, "timezone": "Asia/Seoul"},
        "startDate": "2025-11-10",
        "endDate": "2025-11-10",
        "budget": "medium",
        "travelers": 1,
        "currency": "KRW",
        "language": "en",
        "days": [day()],
        "totalCost": 21000,
        "tips": ["Buy a T-money card for the subway."],
        "warnings": [],
        "metadata": {
            "provider": "gemini", "model": "gemini-2.5-flash-lite", "generatedAt": "2025-11-04T10:00:00Z",
            "iterations": 1, "promptVersion": "plan-v2", "weatherSource": "openweathermap", "durationMs": 6012,
            "cached": false, "usage": {"inputTokens": 812, "outputTokens": 1403}
        }
    });
    let typed: Plan = serde_json::from_value(plan).expect("the example plan is a Plan");
    serde_json::to_value(typed).expect("a plan serializes")
}

fn day() -> Value {
    json!({
        "day": 1,
        "date": "2025-11-10",
        "theme": "Jongno & Bukchon",
        "weather": {"summary": "Clear", "tempMinC": 5.0, "tempMaxC": 14.0, "precipitationChance": 10, "source": "forecast"},
        "activities": [
            {"time": "09:00", "durationMinutes": 120, "name": "Gyeongbokgung Palace", "description": "The main royal palace.",
             "category": "sightseeing", "area": "Jongno", "cost": 3000, "indoor": false,
             "location": {"lat": 37.5796, "lon": 126.977}},
            {"time": "12:00", "durationMinutes": 60, "name": "Tosokchon Samgyetang", "description": "Ginseng chicken soup.",
             "category": "food", "area": "Jongno", "cost": 18000, "indoor": true},
            {"time": "14:00", "durationMinutes": 120, "name": "Bukchon Hanok Village", "description": "Walk the alleys.",
             "category": "culture", "area": "Bukchon", "cost": 0, "indoor": false}
        ],
        "dailyCost": 21000
    })
}

fn step(kind: &str, message: &str, progress: u8, step: &str) -> Value {
    json!({"type": kind, "message": message, "progress": progress, "step": step})
}

/// A successful stream, every step and every kind of event but `error`.
pub fn success() -> String {
    transcript(&[
        step("status", &messages::gather_status(EN, "Seoul"), 10, "gather_context"),
        step("progress", &messages::gather_done(EN), 20, "gather_context"),
        step("status", &messages::draft_status(EN), 30, "generate_draft"),
        json!({"type": "chunk", "content": "Day 1: Jongno & Bukchon. 09:00 Gyeongbokgung Palace…", "progress": 31, "step": "generate_draft"}),
        json!({"type": "day", "day": day(), "progress": 55, "step": "generate_draft"}),
        step("progress", &messages::draft_done(EN, 1), 60, "generate_draft"),
        step("status", &messages::validate_status(EN), 65, "validate_plan"),
        step("progress", &messages::validate_done(EN), 70, "validate_plan"),
        step("status", &messages::finalize_status(EN), 95, "finalize_plan"),
        json!({"type": "complete", "message": messages::complete(EN), "progress": 100, "step": "finalize_plan", "plan": plan()}),
        json!({"type": "done"}),
    ])
}

/// A stream whose generation failed: `error`, then `done`.
pub fn failure() -> String {
    transcript(&[
        step("status", &messages::gather_status(EN, "Seoul"), 10, "gather_context"),
        step("progress", &messages::gather_done(EN), 20, "gather_context"),
        step("status", &messages::draft_status(EN), 30, "generate_draft"),
        json!({"type": "error", "message": messages::error(EN, ErrorCode::LlmTimeout), "error": "llm_timeout", "retryable": true}),
        json!({"type": "done"}),
    ])
}

/// A stream its owner cancelled after the first day was drafted.
pub fn cancelled() -> String {
    transcript(&[
        step("status", &messages::draft_status(EN), 30, "generate_draft"),
        json!({"type": "day", "day": day(), "progress": 40, "step": "generate_draft"}),
        json!({"type": "error", "message": messages::error(EN, ErrorCode::Cancelled), "error": "cancelled", "retryable": false, "partialDays": [day()]}),
        json!({"type": "done"}),
    ])
}

/// The events as the server writes them: `retry:` and the stream's id (and resume token) on the first.
fn transcript(events: &[Value]) -> String {
    let mut text = String::new();
    for (seq, event) in events.iter().enumerate() {
        let event: StreamEvent = serde_json::from_value(event.clone()).expect("an example event is a StreamEvent");
        let first = seq == 0;
        let wire = WireEvent {
            event: &event,
            stream_id: first.then_some(STREAM_ID),
            resume_token: first.then_some(RESUME_TOKEN),
        };
        let data = serde_json::to_string(&wire).expect("events serialize");
        if first {
            text.push_str("retry: 3000\n");
        }
        text.push_str(&format!("id: {seq}\ndata: {data}\n\n"));
    }
    text
}
