//! OpenAI-compatible chat completions: `POST /v1/chat/completions` with `stream: true`, spoken by OpenAI,
//! vLLM, llama.cpp's server and Ollama. Structured output via `response_format: json_schema`.
//!
//! Servers and models differ in what they take, and say so with a 400 naming the parameter. Each of
//! these is learned from its first refusal, the call is sent again without it, and every call after goes
//! without it: a schema (then `json_object`; the prompt describes the shape either way), `max_tokens`
//! (then `max_completion_tokens`, which OpenAI's reasoning models require and local servers do not all
//! read), `temperature` (then the model's default, the only value reasoning models accept) and
//! `stream_options` (then no usage report, which some servers do not know). Which one is refused is read
//! from the error's `param` field where the server gives it, else from its message.

use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use tripstream_domain::event::ErrorCode;
use tripstream_domain::plan::Usage;
use tripstream_engine::GenerateError;

use super::frames::{Answer, Text, fold_list};
use super::prompts::Rendered;
use super::transport::{self, Flow, Rejection, RetryPolicy, Timeouts};
use super::{ChatModel, Completion};
use crate::http::{Address, Lease, Pool, PoolLimits, Secret};

#[derive(Debug, Clone)]
pub struct OpenAiConfig {
    /// `OPENAI_BASE_URL`: `https://api.openai.com`, `http://localhost:11434` (Ollama),
    /// `http://localhost:8080` (llama.cpp); a trailing `/v1` is accepted too.
    pub base_url: String,
    /// `OPENAI_API_KEY`; local servers need none.
    pub api_key: Option<Secret>,
    /// `OPENAI_MODEL`.
    pub model: String,
    pub timeouts: Timeouts,
    pub retry: RetryPolicy,
    /// How many HTTP/2 connections carry the streams in flight.
    pub pool: PoolLimits,
    pub temperature: f32,
    /// The ceiling of `max_tokens`; each call asks for what its trip needs, up to this.
    pub max_output_tokens: u32,
    /// The most bytes a reply may take on the wire.
    pub max_reply_bytes: usize,
}

impl OpenAiConfig {
    pub const DEFAULT_MODEL: &'static str = "gpt-4o-mini";

    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            api_key: None,
            model: Self::DEFAULT_MODEL.into(),
            timeouts: Timeouts::default(),
            retry: RetryPolicy::default(),
            pool: PoolLimits::default(),
            temperature: 0.7,
            max_output_tokens: 16_384,
            max_reply_bytes: transport::DEFAULT_MAX_REPLY_BYTES,
        }
    }
}

pub struct OpenAi {
    config: OpenAiConfig,
    clients: Pool,
    url: Address,
    /// The plan's JSON Schema, written once.
    schema: Box<RawValue>,
    refused: Refused,
}

/// What the server has refused so far.
#[derive(Default)]
struct Refused {
    schema: AtomicBool,
    max_tokens: AtomicBool,
    temperature: AtomicBool,
    stream_options: AtomicBool,
}

impl Refused {
    /// Learns from a refusal's `detail` which parameter to drop; false when that one was dropped already,
    /// or when the refused parameter is not one that can be dropped (the refusal is then final).
    fn learn(&self, detail: &str) -> bool {
        // The error's `param`, as `rejection` appends it; else a parameter its message names.
        // (`max_completion_tokens` does not contain `max_tokens`, so the hint in OpenAI's message, "Use
        // 'max_completion_tokens' instead", does not count as naming it.)
        let param = detail.rsplit_once(PARAM_MARK).and_then(|(_, rest)| rest.split_once(']')).map(|(p, _)| p);
        let named =
            param.or_else(|| ["max_tokens", "temperature", "stream_options"].into_iter().find(|p| detail.contains(p)));
        // What servers say about a schema they cannot take varies the most: a refusal that names nothing
        // is taken for that one.
        let (flag, instead) = match named.unwrap_or("response_format") {
            "max_tokens" => (&self.max_tokens, "max_completion_tokens"),
            "temperature" => (&self.temperature, "the model's default temperature"),
            "stream_options" => (&self.stream_options, "no usage report"),
            "response_format" => (&self.schema, "json_object"),
            // The prompt, the model: nothing to send without.
            _ => return false,
        };
        let learned = !flag.swap(true, Ordering::Relaxed);
        if learned {
            tracing::warn!(detail, instead, "the server refuses a parameter; sending without it from now on");
        }
        learned
    }
}

impl OpenAi {
    pub fn new(config: OpenAiConfig) -> Self {
        let base = config.base_url.trim_end_matches('/');
        let base = base.strip_suffix("/v1").unwrap_or(base);
        let url = Address::on(base, "/v1/chat/completions");
        let clients = Pool::new("openai", &config.base_url, config.timeouts.connect, config.pool);
        let schema = serde_json::value::to_raw_value(&super::schema::json_schema()).expect("a schema is JSON");
        Self { config, clients, url, schema, refused: Refused::default() }
    }

    /// The request's JSON, without the parameters the server has refused.
    fn body(&self, prompt: &Rendered, max_tokens: u32) -> bytes::Bytes {
        let refused = |flag: &AtomicBool| flag.load(Ordering::Relaxed);
        let max_tokens = max_tokens.clamp(1, self.config.max_output_tokens.max(1));
        // `max_tokens` is read by every server; OpenAI's reasoning models take only `max_completion_tokens`.
        let (max_tokens, max_completion_tokens) =
            if refused(&self.refused.max_tokens) { (None, Some(max_tokens)) } else { (Some(max_tokens), None) };
        let body = Body {
            model: &self.config.model,
            messages: [
                Message { role: "system", content: &prompt.system },
                Message { role: "user", content: &prompt.user },
            ],
            stream: true,
            stream_options: (!refused(&self.refused.stream_options)).then_some(StreamOptions { include_usage: true }),
            response_format: if refused(&self.refused.schema) {
                ResponseFormat::JsonObject
            } else {
                ResponseFormat::JsonSchema {
                    json_schema: NamedSchema { name: "travel_plan", strict: true, schema: &self.schema },
                }
            },
            temperature: (!refused(&self.refused.temperature)).then_some(self.config.temperature),
            max_tokens,
            max_completion_tokens,
        };
        transport::json_body(&body, prompt.system.len() + prompt.user.len() + self.schema.get().len())
    }

    async fn send(&self, lease: &Lease, body: bytes::Bytes) -> Result<reqwest::Response, GenerateError> {
        transport::send(
            "openai",
            &self.config.retry,
            &self.config.timeouts,
            || {
                let request = self
                    .url
                    .post(lease.client())
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.clone());
                match &self.config.api_key {
                    Some(key) => request.bearer_auth(key.expose()),
                    None => request,
                }
            },
            rejection,
        )
        .await
    }
}

/// `chat/completions`' request, as much of it as a plan needs.
#[derive(Serialize)]
struct Body<'a> {
    model: &'a str,
    messages: [Message<'a>; 2],
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
    response_format: ResponseFormat<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_completion_tokens: Option<u32>,
}

#[derive(Serialize)]
struct Message<'a> {
    role: &'static str,
    content: &'a str,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ResponseFormat<'a> {
    JsonObject,
    JsonSchema { json_schema: NamedSchema<'a> },
}

#[derive(Serialize)]
struct NamedSchema<'a> {
    name: &'static str,
    strict: bool,
    schema: &'a RawValue,
}

#[async_trait]
impl ChatModel for OpenAi {
    fn provider(&self) -> &'static str {
        "openai"
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
        let call = async move {
            // Held until the reply has been read: the stream is in flight on its connection until then.
            let lease = self.clients.lease().await;
            // Each refusal drops one of four parameters for good, so this sends at most five times.
            let response = loop {
                match self.send(&lease, self.body(&prompt, max_output_tokens)).await {
                    Err(e) if e.code == ErrorCode::InvalidRequest && self.refused.learn(&e.detail) => {}
                    other => break other.map_err(unusable)?,
                }
            };
            drop(prompt);
            let mut finish = None;
            let mut usage = Usage::default();
            let (idle, max_bytes) = (self.config.timeouts.idle, self.config.max_reply_bytes);
            let read = transport::read_sse("openai", response, idle, max_bytes, |data| {
                if data.trim() == "[DONE]" {
                    return Ok(Flow::Stop);
                }
                let chunk: Chunk = serde_json::from_str(data).map_err(|e| {
                    GenerateError::new(ErrorCode::LlmBadOutput, format!("openai sent a chunk that is not JSON: {e}"))
                })?;
                if let Some(error) = chunk.error {
                    return Err(GenerateError::new(
                        ErrorCode::LlmUnavailable,
                        format!("openai error mid-stream: {}", error.message),
                    ));
                }
                if let Some(u) = chunk.usage {
                    usage = Usage { input_tokens: u.prompt_tokens, output_tokens: u.completion_tokens };
                }
                chunk.choices.0.deliver(on_text, &mut finish, "stop", "length");
                Ok(Flow::Continue)
            })
            .await;
            transport::completion("openai", read, finish, usage)
        };
        transport::within("openai", &self.config.model, self.config.timeouts.total, call).await
    }
}

/// One chunk of the reply, its answer folded as it is read ([`frames`](super::frames)).
#[derive(Deserialize)]
struct Chunk<'a> {
    #[serde(default, borrow)]
    choices: Choices<'a>,
    usage: Option<ChunkUsage>,
    error: Option<ApiError>,
}

/// A chunk's choices: their deltas' text in order, and the last finish reason given.
#[derive(Default)]
struct Choices<'a>(Answer<'a>);

impl<'de: 'a, 'a> Deserialize<'de> for Choices<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        fold_list(deserializer, "a list of choices", |all: &mut Choices<'a>, one: Choice<'de>| {
            // An empty text is none: `Answer` drops it.
            let text = one.delta.map(|d| d.content.0);
            all.0.extend(Answer { text, finish_reason: one.finish_reason.map(|r| r.0) });
        })
    }
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(borrow)]
    delta: Option<Delta<'a>>,
    #[serde(borrow)]
    finish_reason: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct Delta<'a> {
    /// `null` or absent in a chunk that only names the role, or carries a tool call or a refusal.
    #[serde(default, borrow)]
    content: Text<'a>,
}

#[derive(Deserialize)]
struct ChunkUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

/// How `rejection` names the error's `param` in its message, for [`Refused::learn`].
const PARAM_MARK: &str = "[param=";

#[derive(Deserialize, Default)]
struct ApiError {
    #[serde(default)]
    message: String,
    /// The request field the error is about, when the server says (OpenAI does; `null` otherwise).
    #[serde(default)]
    param: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    code: Option<Value>,
}

/// `{"error": {"message", "type", "param", "code"}}`; Ollama and llama.cpp use the same envelope, or a
/// bare `{"error": "message"}`.
fn rejection(status: StatusCode, headers: &reqwest::header::HeaderMap, body: &str) -> Rejection {
    let value: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let error = match &value["error"] {
        Value::String(message) => ApiError { message: message.clone(), ..ApiError::default() },
        e => serde_json::from_value::<ApiError>(e.clone())
            .unwrap_or_else(|_| ApiError { message: body.chars().take(200).collect(), ..ApiError::default() }),
    };
    let code_text = error.code.as_ref().and_then(Value::as_str).unwrap_or_default();
    let code = match status {
        StatusCode::TOO_MANY_REQUESTS => ErrorCode::LlmRateLimited,
        // A request the server cannot take as sent; the caller may retry without the parameter it names.
        StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY
            if mentions_schema(&error.message) || error.kind.as_deref() == Some("invalid_request_error") =>
        {
            ErrorCode::InvalidRequest
        }
        StatusCode::GATEWAY_TIMEOUT => ErrorCode::LlmTimeout,
        _ => ErrorCode::LlmUnavailable,
    };
    // Out of quota is not going to pass by waiting.
    let retry_after = (code_text != "insufficient_quota").then(|| transport::retry_after_header(headers)).flatten();
    let mut message = if code_text.is_empty() { error.message } else { format!("{code_text}: {}", error.message) };
    if let Some(param) = error.param {
        message.push_str(&format!(" {PARAM_MARK}{param}]"));
    }
    Rejection { code, message, retry_after }
}

/// A request the server refuses is the provider's problem, never the traveller's.
fn unusable(e: GenerateError) -> GenerateError {
    match e.code {
        ErrorCode::InvalidRequest => GenerateError { code: ErrorCode::LlmUnavailable, ..e },
        _ => e,
    }
}

fn mentions_schema(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    ["response_format", "json_schema", "schema"].iter().any(|k| m.contains(k))
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;

    /// A chunk's answer is every choice's delta text in order (borrowed when it is one piece without
    /// escapes), its finish reason the last one given; a role-only, `null` or empty delta is no text.
    #[test]
    fn a_chunks_choices_fold_into_its_answer() {
        let answer = |chunk: &str| {
            let chunk: Chunk = serde_json::from_str(chunk).unwrap();
            let Answer { text, finish_reason } = chunk.choices.0;
            (text.map(|t| (matches!(t, Cow::Borrowed(_)), t.into_owned())), finish_reason.map(Cow::into_owned))
        };
        let role = r#"{"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#;
        assert_eq!(answer(role), (None, None));
        let piece = r#"{"choices":[{"index":0,"delta":{"content":"Day 1"},"finish_reason":null}]}"#;
        assert_eq!(answer(piece), (Some((true, "Day 1".to_owned())), None));
        let escaped = r#"{"choices":[{"delta":{"content":"{\"days\""}}]}"#;
        assert_eq!(answer(escaped), (Some((false, r#"{"days""#.to_owned())), None));
        let two = r#"{"choices":[{"delta":{"content":"a"},"finish_reason":"length"},{"delta":{"content":null}},
            {"delta":{}},{"delta":{"content":"b"},"finish_reason":"stop"}]}"#;
        assert_eq!(answer(two), (Some((false, "ab".to_owned())), Some("stop".to_owned())));
        let usage = r#"{"choices":[],"usage":{"prompt_tokens":10,"completion_tokens":20}}"#;
        assert_eq!(answer(usage), (None, None));
        assert_eq!(answer("{}"), (None, None));
        assert!(serde_json::from_str::<Chunk>(r#"{"choices":[{"delta":{"content":7}}]}"#).is_err());
    }

    #[test]
    fn error_envelopes_of_each_server_are_read() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::RETRY_AFTER, "2".parse().unwrap());
        let limited =
            r#"{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#;
        let r = rejection(StatusCode::TOO_MANY_REQUESTS, &headers, limited);
        assert_eq!((r.code, r.retry_after), (ErrorCode::LlmRateLimited, Some(std::time::Duration::from_secs(2))));
        let quota = r#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#;
        assert_eq!(rejection(StatusCode::TOO_MANY_REQUESTS, &headers, quota).retry_after, None);
        let schema = r#"{"error":{"message":"Invalid parameter: 'response_format' of type 'json_schema' is not supported with this model.","type":"invalid_request_error","param":"response_format","code":null}}"#;
        assert_eq!(rejection(StatusCode::BAD_REQUEST, &headers, schema).code, ErrorCode::InvalidRequest);
        let ollama = r#"{"error":"model \"llama3\" not found, try pulling it first"}"#;
        let r = rejection(StatusCode::NOT_FOUND, &headers, ollama);
        assert_eq!(r.code, ErrorCode::LlmUnavailable);
        assert!(r.message.contains("not found"));
    }
}
