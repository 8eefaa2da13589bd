//! What messages say, in each language of [`crate::language::LANGUAGES`]: one catalogue
//! per language embedded in the binary (`src/delivery/messages/<lang>.toml`: email subjects
//! and texts, SMS texts, and the phrases that fill `{{change}}` and `{{method}}`), and the
//! administrator's email templates from `[email] templates_dir`.
//!
//! A message goes out in the language the user chose when registering, else in
//! `[email] language`. A template `<dir>/<lang>/<name>.<ext>` replaces that language's;
//! `<dir>/<name>.<ext>` replaces it in every language that has no file of its own (the
//! layout of 0.1, where there was one language). An email's HTML part comes from
//! `<name>.html` when there is one, else it is made from the text: its paragraphs, with
//! the code and the login in bold.

use super::{Content, Notice};
use crate::language::{self, LANGUAGES};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;
use zeroize::Zeroizing;

/// The emails, by template name.
pub const EMAILS: &[&str] = &[
    "reset_code",
    "confirm_contact",
    "account_recovered",
    "method_changed",
    "admin_reset",
    "admin_alert",
];

/// What fills `{{change}}` and `{{method}}`: the service puts these (English) keys into
/// notices, and each catalogue translates them. A notice queued with any other text (by
/// an older version) shows that text as it is.
pub mod phrase {
    pub const PASSWORD_RESET: &str = "the password was reset";
    pub const RESET_AND_UNLOCKED: &str = "the password was reset and the account unlocked";
    pub const RESET_BY_ADMIN: &str = "the password was reset by an administrator";
    pub const PASSWORD_CHANGED: &str = "the password was changed";
    pub const UNLOCKED: &str = "the account was unlocked";
    pub const UNLOCKED_BY_ADMIN: &str = "the account was unlocked by an administrator";
    pub const ADDED: &str = "added";
    pub const CHANGED: &str = "changed";
    pub const REMOVED: &str = "removed";
    pub const SET_BY_ADMIN: &str = "set by an administrator";
    pub const REMOVED_BY_ADMIN: &str = "removed by an administrator";
    /// The sentence added to admin-reset instructions when a new password must be chosen.
    pub const MUST_CHANGE: &str = "must_change";
    pub const ALTERNATE_EMAIL: &str = "alternate email";
    pub const MOBILE_PHONE: &str = "mobile phone";
    pub const OFFICE_PHONE: &str = "office phone";

    /// Every phrase, with the method names ([`crate::method::Method::name`]).
    pub const ALL: &[&str] = &[
        PASSWORD_RESET,
        RESET_AND_UNLOCKED,
        RESET_BY_ADMIN,
        PASSWORD_CHANGED,
        UNLOCKED,
        UNLOCKED_BY_ADMIN,
        ADDED,
        CHANGED,
        REMOVED,
        SET_BY_ADMIN,
        REMOVED_BY_ADMIN,
        MUST_CHANGE,
        ALTERNATE_EMAIL,
        MOBILE_PHONE,
        OFFICE_PHONE,
        "security_questions",
        "email",
        "mobile_sms",
        "mobile_voice",
        "office_voice",
        "authenticator_code",
    ];
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Email {
    subject: String,
    text: String,
    #[serde(default)]
    html: Option<String>,
}

/// One language's texts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Catalogue {
    email: BTreeMap<String, Email>,
    sms: BTreeMap<String, String>,
    phrases: BTreeMap<String, String>,
}

fn builtin(lang: &str) -> &'static str {
    match lang {
        "de" => include_str!("messages/de.toml"),
        "fr" => include_str!("messages/fr.toml"),
        _ => include_str!("messages/en.toml"),
    }
}

/// A message rendered for the gateway: its purpose, the code and minutes when it carries
/// one, the language and the text. No `Debug`: the code and the text are secret (and
/// wiped when dropped).
pub struct Sms {
    pub purpose: &'static str,
    pub code: Zeroizing<String>,
    pub minutes: u64,
    pub language: &'static str,
    pub text: Zeroizing<String>,
}

/// The texts of every language, with the administrator's templates applied.
#[derive(Debug, Clone)]
pub struct Texts {
    /// The language of users who chose none.
    default: &'static str,
    catalogues: Vec<(&'static str, Catalogue)>,
}

impl Texts {
    /// The built-in texts, each email template replaced from `dir` when it has one;
    /// `default` is the language of users who chose none (one of [`LANGUAGES`]).
    pub fn load(dir: Option<&Path>, default: &'static str) -> Result<Self, String> {
        let mut catalogues = Vec::new();
        for &lang in LANGUAGES {
            let mut c: Catalogue = toml::from_str(builtin(lang))
                .map_err(|e| format!("built-in {lang} messages: {e}"))?;
            if let Some(dir) = dir {
                for (name, email) in c.email.iter_mut() {
                    for ext in ["subject", "txt", "html"] {
                        let file = format!("{name}.{ext}");
                        let own = dir.join(lang).join(&file);
                        let shared = dir.join(&file);
                        let Some(p) = [own, shared].into_iter().find(|p| p.exists()) else {
                            continue;
                        };
                        let t = std::fs::read_to_string(&p)
                            .map_err(|e| format!("{}: {e}", p.display()))?;
                        match ext {
                            "subject" => email.subject = t,
                            "txt" => email.text = t,
                            _ => email.html = Some(t),
                        }
                    }
                }
            }
            catalogues.push((lang, c));
        }
        Ok(Self {
            default,
            catalogues,
        })
    }

    /// The language a message to a user who chose `chosen` goes out in.
    pub fn language(&self, chosen: Option<&str>) -> &'static str {
        chosen.and_then(language::supported).unwrap_or(self.default)
    }

    fn catalogue(&self, lang: &str) -> &Catalogue {
        self.catalogues
            .iter()
            .find(|(l, _)| *l == lang)
            .or(self.catalogues.first())
            .map(|(_, c)| c)
            .expect("the built-in catalogues")
    }

    fn phrase<'a>(&'a self, lang: &str, key: &'a str) -> &'a str {
        self.catalogue(lang)
            .phrases
            .get(key)
            .map_or(key, String::as_str)
    }

    /// The template name and the values of its placeholders for `content` in `lang`.
    fn fields<'a>(&'a self, lang: &str, content: &'a Content) -> (&'static str, Fields<'a>) {
        let mut f = Fields::default();
        let name = match content {
            Content::ResetCode { code, minutes } => {
                (f.code, f.minutes) = (code.expose(), *minutes);
                "reset_code"
            }
            Content::ConfirmContact { code, minutes } => {
                (f.code, f.minutes) = (code.expose(), *minutes);
                "confirm_contact"
            }
            Content::Notice(Notice::MethodChanged { method, change }) => {
                f.method = self.phrase(lang, method);
                f.change = self.phrase(lang, change);
                "method_changed"
            }
            Content::Notice(Notice::AccountRecovered { what }) => {
                f.change = self.phrase(lang, what);
                "account_recovered"
            }
            Content::Notice(Notice::AdminResetInstructions { login, must_change }) => {
                f.login = login;
                if *must_change {
                    f.change = self.phrase(lang, phrase::MUST_CHANGE);
                }
                "admin_reset"
            }
            Content::Notice(Notice::AdminAlert { login, what }) => {
                f.login = login;
                f.change = self.phrase(lang, what);
                "admin_alert"
            }
        };
        (name, f)
    }

    /// Subject, text and HTML of `content` for a user who chose `chosen`.
    pub fn email(
        &self,
        chosen: Option<&str>,
        organization: &str,
        content: &Content,
    ) -> [String; 3] {
        let lang = self.language(chosen);
        let (name, f) = self.fields(lang, content);
        let t = &self.catalogue(lang).email[name];
        let html = match &t.html {
            Some(h) => h.clone(),
            None => html_of(&t.text),
        };
        [
            f.fill(&t.subject, organization, false)
                .replace(['\r', '\n'], " ")
                .trim()
                .to_string(),
            f.fill(&t.text, organization, false),
            f.fill(&html, organization, true),
        ]
    }

    /// The SMS or call text of `content` for a user who chose `chosen`.
    pub fn sms(&self, chosen: Option<&str>, organization: &str, content: &Content) -> Sms {
        let lang = self.language(chosen);
        let (name, f) = self.fields(lang, content);
        Sms {
            purpose: name,
            code: Zeroizing::new(f.code.to_string()),
            minutes: f.minutes,
            language: lang,
            text: Zeroizing::new(f.fill(&self.catalogue(lang).sms[name], organization, false)),
        }
    }
}

/// The values of a template's placeholders.
#[derive(Default)]
struct Fields<'a> {
    code: &'a str,
    minutes: u64,
    login: &'a str,
    method: &'a str,
    change: &'a str,
}

impl Fields<'_> {
    fn fill(&self, template: &str, organization: &str, html: bool) -> String {
        let esc = |s: &str| if html { html_escape(s) } else { s.to_string() };
        template
            .replace("{{organization}}", &esc(organization))
            .replace("{{login}}", &esc(self.login))
            .replace("{{code}}", &esc(self.code))
            .replace("{{minutes}}", &self.minutes.to_string())
            .replace("{{method}}", &esc(self.method))
            .replace("{{change}}", &esc(self.change))
    }
}

/// An HTML template made from a text template: a paragraph per block, escaped, with the
/// code and the login in bold.
fn html_of(text: &str) -> String {
    text.split("\n\n")
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            let p = html_escape(p)
                .replace("{{code}}", "<b>{{code}}</b>")
                .replace("{{login}}", "<b>{{login}}</b>")
                .replace('\n', "<br>");
            format!("<p>{p}</p>")
        })
        .collect()
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    fn placeholders(s: &str) -> Vec<&str> {
        let mut out: Vec<&str> = s
            .match_indices("{{")
            .filter_map(|(i, _)| s[i..].find("}}").map(|j| &s[i..i + j + 2]))
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    #[test]
    fn every_language_has_every_text_with_the_same_placeholders() {
        let texts = Texts::load(None, "en").unwrap();
        let en = texts.catalogue("en");
        for &lang in LANGUAGES {
            let c = texts.catalogue(lang);
            let names: Vec<_> = c.email.keys().map(String::as_str).collect();
            assert_eq!(names.len(), EMAILS.len(), "{lang}: {names:?}");
            for name in EMAILS {
                let (e, base) = (&c.email[*name], &en.email[*name]);
                assert_eq!(
                    placeholders(&e.subject),
                    placeholders(&base.subject),
                    "{lang} {name}"
                );
                assert_eq!(
                    placeholders(&e.text),
                    placeholders(&base.text),
                    "{lang} {name}"
                );
                assert_eq!(
                    placeholders(&c.sms[*name]),
                    placeholders(&en.sms[*name]),
                    "{lang} sms {name}"
                );
            }
            assert_eq!(c.sms.len(), EMAILS.len(), "{lang}");
            let mut keys: Vec<_> = c.phrases.keys().map(String::as_str).collect();
            let mut all = phrase::ALL.to_vec();
            keys.sort_unstable();
            all.sort_unstable();
            assert_eq!(keys, all, "{lang}: phrases");
        }
    }

    #[test]
    fn the_method_names_are_phrases() {
        for m in crate::method::Method::ALL {
            assert!(phrase::ALL.contains(&m.name()), "{}", m.name());
        }
    }

    #[test]
    fn a_message_speaks_the_users_language_and_falls_back_to_the_default() {
        let texts = Texts::load(None, "fr").unwrap();
        let code = Content::ResetCode {
            code: Secret::new("12345678"),
            minutes: 5,
        };
        let [subject, text, html] = texts.email(Some("de-CH"), "Beispiel AG", &code);
        assert_eq!(
            subject,
            "Ihr Code zum Zurücksetzen des Passworts bei Beispiel AG"
        );
        assert!(
            text.contains("lautet 12345678.") && text.contains("5 Minuten"),
            "{text}"
        );
        assert!(
            html.contains("<b>12345678</b>") && html.starts_with("<p>"),
            "{html}"
        );
        let [subject, ..] = texts.email(None, "X", &code);
        assert!(subject.starts_with("Code de réinitialisation"), "{subject}");
        let [subject, ..] = texts.email(Some("ja"), "X", &code);
        assert!(subject.starts_with("Code de réinitialisation"), "{subject}");

        let notice = Content::Notice(Notice::MethodChanged {
            method: "authenticator_code".into(),
            change: phrase::REMOVED.into(),
        });
        let sms = texts.sms(Some("de"), "X", &notice);
        assert_eq!(sms.language, "de");
        assert_eq!(sms.purpose, "method_changed");
        assert!(
            sms.text.contains("wurde entfernt: Authenticator-App."),
            "{}",
            *sms.text
        );
        let [_, text, _] = texts.email(Some("en"), "X", &notice);
        assert!(text.contains("was removed: authenticator app."), "{text}");
        // A notice queued by an older version, in words: shown as it is.
        let old = Content::Notice(Notice::AccountRecovered {
            what: "something else".into(),
        });
        assert!(
            texts
                .sms(Some("de"), "X", &old)
                .text
                .contains(": something else.")
        );
    }

    #[test]
    fn html_is_escaped_and_subjects_stay_on_one_line() {
        let texts = Texts::load(None, "en").unwrap();
        let n = Content::Notice(Notice::AdminResetInstructions {
            login: "<script>".into(),
            must_change: true,
        });
        let [subject, text, html] = texts.email(None, "A & B\r\nBcc: x", &n);
        assert!(
            !subject.contains('\n') && !subject.contains('\r'),
            "{subject}"
        );
        assert!(
            text.contains("<script>") && text.contains("next sign-in"),
            "{text}"
        );
        assert!(
            html.contains("<b>&lt;script&gt;</b>") && html.contains("A &amp; B"),
            "{html}"
        );
        assert!(!html.contains("<script>"), "{html}");
    }

    #[test]
    fn templates_can_be_overridden_per_language_or_for_all() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("reset_code.subject"),
            "Code for {{organization}}",
        )
        .unwrap();
        std::fs::create_dir(dir.path().join("de")).unwrap();
        std::fs::write(
            dir.path().join("de/reset_code.subject"),
            "Code für {{organization}}",
        )
        .unwrap();
        std::fs::write(dir.path().join("de/reset_code.txt"), "Code: {{code}}\n").unwrap();
        let texts = Texts::load(Some(dir.path()), "en").unwrap();
        let code = Content::ResetCode {
            code: Secret::new("42"),
            minutes: 1,
        };
        assert_eq!(texts.email(Some("fr"), "Org", &code)[0], "Code for Org");
        let [subject, text, html] = texts.email(Some("de"), "Org", &code);
        assert_eq!(
            (subject.as_str(), text.as_str()),
            ("Code für Org", "Code: 42\n")
        );
        assert_eq!(
            html, "<p>Code: <b>42</b></p>",
            "made from the overriding text"
        );
        std::fs::write(dir.path().join("reset_code.html"), "<i>{{code}}</i>").unwrap();
        let texts = Texts::load(Some(dir.path()), "en").unwrap();
        assert_eq!(texts.email(Some("de"), "Org", &code)[2], "<i>42</i>");
    }
}
