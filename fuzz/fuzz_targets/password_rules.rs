//! The local password rules never panic on any input (banned terms, common passwords,
//! names, zxcvbn).
#![no_main]
use libfuzzer_sys::fuzz_target;
use ssprd::password::{PasswordRules, normalise};
use ssprd::secret::Secret;

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    let (pw, rest) = s.split_at(
        s.char_indices()
            .nth(s.chars().count() / 2)
            .map_or(0, |(i, _)| i),
    );
    let rules = PasswordRules {
        min_length: 1,
        max_length: 256,
        banned: vec![normalise("examplecorp"), normalise(rest)],
        common: Some(ssprd::password::common::CommonPasswords::new(&[rest.to_string()])),
        reject_names: true,
        min_strength: Some(2),
        breached: None,
    };
    let _ = rules.check(&Secret::new(pw), rest, rest);
});
