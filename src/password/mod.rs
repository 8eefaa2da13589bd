//! Local password rules, checked before anything is sent to the directory: length (NIST:
//! at least 64 accepted, more than 256 refused, no truncation, no composition rules), banned
//! terms (normalised, edit distance 1), the most common passwords ([`common`], on by
//! default), the user's login and name, an optional zxcvbn strength score, and an offline
//! breached-password list (SHA-1, sorted, binary-searched).

pub mod common;
pub mod settings;

use crate::secret::Secret;
pub use settings::RawPassword;
use sha1::{Digest, Sha1};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use unicode_normalization::UnicodeNormalization;

/// Why a password is refused locally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    TooShort(usize),
    TooLong(usize),
    Banned,
    Common,
    ContainsName,
    TooWeak(u8),
    Breached,
}

impl Refusal {
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::TooShort(_) => "PASSWORD_TOO_SHORT",
            Refusal::TooLong(_) => "PASSWORD_TOO_LONG",
            Refusal::Banned => "PASSWORD_BANNED",
            Refusal::Common => "PASSWORD_COMMON",
            Refusal::ContainsName => "PASSWORD_CONTAINS_NAME",
            Refusal::TooWeak(_) => "PASSWORD_TOO_WEAK",
            Refusal::Breached => "PASSWORD_BREACHED",
        }
    }

    /// The numbers in the message, by name (`n`: a length or a strength).
    pub fn args(self) -> Vec<(&'static str, String)> {
        match self {
            Refusal::TooShort(n) | Refusal::TooLong(n) => vec![("n", n.to_string())],
            Refusal::TooWeak(s) => vec![("n", s.to_string())],
            _ => Vec::new(),
        }
    }

    pub fn message(self) -> String {
        match self {
            Refusal::TooShort(n) => format!("The new password must have at least {n} characters."),
            Refusal::TooLong(n) => format!("The new password must have at most {n} characters."),
            Refusal::Banned => "The new password contains a word that is not allowed here.".into(),
            Refusal::Common => {
                "The new password is one of the most commonly used passwords, or a small \
                 variation of one; choose another."
                    .into()
            }
            Refusal::ContainsName => {
                "The new password must not contain your user name or your name.".into()
            }
            Refusal::TooWeak(s) => {
                format!("The new password is too easy to guess (strength below {s} of 4).")
            }
            Refusal::Breached => {
                "The new password appears in a list of leaked passwords; choose another.".into()
            }
        }
    }
}

/// Lowercase, NFKC, and common character substitutions undone (`p@55w0rd` → `password`).
pub fn normalise(s: &str) -> String {
    s.nfkc()
        .collect::<String>()
        .to_lowercase()
        .chars()
        .map(|c| match c {
            '0' => 'o',
            '1' | '!' | '|' => 'i',
            '3' => 'e',
            '4' | '@' => 'a',
            '5' | '$' => 's',
            '7' => 't',
            '8' => 'b',
            c => c,
        })
        .collect()
}

/// True when some window of `text` is within edit distance 1 of `term` (both normalised).
fn contains_fuzzy(text: &str, term: &str) -> bool {
    let t: Vec<char> = text.chars().collect();
    let n = term.chars().count();
    if n == 0 {
        return false;
    }
    for len in [n.saturating_sub(1), n, n + 1] {
        if len == 0 || len > t.len() {
            continue;
        }
        for w in t.windows(len) {
            let w: String = w.iter().collect();
            if strsim::levenshtein(&w, term) <= 1 {
                return true;
            }
        }
    }
    false
}

/// A sorted file of SHA-1 hashes, one per line: `HASH[:COUNT]` (the haveibeenpwned
/// downloader's format) or `PREFIX:SUFFIX[:COUNT]` (five hex digits, then the other 35),
/// sorted by hash. Looked up by binary search with positional reads; nothing is loaded.
#[derive(Debug)]
pub struct BreachedList {
    file: File,
    len: u64,
}

impl BreachedList {
    pub fn open(path: &Path) -> Result<Self, String> {
        let file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let len = file.metadata().map_err(|e| e.to_string())?.len();
        let list = Self { file, len };
        if len > 0 {
            let first = list
                .line_at(0)
                .map_err(|e| e.to_string())?
                .and_then(|(k, _)| k);
            if first.is_none() {
                return Err(format!(
                    "{}: the first line is not a SHA-1 hash (HASH:COUNT or PREFIX:SUFFIX:COUNT)",
                    path.display()
                ));
            }
        }
        Ok(list)
    }

    /// The hash key of the line starting at `start`, and where the next line starts.
    fn line_at(&self, start: u64) -> io::Result<Option<(Option<[u8; 40]>, u64)>> {
        if start >= self.len {
            return Ok(None);
        }
        let mut buf = [0u8; 128];
        let n = self.file.read_at(&mut buf, start)?;
        let line = &buf[..n];
        let end = line.iter().position(|&b| b == b'\n');
        let next = match end {
            Some(i) => start + i as u64 + 1,
            None if start + (n as u64) >= self.len => self.len,
            None => return Err(io::Error::other("line longer than 128 bytes")),
        };
        let line = &line[..end.unwrap_or(n)];
        let mut key = [0u8; 40];
        let hex: Vec<u8> = if line.len() > 5 && line[5] == b':' {
            line[..5]
                .iter()
                .chain(&line[6..])
                .copied()
                .take(40)
                .collect()
        } else {
            line.iter().copied().take(40).collect()
        };
        if hex.len() != 40 || !hex.iter().all(u8::is_ascii_hexdigit) {
            return Ok(Some((None, next)));
        }
        for (k, h) in key.iter_mut().zip(hex) {
            *k = h.to_ascii_uppercase();
        }
        Ok(Some((Some(key), next)))
    }

    /// The first line start at or after `pos`.
    fn line_start_from(&self, pos: u64) -> io::Result<u64> {
        if pos == 0 {
            return Ok(0);
        }
        let mut at = pos - 1;
        let mut buf = [0u8; 128];
        while at < self.len {
            let n = self.file.read_at(&mut buf, at)?;
            if n == 0 {
                break;
            }
            if let Some(i) = buf[..n].iter().position(|&b| b == b'\n') {
                return Ok(at + i as u64 + 1);
            }
            at += n as u64;
        }
        Ok(self.len)
    }

    pub fn contains(&self, password: &Secret) -> io::Result<bool> {
        let digest = Sha1::digest(password.expose().as_bytes());
        let mut target = [0u8; 40];
        target.copy_from_slice(hex::encode_upper(digest).as_bytes());
        let (mut lo, mut hi) = (0u64, self.len);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let s = if mid == lo {
                lo
            } else {
                self.line_start_from(mid)?
            };
            if s >= hi {
                hi = mid;
                continue;
            }
            let Some((key, next)) = self.line_at(s)? else {
                break;
            };
            match key.map(|k| k.cmp(&target)) {
                Some(std::cmp::Ordering::Equal) => return Ok(true),
                Some(std::cmp::Ordering::Less) | None => lo = next,
                Some(std::cmp::Ordering::Greater) => hi = s,
            }
        }
        Ok(false)
    }
}

/// The local rules.
#[derive(Debug)]
pub struct PasswordRules {
    pub min_length: usize,
    pub max_length: usize,
    /// Normalised banned terms.
    pub banned: Vec<String>,
    /// The common-password check (`None`: switched off by the administrator).
    pub common: Option<common::CommonPasswords>,
    pub reject_names: bool,
    pub min_strength: Option<u8>,
    pub breached: Option<BreachedList>,
}

impl PasswordRules {
    /// Checks `pw` for the user `login` called `display_name`.
    pub fn check(&self, pw: &Secret, login: &str, display_name: &str) -> Result<(), Refusal> {
        let n = pw.expose().chars().count();
        if n < self.min_length {
            return Err(Refusal::TooShort(self.min_length));
        }
        if n > self.max_length {
            return Err(Refusal::TooLong(self.max_length));
        }
        let norm = normalise(pw.expose());
        if self.banned.iter().any(|t| contains_fuzzy(&norm, t)) {
            return Err(Refusal::Banned);
        }
        if self.common.as_ref().is_some_and(|c| c.matches(pw.expose())) {
            return Err(Refusal::Common);
        }
        if self.reject_names {
            let names = std::iter::once(login)
                .chain(display_name.split(|c: char| !c.is_alphanumeric()))
                .map(normalise)
                .filter(|s| s.chars().count() >= 3);
            for name in names {
                if norm.contains(&name) {
                    return Err(Refusal::ContainsName);
                }
            }
        }
        if let Some(min) = self.min_strength {
            let inputs: Vec<&str> = [login, display_name]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect();
            let score = zxcvbn::zxcvbn(pw.expose(), &inputs).score() as u8;
            if score < min {
                return Err(Refusal::TooWeak(min));
            }
        }
        if let Some(list) = &self.breached {
            match list.contains(pw) {
                Ok(true) => return Err(Refusal::Breached),
                Ok(false) => {}
                // A broken list file must not lock everybody out; it is logged loudly.
                Err(e) => tracing::error!(error = %e, "breached-password list unreadable"),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> PasswordRules {
        PasswordRules {
            min_length: 8,
            max_length: 256,
            banned: vec![normalise("examplecorp"), normalise("winter")],
            common: None,
            reject_names: true,
            min_strength: None,
            breached: None,
        }
    }

    #[test]
    fn lengths_follow_nist() {
        let r = rules();
        assert_eq!(
            r.check(&Secret::new("short"), "u", ""),
            Err(Refusal::TooShort(8))
        );
        assert!(
            r.check(&Secret::new("a9Z".repeat(22)), "u", "").is_ok(),
            "66 chars"
        );
        assert!(r.check(&Secret::new("a".repeat(256)), "u", "").is_ok());
        assert_eq!(
            r.check(&Secret::new("a".repeat(257)), "u", ""),
            Err(Refusal::TooLong(256))
        );
        assert!(
            r.check(&Secret::new("alllowercaseletters"), "u", "")
                .is_ok(),
            "no composition rules"
        );
    }

    #[test]
    fn banned_terms_are_normalised_and_fuzzy() {
        let r = rules();
        for pw in [
            "Winter2026!",
            "W1nt3r-2026",
            "ExampleCorp99",
            "xx-Ex4mpleC0rp",
            "Wintr-is-here",
            "Winnter-here",
        ] {
            assert_eq!(
                r.check(&Secret::new(pw), "u", ""),
                Err(Refusal::Banned),
                "{pw}"
            );
        }
        assert!(r.check(&Secret::new("Summer-Breeze-2026"), "u", "").is_ok());
    }

    #[test]
    fn common_passwords_are_refused_when_on() {
        let on = PasswordRules {
            common: Some(common::CommonPasswords::new(&[])),
            ..rules()
        };
        assert_eq!(
            on.check(&Secret::new("Password1"), "u", ""),
            Err(Refusal::Common)
        );
        assert!(on.check(&Secret::new("Blue-Ocean-Tango"), "u", "").is_ok());
        assert!(rules().check(&Secret::new("Password1"), "u", "").is_ok());
    }

    #[test]
    fn names_are_refused() {
        let r = rules();
        assert_eq!(
            r.check(&Secret::new("xx-Alice-2026"), "alice", ""),
            Err(Refusal::ContainsName)
        );
        assert_eq!(
            r.check(&Secret::new("Anders-rocks-9"), "a1", "Alice Anders"),
            Err(Refusal::ContainsName)
        );
        assert!(
            r.check(&Secret::new("Blue-Ocean-2026"), "alice", "Alice Anders")
                .is_ok()
        );
    }

    #[test]
    fn strength_score() {
        let r = PasswordRules {
            min_strength: Some(3),
            ..rules()
        };
        assert_eq!(
            r.check(&Secret::new("password1"), "u", ""),
            Err(Refusal::TooWeak(3))
        );
        assert!(
            r.check(&Secret::new("correct horse battery staple"), "u", "")
                .is_ok()
        );
    }

    fn sha1(s: &str) -> String {
        hex::encode_upper(Sha1::digest(s.as_bytes()))
    }

    #[test]
    fn breached_list_binary_search_both_formats() {
        let words: Vec<String> = (0..500).map(|i| format!("leaked-{i}")).collect();
        let mut hashes: Vec<String> = words.iter().map(|w| sha1(w)).collect();
        hashes.sort();
        let dir = tempfile::tempdir().unwrap();
        for (name, prefix_form) in [("full.txt", false), ("split.txt", true)] {
            let text: String = hashes
                .iter()
                .enumerate()
                .map(|(i, h)| {
                    if prefix_form {
                        format!("{}:{}:{}\n", &h[..5], &h[5..], i + 1)
                    } else {
                        format!("{h}:{}\n", i + 1)
                    }
                })
                .collect();
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            let list = BreachedList::open(&p).unwrap();
            for w in &words {
                assert!(
                    list.contains(&Secret::new(w.clone())).unwrap(),
                    "{name}: {w}"
                );
            }
            for w in ["not-leaked", "leaked-500", ""] {
                assert!(!list.contains(&Secret::new(w)).unwrap(), "{name}: {w}");
            }
        }
        let bad = dir.path().join("bad.txt");
        std::fs::write(&bad, "hello\n").unwrap();
        assert!(BreachedList::open(&bad).is_err());
    }
}
