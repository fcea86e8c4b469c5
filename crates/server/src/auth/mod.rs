//! Who is calling, and what they may do.
//!
//! Three kinds of caller: anonymous (known by client address, which limits count and which is never a
//! credential), API-key holders (`Authorization: Bearer tsk_…`), and admins (a key with the admin scope).
//! With `AUTH_MODE=open` (the default) keys are optional; with `required` every plan call needs one,
//! except the bundled page's own calls, which carry the page's same-origin session cookie and count as
//! anonymous. A key that is sent must be valid, in either mode.
//!
//! Saved plans belong to the key that generated them, or, for the page, to its session (`Caller::plan_owner`).
//!
//! Streams are not reached by who you are alone: see `generations` for their owners and resume tokens.

mod proxies;
pub mod secret;
mod session;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use tripstream_adapters::keys::{ApiKey, CachedKeys};
use tripstream_domain::ErrorCode;

pub use self::proxies::{Cidr, client_ip};
pub use self::session::PageSessions;
use crate::config::AuthMode;
use crate::error::ApiError;
use crate::state::AppState;

/// How callers are told apart, built once at start-up.
pub struct Auth {
    pub mode: AuthMode,
    pub trusted_proxies: Vec<Cidr>,
    pub keys: Option<CachedKeys>,
    pub sessions: PageSessions,
}

/// Who is calling.
#[derive(Debug, Clone)]
pub struct Caller {
    pub ip: IpAddr,
    /// The key they presented; `None` for an anonymous caller.
    pub key: Option<Arc<ApiKey>>,
    /// The bundled page's session (its id, from a cookie this server signed), when it sent one.
    pub session: Option<String>,
}

impl Caller {
    pub fn is_admin(&self) -> bool {
        self.key.as_ref().is_some_and(|k| k.admin)
    }

    /// The id of their key.
    pub fn key_id(&self) -> Option<&str> {
        self.key.as_deref().map(|k| k.id.as_str())
    }

    /// Who owns the plans this caller generates: their key (`key:<id>`), else their page session
    /// (`session:<id>`); `None` for an anonymous caller without a session, who cannot read plans back.
    pub fn plan_owner(&self) -> Option<String> {
        match (self.key_id(), &self.session) {
            (Some(id), _) => Some(format!("key:{id}")),
            (None, Some(session)) => Some(format!("session:{session}")),
            (None, None) => None,
        }
    }

    /// Whether this caller may read plans saved for `owner`: theirs, or any for an admin.
    pub fn owns_plan(&self, owner: &str) -> bool {
        self.is_admin() || self.plan_owner().as_deref() == Some(owner)
    }

    /// What limits and idempotency keys are counted by: the key, or the address.
    pub fn scope(&self) -> String {
        match self.key_id() {
            Some(id) => format!("key:{id}"),
            None => format!("ip:{}", self.ip),
        }
    }
}

/// A caller who may be anonymous even where keys are required: resuming or cancelling a stream, which a
/// resume token authorizes by itself.
pub struct MaybeCaller(pub Caller);

/// A caller with the admin scope.
pub struct Admin(pub Caller);

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, message)
}

impl Auth {
    /// The caller of a request: their key when they sent one (an invalid or revoked one is `401`), else
    /// anonymous. Whether anonymous is enough is for the extractor to say.
    async fn identify(&self, parts: &Parts) -> Result<(Caller, bool), ApiError> {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
        let forwarded = parts.headers.get("x-forwarded-for").and_then(|v| v.to_str().ok());
        let ip = peer.map_or(IpAddr::from([0, 0, 0, 0]), |peer| client_ip(peer, forwarded, &self.trusted_proxies));
        let session = self.sessions.session_id(&parts.headers);
        let Some(presented) = bearer(&parts.headers)? else {
            let page = session.is_some();
            return Ok((Caller { ip, key: None, session }, page));
        };
        let keys = self.keys.as_ref().ok_or_else(|| unauthorized("this server has no API keys"))?;
        match keys.find(presented).await {
            Ok(Some(key)) => Ok((Caller { ip, key: Some(Arc::new(key)), session }, true)),
            Ok(None) => Err(unauthorized("the API key is not valid, or has been revoked")),
            Err(e) => Err(ApiError::unavailable("the key store", &e)),
        }
    }
}

/// The token of `Authorization: Bearer …`; a malformed header is `401`.
fn bearer(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else { return Ok(None) };
    let value = value.to_str().map_err(|_| unauthorized("Authorization must be `Bearer <API key>`"))?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => {
            Ok(Some(token.trim()))
        }
        _ => Err(unauthorized("Authorization must be `Bearer <API key>`")),
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, ApiError> {
        let (caller, vouched) = state.auth.identify(parts).await?;
        if caller.key.is_none() && state.auth.mode == AuthMode::Required && !vouched {
            return Err(unauthorized("an API key is required: send `Authorization: Bearer <API key>`"));
        }
        Ok(caller)
    }
}

impl FromRequestParts<AppState> for MaybeCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<MaybeCaller, ApiError> {
        Ok(MaybeCaller(state.auth.identify(parts).await?.0))
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Admin, ApiError> {
        let (caller, _) = state.auth.identify(parts).await?;
        match &caller.key {
            None => Err(unauthorized("this needs an API key with the admin scope")),
            Some(key) if !key.admin => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                ErrorCode::Forbidden,
                "this needs an API key with the admin scope",
            )),
            Some(_) => Ok(Admin(caller)),
        }
    }
}
