//! OpenLDAP specifics: the ppolicy response control (draft-behera-ldap-password-policy) and
//! the `{ARGON2}` / `{SSHA}` userPassword encodings for servers without Password Modify.

use super::PolicyReason;
use crate::secret::Secret;

/// OID of the password policy request/response control.
pub const PPOLICY_OID: &str = "1.3.6.1.4.1.42.2.27.8.5.1";

/// `PasswordPolicyResponseValue.error` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PpolicyError {
    PasswordExpired,
    AccountLocked,
    ChangeAfterReset,
    PasswordModNotAllowed,
    MustSupplyOldPassword,
    InsufficientPasswordQuality,
    PasswordTooShort,
    PasswordTooYoung,
    PasswordInHistory,
    PasswordTooLong,
    Unknown(u32),
}

impl PpolicyError {
    fn from_code(n: u32) -> Self {
        match n {
            0 => Self::PasswordExpired,
            1 => Self::AccountLocked,
            2 => Self::ChangeAfterReset,
            3 => Self::PasswordModNotAllowed,
            4 => Self::MustSupplyOldPassword,
            5 => Self::InsufficientPasswordQuality,
            6 => Self::PasswordTooShort,
            7 => Self::PasswordTooYoung,
            8 => Self::PasswordInHistory,
            9 => Self::PasswordTooLong,
            n => Self::Unknown(n),
        }
    }

    /// The fixed, safe reason a refused password write maps to.
    pub fn policy_reason(self) -> PolicyReason {
        match self {
            Self::InsufficientPasswordQuality => PolicyReason::InsufficientQuality,
            Self::PasswordTooShort => PolicyReason::TooShort,
            Self::PasswordTooLong => PolicyReason::TooLong,
            Self::PasswordTooYoung => PolicyReason::TooYoung,
            Self::PasswordInHistory => PolicyReason::InHistory,
            Self::PasswordModNotAllowed | Self::MustSupplyOldPassword => {
                PolicyReason::ChangeNotAllowed
            }
            Self::PasswordExpired
            | Self::AccountLocked
            | Self::ChangeAfterReset
            | Self::Unknown(_) => PolicyReason::Other,
        }
    }
}

/// A decoded ppolicy response control.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PpolicyResponse {
    pub time_before_expiration: Option<u32>,
    pub grace_logins_remaining: Option<u32>,
    pub error: Option<PpolicyError>,
}

/// Reads one BER TLV (definite length only) from `buf`: (tag, content, rest).
fn tlv(buf: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = buf.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None; // indefinite or absurd lengths are not valid here
        }
        let len = rest[..n].iter().fold(0usize, |a, &b| (a << 8) | b as usize);
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// A non-negative BER INTEGER/ENUMERATED that fits in u32.
fn uint(content: &[u8]) -> Option<u32> {
    if content.is_empty() || content.len() > 5 || content[0] & 0x80 != 0 {
        return None;
    }
    let v = content.iter().fold(0u64, |a, &b| (a << 8) | b as u64);
    u32::try_from(v).ok()
}

/// Decodes the value of a ppolicy response control. `None` when it is malformed.
pub fn decode_ppolicy(value: &[u8]) -> Option<PpolicyResponse> {
    let (tag, mut body, rest) = tlv(value)?;
    if tag != 0x30 || !rest.is_empty() {
        return None;
    }
    let mut out = PpolicyResponse::default();
    while !body.is_empty() {
        let (tag, content, rest) = tlv(body)?;
        match tag {
            // warning [0] CHOICE { timeBeforeExpiration [0] INTEGER, graceAuthNsRemaining [1] INTEGER }
            0xa0 => {
                let (inner, v, tail) = tlv(content)?;
                if !tail.is_empty() {
                    return None;
                }
                match inner {
                    0x80 => out.time_before_expiration = Some(uint(v)?),
                    0x81 => out.grace_logins_remaining = Some(uint(v)?),
                    _ => return None,
                }
            }
            // error [1] ENUMERATED
            0x81 => out.error = Some(PpolicyError::from_code(uint(content)?)),
            _ => return None,
        }
        body = rest;
    }
    Some(out)
}

/// `{SSHA}` of the password with a random 8-byte salt (RFC 2307 style, as slappasswd writes).
pub fn ssha(password: &Secret) -> String {
    use base64::Engine;
    use sha1::{Digest, Sha1};
    let mut salt = [0u8; 8];
    getrandom::fill(&mut salt).expect("OS random source");
    let mut h = Sha1::new();
    h.update(password.expose().as_bytes());
    h.update(salt);
    let mut raw = h.finalize().to_vec();
    raw.extend_from_slice(&salt);
    format!(
        "{{SSHA}}{}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// `{ARGON2}` PHC string, as slapd's argon2 module verifies.
pub fn argon2(password: &Secret) -> String {
    use argon2::password_hash::PasswordHasher;
    let phc = argon2::Argon2::default()
        .hash_password(password.expose().as_bytes())
        .expect("argon2 with default parameters");
    format!("{{ARGON2}}{phc}")
}

/// An LDAP GeneralizedTime (`20261128064157Z`, with optional fraction or `+hhmm` offset)
/// as Unix seconds.
pub fn generalized_time(s: &str) -> Option<u64> {
    let digits = s.get(..14)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = |a: usize, b: usize| digits[a..b].parse::<u32>().ok();
    let date = time::Date::from_calendar_date(
        i32::try_from(n(0, 4)?).ok()?,
        time::Month::try_from(u8::try_from(n(4, 6)?).ok()?).ok()?,
        u8::try_from(n(6, 8)?).ok()?,
    )
    .ok()?;
    let at = date
        .with_hms(
            u8::try_from(n(8, 10)?).ok()?,
            u8::try_from(n(10, 12)?).ok()?,
            u8::try_from(n(12, 14)?).ok()?,
        )
        .ok()?
        .assume_utc();
    let rest = s[14..].trim_start_matches(|c: char| c == '.' || c.is_ascii_digit());
    let offset: i64 = match rest.as_bytes() {
        [b'Z'] | [] => 0,
        [sign @ (b'+' | b'-'), hhmm @ ..]
            if hhmm.len() == 4 && hhmm.iter().all(u8::is_ascii_digit) =>
        {
            let v: i64 = std::str::from_utf8(hhmm).ok()?.parse().ok()?;
            let secs = (v / 100) * 3600 + (v % 100) * 60;
            if *sign == b'+' { secs } else { -secs }
        }
        _ => return None,
    };
    u64::try_from(at.unix_timestamp() - offset).ok()
}

/// The lockout a ppolicy entry sets: (failed binds that lock the account, 0 = never; seconds
/// a failure counts, 0 = until the next successful bind). Only `pwdLockout: TRUE` locks.
pub fn lockout_policy(
    lockout: Option<&str>,
    max_failure: Option<&str>,
    interval: Option<&str>,
) -> (u32, u64) {
    let threshold = if lockout.is_some_and(|v| v.eq_ignore_ascii_case("TRUE")) {
        max_failure.and_then(|v| v.trim().parse().ok()).unwrap_or(0)
    } else {
        0
    };
    let window = interval.and_then(|v| v.trim().parse().ok()).unwrap_or(0);
    (threshold, window)
}

/// The failed binds ppolicy counts now: the user's `pwdFailureTime` values within the
/// policy's window (all of them when it is 0). Unparseable values count.
pub fn counted_failures(times: &[String], window: u64, now: u64) -> u32 {
    times
        .iter()
        .filter(|t| window == 0 || generalized_time(t).is_none_or(|t| t + window > now))
        .count() as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_what_slapd_sends() {
        // Captured from slapd 2.5: MAOBAQY= (too short) and MAOBAQg= (in history).
        assert_eq!(
            decode_ppolicy(&[0x30, 0x03, 0x81, 0x01, 0x06])
                .unwrap()
                .error,
            Some(PpolicyError::PasswordTooShort)
        );
        assert_eq!(
            decode_ppolicy(&[0x30, 0x03, 0x81, 0x01, 0x08])
                .unwrap()
                .error,
            Some(PpolicyError::PasswordInHistory)
        );
        let w = decode_ppolicy(&[0x30, 0x05, 0xa0, 0x03, 0x81, 0x01, 0x02]).unwrap();
        assert_eq!(w.grace_logins_remaining, Some(2));
        assert_eq!(w.error, None);
        assert_eq!(decode_ppolicy(&[0x30, 0x00]).unwrap(), Default::default());
    }

    #[test]
    fn every_error_maps_to_a_fixed_reason() {
        let cases = [
            (2, PolicyReason::Other),
            (3, PolicyReason::ChangeNotAllowed),
            (5, PolicyReason::InsufficientQuality),
            (6, PolicyReason::TooShort),
            (7, PolicyReason::TooYoung),
            (8, PolicyReason::InHistory),
            (9, PolicyReason::TooLong),
            (77, PolicyReason::Other),
        ];
        for (code, reason) in cases {
            let r = decode_ppolicy(&[0x30, 0x03, 0x81, 0x01, code]).unwrap();
            assert_eq!(r.error.unwrap().policy_reason(), reason, "code {code}");
        }
    }

    #[test]
    fn malformed_values_are_rejected() {
        for bad in [
            &[][..],
            &[0x30],
            &[0x30, 0x05, 0x81, 0x01],
            &[0x31, 0x03, 0x81, 0x01, 0x06],
            &[0x30, 0x03, 0x82, 0x01, 0x06],
            &[0x30, 0x80, 0x81, 0x01, 0x06, 0x00, 0x00],
            &[0x30, 0x03, 0x81, 0x01, 0x86],
            &[0x30, 0x03, 0x81, 0x01, 0x06, 0xff],
        ] {
            assert!(decode_ppolicy(bad).is_none(), "{bad:02x?}");
        }
    }

    #[test]
    fn generalized_times_and_lockout_counts() {
        assert_eq!(generalized_time("19700101000000Z"), Some(0));
        assert_eq!(generalized_time("20261128064157Z"), Some(1_795_848_117));
        assert_eq!(
            generalized_time("20261128064157.123456Z"),
            Some(1_795_848_117)
        );
        assert_eq!(generalized_time("20261128084157+0200"), Some(1_795_848_117));
        for bad in [
            "",
            "2026",
            "2026112806415xZ",
            "20261328064157Z",
            "20261128064157Q",
        ] {
            assert_eq!(generalized_time(bad), None, "{bad:?}");
        }
        assert_eq!(lockout_policy(Some("TRUE"), Some("3"), Some("0")), (3, 0));
        assert_eq!(lockout_policy(Some("FALSE"), Some("3"), None), (0, 0));
        assert_eq!(lockout_policy(None, Some("5"), Some("600")), (0, 600));
        assert_eq!(lockout_policy(Some("TRUE"), None, Some("600")), (0, 600));
        let now = 1_795_848_117;
        let times = vec![
            "20261128064157Z".to_string(),
            "20261128060000Z".to_string(),
            "garbage".to_string(),
        ];
        assert_eq!(counted_failures(&times, 0, now), 3, "no window: all count");
        assert_eq!(
            counted_failures(&times, 600, now),
            2,
            "the old one fell out"
        );
    }

    #[test]
    fn hashes_have_the_scheme_prefix() {
        let pw = Secret::new("Pa55-word");
        assert!(ssha(&pw).starts_with("{SSHA}"));
        assert!(argon2(&pw).starts_with("{ARGON2}$argon2id$"));
        assert_ne!(ssha(&pw), ssha(&pw), "salted");
    }
}
