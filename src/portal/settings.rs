//! The `[portal]` section: the web portal's listener, its public address, the proxies it
//! trusts, kiosk mode, branding and templates.

use crate::problems::Problems;
use crate::secret::{Secret, SecretSource};
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// The `[portal]` section.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawPortal {
    pub enabled: bool,
    pub listen: String,
    /// The address users open, `https://host[:port]/`: every link and every message that
    /// names the portal is built from it, never from a request's `Host`.
    pub public_url: String,
    /// Default: the gRPC server's certificate (`server.tls_cert_file`). Browsers need one
    /// they trust: usually the organisation's, not the setup's private CA.
    pub tls_cert_file: Option<PathBuf>,
    /// Default: the gRPC server's key (`server.tls_key`).
    pub tls_key: Option<SecretSource>,
    /// Reverse proxies (addresses or networks) whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<String>,
    /// A lobby kiosk: no registration pages, large touch targets, no link out of the flow,
    /// and back to the start after `kiosk_timeout_secs` without input.
    pub kiosk: bool,
    pub kiosk_timeout_secs: u64,
    /// A browser session without a request for this long is discarded.
    pub session_idle_minutes: u64,
    /// Browser sessions held at most. A session is held only once it has something to
    /// keep (a flow, a sign-in, a chosen language, a message for the next page); when full,
    /// one holding no flow or sign-in gives way first, then one of the address holding the
    /// most.
    pub max_sessions: usize,
    /// Browser sessions one client address (IPv6: its /64) holds at most: its own oldest
    /// gives way for a new one.
    pub max_sessions_per_address: usize,
    /// Requests one client address may make per minute (0: no limit).
    pub requests_per_minute_per_address: u32,
    /// The name shown on every page. Default: `email.organization`.
    pub organization: Option<String>,
    /// A PNG or SVG shown in the page header.
    pub logo_file: Option<PathBuf>,
    /// The accent colour of buttons and links, `#rrggbb`; it must contrast with white
    /// (WCAG AA, 4.5:1).
    pub accent_colour: String,
    /// A directory whose templates (same file names as the built-in ones) replace them.
    pub templates_dir: Option<PathBuf>,
    /// The language when the browser asks for none the portal has: en, de or fr.
    pub default_language: String,
    pub max_connections: usize,
    pub max_connections_per_address: usize,
}

impl Default for RawPortal {
    fn default() -> Self {
        Self {
            enabled: false,
            listen: "0.0.0.0:8443".into(),
            public_url: String::new(),
            tls_cert_file: None,
            tls_key: None,
            trusted_proxies: Vec::new(),
            kiosk: false,
            kiosk_timeout_secs: 90,
            session_idle_minutes: 15,
            max_sessions: 10_000,
            max_sessions_per_address: 64,
            requests_per_minute_per_address: 120,
            organization: None,
            logo_file: None,
            accent_colour: "#0b5394".into(),
            templates_dir: None,
            default_language: "en".into(),
            max_connections: 256,
            max_connections_per_address: 32,
        }
    }
}

/// The checked `[portal]` section.
#[derive(Debug, Clone)]
pub struct PortalConfig {
    pub listen: SocketAddr,
    /// `https://host[:port]` without a trailing slash.
    pub origin: String,
    pub tls_cert_pem: Vec<u8>,
    pub tls_key_pem: Secret,
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub kiosk: bool,
    pub kiosk_timeout: Duration,
    pub session_idle: Duration,
    pub max_sessions: usize,
    pub max_sessions_per_address: usize,
    pub requests_per_minute_per_address: u32,
    pub organization: String,
    /// The logo's bytes and media type.
    pub logo: Option<(Vec<u8>, &'static str)>,
    pub accent_colour: String,
    /// Templates replacing built-in ones: (file name, text).
    pub templates: Vec<(String, String)>,
    pub default_language: String,
    pub max_connections: usize,
    pub max_connections_per_address: usize,
}

/// What `[portal]` falls back on from other sections.
pub struct Fallbacks<'a> {
    pub tls_cert_file: &'a std::path::Path,
    pub tls_key: &'a Option<SecretSource>,
    pub organization: &'a str,
}

impl RawPortal {
    /// Checks `[portal]` into `p` and reads its files; `None` when the portal is off.
    pub fn validate(&self, p: &mut Problems, fallback: Fallbacks<'_>) -> Option<PortalConfig> {
        if !self.enabled {
            return None;
        }
        let s = self;
        let listen = s.listen.parse::<SocketAddr>().unwrap_or_else(|e| {
            p.bad(
                "portal.listen",
                format!("{:?} is not an address:port ({e})", s.listen),
            );
            SocketAddr::from(([127, 0, 0, 1], 0))
        });
        let origin = origin_of(&s.public_url).unwrap_or_else(|why| {
            p.bad("portal.public_url", why);
            String::new()
        });
        let cert_file = s.tls_cert_file.as_deref().unwrap_or(fallback.tls_cert_file);
        let tls_cert_pem = crate::tls::read_pem(cert_file, "CERTIFICATE").unwrap_or_else(|e| {
            p.bad("portal.tls_cert_file", e);
            Vec::new()
        });
        let key_source = s.tls_key.as_ref().or(fallback.tls_key.as_ref()).cloned();
        let tls_key_pem = SecretSource::or_credential(&key_source, "tls-key")
            .read()
            .unwrap_or_else(|e| {
                p.bad("portal.tls_key", e);
                Secret::new("")
            });
        if !tls_key_pem.is_empty() && !tls_key_pem.expose().contains("PRIVATE KEY-----") {
            p.bad("portal.tls_key", "does not hold a PEM private key");
        }
        let trusted_proxies = s
            .trusted_proxies
            .iter()
            .enumerate()
            .filter_map(|(i, t)| {
                let net = t
                    .parse::<ipnet::IpNet>()
                    .or_else(|_| t.parse::<IpAddr>().map(ipnet::IpNet::from));
                net.map_err(|_| {
                    p.bad(
                        &format!("portal.trusted_proxies[{i}]"),
                        format!("{t:?} is neither an address nor a network (a.b.c.d/n)"),
                    )
                })
                .ok()
            })
            .collect();
        p.in_range("portal.kiosk_timeout_secs", s.kiosk_timeout_secs, 10, 3600);
        p.in_range(
            "portal.session_idle_minutes",
            s.session_idle_minutes,
            1,
            240,
        );
        p.in_range("portal.max_sessions", s.max_sessions, 10, 10_000_000);
        p.in_range(
            "portal.max_sessions_per_address",
            s.max_sessions_per_address,
            1,
            s.max_sessions.max(1),
        );
        p.in_range("portal.max_connections", s.max_connections, 1, 100_000);
        p.in_range(
            "portal.max_connections_per_address",
            s.max_connections_per_address,
            1,
            100_000,
        );
        let logo = s.logo_file.as_ref().and_then(|f| {
            let kind = match f.extension().and_then(|e| e.to_str()) {
                Some("png") => "image/png",
                Some("svg") => "image/svg+xml",
                _ => {
                    p.bad("portal.logo_file", "must be a .png or .svg file");
                    return None;
                }
            };
            match std::fs::read(f) {
                Ok(bytes) if bytes.len() <= 512 * 1024 => Some((bytes, kind)),
                Ok(_) => {
                    p.bad("portal.logo_file", "is larger than 512 KiB");
                    None
                }
                Err(e) => {
                    p.bad("portal.logo_file", format!("{}: {e}", f.display()));
                    None
                }
            }
        });
        match contrast_with_white(&s.accent_colour) {
            None => p.bad(
                "portal.accent_colour",
                format!("{:?} is not a colour #rrggbb", s.accent_colour),
            ),
            Some(c) if c < 4.5 => p.bad(
                "portal.accent_colour",
                format!(
                    "{} has a contrast of {c:.1}:1 with white; at least 4.5:1 is needed (WCAG AA)",
                    s.accent_colour
                ),
            ),
            Some(_) => {}
        }
        let templates = s
            .templates_dir
            .as_ref()
            .map(|dir| {
                super::page::read_overrides(dir).unwrap_or_else(|e| {
                    p.bad("portal.templates_dir", e);
                    Vec::new()
                })
            })
            .unwrap_or_default();
        if !super::i18n::LANGUAGES.contains(&s.default_language.as_str()) {
            p.bad(
                "portal.default_language",
                format!(
                    "{:?} is not one of {}",
                    s.default_language,
                    super::i18n::LANGUAGES.join(", ")
                ),
            );
        }
        Some(PortalConfig {
            listen,
            origin,
            tls_cert_pem,
            tls_key_pem,
            trusted_proxies,
            kiosk: s.kiosk,
            kiosk_timeout: Duration::from_secs(s.kiosk_timeout_secs),
            session_idle: Duration::from_secs(s.session_idle_minutes * 60),
            max_sessions: s.max_sessions,
            max_sessions_per_address: s.max_sessions_per_address,
            requests_per_minute_per_address: s.requests_per_minute_per_address,
            organization: s
                .organization
                .clone()
                .unwrap_or_else(|| fallback.organization.to_string()),
            logo,
            accent_colour: s.accent_colour.to_ascii_lowercase(),
            templates,
            default_language: s.default_language.clone(),
            max_connections: s.max_connections,
            max_connections_per_address: s.max_connections_per_address,
        })
    }
}

/// `https://host[:port]` of a public URL: https, a host, no user, query or fragment, and
/// at most the root path.
fn origin_of(url: &str) -> Result<String, String> {
    if url.is_empty() {
        return Err(
            "must be set when the portal is enabled: the https:// address users open".into(),
        );
    }
    let u = url::Url::parse(url).map_err(|e| format!("{url:?} is not a URL ({e})"))?;
    if u.scheme() != "https" {
        return Err(format!("{url:?} must start with https://"));
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err(format!("{url:?} names no host"));
    }
    if !u.username().is_empty()
        || u.password().is_some()
        || u.query().is_some()
        || u.fragment().is_some()
    {
        return Err(format!("{url:?} must not carry a user, query or fragment"));
    }
    if u.path() != "/" {
        return Err(format!(
            "{url:?}: the portal is served at the root of its host; give no path"
        ));
    }
    Ok(u.origin().ascii_serialization())
}

/// The WCAG contrast ratio of `#rrggbb` against white.
pub fn contrast_with_white(colour: &str) -> Option<f64> {
    let hex = colour.strip_prefix('#').filter(|h| h.len() == 6)?;
    let v = u32::from_str_radix(hex, 16).ok()?;
    let channel = |shift: u32| {
        let c = f64::from((v >> shift) & 0xff) / 255.0;
        if c <= 0.03928 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    let l = 0.2126 * channel(16) + 0.7152 * channel(8) + 0.0722 * channel(0);
    Some(1.05 / (l + 0.05))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_url_is_an_https_origin() {
        assert_eq!(
            origin_of("https://sspr.example.org/").unwrap(),
            "https://sspr.example.org"
        );
        assert_eq!(
            origin_of("https://sspr.example.org:8443").unwrap(),
            "https://sspr.example.org:8443"
        );
        for bad in [
            "",
            "http://sspr.example.org/",
            "https://sspr.example.org/reset",
            "https://u:p@sspr.example.org/",
            "https://sspr.example.org/?a=b",
            "sspr.example.org",
        ] {
            assert!(origin_of(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn accent_colours_must_contrast_with_white() {
        assert!(contrast_with_white("#0b5394").unwrap() >= 4.5);
        assert!(contrast_with_white("#ffcc00").unwrap() < 4.5);
        assert!(contrast_with_white("#000000").unwrap() > 20.0);
        assert_eq!(contrast_with_white("blue"), None);
    }
}
