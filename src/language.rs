//! The languages ssprd speaks — the portal's pages and the messages sent to users — and how
//! a language tag is read (`de`, `de-CH`, `FR`…).

/// The supported languages, the first being the fallback.
pub const LANGUAGES: &[&str] = &["en", "de", "fr"];

/// Each language's own name, for selectors.
pub fn native_name(lang: &str) -> &'static str {
    match lang {
        "de" => "Deutsch",
        "fr" => "Français",
        _ => "English",
    }
}

/// One of [`LANGUAGES`], when `tag` names it (`de`, `de-CH`, `FR`…).
pub fn supported(tag: &str) -> Option<&'static str> {
    let primary = tag.split(['-', '_']).next()?.trim().to_ascii_lowercase();
    LANGUAGES.iter().copied().find(|l| *l == primary)
}

/// Whether `tag` is shaped like a BCP 47 language tag (`en`, `de-CH`, `zh-Hant-TW`): 2-3
/// letters, then subtags of 1-8 letters or digits, 35 characters at most.
pub fn well_formed(tag: &str) -> bool {
    let mut parts = tag.split('-');
    let primary_ok = parts
        .next()
        .is_some_and(|p| (2..=3).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphabetic()));
    primary_ok
        && tag.len() <= 35
        && parts.all(|p| (1..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_read_by_their_primary_language() {
        assert_eq!(supported("de-CH"), Some("de"));
        assert_eq!(supported("FR"), Some("fr"));
        assert_eq!(supported("en_GB"), Some("en"));
        assert_eq!(supported("es"), None);
        assert_eq!(supported(""), None);
    }

    #[test]
    fn malformed_tags_are_told_apart() {
        for ok in ["en", "de-CH", "zh-Hant-TW", "gsw", "es-419"] {
            assert!(well_formed(ok), "{ok}");
        }
        for bad in [
            "",
            "e",
            "english",
            "de_CH",
            "de-",
            "de-CH-",
            "d3",
            "de-toolongsubtag",
            "<b>",
        ] {
            assert!(!well_formed(bad), "{bad}");
        }
    }
}
