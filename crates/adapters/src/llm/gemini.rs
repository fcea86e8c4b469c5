//! Google's Gemini API: `POST /v1beta/models/{model}:streamGenerateContent?alt=sse`, the key in
//! `x-goog-api-key`, JSON output constrained by `responseSchema`. Each SSE frame is a
//! `GenerateContentResponse`; an `{"error": …}` body or frame is a `google.rpc.Status`.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use tripstream_domain::event::ErrorCode;
use tripstream_domain::plan::Usage;
use tripstream_engine::GenerateError;

use super::frames::{self, Answer, fold_list};
use super::prompts::Rendered;
use super::transport::{self, Flow, Rejection, RetryPolicy, Timeouts};
use super::{ChatModel, Completion, Finish};
use crate::http::{Address, Pool, PoolLimits, Secret};

#[derive(Debug, Clone)]
pub struct GeminiConfig {
    pub api_key: Secret,
    /// `GEMINI_MODEL`.
    pub model: String,
    /// `GEMINI_BASE_URL`, for tests and proxies.
    pub base_url: String,
    pub timeouts: Timeouts,
    pub retry: RetryPolicy,
    /// How many HTTP/2 connections carry the streams in flight.
    pub pool: PoolLimits,
    pub temperature: f32,
    /// The ceiling of the answer's own tokens; each call asks for what its trip needs, up to this.
    pub max_output_tokens: u32,
    /// `GEMINI_THINKING_BUDGET`: the thinking tokens a 2.5 model may spend before answering
    /// (`thinkingConfig.thinkingBudget`; `0` turns Flash's thinking off, `-1` lets the model decide).
    /// Unset, nothing is sent and the model thinks as it does by default.
    pub thinking_budget: Option<i32>,
    /// The most bytes a reply may take on the wire.
    pub max_reply_bytes: usize,
}

impl GeminiConfig {
    pub const DEFAULT_MODEL: &'static str = "gemini-2.5-flash-lite";
    pub const DEFAULT_BASE_URL: &'static str = "https://generativelanguage.googleapis.com";

    pub fn new(api_key: Secret) -> Self {
        Self {
            api_key,
            model: Self::DEFAULT_MODEL.into(),
            base_url: Self::DEFAULT_BASE_URL.into(),
            timeouts: Timeouts::default(),
            retry: RetryPolicy::default(),
            pool: PoolLimits::default(),
            temperature: 0.7,
            max_output_tokens: 16_384,
            thinking_budget: None,
            max_reply_bytes: transport::DEFAULT_MAX_REPLY_BYTES,
        }
    }
}

pub struct Gemini {
    config: GeminiConfig,
    clients: Pool,
    url: Address,
    /// The most thinking tokens a reply of this model has reported: thoughts count against
    /// `maxOutputTokens`, so later calls leave them that much room on top of the answer's.
    thought: AtomicU32,
}

/// Room for thoughts when the model decides how long to think (`-1`), until a reply says how much it
/// took: Gemini 2.5's automatic thinking stops at about 8,192 tokens.
const AUTOMATIC_THINKING: u32 = 8_192;
/// The most thinking room any call asks for (Gemini 2.5 Pro's largest budget).
const MAX_THINKING: u32 = 32_768;

/// The response schema, written once: each request's body copies its text instead of cloning and
/// writing a tree of a few hundred values.
static SCHEMA: LazyLock<Box<RawValue>> =
    LazyLock::new(|| serde_json::value::to_raw_value(&super::schema::gemini_schema()).expect("a schema is JSON"));

impl Gemini {
    pub fn new(config: GeminiConfig) -> Self {
        let clients = Pool::new("gemini", &config.base_url, config.timeouts.connect, config.pool);
        let url =
            Address::on(&config.base_url, &format!("/v1beta/models/{}:streamGenerateContent?alt=sse", config.model));
        Self { config, clients, url, thought: AtomicU32::new(0) }
    }

    /// The thinking tokens to leave room for on top of the answer's: the configured budget, or what
    /// replies have shown this model to spend (none until one has thought).
    fn thinking_room(&self) -> u32 {
        let seen = self.thought.load(Ordering::Relaxed);
        match self.config.thinking_budget {
            Some(budget) if budget >= 0 => budget.unsigned_abs(),
            Some(_) => seen.max(AUTOMATIC_THINKING),
            None => seen,
        }
        .min(MAX_THINKING)
    }

    /// The request's JSON, written straight from the prompt's text.
    fn body(&self, prompt: &Rendered, max_output_tokens: u32) -> bytes::Bytes {
        let answer = max_output_tokens.clamp(1, self.config.max_output_tokens.max(1));
        let body = Body {
            system_instruction: Instruction { parts: [Text { text: &prompt.system }] },
            contents: [Contents { role: "user", parts: [Text { text: &prompt.user }] }],
            generation_config: GenerationConfig {
                response_mime_type: "application/json",
                response_schema: &SCHEMA,
                temperature: self.config.temperature,
                max_output_tokens: answer.saturating_add(self.thinking_room()),
                thinking_config: self.config.thinking_budget.map(|thinking_budget| ThinkingConfig { thinking_budget }),
            },
        };
        transport::json_body(&body, prompt.system.len() + prompt.user.len() + SCHEMA.get().len())
    }
}

/// `generateContent`'s request, as much of it as a plan needs.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    system_instruction: Instruction<'a>,
    contents: [Contents<'a>; 1],
    generation_config: GenerationConfig<'a>,
}

#[derive(Serialize)]
struct Instruction<'a> {
    parts: [Text<'a>; 1],
}

#[derive(Serialize)]
struct Contents<'a> {
    role: &'static str,
    parts: [Text<'a>; 1],
}

#[derive(Serialize)]
struct Text<'a> {
    text: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GenerationConfig<'a> {
    response_mime_type: &'static str,
    response_schema: &'a RawValue,
    temperature: f32,
    max_output_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking_config: Option<ThinkingConfig>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ThinkingConfig {
    thinking_budget: i32,
}

#[async_trait]
impl ChatModel for Gemini {
    fn provider(&self) -> &'static str {
        "gemini"
    }

    fn model(&self) -> &str {
        &self.config.model
    }

    async fn stream(
        &self,
        prompt: Rendered,
        max_output_tokens: u32,
        on_text: &mut (dyn for<'t> FnMut(&'t str) + Send),
    ) -> Result<Completion, GenerateError> {
        let body = self.body(&prompt, max_output_tokens);
        drop(prompt);
        let call = async move {
            // Held until the reply has been read: the stream is in flight on its connection until then.
            let lease = self.clients.lease().await;
            let response = transport::send(
                "gemini",
                &self.config.retry,
                &self.config.timeouts,
                || {
                    self.url
                        .post(lease.client())
                        .header("x-goog-api-key", self.config.api_key.expose())
                        .header(reqwest::header::CONTENT_TYPE, "application/json")
                        .body(body.clone())
                },
                rejection,
            )
            .await?;
            drop(body);
            let mut finish = None;
            let mut usage = Usage::default();
            let (idle, max_bytes) = (self.config.timeouts.idle, self.config.max_reply_bytes);
            let read = transport::read_sse("gemini", response, idle, max_bytes, |data| {
                let frame: Frame = serde_json::from_str(data).map_err(|e| {
                    GenerateError::new(ErrorCode::LlmBadOutput, format!("gemini sent a frame that is not JSON: {e}"))
                })?;
                if let Some(error) = frame.error {
                    let r = status_rejection(StatusCode::OK, &error);
                    return Err(GenerateError::new(r.code, format!("gemini error mid-stream: {}", r.message)));
                }
                if let Some(u) = frame.usage_metadata {
                    let thoughts = u32::try_from(u.thoughts_token_count).unwrap_or(u32::MAX);
                    self.thought.fetch_max(thoughts.min(MAX_THINKING), Ordering::Relaxed);
                    usage = Usage {
                        input_tokens: u.prompt_token_count,
                        output_tokens: u.candidates_token_count.saturating_add(u.thoughts_token_count),
                    };
                }
                if let Some(reason) = frame.prompt_feedback.and_then(|f| f.block_reason) {
                    finish = Some(Finish::Blocked(reason));
                }
                frame.candidates.0.deliver(on_text, &mut finish, "STOP", "MAX_TOKENS");
                Ok(Flow::Continue)
            })
            .await;
            transport::completion("gemini", read, finish, usage)
        };
        transport::within("gemini", &self.config.model, self.config.timeouts.total, call).await
    }
}

/// One frame of the reply, its answer folded as it is read ([`frames`]).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Frame<'a> {
    #[serde(default, borrow)]
    candidates: Candidates<'a>,
    usage_metadata: Option<UsageMetadata>,
    prompt_feedback: Option<PromptFeedback>,
    error: Option<Status>,
}

/// A frame's candidates: the text of every part that is the answer, in order, and the last finish
/// reason given.
#[derive(Default)]
struct Candidates<'a>(Answer<'a>);

impl<'de: 'a, 'a> Deserialize<'de> for Candidates<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        fold_list(deserializer, "a list of candidates", |all: &mut Candidates<'a>, one: Candidate<'de>| {
            let parts = one.content.map(|c| c.parts.0).unwrap_or_default();
            all.0.extend(Answer { finish_reason: one.finish_reason.map(|r| r.0), ..parts });
        })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Candidate<'a> {
    #[serde(borrow)]
    content: Option<Content<'a>>,
    #[serde(borrow)]
    finish_reason: Option<frames::Text<'a>>,
}

#[derive(Deserialize)]
struct Content<'a> {
    #[serde(default, borrow)]
    parts: Parts<'a>,
}

/// A candidate's parts, folded into its answer's text: parts without text (a lone `thoughtSignature`)
/// and thought summaries are not the answer.
#[derive(Default)]
struct Parts<'a>(Answer<'a>);

impl<'de: 'a, 'a> Deserialize<'de> for Parts<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        fold_list(deserializer, "a list of parts", |parts: &mut Parts<'a>, part: Part<'de>| {
            if !part.thought {
                parts.0.push(part.text);
            }
        })
    }
}

#[derive(Deserialize)]
struct Part<'a> {
    #[serde(default, borrow)]
    text: frames::Text<'a>,
    #[serde(default)]
    thought: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PromptFeedback {
    block_reason: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct UsageMetadata {
    #[serde(default)]
    prompt_token_count: u64,
    #[serde(default)]
    candidates_token_count: u64,
    #[serde(default)]
    thoughts_token_count: u64,
}

/// `google.rpc.Status`.
#[derive(Deserialize, Default)]
struct Status {
    #[serde(default)]
    message: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    details: Vec<Value>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: Status,
}

fn rejection(status: StatusCode, _headers: &reqwest::header::HeaderMap, body: &str) -> Rejection {
    let parsed = serde_json::from_str::<ErrorBody>(body)
        .map(|b| b.error)
        .unwrap_or_else(|_| Status { message: body.chars().take(200).collect(), ..Status::default() });
    status_rejection(status, &parsed)
}

fn status_rejection(status: StatusCode, error: &Status) -> Rejection {
    let rate_limited = status == StatusCode::TOO_MANY_REQUESTS || error.status == "RESOURCE_EXHAUSTED";
    let code = if rate_limited {
        ErrorCode::LlmRateLimited
    } else if error.status == "DEADLINE_EXCEEDED" || status == StatusCode::GATEWAY_TIMEOUT {
        ErrorCode::LlmTimeout
    } else {
        ErrorCode::LlmUnavailable
    };
    let message =
        if error.status.is_empty() { error.message.clone() } else { format!("{}: {}", error.status, error.message) };
    Rejection { code, message, retry_after: retry_delay(&error.details) }
}

/// `RetryInfo.retryDelay`, a protobuf Duration in JSON: `"7s"`, `"0.5s"`; clamped like `Retry-After`
/// (`"1e20s"` is read as the longest wait, never a panic).
fn retry_delay(details: &[Value]) -> Option<Duration> {
    details
        .iter()
        .filter(|d| d["@type"].as_str().is_some_and(|t| t.ends_with("google.rpc.RetryInfo")))
        .find_map(|d| d["retryDelay"].as_str()?.strip_suffix('s')?.parse::<f64>().ok())
        .and_then(transport::delay_secs)
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;

    /// A frame's answer is every text part of every candidate in order, thoughts and bare signatures
    /// left out, borrowed when it is one piece without escapes; its finish reason the last one given.
    #[test]
    fn a_frames_candidates_fold_into_its_answer() {
        let answer = |frame: &str| {
            let frame: Frame = serde_json::from_str(frame).unwrap();
            let Answer { text, finish_reason } = frame.candidates.0;
            let text = text.map(|t| (matches!(t, Cow::Borrowed(_)), t.into_owned()));
            (text, finish_reason.map(Cow::into_owned))
        };
        let one = r#"{"candidates": [{"content": {"parts": [{"text": "{\"days\""}], "role": "model"}, "index": 0}],
            "modelVersion": "gemini-2.5-flash", "responseId": "x"}"#;
        assert_eq!(answer(one), (Some((false, r#"{"days""#.to_owned())), None));
        let plain = r#"{"candidates": [{"content": {"parts": [{"text": "Day 1"}]}}]}"#;
        assert_eq!(answer(plain), (Some((true, "Day 1".to_owned())), None), "no escapes: borrowed");
        let many = r#"{"candidates": [
            {"content": {"parts": [{"text": "plan", "thought": true}, {"thoughtSignature": "c2ln"},
                                   {"text": "a"}, {"text": "b\n"}]}, "finishReason": "MAX_TOKENS"},
            {"content": {"parts": []}},
            {"finishReason": "STOP"},
            {"content": {"parts": [{"text": "c"}]}}]}"#;
        assert_eq!(answer(many), (Some((false, "ab\nc".to_owned())), Some("STOP".to_owned())));
        let ends = r#"{"candidates": [{"content": {"parts": [{"text": ""}]}, "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 10}}"#;
        assert_eq!(answer(ends), (None, Some("STOP".to_owned())), "an empty text is no answer");
        for nothing in [r#"{"usageMetadata": {}}"#, r#"{"candidates": []}"#, r#"{"candidates": [{}]}"#] {
            assert_eq!(answer(nothing), (None, None), "{nothing}");
        }
        for refused in [r#"{"candidates": {}}"#, r#"{"candidates": [{"content": {"parts": {}}}]}"#] {
            assert!(serde_json::from_str::<Frame>(refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn retry_info_is_read_from_the_status_details() {
        let body = r#"{"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).",
            "status": "RESOURCE_EXHAUSTED", "details": [
              {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": []},
              {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1.5s"}]}}"#;
        let r = rejection(StatusCode::TOO_MANY_REQUESTS, &Default::default(), body);
        assert_eq!((r.code, r.retry_after), (ErrorCode::LlmRateLimited, Some(Duration::from_millis(1500))));
        assert!(r.message.starts_with("RESOURCE_EXHAUSTED: Resource has been exhausted"));
        let r = rejection(StatusCode::SERVICE_UNAVAILABLE, &Default::default(), "<html>upstream</html>");
        assert_eq!((r.code, r.retry_after), (ErrorCode::LlmUnavailable, None));
    }

    #[test]
    fn absurd_retry_delays_are_clamped_and_garbage_is_ignored() {
        let delay = |d: &str| {
            let body = format!(
                r#"{{"error": {{"status": "RESOURCE_EXHAUSTED", "details": [
                    {{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "{d}"}}]}}}}"#
            );
            rejection(StatusCode::TOO_MANY_REQUESTS, &Default::default(), &body).retry_after
        };
        for huge in ["1e20s", "1e400s", "inf", "18446744073709551616s"] {
            assert!(matches!(delay(huge), None | Some(transport::MAX_RETRY_DELAY)), "{huge}");
        }
        assert_eq!(delay("1e20s"), Some(transport::MAX_RETRY_DELAY));
        for garbage in ["-1s", "NaNs", "soon", "", "s", "7"] {
            assert_eq!(delay(garbage), None, "{garbage}");
        }
    }
}
