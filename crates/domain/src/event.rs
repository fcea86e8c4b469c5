//! The events of a generation, exactly as they go on the wire (`data:` of each SSE message), and the
//! progress table they follow.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::plan::{Day, Plan, Usage};

/// The workflow's steps, named as on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Step {
    GatherContext,
    GenerateDraft,
    ValidatePlan,
    RefinePlan,
    FinalizePlan,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::GatherContext => "gather_context",
            Step::GenerateDraft => "generate_draft",
            Step::ValidatePlan => "validate_plan",
            Step::RefinePlan => "refine_plan",
            Step::FinalizePlan => "finalize_plan",
        }
    }
}

/// The `progress` figures of API.md's "Order and progress" table.
pub mod progress {
    pub const GATHER_STATUS: u8 = 10;
    pub const GATHER_DONE: u8 = 20;
    pub const DRAFT_STATUS: u8 = 30;
    pub const DRAFT_CHUNK_FIRST: u8 = 31;
    pub const DRAFT_CHUNK_LAST: u8 = 55;
    pub const DRAFT_DONE: u8 = 60;
    pub const VALIDATE_STATUS: u8 = 65;
    pub const VALIDATE_DONE: u8 = 70;
    pub const REFINE_LAST: u8 = 90;
    pub const FINALIZE_STATUS: u8 = 95;
    pub const COMPLETE: u8 = 100;

    /// `(status, progress)` of refine iteration `i` of `max` (1-based): the 70–90 band split evenly,
    /// the status in the middle of its share and the progress at its end.
    pub fn refine(i: u32, max: u32) -> (u8, u8) {
        let (i, max) = (i.clamp(1, max.max(1)), max.max(1));
        let span = u32::from(REFINE_LAST - super::progress::VALIDATE_DONE);
        let base = u32::from(VALIDATE_DONE);
        let status = base + span * (2 * i - 1) / (2 * max);
        let done = base + span * i / max;
        (status as u8, done as u8)
    }
}

/// The stable error codes of the contract: the `error` of an `error` event and the `error.code` of an
/// HTTP error body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidRequest,
    UnknownDestination,
    LlmUnavailable,
    LlmRateLimited,
    LlmBadOutput,
    LlmTimeout,
    WeatherUnavailable,
    Timeout,
    Internal,
    /// The stream was cancelled by its owner or abandoned by every listener.
    Cancelled,
    /// HTTP only: no such endpoint, stream or plan (or not the caller's).
    NotFound,
    /// HTTP only: a store this answer needs (the shared event log, the run log) cannot be reached now.
    Unavailable,
    /// HTTP only: no API key where one is needed, or one that is not valid.
    Unauthorized,
    /// HTTP only: a valid key without the scope this needs.
    Forbidden,
    /// HTTP only: an `Idempotency-Key` this caller used before with another request.
    IdempotencyKeyReused,
    /// HTTP only: the caller's request rate is over its limit.
    RateLimited,
    /// HTTP only: the caller's daily LLM token budget is spent.
    QuotaExceeded,
    /// HTTP only: this replica is at its capacity; another may not be.
    Overloaded,
    /// HTTP only: no such saved plan or version, or not the caller's.
    PlanNotFound,
    /// HTTP only: no such share link, or revoked, or not the caller's to revoke.
    ShareNotFound,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::UnknownDestination => "unknown_destination",
            ErrorCode::LlmUnavailable => "llm_unavailable",
            ErrorCode::LlmRateLimited => "llm_rate_limited",
            ErrorCode::LlmBadOutput => "llm_bad_output",
            ErrorCode::LlmTimeout => "llm_timeout",
            ErrorCode::WeatherUnavailable => "weather_unavailable",
            ErrorCode::Timeout => "timeout",
            ErrorCode::Internal => "internal",
            ErrorCode::Cancelled => "cancelled",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::IdempotencyKeyReused => "idempotency_key_reused",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::QuotaExceeded => "quota_exceeded",
            ErrorCode::Overloaded => "overloaded",
            ErrorCode::PlanNotFound => "plan_not_found",
            ErrorCode::ShareNotFound => "share_not_found",
        }
    }

    /// Whether the same request may succeed if sent again later.
    pub fn is_retryable(self) -> bool {
        !matches!(
            self,
            ErrorCode::InvalidRequest
                | ErrorCode::UnknownDestination
                | ErrorCode::Cancelled
                | ErrorCode::NotFound
                | ErrorCode::PlanNotFound
                | ErrorCode::ShareNotFound
                | ErrorCode::Unauthorized
                | ErrorCode::Forbidden
                | ErrorCode::IdempotencyKeyReused
        )
    }
}

/// A `status` or `progress` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StepMessage {
    pub message: String,
    pub progress: u8,
    pub step: Step,
    /// Ext: the refine iteration (1-based) this event belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iteration: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Chunk {
    pub content: String,
    pub progress: u8,
    pub step: Step,
}

/// Ext: one day of the draft, complete and parsed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DayReady {
    pub day: Day,
    pub progress: u8,
    pub step: Step,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Complete {
    pub message: String,
    pub progress: u8,
    pub step: Step,
    // Shared, not copied, by every caller's `complete`: each adds only its own `planId`.
    #[cfg_attr(feature = "openapi", schema(value_type = Plan))]
    pub plan: Arc<Plan>,
    /// Ext: the id of the caller's saved copy (`plan_…`), for `GET /api/v1/plans/{planId}`; absent when
    /// the plan could not be saved. Set per caller as the event is delivered, never by the engine.
    #[serde(default, rename = "planId", skip_serializing_if = "Option::is_none")]
    pub plan_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Failure {
    pub message: String,
    pub error: ErrorCode,
    /// Ext: whether sending the same request again may succeed.
    pub retryable: bool,
    /// Ext: tokens spent before the failure, when an LLM was called.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// Ext: on `cancelled`, the days drafted before the cancellation.
    #[serde(default, rename = "partialDays", skip_serializing_if = "Option::is_none")]
    pub partial_days: Option<Vec<Day>>,
}

/// One event of a stream. Serialized with a `type` tag, exactly as API.md lists them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamEvent {
    /// A step started.
    Status(StepMessage),
    /// A step reached its milestone.
    Progress(StepMessage),
    /// A piece of the draft as it is generated: human-readable text, not raw JSON.
    Chunk(Chunk),
    /// Ext: one day of the draft is complete and parsed, for rendering cards as they come.
    Day(DayReady),
    /// The final plan (`progress` 100, `step` `finalize_plan`).
    Complete(Complete),
    /// The generation failed: `message` is for people (in the request's language), `error` a stable code.
    Error(Failure),
    /// The last message of every stream, success or failure; nothing follows it.
    Done,
}

impl StreamEvent {
    pub fn kind(&self) -> &'static str {
        match self {
            StreamEvent::Status(_) => "status",
            StreamEvent::Progress(_) => "progress",
            StreamEvent::Chunk(_) => "chunk",
            StreamEvent::Day(_) => "day",
            StreamEvent::Complete(_) => "complete",
            StreamEvent::Error(_) => "error",
            StreamEvent::Done => "done",
        }
    }

    pub fn progress(&self) -> Option<u8> {
        match self {
            StreamEvent::Status(m) | StreamEvent::Progress(m) => Some(m.progress),
            StreamEvent::Chunk(c) => Some(c.progress),
            StreamEvent::Day(d) => Some(d.progress),
            StreamEvent::Complete(c) => Some(c.progress),
            StreamEvent::Error(_) | StreamEvent::Done => None,
        }
    }

    /// Raises the event's progress to at least `floor` (a restarted generation must not go back on
    /// what its stream already showed).
    pub fn raise_progress(&mut self, floor: u8) {
        let p = match self {
            StreamEvent::Status(m) | StreamEvent::Progress(m) => &mut m.progress,
            StreamEvent::Chunk(c) => &mut c.progress,
            StreamEvent::Day(d) => &mut d.progress,
            StreamEvent::Complete(c) => &mut c.progress,
            StreamEvent::Error(_) | StreamEvent::Done => return,
        };
        *p = (*p).max(floor);
    }

    pub fn step(&self) -> Option<Step> {
        match self {
            StreamEvent::Status(m) | StreamEvent::Progress(m) => Some(m.step),
            StreamEvent::Chunk(c) => Some(c.step),
            StreamEvent::Day(d) => Some(d.step),
            StreamEvent::Complete(c) => Some(c.step),
            StreamEvent::Error(_) | StreamEvent::Done => None,
        }
    }

    /// Whether this event ends a stream's content (only `done` follows it).
    pub fn is_terminal(&self) -> bool {
        matches!(self, StreamEvent::Complete(_) | StreamEvent::Error(_))
    }
}

/// The JSON of an event as sent: the event's fields plus, on the first event of a response, `streamId`,
/// and `resumeToken` when that response gave the caller their stream.
#[derive(Debug, Serialize)]
pub struct WireEvent<'a> {
    #[serde(flatten)]
    pub event: &'a StreamEvent,
    #[serde(rename = "streamId", skip_serializing_if = "Option::is_none")]
    pub stream_id: Option<&'a str>,
    #[serde(rename = "resumeToken", skip_serializing_if = "Option::is_none")]
    pub resume_token: Option<&'a str>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialize_as_the_contract_says() {
        let status = StreamEvent::Status(StepMessage {
            message: "검증 완료".into(),
            progress: 70,
            step: Step::ValidatePlan,
            iteration: None,
        });
        assert_eq!(
            serde_json::to_string(&status).unwrap(),
            r#"{"type":"status","message":"검증 완료","progress":70,"step":"validate_plan"}"#
        );
        assert_eq!(serde_json::to_string(&StreamEvent::Done).unwrap(), r#"{"type":"done"}"#);
        let wire = WireEvent { event: &StreamEvent::Done, stream_id: Some("str_1"), resume_token: None };
        assert_eq!(serde_json::to_string(&wire).unwrap(), r#"{"type":"done","streamId":"str_1"}"#);
        let back: StreamEvent =
            serde_json::from_str(r#"{"type":"error","message":"x","error":"llm_timeout","retryable":true}"#).unwrap();
        assert!(matches!(back, StreamEvent::Error(Failure { error: ErrorCode::LlmTimeout, .. })));
    }

    #[test]
    fn refine_progress_splits_the_band_and_never_goes_back() {
        assert_eq!(progress::refine(1, 2), (75, 80));
        assert_eq!(progress::refine(2, 2), (85, 90));
        assert_eq!(progress::refine(1, 1), (80, 90));
        let mut last = progress::VALIDATE_DONE;
        for i in 1..=5 {
            let (s, p) = progress::refine(i, 5);
            assert!(last <= s && s <= p, "{last} {s} {p}");
            last = p;
        }
        assert_eq!(last, progress::REFINE_LAST);
    }
}
