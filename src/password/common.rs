//! The most common passwords, refused out of the box (NIST SP 800-63B: new passwords are
//! checked against commonly used values). The list is the 10,000 most frequent entries of
//! the zxcvbn project's password list, carried in the binary (`common-passwords.txt`, MIT —
//! see `common-passwords.LICENSE`), plus the organisation's own names from the
//! configuration.
//!
//! A password is "common" when, after the normalisation the banned terms use (NFKC,
//! lowercase, `p@55w0rd` → `password`) and with separators dropped, either the whole of it
//! or its core — the password without a short run of digits and symbols before or after
//! (`Welcome2026!` → `welcome`, `1password` → `password`) — is a listed value, or is one
//! typo (an insertion, deletion, substitution or swap of neighbours) away from one.
//! Passphrases that merely contain a common word (`correct horse battery staple`) pass: the
//! whole must be common, not a part.

use std::collections::HashSet;
use std::sync::LazyLock;

/// The list as shipped: one password per line.
const LIST: &str = include_str!("common-passwords.txt");

/// Decorations stripped from the end (`2026!`) and from the start (`1`, `!!`).
const MAX_SUFFIX: usize = 6;
const MAX_PREFIX: usize = 4;
/// Cores shorter than this are not compared (`ab` + 12 random digits is not "common").
const MIN_CORE: usize = 4;
/// Values at least this long also match with one typo; shorter ones only exactly.
const MIN_FUZZY: usize = 6;

/// The shipped list, normalised, by length in characters.
static SHIPPED: LazyLock<Entries> = LazyLock::new(|| Entries::new(LIST.lines()));

/// Normalised values grouped by their length, for exact and one-typo lookups.
#[derive(Debug, Default)]
struct Entries {
    exact: HashSet<String>,
    /// `by_len[n]`: the values of `n` characters that may match with a typo.
    by_len: Vec<Vec<String>>,
}

impl Entries {
    fn new<'a>(values: impl Iterator<Item = &'a str>) -> Self {
        let mut e = Self::default();
        for v in values.map(key).filter(|v| v.chars().count() >= MIN_CORE) {
            let n = v.chars().count();
            if n >= MIN_FUZZY {
                if e.by_len.len() <= n {
                    e.by_len.resize_with(n + 1, Vec::new);
                }
                e.by_len[n].push(v.clone());
            }
            e.exact.insert(v);
        }
        e
    }

    fn matches(&self, candidate: &str) -> bool {
        if self.exact.contains(candidate) {
            return true;
        }
        let n = candidate.chars().count();
        if n < MIN_FUZZY {
            return false;
        }
        (n - 1..=n + 1)
            .filter_map(|len| self.by_len.get(len))
            .flatten()
            // One edit of a string of 3 or more characters keeps its first or its last
            // character: a cheap filter before the distance.
            .filter(|v| {
                v.chars().next() == candidate.chars().next()
                    || v.chars().next_back() == candidate.chars().next_back()
            })
            .any(|v| strsim::osa_distance(candidate, v) <= 1)
    }
}

/// The comparison form: normalised like banned terms, separators and other symbols dropped.
fn key(s: &str) -> String {
    super::normalise(s)
        .chars()
        .filter(|c| c.is_alphanumeric())
        .collect()
}

/// A decoration character: an ASCII digit or symbol.
fn decoration(c: char) -> bool {
    c.is_ascii_digit() || c.is_ascii_punctuation() || c == ' '
}

/// `s` without up to `MAX_PREFIX` leading and `MAX_SUFFIX` trailing decoration characters.
fn core(s: &str) -> &str {
    let chars: Vec<(usize, char)> = s.char_indices().collect();
    let lead = chars
        .iter()
        .take(MAX_PREFIX)
        .take_while(|(_, c)| decoration(*c))
        .count();
    let trail = chars
        .iter()
        .rev()
        .take(MAX_SUFFIX)
        .take_while(|(_, c)| decoration(*c))
        .count();
    if lead + trail >= chars.len() {
        return "";
    }
    let start = chars[lead].0;
    let end = chars.get(chars.len() - trail).map_or(s.len(), |(i, _)| *i);
    &s[start..end]
}

/// The common-password check: the shipped list and the organisation's names.
#[derive(Debug, Default)]
pub struct CommonPasswords {
    own: Entries,
}

impl CommonPasswords {
    /// The shipped list plus `names` (the organisation's name and the like), which match
    /// the same way (`ExampleCorp2026` for "Example Corp").
    pub fn new(names: &[String]) -> Self {
        Self {
            own: Entries::new(names.iter().map(String::as_str)),
        }
    }

    /// Whether `password` is a common password or a small variation of one.
    pub fn matches(&self, password: &str) -> bool {
        let whole = key(password);
        let core = key(core(password));
        [whole, core]
            .iter()
            .filter(|c| c.chars().count() >= MIN_CORE)
            .any(|c| SHIPPED.matches(c) || self.own.matches(c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check() -> CommonPasswords {
        CommonPasswords::new(&["Example Corp".into()])
    }

    #[test]
    fn the_usual_suspects_are_common() {
        let c = check();
        for pw in [
            "password",
            "Password1",
            "P@ssw0rd",
            "Password123!",
            "1password",
            "Welcome2026!",
            "welcome1",
            "qwerty123",
            "Qwerty!",
            "letmein!",
            "iloveyou",
            "Summer2026",
            "Winter2025!",
            "1qaz2wsx",
            "12345678",
            "11111111",
            "trustno1",
            "ExampleCorp2026",
            "Example-Corp-2026!",
            "examplecorp",
            "Ex4mpleC0rp1",
        ] {
            assert!(c.matches(pw), "{pw} must be common");
        }
    }

    #[test]
    fn one_typo_still_matches() {
        let c = check();
        for pw in [
            "Passwrd1",
            "Paasword2026",
            "pasword!",
            "Welcme2026!",
            "Wlecome2026",
            "qwertu123",
            "ExampleCorq2026",
        ] {
            assert!(c.matches(pw), "{pw} is one typo from a common password");
        }
    }

    #[test]
    fn uncommon_passwords_pass() {
        let c = check();
        for pw in [
            "correct horse battery staple",
            "Summer-Breeze-2026",
            "Blue-Ocean-Tango",
            "Xk7#pQ2m-Lr9",
            "zq829347510293",
            "my password is long enough",
            "Welcome-to-the-jungle-88",
            "Brand-New-Pass-9",
        ] {
            assert!(!c.matches(pw), "{pw} is not common");
        }
    }

    #[test]
    fn decorations_are_bounded() {
        assert_eq!(core("Welcome2026!"), "Welcome");
        assert_eq!(core("!!Welcome"), "Welcome");
        assert_eq!(core("12345678"), "");
        assert_eq!(core("ab1234567890"), "ab1234");
        assert_eq!(core("pässwörd1"), "pässwörd");
    }

    #[test]
    fn the_shipped_list_is_loaded() {
        assert!(SHIPPED.exact.len() > 9_000, "{}", SHIPPED.exact.len());
    }
}
