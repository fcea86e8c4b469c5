//! The one JSON error shape of the API, and the one place errors become HTTP responses.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tripstream_domain::{ErrorCode, RequestError};
use tripstream_engine::{EngineError, ResolveError};

/// An error answered as `{"error": {"code", "message", "field"?}}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), field: None }
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint; see GET /health and API.md")
    }
}

impl From<RequestError> for ApiError {
    fn from(e: RequestError) -> Self {
        Self { status: StatusCode::UNPROCESSABLE_ENTITY, code: "invalid_request", message: e.message, field: e.field }
    }
}

impl From<ResolveError> for ApiError {
    fn from(e: ResolveError) -> Self {
        match e {
            ResolveError::Unknown { .. } => Self {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                code: ErrorCode::UnknownDestination.as_str(),
                message: e.to_string(),
                field: Some("location".into()),
            },
            ResolveError::Unavailable(_) => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::WeatherUnavailable.as_str(), e.to_string())
            }
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        let status = match e.code {
            ErrorCode::InvalidRequest | ErrorCode::UnknownDestination => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::LlmUnavailable | ErrorCode::LlmRateLimited | ErrorCode::WeatherUnavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ErrorCode::LlmBadOutput => StatusCode::BAD_GATEWAY,
            ErrorCode::LlmTimeout | ErrorCode::Timeout => StatusCode::GATEWAY_TIMEOUT,
            ErrorCode::Cancelled => StatusCode::CONFLICT,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self::new(status, e.code.as_str(), e.detail)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(status = self.status.as_u16(), code = self.code, message = %self.message, "request failed");
        }
        let mut error = json!({ "code": self.code, "message": self.message });
        if let Some(field) = self.field {
            error["field"] = json!(field);
        }
        (self.status, Json(json!({ "error": error }))).into_response()
    }
}
