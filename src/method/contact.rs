//! Contact values: email addresses (parsed by lettre) and phone numbers (E.164), with the
//! masked hints shown to users at reset.

use serde::{Deserialize, Serialize};
use std::str::FromStr;

/// Where a contact method sends codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactKind {
    Email,
    Mobile,
    Office,
}

/// Why a contact value is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContactError {
    #[error("not a valid email address")]
    Email,
    #[error(
        "not a phone number in international form: start with + and the country code, 8-15 digits"
    )]
    Phone,
}

/// Normalises a value for `kind`: email lowercased domain and validated; phones to E.164
/// (`+` and 8-15 digits; spaces, dots, dashes and parentheses are dropped, a leading `00`
/// becomes `+`).
pub fn normalise(kind: ContactKind, value: &str) -> Result<String, ContactError> {
    match kind {
        ContactKind::Email => normalise_email(value),
        ContactKind::Mobile | ContactKind::Office => normalise_phone(value),
    }
}

fn normalise_email(value: &str) -> Result<String, ContactError> {
    let value = value.trim();
    if value.len() > 254 || value.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(ContactError::Email);
    }
    let addr = lettre::Address::from_str(value).map_err(|_| ContactError::Email)?;
    if !addr.domain().contains('.') {
        return Err(ContactError::Email);
    }
    Ok(format!(
        "{}@{}",
        addr.user(),
        addr.domain().to_ascii_lowercase()
    ))
}

fn normalise_phone(value: &str) -> Result<String, ContactError> {
    let v = value.trim();
    let rest = if let Some(r) = v.strip_prefix('+') {
        r
    } else if let Some(r) = v.strip_prefix("00") {
        r
    } else {
        return Err(ContactError::Phone);
    };
    let mut digits = String::with_capacity(15);
    for c in rest.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '-' | '.' | '(' | ')' => {}
            _ => return Err(ContactError::Phone),
        }
    }
    if !(8..=15).contains(&digits.len()) || digits.starts_with('0') {
        return Err(ContactError::Phone);
    }
    Ok(format!("+{digits}"))
}

/// A masked hint: `j•••@example.org`, `+1 ••• ••• ••12` style (last two digits shown).
pub fn mask(kind: ContactKind, normalised: &str) -> String {
    match kind {
        ContactKind::Email => {
            let (user, domain) = normalised.split_once('@').unwrap_or((normalised, ""));
            let first: String = user.chars().take(1).collect();
            format!("{first}•••@{domain}")
        }
        ContactKind::Mobile | ContactKind::Office => {
            let digits: Vec<char> = normalised.trim_start_matches('+').chars().collect();
            let n = digits.len();
            let last: String = digits[n.saturating_sub(2)..].iter().collect();
            let head = digits.first().copied().unwrap_or('?');
            let hidden = "•".repeat(n.saturating_sub(3));
            let grouped: Vec<String> = hidden
                .chars()
                .collect::<Vec<_>>()
                .chunks(3)
                .map(|c| c.iter().collect())
                .collect();
            format!("+{head} {}{last}", grouped.join(" "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(
            normalise(ContactKind::Email, " Jane.Doe@Example.ORG ").unwrap(),
            "Jane.Doe@example.org"
        );
        for bad in [
            "",
            "jane",
            "jane@",
            "@example.org",
            "a b@example.org",
            "jane@localhost",
            "x@y\n.org",
        ] {
            assert_eq!(
                normalise(ContactKind::Email, bad),
                Err(ContactError::Email),
                "{bad:?}"
            );
        }
        assert_eq!(
            mask(ContactKind::Email, "jane@example.org"),
            "j•••@example.org"
        );
    }

    #[test]
    fn phones() {
        let p = |s| normalise(ContactKind::Mobile, s);
        assert_eq!(p("+1 (555) 000-0012").unwrap(), "+15550000012");
        assert_eq!(p("0049 30 1234567").unwrap(), "+49301234567");
        for bad in [
            "5550000012",
            "+1",
            "+0123456789",
            "+1555abc0000",
            "+1234567890123456",
        ] {
            assert_eq!(p(bad), Err(ContactError::Phone), "{bad:?}");
        }
        assert_eq!(mask(ContactKind::Mobile, "+15550000012"), "+1 ••• ••• ••12");
    }
}
