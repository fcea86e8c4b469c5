//! OpenAI-compatible chat completions: `POST /v1/chat/completions` with `stream: true`, spoken by OpenAI,
//! vLLM, llama.cpp's server and Ollama. Structured output via `response_format: json_schema`; a server
//! that rejects schemas gets `json_object` from then on (the prompt describes the shape either way).

use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use tripstream_domain::event::ErrorCode;
use tripstream_domain::plan::Usage;
use tripstream_engine::GenerateError;

use super::prompts::Rendered;
use super::transport::{self, Flow, Rejection, RetryPolicy, Timeouts};
use super::{ChatModel, Completion, Finish};
use crate::http::{Lease, Pool, PoolLimits, Secret};

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
    url: String,
    schema: Value,
    /// Set once the server has rejected `json_schema`.
    json_object_only: AtomicBool,
}

impl OpenAi {
    pub fn new(config: OpenAiConfig) -> Self {
        let base = config.base_url.trim_end_matches('/');
        let base = base.strip_suffix("/v1").unwrap_or(base);
        let url = format!("{base}/v1/chat/completions");
        let clients = Pool::new("openai", &config.base_url, config.timeouts.connect, config.pool);
        Self { config, clients, url, schema: super::schema::json_schema(), json_object_only: AtomicBool::new(false) }
    }

    fn body(&self, prompt: &Rendered, max_tokens: u32, schema: bool) -> Value {
        let response_format = if schema {
            json!({"type": "json_schema", "json_schema": {"name": "travel_plan", "strict": true, "schema": self.schema}})
        } else {
            json!({"type": "json_object"})
        };
        json!({
            "model": self.config.model,
            "messages": [
                {"role": "system", "content": prompt.system},
                {"role": "user", "content": prompt.user},
            ],
            "stream": true,
            "stream_options": {"include_usage": true},
            "response_format": response_format,
            "temperature": self.config.temperature,
            // Servers differ on which name they take (`max_completion_tokens` is OpenAI's newer one, which
            // vLLM, llama.cpp and Ollama do not all read); `max_tokens` is read by all of them.
            "max_tokens": max_tokens.clamp(1, self.config.max_output_tokens.max(1)),
        })
    }

    async fn send(&self, lease: &Lease, body: &Value) -> Result<reqwest::Response, GenerateError> {
        let body = transport::json_body(body);
        transport::send(
            "openai",
            &self.config.retry,
            &self.config.timeouts,
            || {
                let request = lease
                    .client()
                    .post(&self.url)
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
            let with_schema = !self.json_object_only.load(Ordering::Relaxed);
            let response = match self.send(&lease, &self.body(&prompt, max_output_tokens, with_schema)).await {
                Err(e) if with_schema && e.code == ErrorCode::InvalidRequest => {
                    tracing::warn!(detail = %e.detail, "the server rejects json_schema; using json_object from now on");
                    self.json_object_only.store(true, Ordering::Relaxed);
                    self.send(&lease, &self.body(&prompt, max_output_tokens, false)).await.map_err(unusable)?
                }
                other => other.map_err(unusable)?,
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
                for choice in chunk.choices {
                    if let Some(text) = choice.delta.and_then(|d| d.content).filter(|t| !t.is_empty()) {
                        on_text(&text);
                    }
                    if let Some(reason) = choice.finish_reason {
                        finish = Some(match reason.as_str() {
                            "stop" => Finish::Stop,
                            "length" => Finish::MaxTokens,
                            _ => Finish::Blocked(reason),
                        });
                    }
                }
                Ok(Flow::Continue)
            })
            .await;
            transport::completion("openai", read, finish, usage)
        };
        transport::within("openai", &self.config.model, self.config.timeouts.total, call).await
    }
}

#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Vec<Choice>,
    usage: Option<ChunkUsage>,
    error: Option<ApiError>,
}

#[derive(Deserialize)]
struct Choice {
    delta: Option<Delta>,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Delta {
    content: Option<String>,
}

#[derive(Deserialize)]
struct ChunkUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

#[derive(Deserialize, Default)]
struct ApiError {
    #[serde(default)]
    message: String,
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
        // A request the server cannot take as sent; the caller may retry without the schema.
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
    let message = if code_text.is_empty() { error.message } else { format!("{code_text}: {}", error.message) };
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
    use super::*;

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
