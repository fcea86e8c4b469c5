//! The value types of settings: durations in the unit their variable names (`*_SECS`, `*_MS`), and secrets
//! that `Debug` never prints.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use tripstream_adapters::http::Secret;

/// The longest duration any setting takes: a year.
const MAX: Duration = Duration::from_secs(365 * 24 * 3600);

/// A duration given in seconds, decimals allowed (`15`, `0.5`): every `*_SECS` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Secs(Duration);

/// A duration given in whole milliseconds: every `*_MS` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Millis(Duration);

impl Secs {
    pub const ZERO: Secs = Secs(Duration::ZERO);

    pub const fn new(secs: u64) -> Secs {
        Secs(Duration::from_secs(secs))
    }

    pub const fn get(self) -> Duration {
        self.0
    }

    /// For settings where zero makes no sense (a timeout, an interval).
    pub fn positive(s: &str) -> Result<Secs, String> {
        s.parse::<Secs>().and_then(|v| if v.0.is_zero() { Err(format!("{s:?} must be more than 0")) } else { Ok(v) })
    }
}

impl Millis {
    pub const fn new(ms: u64) -> Millis {
        Millis(Duration::from_millis(ms))
    }

    pub const fn get(self) -> Duration {
        self.0
    }

    /// For settings where zero makes no sense (a timeout).
    pub fn positive(s: &str) -> Result<Millis, String> {
        s.parse::<Millis>().and_then(|v| if v.0.is_zero() { Err(format!("{s:?} must be more than 0")) } else { Ok(v) })
    }
}

impl FromStr for Secs {
    type Err = String;

    fn from_str(s: &str) -> Result<Secs, String> {
        match s.trim().parse::<f64>() {
            Ok(v) if v.is_finite() && v >= 0.0 && v <= MAX.as_secs_f64() => Ok(Secs(Duration::from_secs_f64(v))),
            _ => Err(format!("{s:?} is not a number of seconds between 0 and {}", MAX.as_secs())),
        }
    }
}

impl FromStr for Millis {
    type Err = String;

    fn from_str(s: &str) -> Result<Millis, String> {
        match s.trim().parse::<u64>() {
            Ok(v) if Duration::from_millis(v) <= MAX => Ok(Millis(Duration::from_millis(v))),
            _ => Err(format!("{s:?} is not a whole number of milliseconds up to {}", MAX.as_millis())),
        }
    }
}

/// As the value is written in the environment, so that clap shows defaults in the same unit.
impl fmt::Display for Secs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.as_secs_f64())
    }
}

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.as_millis())
    }
}

/// Parses a secret setting (an API key); an empty value is the same as none.
pub fn secret(s: &str) -> Result<Secret, String> {
    Ok(Secret::new(s.trim()))
}

/// A provider's address (`GEMINI_BASE_URL`, `OPENWEATHER_BASE_URL`, …), checked at start, so that a typo
/// stops the service with its setting's name rather than failing every request to that provider.
pub fn http_url(s: &str) -> Result<String, String> {
    let s = s.trim();
    tripstream_adapters::http::check_address(s).map(|()| s.to_owned())
}

/// As [`http_url`], for a provider that is off when its address is unset or empty.
pub fn optional_http_url(s: &str) -> Result<String, String> {
    if s.trim().is_empty() { Ok(String::new()) } else { http_url(s) }
}

/// A configured secret: unset and empty are the same.
pub fn configured(secret: &Option<Secret>) -> Option<&Secret> {
    secret.as_ref().filter(|s| !s.expose().is_empty())
}

/// A connection URL that may hold a password (`DATABASE_URL`, `REDIS_URL`): `Debug` shows it with the
/// password masked.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretUrl(String);

impl SecretUrl {
    pub fn new(url: impl Into<String>) -> SecretUrl {
        SecretUrl(url.into().trim().to_owned())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with its password (after `user:` in the authority, or a `password=` parameter) replaced
    /// by `***`.
    pub fn redacted(&self) -> String {
        let mut url = self.0.clone();
        if let Some(start) = url.find("://").map(|i| i + 3) {
            let authority_end = url[start..].find(['/', '?', '#']).map_or(url.len(), |i| start + i);
            if let Some(at) = url[start..authority_end].rfind('@').map(|i| start + i)
                && let Some(colon) = url[start..at].find(':').map(|i| start + i)
            {
                url.replace_range(colon + 1..at, "***");
            }
        }
        if let Some(query) = url.find('?') {
            let mut from = query;
            while let Some(i) = url[from..].find("password=").map(|i| from + i + "password=".len()) {
                let end = url[i..].find(['&', '#']).map_or(url.len(), |e| i + e);
                url.replace_range(i..end, "***");
                from = i + 3;
            }
        }
        url
    }
}

impl FromStr for SecretUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<SecretUrl, String> {
        Ok(SecretUrl::new(s))
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.redacted())
    }
}

/// Never the password, also where clap prints a default.
impl fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_their_unit_and_print_back_the_same() {
        assert_eq!("0.5".parse::<Secs>().unwrap().get(), Duration::from_millis(500));
        assert_eq!(Secs::new(15).to_string(), "15");
        assert_eq!("250".parse::<Millis>().unwrap().get(), Duration::from_millis(250));
        assert_eq!(Millis::new(3000).to_string(), "3000");
        for bad in ["-1", "NaN", "inf", "1e20", "ten", ""] {
            assert!(bad.parse::<Secs>().is_err(), "{bad}");
        }
        assert!("1.5".parse::<Millis>().is_err());
        assert!(Secs::positive("0").is_err());
        assert_eq!(Secs::positive("2").unwrap(), Secs::new(2));
    }

    #[test]
    fn passwords_in_urls_are_masked() {
        for (url, shown) in [
            ("postgres://app:s3cret@db:5432/trips", "postgres://app:***@db:5432/trips"),
            ("redis://:s3cret@cache:6379/0", "redis://:***@cache:6379/0"),
            ("rediss://default:p%40ss@host/", "rediss://default:***@host/"),
            ("postgres://app@db/trips", "postgres://app@db/trips"),
            ("sqlite://tripstream.db", "sqlite://tripstream.db"),
            (
                "postgres://db/x?user=a&password=p@w&sslmode=require",
                "postgres://db/x?user=a&password=***&sslmode=require",
            ),
        ] {
            let url = SecretUrl::new(url);
            assert_eq!(url.redacted(), shown);
            assert_eq!(format!("{url:?}"), format!("{shown:?}"));
        }
    }
}
