//! The one JSON error shape of the API, and the one place errors become HTTP responses. A client reads a
//! stable code and a message for people; what went wrong inside goes to the log, never into the body.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tripstream_domain::event::Failure;
use tripstream_domain::{ErrorCode, RequestError};
use tripstream_engine::ResolveError;

use crate::generations::GenerationError;

/// The body of every error answer.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[schema(example = json!({"error": {"code": "invalid_request", "message": "endDate must not be before startDate", "field": "endDate"}}))]
pub struct ErrorResponse {
    pub error: ErrorBody,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Stable: what a program acts on.
    pub code: ErrorCode,
    /// For people: in the request's language where the request was understood.
    pub message: String,
    /// The request field (or header, or query parameter) to blame, when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub field: Option<String>,
}

/// An error answered as `{"error": {"code", "message", "field"?}}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: String,
    pub field: Option<String>,
    /// Sent as `Retry-After` (whole seconds, rounded up): when the client may try again.
    pub retry_after: Option<std::time::Duration>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), field: None, retry_after: None }
    }

    /// A 4xx about one field of the request.
    pub fn invalid(status: StatusCode, message: impl Into<String>, field: Option<String>) -> Self {
        Self { field, ..Self::new(status, ErrorCode::InvalidRequest, message) }
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, "no such endpoint; see GET /health and API.md")
    }

    /// An endpoint asked with a method it does not take; the response's `Allow` header lists those it does.
    pub fn method_not_allowed(method: &axum::http::Method) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::InvalidRequest,
            format!("this endpoint does not take {method}; the Allow header lists the methods it does"),
        )
    }

    /// A store the answer needs cannot be reached: the detail is logged here, the client told to retry.
    pub fn unavailable(what: &str, detail: &dyn std::error::Error) -> Self {
        tracing::warn!(error = %detail, "{what} unavailable");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Unavailable,
            format!("{what} is unavailable; try again shortly"),
        )
    }

    /// The HTTP status of a failed generation's code.
    fn status_of(code: ErrorCode) -> StatusCode {
        match code {
            ErrorCode::InvalidRequest | ErrorCode::UnknownDestination => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::LlmUnavailable
            | ErrorCode::LlmRateLimited
            | ErrorCode::WeatherUnavailable
            | ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::LlmBadOutput => StatusCode::BAD_GATEWAY,
            ErrorCode::LlmTimeout | ErrorCode::Timeout => StatusCode::GATEWAY_TIMEOUT,
            ErrorCode::Cancelled => StatusCode::CONFLICT,
            ErrorCode::NotFound | ErrorCode::PlanNotFound | ErrorCode::ShareNotFound => StatusCode::NOT_FOUND,
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::RateLimited | ErrorCode::QuotaExceeded => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<RequestError> for ApiError {
    fn from(e: RequestError) -> Self {
        Self::invalid(StatusCode::UNPROCESSABLE_ENTITY, e.message, e.field)
    }
}

impl From<GenerationError> for ApiError {
    fn from(e: GenerationError) -> Self {
        match e {
            GenerationError::Destination(e @ ResolveError::Unknown { .. }) => Self {
                field: Some("location".into()),
                ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, e.code(), e.to_string())
            },
            GenerationError::Destination(e @ ResolveError::Unavailable(_)) => {
                tracing::warn!(detail = %e, "destination look-up unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    e.code(),
                    "the destination cannot be looked up right now; try again shortly",
                )
            }
            GenerationError::UnknownStream(_) => Self::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, e.to_string()),
            GenerationError::PlanNotFound(_) => Self::new(
                StatusCode::NOT_FOUND,
                ErrorCode::PlanNotFound,
                "no saved plan has this id (or it is not yours)",
            ),
            GenerationError::DayOutOfRange { .. } => {
                Self::invalid(StatusCode::UNPROCESSABLE_ENTITY, e.to_string(), Some("day".into()))
            }
            GenerationError::PlanStore(source) => Self::unavailable("the plan store", &source),
            GenerationError::SharedLog(source) => Self::unavailable("the shared event log", &source),
            GenerationError::Refused(refusal) => Self {
                retry_after: Some(refusal.retry_after),
                ..Self::new(Self::status_of(refusal.code), refusal.code, refusal.message)
            },
            GenerationError::IdempotencyKeyReused => Self {
                field: Some("Idempotency-Key".into()),
                ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::IdempotencyKeyReused, e.to_string())
            },
        }
    }
}

/// A generation that ended without a plan, as its `error` event told the client (the message is the
/// people-facing one, in the request's language).
impl From<Failure> for ApiError {
    fn from(f: Failure) -> Self {
        Self::new(Self::status_of(f.error), f.error, f.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(status = self.status.as_u16(), code = self.code.as_str(), message = %self.message, "request failed");
        }
        let body = ErrorResponse { error: ErrorBody { code: self.code, message: self.message, field: self.field } };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(wait) = self.retry_after {
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, secs.max(1).into());
        }
        response
    }
}
