//! The plan request extractor: content type, size, JSON syntax, then the contract's rules, each failure
//! with its own status (415, 413, 400, 422) and never a stream.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use tripstream_domain::{Language, PlanRequest, RawPlanRequest};

use crate::error::ApiError;
use crate::state::AppState;

/// The most a request body may be.
pub const BODY_LIMIT: usize = 16 * 1024;

/// A request that passed every rule of API.md "Request".
pub struct ValidPlanRequest(pub PlanRequest);

impl FromRequest<AppState> for ValidPlanRequest {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        if !is_json(&req) {
            return Err(not_json());
        }
        let accept_language = req
            .headers()
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .and_then(Language::from_accept_language);
        let body = read_body(req, state).await?;
        let raw = parse_body(&body)?;
        let request = PlanRequest::parse(raw, accept_language, state.limits)?;
        Ok(Self(request))
    }
}

/// The optional body of `POST /api/v1/plans/{planId}/days/{n}/regenerate`: nothing, or
/// `{"instruction": "…"}` of at most 200 characters (`422` naming `instruction` beyond).
pub struct DayInstruction(pub Option<String>);

/// The body of a day regeneration, as the API documents it.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DayInstructionBody {
    /// What the new day should be like, in the traveller's words: at most 200 characters.
    #[schema(max_length = 200, example = "more food, less walking")]
    instruction: Option<String>,
}

impl FromRequest<AppState> for DayInstruction {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let json = is_json(&req);
        let body = read_body(req, state).await?;
        if body.trim_ascii().is_empty() {
            return Ok(Self(None));
        }
        if !json {
            return Err(not_json());
        }
        let DayInstructionBody { instruction } = parse_body(&body)?;
        let max = tripstream_engine::Regeneration::MAX_INSTRUCTION_CHARS;
        if instruction.as_ref().is_some_and(|i| i.chars().count() > max) {
            let message = format!("instruction must be at most {max} characters");
            return Err(ApiError::invalid(StatusCode::UNPROCESSABLE_ENTITY, message, Some("instruction".into())));
        }
        Ok(Self(instruction.filter(|i| !i.trim().is_empty())))
    }
}

fn is_json(req: &Request) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|mime| {
            let mime = mime.trim().to_ascii_lowercase();
            mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
        })
        .unwrap_or(false)
}

fn not_json() -> ApiError {
    ApiError::invalid(StatusCode::UNSUPPORTED_MEDIA_TYPE, "Content-Type must be application/json", None)
}

/// The body, within its size limit; a body that trickles in is not waited for without end.
async fn read_body(req: Request, state: &AppState) -> Result<Bytes, ApiError> {
    let body = tokio::time::timeout(state.body_read_timeout, Bytes::from_request(req, state))
        .await
        .map_err(|_| ApiError::invalid(StatusCode::REQUEST_TIMEOUT, "the request body did not arrive in time", None))?;
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::invalid(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the request body must be at most {BODY_LIMIT} bytes"),
                None,
            )
        } else {
            ApiError::invalid(StatusCode::BAD_REQUEST, rejection.body_text(), None)
        }
    })
}

/// JSON syntax errors are 400; a well-formed body of the wrong shape is 422 naming the field. A good body
/// is read once without tracking where the reader is; only a bad one is read again to name its field.
fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    match serde_json::from_slice(body) {
        Ok(raw) => Ok(raw),
        Err(_) => Err(body_error::<T>(body)),
    }
}

/// Why `body` is not a `T`, read with its path tracked.
#[cold]
fn body_error<T: serde::de::DeserializeOwned>(body: &[u8]) -> ApiError {
    let mut de = serde_json::Deserializer::from_slice(body);
    let read: Result<T, _> = serde_path_to_error::deserialize(&mut de);
    let e = match read {
        Err(e) => e,
        // Only trailing characters are left to refuse (serde_json's own reading refused the body).
        Ok(_) => {
            let detail = de.end().err().map_or_else(String::new, |e| format!(": {e}"));
            return ApiError::invalid(StatusCode::BAD_REQUEST, format!("malformed JSON{detail}"), None);
        }
    };
    let inner = e.inner();
    if inner.is_syntax() || inner.is_eof() {
        return ApiError::invalid(StatusCode::BAD_REQUEST, format!("malformed JSON: {inner}"), None);
    }
    let message = inner.to_string();
    let message = message.split(" at line ").next().unwrap_or(&message).to_owned();
    let top_level = e.path().iter().find_map(|segment| match segment {
        serde_path_to_error::Segment::Map { key } => Some(key.clone()),
        _ => None,
    });
    let field = unknown_field(&message).or(top_level);
    ApiError::invalid(StatusCode::UNPROCESSABLE_ENTITY, message, field)
}

/// The name in serde's "unknown field `x`, expected one of …".
fn unknown_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    Some(rest[..rest.find('`')?].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_problems_are_told_apart() {
        let syntax = parse_body::<RawPlanRequest>(b"{\"location\": ").unwrap_err();
        assert_eq!(syntax.status, StatusCode::BAD_REQUEST);
        let unknown = parse_body::<RawPlanRequest>(br#"{"location":"Seoul","budgett":"low"}"#).unwrap_err();
        assert_eq!((unknown.status, unknown.field.as_deref()), (StatusCode::UNPROCESSABLE_ENTITY, Some("budgett")));
        assert!(unknown.message.starts_with("unknown field `budgett`"), "{}", unknown.message);
        let wrong_type = parse_body::<RawPlanRequest>(br#"{"travelers":"two"}"#).unwrap_err();
        assert_eq!(wrong_type.field.as_deref(), Some("travelers"));
        let not_object = parse_body::<RawPlanRequest>(b"[1]").unwrap_err();
        assert_eq!((not_object.status, not_object.field), (StatusCode::UNPROCESSABLE_ENTITY, None));
        let trailing = parse_body::<RawPlanRequest>(b"{} {}").unwrap_err();
        assert_eq!(trailing.status, StatusCode::BAD_REQUEST);
        assert!(trailing.message.starts_with("malformed JSON: trailing characters"), "{}", trailing.message);
        let good = parse_body::<RawPlanRequest>(b" {\"location\": \"Seoul\", \"travelers\": 2}\n").unwrap();
        assert_eq!((good.location.as_deref(), good.travelers), (Some("Seoul"), Some(2)));
    }
}

/// The same request as query parameters, for `EventSource` (GET only):
/// `?location=Seoul&startDate=2025-11-10&endDate=2025-11-12&budget=medium[&language=en][&travelers=2]
/// [&interests=food,art][&lastEventId=7]`. Validated exactly as the JSON body is.
pub struct QueryPlanRequest {
    pub request: PlanRequest,
    pub last_event_id: Option<String>,
}

/// The query of `GET /api/v1/plans/generate/stream`: the fields of the JSON body, with the same rules.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PlanQuery {
    /// A city or region: 1–100 characters after trimming, no control characters.
    #[param(required = true, min_length = 1, max_length = 100, pattern = r"\S", example = "Seoul")]
    location: Option<String>,
    /// The first day, `YYYY-MM-DD`.
    #[param(required = true, format = Date, example = "2025-11-10")]
    start_date: Option<String>,
    /// The last day, `YYYY-MM-DD`: not before `startDate`, the trip at most `MAX_TRIP_DAYS` (14) days.
    #[param(required = true, format = Date, example = "2025-11-12")]
    end_date: Option<String>,
    #[param(required = true, value_type = tripstream_domain::BudgetLevel)]
    budget: Option<String>,
    /// Default: from `Accept-Language`, else `ko`.
    #[param(value_type = Option<tripstream_domain::Language>)]
    language: Option<String>,
    /// 1–20, default 1.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 20)]
    travelers: Option<String>,
    /// Comma-separated, at most 10, each 1–40 characters: `food,history`.
    #[param(example = "food,history")]
    interests: Option<String>,
    /// For clients that cannot send `Last-Event-ID`: resume after this event id.
    #[param(value_type = Option<u64>)]
    last_event_id: Option<String>,
}

impl axum::extract::FromRequestParts<AppState> for QueryPlanRequest {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &AppState) -> Result<Self, ApiError> {
        let q: PlanQuery = query_params(&parts.uri)?;
        let travelers = match q.travelers.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(t) => Some(t.parse::<i64>().map_err(|_| {
                let message = "travelers must be a whole number";
                ApiError::invalid(StatusCode::UNPROCESSABLE_ENTITY, message, Some("travelers".into()))
            })?),
        };
        let raw = RawPlanRequest {
            location: q.location,
            start_date: q.start_date,
            end_date: q.end_date,
            budget: q.budget,
            language: q.language,
            travelers,
            interests: q.interests.map(|s| s.split(',').map(str::to_owned).filter(|s| !s.trim().is_empty()).collect()),
        };
        let accept_language = parts
            .headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .and_then(Language::from_accept_language);
        let request = PlanRequest::parse(raw, accept_language, state.limits)?;
        Ok(Self { request, last_event_id: q.last_event_id })
    }
}

/// Query parameters as `T`; a malformed, repeated or unknown one is `422 invalid_request` naming it, in the
/// one JSON error shape (axum's `Query` answers plain text).
pub struct ValidQuery<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> axum::extract::FromRequestParts<S> for ValidQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, ApiError> {
        query_params(&parts.uri).map(ValidQuery)
    }
}

/// Query parameters into `T`, an unknown parameter named as the contract's unknown fields are.
fn query_params<T: serde::de::DeserializeOwned>(uri: &axum::http::Uri) -> Result<T, ApiError> {
    axum::extract::Query::<T>::try_from_uri(uri).map(|q| q.0).map_err(|e| {
        let message = e.body_text();
        let message = message.strip_prefix("Failed to deserialize query string: ").unwrap_or(&message);
        // serde_urlencoded names the parameter first: "budgett: unknown field `budgett`, …".
        let message = message.find("unknown field").map_or(message, |i| &message[i..]).to_owned();
        let field = unknown_field(&message);
        ApiError::invalid(StatusCode::UNPROCESSABLE_ENTITY, message, field)
    })
}
