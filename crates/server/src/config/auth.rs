//! Callers: whether keys are required, which proxies' `X-Forwarded-For` is believed, the page's session,
//! and where metrics are served.

use std::net::SocketAddr;

use tripstream_adapters::http::Secret;

use super::defaults as d;
use super::values::{Secs, secret};
use crate::auth::Cidr;

/// Whether plan calls need an API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// Keys are optional: callers without one are anonymous, known (and limited) by address.
    #[default]
    Open,
    /// Every plan call needs a key, except the bundled page's own (its same-origin session).
    Required,
}

#[derive(Debug, Clone, clap::Args)]
pub struct AuthSettings {
    /// `open` (keys optional) or `required` (every plan call needs `Authorization: Bearer <key>`; the
    /// bundled page keeps working through its own same-origin session).
    #[arg(long, env = "AUTH_MODE", value_enum, default_value_t = AuthMode::Open)]
    pub auth_mode: AuthMode,
    /// Proxies (addresses or CIDR blocks, comma-separated) whose `X-Forwarded-For` names the client; from
    /// anyone else the header is ignored.
    #[arg(long, env = "TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<Cidr>,
    /// Signs the page's session cookies; set the same value on every replica. Without it, each process
    /// makes its own, and a page session works only on the replica that issued it.
    #[arg(long, env = "SESSION_SECRET", hide_env_values = true, value_parser = secret)]
    pub session_secret: Option<Secret>,
    /// How long an API key look-up is reused: a revoked key stops working on every replica within this.
    #[arg(long, env = "KEY_CACHE_SECS", default_value_t = d::KEY_CACHE)]
    pub key_cache_secs: Secs,
    /// Serve Prometheus metrics on this address too (e.g. `0.0.0.0:9100`), without credentials, for a
    /// scraper on a private network. `/metrics` on the main port always needs the admin scope.
    #[arg(long, env = "METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
}

impl Default for AuthSettings {
    /// The command line's defaults: keys optional, no trusted proxy.
    fn default() -> Self {
        Self {
            auth_mode: AuthMode::Open,
            trusted_proxies: Vec::new(),
            session_secret: None,
            key_cache_secs: d::KEY_CACHE,
            metrics_addr: None,
        }
    }
}
