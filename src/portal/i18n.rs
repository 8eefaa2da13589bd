//! The portal's languages: Fluent message files embedded in the binary
//! (`src/portal/locales/<lang>/portal.ftl`), the language of a request (the session's
//! choice, else the browser's `Accept-Language`, else `[portal] default_language`), and
//! the text of every service reason.

use fluent_templates::fluent_bundle::FluentValue;
use fluent_templates::{LanguageIdentifier, Loader};
use std::borrow::Cow;
use std::collections::HashMap;

fluent_templates::static_loader! {
    static LOCALES = {
        locales: "./src/portal/locales",
        fallback_language: "en",
        // No Unicode isolation marks around arguments: the pages are plain HTML.
        customise: |bundle| bundle.set_use_isolating(false),
    };
}

pub use crate::language::{LANGUAGES, native_name, supported};

/// The best of [`LANGUAGES`] for an `Accept-Language` header, or `fallback`.
pub fn negotiate(accept_language: Option<&str>, fallback: &'static str) -> &'static str {
    let Some(header) = accept_language else {
        return fallback;
    };
    let requested = fluent_langneg::accepted_languages::parse(header);
    let available: Vec<LanguageIdentifier> = LANGUAGES
        .iter()
        .map(|l| l.parse().expect("a language tag"))
        .collect();
    let chosen = fluent_langneg::negotiate_languages(
        &requested,
        &available,
        None,
        fluent_langneg::NegotiationStrategy::Lookup,
    );
    chosen
        .first()
        .and_then(|l| supported(&l.to_string()))
        .unwrap_or(fallback)
}

/// Arguments of a message.
pub type Args = Vec<(&'static str, String)>;

/// The arguments that are numbers (for plurals); every other argument is text, whatever
/// it looks like (a user name `007` stays `007`).
const NUMBERS: &[&str] = &[
    "n", "length", "minutes", "hours", "required", "verified", "tries", "min", "max",
];

/// The text of `key` in `lang` with `args` (English when the language lacks it; the key
/// itself when no language has it).
pub fn text(lang: &str, key: &str, args: &[(&str, String)]) -> String {
    let id: LanguageIdentifier = lang.parse().unwrap_or_else(|_| "en".parse().expect("en"));
    if args.is_empty() {
        return LOCALES
            .try_lookup(&id, key)
            .unwrap_or_else(|| key.to_string());
    }
    let map: HashMap<Cow<'static, str>, FluentValue> = args
        .iter()
        .map(|(k, v)| {
            let number = NUMBERS.contains(k).then(|| v.parse::<f64>().ok()).flatten();
            let value = number.map_or_else(|| FluentValue::from(v.clone()), FluentValue::from);
            (Cow::Owned((*k).to_string()), value)
        })
        .collect();
    LOCALES
        .try_lookup_with_args(&id, key, &map)
        .unwrap_or_else(|| key.to_string())
}

/// Whether `key` has a text in `lang` itself (not by falling back).
pub fn has(lang: &str, key: &str) -> bool {
    let source = match lang {
        "de" => include_str!("locales/de/portal.ftl"),
        "fr" => include_str!("locales/fr/portal.ftl"),
        _ => include_str!("locales/en/portal.ftl"),
    };
    message_ids(source).any(|id| id == key)
}

/// The message ids a Fluent file defines.
fn message_ids(source: &str) -> impl Iterator<Item = &str> {
    source.lines().filter_map(|line| {
        let (id, _) = line.split_once('=')?;
        let id = id.trim_end();
        let first = id.chars().next()?;
        (first.is_ascii_alphabetic()
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .then_some(id)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_language_has_every_message() {
        let en: Vec<&str> = message_ids(include_str!("locales/en/portal.ftl")).collect();
        assert!(en.len() > 50, "{}", en.len());
        for lang in &LANGUAGES[1..] {
            let missing: Vec<_> = en.iter().filter(|id| !has(lang, id)).collect();
            assert!(missing.is_empty(), "{lang} lacks {missing:?}");
        }
        for lang in LANGUAGES {
            let source = match *lang {
                "de" => include_str!("locales/de/portal.ftl"),
                "fr" => include_str!("locales/fr/portal.ftl"),
                _ => include_str!("locales/en/portal.ftl"),
            };
            let extra: Vec<_> = message_ids(source).filter(|id| !en.contains(id)).collect();
            assert!(extra.is_empty(), "{lang} has unknown {extra:?}");
        }
    }

    #[test]
    fn accept_language_picks_a_supported_language() {
        assert_eq!(negotiate(Some("de-DE,de;q=0.9,en;q=0.8"), "en"), "de");
        assert_eq!(negotiate(Some("fr-CA"), "en"), "fr");
        assert_eq!(negotiate(Some("es-ES,fr;q=0.5"), "en"), "fr");
        assert_eq!(negotiate(Some("es-ES"), "de"), "de");
        assert_eq!(negotiate(None, "en"), "en");
        assert_eq!(negotiate(Some("*"), "en"), "en");
    }

    #[test]
    fn arguments_are_filled_in() {
        let t = text("en", "rule-min-length", &[("n", "12".into())]);
        assert!(t.contains("12"), "{t}");
        let t = text("de", "rule-min-length", &[("n", "12".into())]);
        assert!(
            t.contains("12") && t != text("en", "rule-min-length", &[("n", "12".into())]),
            "{t}"
        );
    }

    /// Issue 24 item 9: a user name that looks like a number stays as typed.
    #[test]
    fn text_arguments_stay_text() {
        for login in ["007", "1e3", "0x10", "-0"] {
            let t = text("en", "signed-in-as", &[("login", login.into())]);
            assert_eq!(t, format!("Signed in as {login}."));
        }
        let t = text(
            "en",
            "verify-intro",
            &[("required", "2".into()), ("verified", "1".into())],
        );
        assert!(t.contains("Verify 2 of"), "{t}");
    }
}
