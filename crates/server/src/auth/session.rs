//! The bundled page's session: a cookie the page at `/` sets, signed with `SESSION_SECRET`, that lets
//! the page call the API where keys are required, and owns the plans the page generates (`session:<id>`),
//! in either auth mode. It is `HttpOnly` and `SameSite=Strict`, so only the page's own origin sends it, and
//! `Secure` when the page was reached over HTTPS (`X-Forwarded-Proto` from the proxy in front); its
//! caller is otherwise anonymous (limited like any anonymous caller), and streams are still reached by their
//! tokens.

use axum::http::{HeaderMap, HeaderValue, header};
use tripstream_adapters::http::Secret;

use super::secret::{equal, hmac, random_bits, random_secret};

const COOKIE: &str = "tripstream_page";
/// A day: the page is reloaded long before.
const MAX_AGE_SECS: u64 = 86_400;

pub struct PageSessions {
    key: Vec<u8>,
}

impl PageSessions {
    /// Signs with `secret`; without one, with a key of this process only (a page session then works
    /// only on the replica that issued it).
    pub fn new(secret: Option<&Secret>) -> PageSessions {
        let key = match secret {
            Some(s) => s.expose().as_bytes().to_vec(),
            None => random_bits().to_le_bytes().to_vec(),
        };
        PageSessions { key }
    }

    /// A fresh session's `Set-Cookie` value for a page served with `headers`: `Secure` when the page
    /// was reached over HTTPS, so the browser never sends the session over plain HTTP.
    pub fn issue(&self, headers: &HeaderMap) -> HeaderValue {
        let id = random_secret("ses_");
        let mac = hex(&hmac(&self.key, id.as_bytes()));
        let secure = if over_https(headers) { "; Secure" } else { "" };
        let cookie = format!("{COOKIE}={id}.{mac}; Path=/; Max-Age={MAX_AGE_SECS}; HttpOnly; SameSite=Strict{secure}");
        HeaderValue::from_str(&cookie).expect("ids and hex are header-safe")
    }

    /// Whether the request carries a session this server signed.
    pub fn is_valid(&self, headers: &HeaderMap) -> bool {
        self.session_id(headers).is_some()
    }

    /// The id of the session the request carries, if this server signed it.
    pub fn session_id(&self, headers: &HeaderMap) -> Option<String> {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().strip_prefix(COOKIE)?.strip_prefix('='))
            .find_map(|value| {
                let (id, mac) = value.split_once('.')?;
                equal(hex(&hmac(&self.key, id.as_bytes())).as_bytes(), mac.as_bytes()).then(|| id.to_owned())
            })
    }
}

/// Whether the proxy in front says the page was reached over HTTPS (`X-Forwarded-Proto`, the first
/// hop's; the server itself speaks plain HTTP). Believed from anyone: a client that claims it only makes
/// its own cookie stricter.
fn over_https(headers: &HeaderMap) -> bool {
    let proto = headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()).unwrap_or_default();
    proto.split(',').next().is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_cookie(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn only_a_session_this_server_signed_is_valid() {
        let sessions = PageSessions::new(Some(&Secret::new("shared secret")));
        let set = sessions.issue(&HeaderMap::new());
        let cookie = set.to_str().unwrap().split(';').next().unwrap().to_owned();
        assert!(set.to_str().unwrap().ends_with("HttpOnly; SameSite=Strict"), "not Secure over plain HTTP");
        assert!(sessions.is_valid(&with_cookie(&format!("theme=dark; {cookie}"))));
        let id = sessions.session_id(&with_cookie(&cookie)).unwrap();
        assert!(id.starts_with("ses_") && cookie.contains(&format!("={id}.")), "{id}");
        // Another replica with the same secret accepts it; one with another secret does not.
        assert!(PageSessions::new(Some(&Secret::new("shared secret"))).is_valid(&with_cookie(&cookie)));
        assert!(!PageSessions::new(Some(&Secret::new("other"))).is_valid(&with_cookie(&cookie)));
        assert!(!PageSessions::new(None).is_valid(&with_cookie(&cookie)));
        let flipped = if cookie.ends_with('0') { '1' } else { '0' };
        let forged = format!("{}{flipped}", &cookie[..cookie.len() - 1]);
        assert!(!sessions.is_valid(&with_cookie(&forged)));
        assert!(!sessions.is_valid(&with_cookie("tripstream_page=ses_x")));
        assert!(!sessions.is_valid(&HeaderMap::new()));
    }

    #[test]
    fn the_cookie_is_secure_when_the_page_was_reached_over_https() {
        let sessions = PageSessions::new(None);
        let via = |proto: &str| {
            let mut headers = HeaderMap::new();
            headers.insert("x-forwarded-proto", HeaderValue::from_str(proto).unwrap());
            sessions.issue(&headers).to_str().unwrap().ends_with("; Secure")
        };
        assert!(via("https") && via("HTTPS") && via("https, http"), "the first hop's scheme counts");
        assert!(!via("http") && !via("http, https") && !via("") && !via("httpsx"));
    }
}
