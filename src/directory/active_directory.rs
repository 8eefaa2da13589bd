//! Active Directory / Samba AD specifics: the `unicodePwd` value, the policy-hints control,
//! and decoding of `0000052D` refusals and bind `data` codes.

use super::{BindOutcome, PolicyReason};
use crate::secret::Secret;

/// LDAP_SERVER_POLICY_HINTS_OID: makes a reset honour password history.
pub const POLICY_HINTS_OID: &str = "1.2.840.113556.1.4.2239";
/// Its value: SEQUENCE { INTEGER 1 }.
pub const POLICY_HINTS_VALUE: [u8; 5] = [0x30, 0x03, 0x02, 0x01, 0x01];

/// The `unicodePwd` value: UTF-16LE of the password in double quotes.
pub fn unicode_pwd(password: &Secret) -> zeroize::Zeroizing<Vec<u8>> {
    let quoted = zeroize::Zeroizing::new(format!("\"{}\"", password.expose()));
    zeroize::Zeroizing::new(quoted.encode_utf16().flat_map(u16::to_le_bytes).collect())
}

/// Maps the diagnostic text of a refused `unicodePwd` write (Constraint violation, and
/// `unwillingToPerform` on Windows) to a fixed reason.
pub fn refusal_reason(text: &str) -> PolicyReason {
    let t = text.to_ascii_lowercase();
    if t.contains("too short") {
        PolicyReason::TooShort
    } else if t.contains("too long") {
        PolicyReason::TooLong
    } else if t.contains("complexity") {
        PolicyReason::InsufficientQuality
    } else if t.contains("history") || t.contains("already used") {
        PolicyReason::InHistory
    } else if t.contains("too young") || t.contains("minimum password age") {
        PolicyReason::TooYoung
    } else if t.contains("0000052d") {
        // Windows sends only the code ("unable to update the password ... does not meet the
        // length, complexity, or history requirement"): one reason covers all three.
        PolicyReason::DoesNotMeetPolicy
    } else {
        PolicyReason::Other
    }
}

/// Decodes the `data XXX` sub-code of a failed AD simple bind (result 49).
pub fn bind_outcome(text: &str) -> BindOutcome {
    let t = text.to_ascii_lowercase();
    let code = t
        .split("data ")
        .nth(1)
        .map(|s| {
            s.split(|c: char| !c.is_ascii_hexdigit())
                .next()
                .unwrap_or("")
        })
        .unwrap_or("");
    match code {
        "773" => BindOutcome::MustChange,
        "775" => BindOutcome::Locked,
        "532" => BindOutcome::Expired,
        "533" | "701" => BindOutcome::Disabled,
        _ => BindOutcome::InvalidCredentials,
    }
}

/// Seconds between 1601-01-01 (FILETIME epoch) and 1970-01-01.
const FILETIME_UNIX_OFFSET: u64 = 11_644_473_600;

/// A FILETIME (100 ns since 1601, as in `badPasswordTime`) as Unix seconds; `None` for 0
/// ("never") and values before 1970.
pub fn filetime(v: i64) -> Option<u64> {
    u64::try_from(v)
        .ok()
        .filter(|&v| v > 0)
        .and_then(|v| (v / 10_000_000).checked_sub(FILETIME_UNIX_OFFSET))
}

/// A duration stored as negative 100 ns intervals (`lockOutObservationWindow`,
/// `msDS-LockoutObservationWindow`) in seconds.
pub fn interval_secs(v: i64) -> u64 {
    v.unsigned_abs() / 10_000_000
}

/// The failed binds AD counts now: `badPwdCount`, unless the last bad password
/// (`badPasswordTime`) is older than the observation window (AD then starts again from 0).
pub fn counted_failures(
    bad_pwd_count: u32,
    bad_password_time: Option<u64>,
    window: u64,
    now: u64,
) -> u32 {
    match bad_password_time {
        Some(t) if window > 0 && t + window <= now => 0,
        _ => bad_pwd_count,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unicode_pwd_is_quoted_utf16le() {
        let v = unicode_pwd(&Secret::new("aé\u{1F600}"));
        let units: Vec<u16> = "\"aé\u{1F600}\"".encode_utf16().collect();
        let expect: Vec<u8> = units.iter().flat_map(|u| u.to_le_bytes()).collect();
        assert_eq!(&v[..], &expect[..]);
        assert_eq!(&v[..4], &[0x22, 0x00, 0x61, 0x00]);
    }

    #[test]
    fn lockout_times_and_counts() {
        // 2026-11-28T06:41:57Z as a FILETIME.
        let ft = (1_795_848_117 + FILETIME_UNIX_OFFSET as i64) * 10_000_000;
        assert_eq!(filetime(ft), Some(1_795_848_117));
        assert_eq!(filetime(0), None);
        assert_eq!(filetime(-5), None);
        assert_eq!(interval_secs(-18_000_000_000), 1_800);
        let now = 1_795_848_117;
        assert_eq!(counted_failures(2, Some(now - 60), 1_800, now), 2);
        assert_eq!(counted_failures(2, Some(now - 1_800), 1_800, now), 0);
        assert_eq!(counted_failures(2, None, 1_800, now), 2);
        assert_eq!(counted_failures(4, Some(now - 99_999), 0, now), 4);
    }

    #[test]
    fn samba_refusals_map_to_reasons() {
        // Texts captured from Samba 4.17.
        let c = |s| refusal_reason(s);
        assert_eq!(
            c(
                "0000052D: Constraint violation - check_password_restrictions: the password is too short. It should be equal or longer than 8 characters!"
            ),
            PolicyReason::TooShort
        );
        assert_eq!(
            c(
                "0000052D: Constraint violation - check_password_restrictions: the password does not meet the complexity criteria!"
            ),
            PolicyReason::InsufficientQuality
        );
        assert_eq!(
            c(
                "0000052D: Constraint violation - check_password_restrictions: the password was already used (in history)!"
            ),
            PolicyReason::InHistory
        );
        assert_eq!(
            c(
                "0000052D: Constraint violation - check_password_restrictions: the password is too young to change!"
            ),
            PolicyReason::TooYoung
        );
        assert_eq!(
            c("0000052D: SvcErr: DSID-031A12D2, problem 5003 (WILL_NOT_PERFORM), data 0"),
            PolicyReason::DoesNotMeetPolicy
        );
        assert_eq!(c("something else"), PolicyReason::Other);
    }

    #[test]
    fn bind_data_codes() {
        let t = |d| {
            format!(
                "80090308: LdapErr: DSID-0C0903A9, comment: AcceptSecurityContext error, data {d}, v1db1"
            )
        };
        assert_eq!(bind_outcome(&t("52e")), BindOutcome::InvalidCredentials);
        assert_eq!(bind_outcome(&t("773")), BindOutcome::MustChange);
        assert_eq!(bind_outcome(&t("775")), BindOutcome::Locked);
        assert_eq!(bind_outcome(&t("532")), BindOutcome::Expired);
        assert_eq!(bind_outcome(&t("533")), BindOutcome::Disabled);
        assert_eq!(bind_outcome(""), BindOutcome::InvalidCredentials);
    }
}
