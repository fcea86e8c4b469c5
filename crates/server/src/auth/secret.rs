//! Random identifiers and bearer secrets: stream and run ids, resume tokens, page sessions. Each is 128
//! random bits written in Crockford base32 after a prefix; a secret's come from the operating system's
//! generator, and only its SHA-256 is kept where it must be checked later, and checks compare in constant
//! time.

use sha2::{Digest, Sha256};
use tripstream_domain::plan::prefixed_id;

/// 128 bits from the operating system's random generator.
pub fn random_bits() -> u128 {
    let mut bytes = [0u8; 16];
    // The OS generator failing is not something a request can recover from; it never does on Linux.
    getrandom::fill(&mut bytes).expect("the operating system's random generator works");
    u128::from_le_bytes(bytes)
}

/// A fresh random id that is not a secret (a stream's, a run's): `prefix` and 26 base32 characters. Unlike
/// a time-ordered id, it tells nothing of when it was made. Its bits come from the thread's ChaCha12
/// generator (`rand::ThreadRng`, seeded from the operating system's), without a system call for each of a
/// stream's ids while a burst of streams waits for its first events.
pub fn random_id(prefix: &str) -> String {
    prefixed_id(prefix, rand::random())
}

/// A fresh bearer secret (a resume token, a page session): like [`random_id`], but every bit from the
/// operating system's generator, which the kernel reseeds when a virtual machine is cloned from a snapshot;
/// a generator in user space would give every clone the same secrets until it next reseeds.
pub fn random_secret(prefix: &str) -> String {
    prefixed_id(prefix, random_bits())
}

/// What is kept of a secret: its SHA-256.
pub fn digest(secret: &str) -> [u8; 32] {
    digest_bytes(secret.as_bytes())
}

/// The SHA-256 of some bytes.
pub fn digest_bytes(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Whether `presented` is the secret whose digest is `expected`, in time that does not depend on where
/// they differ.
pub fn matches(presented: &str, expected: &[u8; 32]) -> bool {
    let got = digest(presented);
    got.iter().zip(expected).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// HMAC-SHA256 (RFC 2104), for the page's session cookie.
pub fn hmac(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.map(|b| b ^ byte);
    let inner = Sha256::new().chain_update(pad(0x36)).chain_update(message).finalize();
    Sha256::new().chain_update(pad(0x5c)).chain_update(inner).finalize().into()
}

/// Equal in constant time.
pub fn equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test cases 1 and 2 of RFC 4231.
        assert_eq!(
            hex(&hmac(&[0x0b; 20], b"Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        assert_eq!(
            hex(&hmac(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a key longer than the block.
        assert_eq!(
            hex(&hmac(&[0xaa; 131], b"Test Using Larger Than Block-Size Key - Hash Key First")),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn ids_are_random_and_secrets_are_checked_by_digest() {
        let (a, b) = (random_id("str_"), random_id("str_"));
        assert_ne!(a, b);
        assert_eq!(a.len(), 4 + 26);
        let (s, t) = (random_secret("tok_"), random_secret("tok_"));
        assert_ne!(s, t);
        assert!(s.starts_with("tok_") && s.len() == 4 + 26, "{s}");
        let kept = digest("tok_ABC");
        assert!(matches("tok_ABC", &kept));
        assert!(!matches("tok_ABD", &kept));
        assert!(equal(b"ab", b"ab") && !equal(b"ab", b"ac") && !equal(b"ab", b"abc"));
    }
}
