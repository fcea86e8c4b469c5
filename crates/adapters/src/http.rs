//! The outbound HTTP clients every adapter shares, retry backoff, and secrets.

mod pool;

use std::sync::{Arc, Once, OnceLock};
use std::time::Duration;

pub use pool::{Lease, Pool, PoolLimits};

/// A client for outside services: rustls (ring), HTTP/1.1 and HTTP/2, a connect timeout. Request and
/// read timeouts belong to each adapter's own settings.
pub fn client(connect_timeout: Duration) -> reqwest::Client {
    builder(connect_timeout, Alpn::Negotiate).build().expect("the HTTP client builds with a crypto provider installed")
}

/// The protocols a client offers in TLS.
#[derive(Debug, Clone, Copy)]
enum Alpn {
    /// HTTP/2 if the server has it, else HTTP/1.1.
    Negotiate,
    /// HTTP/2 alone, for a server known to speak it.
    Http2Only,
}

fn builder(connect_timeout: Duration, alpn: Alpn) -> reqwest::ClientBuilder {
    let mut tls = tls_config().clone();
    tls.alpn_protocols = match alpn {
        Alpn::Negotiate => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
        Alpn::Http2Only => vec![b"h2".to_vec()],
    };
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .connect_timeout(connect_timeout)
        // Thousands of streams mean thousands of upstream connections at a peak; keeping them all idle
        // afterwards holds memory and file descriptors for nothing.
        .pool_max_idle_per_host(32)
        .user_agent(concat!("tripstream/", env!("CARGO_PKG_VERSION")))
}

/// One TLS configuration for every client: the platform's verifier (the system's CA certificates, or
/// the ones `SSL_CERT_FILE` / `SSL_CERT_DIR` name instead) is loaded once, not per client, and session
/// tickets are shared, so a new connection to a provider resumes a TLS session.
fn tls_config() -> &'static rustls::ClientConfig {
    static CONFIG: OnceLock<rustls::ClientConfig> = OnceLock::new();
    CONFIG.get_or_init(|| {
        install_crypto_provider();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = rustls_platform_verifier::Verifier::new(provider.clone())
            .expect("CA certificates load from the system, or from SSL_CERT_FILE when it is set");
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default TLS versions")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth()
    })
}

/// reqwest is built without a default rustls provider (the aws-lc one is slow to build); ring's is
/// installed once per process before any client exists (and before any other reqwest client is built,
/// such as the trace exporter's).
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Err means another provider was installed first, which serves as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Exponential backoff with full jitter: a random wait in `[0, min(max, base · 2^attempt)]`.
pub fn backoff(attempt: u32, base: Duration, max: Duration) -> Duration {
    let ceiling = base.saturating_mul(1u32 << attempt.min(16)).min(max);
    ceiling.mul_f64(fastrand::f64())
}

/// A provider's address, parsed once: reqwest parses a string address on every request (about 8,000
/// instructions, a few times a stream). One that does not parse is kept as text, so that each request
/// fails as it always did, with reqwest's own error.
#[derive(Debug, Clone)]
pub struct Address {
    text: String,
    parsed: Option<reqwest::Url>,
}

impl Address {
    pub fn new(text: String) -> Self {
        let parsed = reqwest::Url::parse(&text).ok();
        Self { text, parsed }
    }

    /// `path` (starting with `/`) on a service's base address, with or without its trailing slash.
    pub fn on(base: &str, path: &str) -> Self {
        Self::new(format!("{}{path}", base.trim_end_matches('/')))
    }

    pub fn get(&self, client: &reqwest::Client) -> reqwest::RequestBuilder {
        self.request(client, reqwest::Method::GET)
    }

    pub fn post(&self, client: &reqwest::Client) -> reqwest::RequestBuilder {
        self.request(client, reqwest::Method::POST)
    }

    fn request(&self, client: &reqwest::Client, method: reqwest::Method) -> reqwest::RequestBuilder {
        match &self.parsed {
            Some(url) => client.request(method, url.clone()),
            None => client.request(method, self.text.as_str()),
        }
    }
}

/// Whether `text` is an address [`Address`] parses: an `http://` or `https://` URL with a host.
pub fn check_address(text: &str) -> Result<(), String> {
    let url = reqwest::Url::parse(text).map_err(|e| format!("not a URL ({e})"))?;
    match (url.scheme(), url.host_str()) {
        ("http" | "https", Some(host)) if !host.is_empty() => Ok(()),
        ("http" | "https", _) => Err("the URL has no host".into()),
        (scheme, _) => Err(format!("{scheme}: is not http:// or https://")),
    }
}

/// A secret that never shows up in `Debug` output or logs.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_its_ceiling_up_to_the_maximum_with_full_jitter() {
        fastrand::seed(7);
        let ceilings = [100, 200, 400, 800, 1600, 2000, 2000, 2000];
        for attempt in 0..40u32 {
            let ceiling = Duration::from_millis(ceilings[(attempt as usize).min(ceilings.len() - 1)]);
            let waits: Vec<Duration> =
                (0..1000).map(|_| backoff(attempt, Duration::from_millis(100), Duration::from_secs(2))).collect();
            let (min, max) = (*waits.iter().min().unwrap(), *waits.iter().max().unwrap());
            let mean = waits.iter().sum::<Duration>() / 1000;
            assert!(max <= ceiling && max > ceiling.mul_f64(0.95), "attempt {attempt}: max {max:?} of {ceiling:?}");
            assert!(min < ceiling.mul_f64(0.05), "attempt {attempt}: full jitter reaches near 0, not {min:?}");
            let share = mean.as_secs_f64() / ceiling.as_secs_f64();
            assert!((0.45..0.55).contains(&share), "attempt {attempt}: mean {mean:?} is {share:.2} of {ceiling:?}");
        }
    }

    /// A parsed address asks for the same URL as its text would; one that does not parse fails as
    /// reqwest fails a bad string, when the request is built.
    #[test]
    fn an_address_requests_what_its_text_says_or_fails_as_reqwest_does() {
        let client = reqwest::Client::new();
        let text = "http://127.0.0.1:9/v1beta/models/m:streamGenerateContent?alt=sse";
        let address = Address::new(text.to_owned());
        let request = address.post(&client).query(&[("k", "a b")]).build().unwrap();
        let from_text = client.post(text).query(&[("k", "a b")]).build().unwrap();
        assert_eq!((request.method(), request.url()), (from_text.method(), from_text.url()));
        assert_eq!(address.get(&client).build().unwrap().method(), reqwest::Method::GET);
        for bad in ["not a url", "/relative/path", "http://"] {
            let ours = Address::new(bad.to_owned()).get(&client).build().unwrap_err();
            let theirs = client.get(bad).build().unwrap_err();
            assert_eq!(ours.to_string(), theirs.to_string(), "{bad}");
        }
    }

    #[test]
    fn secrets_do_not_show() {
        assert_eq!(format!("{:?}", Secret::new("k3y")), "Secret(***)");
    }
}
