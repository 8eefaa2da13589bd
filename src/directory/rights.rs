//! The service account's rights, checked without changing anything: `ssprd
//! check-directory` (and the guided setup to come) says precisely what is missing.
//!
//! Each right is asked of the directory itself:
//! - **bind**: a new connection binds as the service account;
//! - **find users**: a search under `base_dn` with `user_filter` finds a user other than
//!   the service account (or the user named);
//! - **read the password policy**: the policy that applies to that user can be read;
//! - **writes** (OpenLDAP): a modify that deletes a value the user does not have — the
//!   directory checks the write right first and then answers "no such attribute" (16), or
//!   "insufficient access" (50) when the right is missing; nothing changes either way.
//!   Checked for `userPassword` (set a password), `pwdAccountLockedTime` (unlock) and
//!   `pwdReset` (require a change at next sign-in). The password policy's quality check and
//!   an assertion control are evaluated before the access check, so neither can tell.
//! - **writes** (Active Directory): `allowedAttributesEffective` of the user lists the
//!   attributes the account may write (`lockoutTime` to unlock, `pwdLastSet` to require a
//!   change). The Reset Password right on `unicodePwd` is a control access right no
//!   attribute reports, and a delete of a `unicodePwd` value is a password *change* that
//!   would count a failed attempt against the user: it is reported as not checked.
//!
//! The decisions ([`probe_verdict`], [`effective_verdict`]) are pure.

use super::ldap::rc;

/// What the service account must be able to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Right {
    Bind,
    FindUsers,
    ReadPolicy,
    SetPassword,
    Unlock,
    RequireChange,
}

impl Right {
    /// What the right is for, as the report says it.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Bind => "bind as the service account",
            Self::FindUsers => "find users",
            Self::ReadPolicy => "read the password policy",
            Self::SetPassword => "set passwords",
            Self::Unlock => "unlock accounts",
            Self::RequireChange => "require a change at next sign-in",
        }
    }
}

/// The answer for one right.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Granted,
    /// Missing, with what to grant.
    Missing(String),
    /// Not known, and why.
    Unknown(String),
}

/// The rights, in the order they were checked; `sample` is the user the checks used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RightsReport {
    pub sample: Option<String>,
    pub checks: Vec<(Right, Verdict)>,
}

impl RightsReport {
    /// Every right granted (a right not checked does not count as missing).
    pub fn complete(&self) -> bool {
        !self
            .checks
            .iter()
            .any(|(_, v)| matches!(v, Verdict::Missing(_)))
    }
}

/// What the directory tells the guided setup about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Discovery {
    /// Where users are searched unless the admin says otherwise.
    pub naming_context: Option<String>,
    /// OpenLDAP `pwdPolicy` entries (the candidates for `ppolicy_dn`).
    pub password_policies: Vec<String>,
}

impl RightsReport {
    /// The report as `check-directory` and `setup` print it: one line per right.
    pub fn render(&self) -> String {
        let width = self
            .checks
            .iter()
            .map(|(r, _)| r.describe().len())
            .max()
            .unwrap_or(0);
        let mut out = String::new();
        if let Some(sample) = &self.sample {
            out.push_str(&format!("checked against user {sample:?}\n"));
        }
        for (right, verdict) in &self.checks {
            let v = match verdict {
                Verdict::Granted => "ok".to_string(),
                Verdict::Missing(what) => format!("MISSING: {what}"),
                Verdict::Unknown(why) => format!("not checked: {why}"),
            };
            out.push_str(&format!("  {:<width$}  {v}\n", right.describe()));
        }
        out
    }
}

/// The verdict of an OpenLDAP probe — a delete of a value `attr` does not hold — from its
/// result code. Pure.
pub fn probe_verdict(code: u32, text: &str, attr: &str, bind_dn: &str) -> Verdict {
    match code {
        rc::NO_SUCH_ATTRIBUTE => Verdict::Granted,
        rc::INSUFFICIENT_ACCESS => Verdict::Missing(format!(
            "write access to {attr} of users, e.g. `olcAccess: to attrs={attr} by \
             dn.exact=\"{bind_dn}\" =w`"
        )),
        rc::SUCCESS => Verdict::Unknown(format!(
            "the probe value of {attr} existed and was deleted: check the entry"
        )),
        other => Verdict::Unknown(format!("the probe of {attr} answered {other}: {text}")),
    }
}

/// The verdict for `attr` from the user's `allowedAttributesEffective` (AD). Pure.
pub fn effective_verdict(effective: &[String], attr: &str, bind_dn: &str) -> Verdict {
    if effective.iter().any(|a| a.eq_ignore_ascii_case(attr)) {
        Verdict::Granted
    } else {
        Verdict::Missing(format!(
            "write access to {attr} of users for {bind_dn} (delegate \"Write {attr}\" on the \
             users' OU)"
        ))
    }
}

/// A value no entry holds: the probes delete it.
pub fn probe_value(attr: &str) -> String {
    match attr {
        "pwdAccountLockedTime" => "19700101000000Z".into(),
        "pwdReset" => "FALSE".into(),
        _ => {
            let mut b = [0u8; 16];
            getrandom::fill(&mut b).expect("the OS random source works");
            format!("ssprd-rights-probe-{}", hex::encode(b))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_read_the_result_code() {
        let dn = "cn=sspr,dc=example,dc=org";
        assert_eq!(probe_verdict(16, "", "userPassword", dn), Verdict::Granted);
        match probe_verdict(50, "", "pwdReset", dn) {
            Verdict::Missing(what) => {
                assert!(
                    what.contains("attrs=pwdReset") && what.contains(dn),
                    "{what}"
                )
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            probe_verdict(0, "", "userPassword", dn),
            Verdict::Unknown(_)
        ));
        assert!(
            matches!(probe_verdict(53, "busy", "userPassword", dn), Verdict::Unknown(w) if w.contains("53: busy"))
        );
    }

    #[test]
    fn effective_attributes_are_matched_without_case() {
        let eff = vec!["pwdLastSet".to_string(), "LOCKOUTTIME".to_string()];
        assert_eq!(
            effective_verdict(&eff, "lockoutTime", "x"),
            Verdict::Granted
        );
        assert_eq!(effective_verdict(&eff, "pwdLastSet", "x"), Verdict::Granted);
        assert!(matches!(
            effective_verdict(&eff, "unicodePwd", "x"),
            Verdict::Missing(_)
        ));
    }

    #[test]
    fn a_report_is_complete_unless_something_is_missing() {
        let mut r = RightsReport {
            sample: None,
            checks: vec![
                (Right::Bind, Verdict::Granted),
                (Right::SetPassword, Verdict::Unknown("AD".into())),
            ],
        };
        assert!(r.complete());
        r.checks.push((Right::Unlock, Verdict::Missing("x".into())));
        assert!(!r.complete());
    }

    #[test]
    fn probe_values_are_never_plausible_values() {
        let a = probe_value("userPassword");
        assert!(a.starts_with("ssprd-rights-probe-") && a != probe_value("userPassword"));
        assert_eq!(probe_value("pwdReset"), "FALSE");
    }
}
