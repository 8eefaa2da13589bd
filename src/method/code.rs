//! One-time codes for email, SMS and voice: digits from the OS CSPRNG, stored only as
//! HMAC-SHA256 under a server key and bound to their context (flow or registration session
//! and method), compared in constant time.

use crate::secret::Secret;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// A fresh code of `len` decimal digits, uniformly distributed.
pub fn generate(len: usize) -> Secret {
    let mut out = String::with_capacity(len);
    while out.len() < len {
        let mut b = [0u8; 1];
        getrandom::fill(&mut b).expect("OS random source");
        // 250 = 25 * 10: rejecting 250..=255 keeps every digit equally likely.
        if b[0] < 250 {
            out.push(char::from(b'0' + b[0] % 10));
        }
    }
    Secret::new(out)
}

/// HMAC of a code in its context (e.g. `flow:<hash>:email`), hex-encoded for storage.
pub fn mac(key: &[u8; 32], context: &str, code: &str) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    m.update(&(context.len() as u64).to_be_bytes());
    m.update(context.as_bytes());
    m.update(code.as_bytes());
    hex::encode(m.finalize().into_bytes())
}

/// Whether `code` matches a stored MAC, in constant time. Surrounding spaces are ignored.
pub fn verify(key: &[u8; 32], context: &str, code: &str, stored: &str) -> bool {
    let candidate = mac(key, context, code.trim());
    candidate.as_bytes().ct_eq(stored.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_digits_of_the_asked_length() {
        for _ in 0..200 {
            let c = generate(8);
            assert_eq!(c.expose().len(), 8);
            assert!(c.expose().bytes().all(|b| b.is_ascii_digit()));
        }
    }

    #[test]
    fn digits_are_roughly_uniform() {
        let mut counts = [0u32; 10];
        for _ in 0..2_000 {
            for b in generate(10).expose().bytes() {
                counts[(b - b'0') as usize] += 1;
            }
        }
        // 2,000 draws per digit expected; a biased generator would be far off.
        assert!(
            counts.iter().all(|&n| (1_700..2_300).contains(&n)),
            "{counts:?}"
        );
    }

    #[test]
    fn mac_binds_the_context() {
        let k = [9u8; 32];
        let stored = mac(&k, "flow:a:email", "12345678");
        assert!(verify(&k, "flow:a:email", " 12345678 ", &stored));
        assert!(!verify(&k, "flow:b:email", "12345678", &stored));
        assert!(!verify(&k, "flow:a:mobile", "12345678", &stored));
        assert!(!verify(&k, "flow:a:email", "12345679", &stored));
        assert!(!verify(&[8u8; 32], "flow:a:email", "12345678", &stored));
        assert!(!stored.contains("12345678"));
    }
}
