//! Authenticator apps (TOTP, RFC 6238: SHA1, 6 digits, 30 s — what every app supports).
//!
//! Secrets are 160-bit, sealed at rest with ChaCha20-Poly1305 under a key kept outside the
//! database (a credential file), with the user id as associated data so a sealed secret
//! cannot be moved to another account. A code is accepted within ±1 step of the server's
//! clock (client time is never used), and only for a step later than the last accepted one.

use crate::problems::Problems;
use crate::secret::{Secret, SecretSource};
use base64::Engine;
use chacha20poly1305::{
    ChaCha20Poly1305, Key, KeyInit, Nonce,
    aead::{Aead, Payload},
};
use serde::{Deserialize, Serialize};
use totp_rs::{Algorithm, Builder};
use zeroize::Zeroizing;

pub const DIGITS: u8 = 6;
pub const STEP_SECS: u64 = 30;

/// Seals and opens TOTP secrets.
pub struct Sealer {
    cipher: ChaCha20Poly1305,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer([REDACTED])")
    }
}

impl Sealer {
    /// The key file holds 32 random bytes as 64 hex digits or base64
    /// (`openssl rand -hex 32 > /etc/ssprd/totp-key`).
    pub fn from_key_text(text: &Secret) -> Result<Self, String> {
        let t = text.expose().trim();
        let bytes = Zeroizing::new(if t.len() == 64 {
            hex::decode(t).map_err(|_| "not 64 hex digits".to_string())?
        } else {
            base64::engine::general_purpose::STANDARD
                .decode(t)
                .map_err(|_| "neither 64 hex digits nor base64".to_string())?
        });
        if bytes.len() != 32 {
            return Err(format!("the key must be 32 bytes, not {}", bytes.len()));
        }
        Ok(Self {
            cipher: ChaCha20Poly1305::new(Key::from_slice(&bytes)),
        })
    }

    pub fn seal(&self, plaintext: &[u8], aad: &str) -> String {
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).expect("OS random source");
        let ct = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: aad.as_bytes(),
                },
            )
            .expect("encryption cannot fail for in-memory buffers");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        base64::engine::general_purpose::STANDARD.encode(out)
    }

    pub fn open(&self, sealed: &str, aad: &str) -> Option<Zeroizing<Vec<u8>>> {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(sealed)
            .ok()?;
        if raw.len() < 12 + 16 {
            return None;
        }
        let (nonce, ct) = raw.split_at(12);
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: aad.as_bytes(),
                },
            )
            .ok()
            .map(Zeroizing::new)
    }
}

fn totp(secret: &[u8], issuer: &str, account: &str) -> totp_rs::Totp {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(DIGITS)
        .with_skew(1)
        .with_step_duration(STEP_SECS)
        .with_secret(secret.to_vec())
        .with_issuer(Some(issuer.replace(':', " ")))
        .with_account_name(account.replace(':', " "))
        .build_noncompliant()
}

/// A new enrolment: the secret and how to show it to the user.
pub struct Enrolment {
    pub secret: Zeroizing<Vec<u8>>,
    pub uri: Secret,
    pub qr_png: Vec<u8>,
    pub qr_text: String,
}

impl std::fmt::Debug for Enrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Enrolment([REDACTED])")
    }
}

pub fn enrol(issuer: &str, account: &str) -> Enrolment {
    let mut secret = Zeroizing::new(vec![0u8; 20]);
    getrandom::fill(&mut secret).expect("OS random source");
    let t = totp(&secret, issuer, account);
    let uri = Secret::new(t.to_url().expect("issuer and account are set"));
    let (qr_png, qr_text) = qr(uri.expose());
    Enrolment {
        secret,
        uri,
        qr_png,
        qr_text,
    }
}

/// The URI as a QR code: PNG bytes and text for a terminal.
fn qr(data: &str) -> (Vec<u8>, String) {
    use qrcode::QrCode;
    let code = QrCode::new(data.as_bytes()).expect("an otpauth URI fits in a QR code");
    let text = code
        .render::<qrcode::render::unicode::Dense1x2>()
        .quiet_zone(true)
        .build();
    let img = code
        .render::<image::Luma<u8>>()
        .min_dimensions(200, 200)
        .build();
    let mut png = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageLuma8(img)
        .write_to(&mut png, image::ImageFormat::Png)
        .expect("PNG encoding into memory");
    (png.into_inner(), text)
}

/// The step a code matches at `now` (±1 step), if it is later than `last_step`.
pub fn check(secret: &[u8], code: &str, now: u64, last_step: Option<u64>) -> Option<u64> {
    let code = code.trim();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let t = totp(secret, "ssprd", "user");
    let origin = now / STEP_SECS;
    // Every candidate is computed (no early exit on a match).
    let mut matched = None;
    for step in origin.saturating_sub(1)..=origin + 1 {
        let expected = t.generate(step * STEP_SECS).to_string();
        let eq: bool = subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), code.as_bytes()).into();
        if eq && last_step.is_none_or(|l| step > l) && matched.is_none() {
            matched = Some(step);
        }
    }
    matched
}

/// The code for `secret` at `time` (for tests and tools).
pub fn code_at(secret: &[u8], time: u64) -> String {
    totp(secret, "ssprd", "user").generate(time).to_string()
}

/// The secret inside an `otpauth://` URI (for tests: what an app would read from the QR).
pub fn secret_from_uri(uri: &str) -> Option<Vec<u8>> {
    let q = uri.split_once('?')?.1;
    let b32 = q.split('&').find_map(|kv| kv.strip_prefix("secret="))?;
    totp_rs::Secret::try_from_base32(b32)
        .ok()
        .map(|s| s.as_bytes().to_vec())
}

/// The `[authenticator]` section.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAuthenticator {
    /// Issuer shown in the authenticator app.
    pub issuer: String,
    /// Key sealing TOTP secrets at rest (32 bytes, hex or base64). Default: the systemd
    /// credential `totp-key`. Keep it outside the database and back it up separately.
    pub key: Option<SecretSource>,
}

impl Default for RawAuthenticator {
    fn default() -> Self {
        Self {
            issuer: "ssprd".into(),
            key: None,
        }
    }
}

impl RawAuthenticator {
    /// Checks the section into `p` when a key is configured or `enabled` (a policy names
    /// the authenticator method): the issuer, and the sealing key text.
    pub fn validate(&self, p: &mut Problems, enabled: bool) -> Option<(String, Secret)> {
        if !enabled && self.key.is_none() {
            return None;
        }
        let key = SecretSource::or_credential(&self.key, "totp-key")
            .read()
            .and_then(|k| Sealer::from_key_text(&k).map(|_| k))
            .map_err(|er| p.bad("authenticator.key", er))
            .ok();
        if self.issuer.trim().is_empty() {
            p.bad("authenticator.issuer", "must not be empty");
        }
        key.map(|k| (self.issuer.trim().to_string(), k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_round_trip_bound_to_the_user() {
        let s = Sealer::from_key_text(&Secret::new("11".repeat(32))).unwrap();
        let sealed = s.seal(b"secret-bytes", "user-1");
        assert_eq!(&s.open(&sealed, "user-1").unwrap()[..], b"secret-bytes");
        assert!(s.open(&sealed, "user-2").is_none(), "aad binds the user");
        let other = Sealer::from_key_text(&Secret::new("22".repeat(32))).unwrap();
        assert!(other.open(&sealed, "user-1").is_none());
        assert!(Sealer::from_key_text(&Secret::new("abcd")).is_err());
    }

    #[test]
    fn only_plus_minus_one_step_and_never_twice() {
        let secret = [7u8; 20];
        let now = 1_000_000_000;
        let step = now / STEP_SECS;
        let at = |s: u64| code_at(&secret, s * STEP_SECS);
        assert_eq!(check(&secret, &at(step), now, None), Some(step));
        assert_eq!(check(&secret, &at(step - 1), now, None), Some(step - 1));
        assert_eq!(check(&secret, &at(step + 1), now, None), Some(step + 1));
        assert_eq!(
            check(&secret, &at(step - 2), now, None),
            None,
            "T-2 refused"
        );
        assert_eq!(check(&secret, &at(step + 2), now, None), None);
        // Replay: the same step, or any step not after the last accepted one.
        assert_eq!(check(&secret, &at(step), now, Some(step)), None);
        assert_eq!(check(&secret, &at(step - 1), now, Some(step)), None);
        assert_eq!(
            check(&secret, &at(step + 1), now, Some(step)),
            Some(step + 1)
        );
        assert_eq!(check(&secret, "12345", now, None), None);
        assert_eq!(check(&secret, "abcdef", now, None), None);
    }

    #[test]
    fn enrolment_uri_and_qr() {
        let e = enrol("Example Corp", "alice");
        assert_eq!(e.secret.len(), 20);
        let uri = e.uri.expose();
        assert!(uri.starts_with("otpauth://totp/"), "{uri}");
        assert_eq!(secret_from_uri(uri).unwrap(), e.secret.to_vec());
        assert!(e.qr_png.starts_with(b"\x89PNG"));
        assert!(e.qr_text.lines().count() > 10);
        assert_eq!(format!("{e:?}"), "Enrolment([REDACTED])");
    }
}
