//! API keys: how a caller who is not anonymous says who they are. A key is `tsk_` followed by 32 Crockford
//! base32 characters (160 bits from the operating system's random number generator), shown once when it
//! is created; the database (the run log's, `api_keys`) keeps only its SHA-256. [`KeyStore`] creates,
//! lists, revokes and finds keys; [`CachedKeys`] answers the look-up a request makes from memory for a few
//! seconds.
//!
//! Keys, their hashes and whatever a caller presented never reach a log line, an error message or a
//! `Debug`: the errors here name a key by its id (public) at most.

mod cached;
mod store;

use sha2::{Digest, Sha256};

pub use cached::CachedKeys;
pub use store::KeyStore;

/// What every key starts with: a key found in a log, a repository or a paste says what it is.
pub const KEY_PREFIX: &str = "tsk_";
/// 32 characters of 5 bits each: 160 random bits, beyond any guessing.
const KEY_CHARS: usize = 32;
/// What every key id starts with.
pub const ID_PREFIX: &str = "key_";
/// 130 random bits: ids never collide, and say nothing about when a key was made.
const ID_CHARS: usize = 26;
/// The longest name a key may have, in characters.
pub const NAME_MAX_CHARS: usize = 100;
/// The largest daily token allowance: the database keeps it as a signed 64-bit integer.
pub const DAILY_TOKENS_MAX: u64 = i64::MAX as u64;

/// Crockford's base32 alphabet: digits and upper-case letters without I, L, O and U, so that a key read
/// aloud or copied by hand is not misread.
const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A caller's key as stored: never the key itself, only its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// `key_` + 26 Crockford base32 characters, random; public, shown in lists and used to revoke.
    pub id: String,
    /// Whose key it is, for people reading the list.
    pub name: String,
    /// The admin scope: `/api/v1/stats`, `/metrics`, `/health`'s details, every stream.
    pub admin: bool,
    /// Requests per minute for this key; `None`: the server's default for keys.
    pub rate_per_minute: Option<u32>,
    /// LLM tokens per UTC day; `None`: unlimited.
    pub daily_tokens: Option<u64>,
    pub created_at_ms: i64,
    /// When it stopped working; `None` while it works.
    pub revoked_at_ms: Option<i64>,
}

/// What `KeyStore::create` needs to know about a new key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewKey {
    pub name: String,
    pub admin: bool,
    pub rate_per_minute: Option<u32>,
    pub daily_tokens: Option<u64>,
}

/// Everything that can go wrong with keys. The messages name at most a key's id, never a key or a hash.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("a key needs a name: 1 to {NAME_MAX_CHARS} characters, without control characters")]
    InvalidName,
    #[error("{what} must be between 1 and {max}")]
    InvalidLimit { what: &'static str, max: u64 },
    /// What was given is not repeated: it may be a key pasted in the wrong place.
    #[error("{}", if *.looks_like_key {
        "that is a key, not a key id; `tripstream keys list` shows the ids (key_…)"
    } else {
        "not a key id: ids are key_ followed by 26 letters and digits (see `tripstream keys list`)"
    })]
    InvalidId { looks_like_key: bool },
    #[error("no key has the id {id}")]
    NotFound { id: String },
    #[error("API key database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("API keys: the operating system's random number generator failed")]
    Random(#[source] getrandom::Error),
    #[error("API key database: the key {id} has an invalid {column}")]
    Corrupt { id: String, column: &'static str },
}

impl KeyError {
    /// The caller asked for something that cannot be (a bad name, limit or id, an unknown id), as opposed
    /// to the database or the machine failing.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            KeyError::InvalidName
                | KeyError::InvalidLimit { .. }
                | KeyError::InvalidId { .. }
                | KeyError::NotFound { .. }
        )
    }
}

/// The SHA-256 of a key: what the database and the cache hold. A key is 160 random bits, so a fast hash
/// suffices: a slow one (argon2, bcrypt) protects guessable passwords, and nobody can guess these, from
/// the hash or otherwise.
///
/// Finding a key by its hash is also why no comparison here needs to be constant-time: an index look-up
/// may take longer the more leading bytes a stored hash shares with the presented one, but the caller
/// cannot choose the hash of what they send, so the timing teaches them nothing about any stored key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct KeyHash([u8; 32]);

impl KeyHash {
    fn of(key: &str) -> KeyHash {
        KeyHash(Sha256::digest(key.as_bytes()).into())
    }

    /// The hash of what a caller presented, if it has a key's form; anything else is no key, and is
    /// turned away without a look-up.
    pub(crate) fn of_presented(presented: &str) -> Option<KeyHash> {
        let random = presented.strip_prefix(KEY_PREFIX)?;
        (random.len() == KEY_CHARS && random.bytes().all(|b| CROCKFORD.contains(&b))).then(|| KeyHash::of(presented))
    }

    /// 64 lower-case hex digits, as stored.
    fn hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl std::fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyHash(***)")
    }
}

/// `n` Crockford base32 characters from the operating system's random number generator. Each comes from
/// the low 5 bits of its own random byte, so each is uniform over the alphabet.
fn random_chars(n: usize) -> Result<String, KeyError> {
    random_crockford(n).map_err(KeyError::Random)
}

/// [`random_chars`] for the other stores' ids (saved plans, share links).
pub(crate) fn random_crockford(n: usize) -> Result<String, getrandom::Error> {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes)?;
    Ok(bytes.iter().map(|b| char::from(CROCKFORD[usize::from(b & 31)])).collect())
}

/// Whether `id` is `prefix` followed by `n` Crockford base32 characters.
pub(crate) fn is_random_id(id: &str, prefix: &str, n: usize) -> bool {
    id.strip_prefix(prefix).is_some_and(|rest| rest.len() == n && rest.bytes().all(|b| CROCKFORD.contains(&b)))
}

/// A new key and its id.
fn generate() -> Result<(String, String), KeyError> {
    let key = format!("{KEY_PREFIX}{}", random_chars(KEY_CHARS)?);
    let id = format!("{ID_PREFIX}{}", random_chars(ID_CHARS)?);
    Ok((key, id))
}

/// Checks an id before it reaches the database.
fn check_id(id: &str) -> Result<(), KeyError> {
    if is_random_id(id, ID_PREFIX, ID_CHARS) {
        Ok(())
    } else {
        Err(KeyError::InvalidId { looks_like_key: id.starts_with(KEY_PREFIX) })
    }
}

/// The name as stored (trimmed), and the limits within what the database holds.
fn check_new(new: &NewKey) -> Result<String, KeyError> {
    let name = new.name.trim();
    if name.is_empty() || name.chars().count() > NAME_MAX_CHARS || name.chars().any(char::is_control) {
        return Err(KeyError::InvalidName);
    }
    if new.rate_per_minute == Some(0) {
        return Err(KeyError::InvalidLimit { what: "the rate (requests per minute)", max: u64::from(u32::MAX) });
    }
    if new.daily_tokens.is_some_and(|n| n == 0 || n > DAILY_TOKENS_MAX) {
        return Err(KeyError::InvalidLimit { what: "the daily token allowance", max: DAILY_TOKENS_MAX });
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_ids_have_their_form_and_differ_every_time() {
        let (key, id) = generate().unwrap();
        assert!(KeyHash::of_presented(&key).is_some(), "a fresh key is of the form it is checked against");
        assert_eq!((key.len(), id.len()), (4 + 32, 4 + 26));
        check_id(&id).unwrap();
        let (key2, id2) = generate().unwrap();
        assert_ne!((&key, &id), (&key2, &id2));
    }

    #[test]
    fn the_random_characters_use_the_whole_alphabet_evenly() {
        let sample = random_chars(32_000).unwrap();
        for c in CROCKFORD {
            let n = sample.bytes().filter(|b| b == c).count();
            // 1000 expected; a fair die stays well inside ±20 % at this size.
            assert!((800..1200).contains(&n), "{} appeared {n} times in 32000", char::from(*c));
        }
    }

    #[test]
    fn what_is_not_of_a_keys_form_is_no_key() {
        let (key, _) = generate().unwrap();
        let lower = key.to_lowercase();
        let rejected = [
            "",
            "tsk_",
            &key[..key.len() - 1],
            &format!("{key}0"),
            &format!(" {key}"),
            &format!("Bearer {key}"),
            &key.replacen("tsk_", "tsx_", 1),
            &format!("tsk_{}", &lower[4..]),
            "tsk_IIIIIIIIIIIIIIIIIIIIIIIIIIIIIIII",
            &format!("tsk_{}é", "0".repeat(30)),
        ];
        for presented in rejected {
            assert!(KeyHash::of_presented(presented).is_none(), "accepted {presented:?}");
        }
        assert_eq!(KeyHash::of_presented(&key), Some(KeyHash::of(&key)));
    }

    #[test]
    fn hashes_are_sha256_in_hex_and_never_shown() {
        let hash = KeyHash::of(&generate().unwrap().0);
        assert_eq!(KeyHash::of("abc").hex(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(format!("{hash:?}"), "KeyHash(***)");
    }

    #[test]
    fn names_limits_and_ids_are_checked() {
        let new = |name: &str| NewKey { name: name.into(), ..NewKey::default() };
        assert_eq!(check_new(&new("  ci bot ")).unwrap(), "ci bot");
        for bad in ["", "   ", "a\nb", &"x".repeat(101)] {
            assert!(matches!(check_new(&new(bad)), Err(KeyError::InvalidName)), "{bad:?}");
        }
        assert_eq!(check_new(&new(&"é".repeat(100))).unwrap().chars().count(), 100);
        let zero_rate = NewKey { rate_per_minute: Some(0), ..new("a") };
        assert!(matches!(check_new(&zero_rate), Err(KeyError::InvalidLimit { .. })));
        for tokens in [0, DAILY_TOKENS_MAX + 1] {
            let bad = NewKey { daily_tokens: Some(tokens), ..new("a") };
            assert!(check_new(&bad).unwrap_err().is_bad_input(), "{tokens}");
        }
        let (key, id) = generate().unwrap();
        assert!(matches!(check_id(&key), Err(KeyError::InvalidId { looks_like_key: true })));
        for bad in ["", "key_", &id.to_lowercase(), &format!("{id}0")] {
            assert!(matches!(check_id(bad), Err(KeyError::InvalidId { looks_like_key: false })), "{bad:?}");
        }
        let message = KeyError::InvalidId { looks_like_key: true }.to_string();
        assert!(message.contains("that is a key, not a key id"), "{message}");
    }
}
