//! Rendering: the built-in templates (embedded; `[portal] templates_dir` may replace any of
//! them by file name), the text function `t` that every template speaks through, and the
//! response headers every page carries.

use super::i18n;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use minijinja::value::{Kwargs, Value};
use minijinja::{Environment, State};
use std::path::Path;

/// The built-in templates, by file name.
pub const BUILTIN: &[(&str, &str)] = &[
    ("base.html", include_str!("templates/base.html")),
    ("home.html", include_str!("templates/home.html")),
    ("start.html", include_str!("templates/start.html")),
    ("verify.html", include_str!("templates/verify.html")),
    ("password.html", include_str!("templates/password.html")),
    ("done.html", include_str!("templates/done.html")),
    ("change.html", include_str!("templates/change.html")),
    ("problem.html", include_str!("templates/problem.html")),
    ("sign_in.html", include_str!("templates/sign_in.html")),
    ("methods.html", include_str!("templates/methods.html")),
];

/// The Content-Security-Policy of every response: nothing inline, nothing from elsewhere,
/// no framing, forms post only here.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Reads the templates of `dir` that replace built-in ones; an unknown file name or a
/// template that does not compile is an error.
pub fn read_overrides(dir: &Path) -> Result<Vec<(String, String)>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("{}: {e}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".html") {
            continue;
        }
        if !BUILTIN.iter().any(|(n, _)| *n == name) {
            return Err(format!(
                "{name} is not a portal template (known: {})",
                BUILTIN
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let text = std::fs::read_to_string(entry.path())
            .map_err(|e| format!("{}: {e}", entry.path().display()))?;
        out.push((name, text));
    }
    environment(&out).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(out)
}

/// The template environment: built-in templates, then the overrides.
pub fn environment(overrides: &[(String, String)]) -> Result<Environment<'static>, String> {
    let mut env = Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    for (name, text) in BUILTIN {
        let text = overrides
            .iter()
            .find(|(n, _)| n == name)
            .map_or_else(|| (*text).to_string(), |(_, t)| t.clone());
        env.add_template_owned(*name, text)
            .map_err(|e| format!("template {name}: {e:#}"))?;
    }
    env.add_function("t", translate);
    Ok(env)
}

/// `t("key", name=value, …)`: the text of `key` in the page's language (`lang` in the
/// context), its arguments filled in.
fn translate(state: &State, key: String, kwargs: Kwargs) -> Result<String, minijinja::Error> {
    let lang = state
        .lookup("lang")
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| "en".into());
    let mut args = Vec::new();
    for name in kwargs.args() {
        let v: Value = kwargs.get(name)?;
        args.push((name, v.to_string()));
    }
    kwargs.assert_all_used()?;
    Ok(i18n::text(&lang, &key, &args))
}

/// Headers on every response of the portal.
pub fn secure_headers(headers: &mut HeaderMap) {
    let set = |h: &mut HeaderMap, k: header::HeaderName, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    set(headers, header::CONTENT_SECURITY_POLICY, CSP);
    set(
        headers,
        header::STRICT_TRANSPORT_SECURITY,
        "max-age=31536000; includeSubDomains",
    );
    set(headers, header::REFERRER_POLICY, "no-referrer");
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(
        headers,
        header::HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    set(
        headers,
        header::HeaderName::from_static("cross-origin-resource-policy"),
        "same-origin",
    );
    set(
        headers,
        header::HeaderName::from_static("permissions-policy"),
        "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
    );
    if !headers.contains_key(header::CACHE_CONTROL) {
        set(headers, header::CACHE_CONTROL, "no-store");
    }
}

/// A rendered page.
pub struct Html {
    pub status: StatusCode,
    pub body: String,
}

impl IntoResponse for Html {
    fn into_response(self) -> Response {
        (
            self.status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            self.body,
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_templates_compile_and_overrides_are_checked() {
        environment(&[]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("done.html"), "{% extends \"base.html\" %}").unwrap();
        assert_eq!(read_overrides(dir.path()).unwrap().len(), 1);
        std::fs::write(dir.path().join("other.html"), "x").unwrap();
        assert!(
            read_overrides(dir.path())
                .unwrap_err()
                .contains("other.html is not a portal template")
        );
        std::fs::remove_file(dir.path().join("other.html")).unwrap();
        std::fs::write(dir.path().join("home.html"), "{% if %}").unwrap();
        assert!(read_overrides(dir.path()).is_err());
    }
}
