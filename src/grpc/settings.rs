//! The `[server]` section and `[[clients]]`: where and how the gRPC API is served, and
//! which client certificates map to which roles.

use crate::api::auth::{Access, ClientRule, Matcher, Role};
use crate::problems::Problems;
use crate::secret::{Secret, SecretSource};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The `[server]` section.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawServer {
    pub listen: String,
    pub tls_cert_file: PathBuf,
    /// Default: the systemd credential `tls-key`.
    pub tls_key: Option<SecretSource>,
    /// CA whose client certificates are trusted (mutual TLS). Certificates are mapped to
    /// roles by `[[clients]]`; a certificate from another CA is refused at the handshake.
    pub client_ca_file: Option<PathBuf>,
    /// Role of clients that present no certificate: "none", "kiosk" or "portal".
    /// Default: "portal" without `client_ca_file`, "none" with it.
    pub anonymous_role: Option<Role>,
    pub reflection: bool,
    pub request_timeout_ms: u64,
    pub max_request_bytes: usize,
    pub max_concurrent_streams: u32,
    /// Requests one client (certificate, else IP address) may make per minute; 0 = no limit.
    pub per_client_requests_per_minute: u32,
    /// StartReset, SendCode, BeginRegistration and ChangePassword answer no sooner than this
    /// many milliseconds after the request (0 = off): real and decoy flows, and a wrong
    /// password and an unknown name, then take the same time from outside.
    pub uniform_response_ms: u64,
    pub watchdog: bool,
    /// Open client connections at most; when full, the connection idle the longest is
    /// closed to make room. Kept below the open-file limit (`LimitNOFILE`), lowered with a
    /// warning when that is too small.
    pub max_connections: usize,
    /// Open connections from one client address (IPv6: one /64) at most.
    pub max_connections_per_address: usize,
    /// A client that has not finished its TLS handshake by then is disconnected.
    pub tls_handshake_timeout_ms: u64,
    /// A connection without a call for this long is closed (clients reconnect on their next
    /// call).
    pub idle_timeout_secs: u64,
    /// HTTP/2 keepalive pings on idle connections, to find dead peers.
    pub keepalive_secs: u64,
}

impl Default for RawServer {
    fn default() -> Self {
        Self {
            listen: "0.0.0.0:50051".into(),
            tls_cert_file: "/etc/ssprd/tls/server.crt".into(),
            tls_key: None,
            client_ca_file: None,
            anonymous_role: None,
            reflection: true,
            request_timeout_ms: 5_000,
            max_request_bytes: 64 * 1024,
            max_concurrent_streams: 64,
            per_client_requests_per_minute: 600,
            uniform_response_ms: 400,
            watchdog: true,
            max_connections: 512,
            max_connections_per_address: 64,
            tls_handshake_timeout_ms: 10_000,
            idle_timeout_secs: 300,
            keepalive_secs: 30,
        }
    }
}

/// A client known by its certificate (`[[clients]]`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawClient {
    /// Name used in audit records and quotas.
    pub name: String,
    /// Recognised by the certificate's subject common name...
    pub common_name: Option<String>,
    /// ...or by a DNS, email or URI subject alternative name.
    pub san: Option<String>,
    /// kiosk, portal, helpdesk or admin.
    pub role: Option<Role>,
    /// This client's own quota (requests per minute); default: the server's per-client limit.
    pub requests_per_minute: Option<u32>,
}

/// Validated server settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub tls_cert_pem: Vec<u8>,
    pub tls_key_pem: Secret,
    pub client_ca_pem: Option<Vec<u8>>,
    /// Client certificates → roles, and the role of clients without one.
    pub access: Access,
    pub reflection: bool,
    pub request_timeout: Duration,
    pub max_request_bytes: usize,
    pub max_concurrent_streams: u32,
    pub per_client_requests_per_minute: u32,
    pub uniform_response: Duration,
    pub watchdog: bool,
    pub max_connections: usize,
    pub max_connections_per_address: usize,
    pub tls_handshake_timeout: Duration,
    pub idle_timeout: Duration,
    pub keepalive: Duration,
}

impl RawServer {
    /// Checks `[server]` and `[[clients]]` into `p`, and reads the certificate, key and
    /// client CA.
    pub fn validate(&self, clients: &[RawClient], p: &mut Problems) -> ServerConfig {
        let s = self;
        let listen = s.listen.parse::<SocketAddr>().unwrap_or_else(|e| {
            p.bad(
                "server.listen",
                format!("{:?} is not an address:port ({e})", s.listen),
            );
            SocketAddr::from(([127, 0, 0, 1], 0))
        });
        let tls_cert_pem =
            crate::tls::read_pem(&s.tls_cert_file, "CERTIFICATE").unwrap_or_else(|e| {
                p.bad("server.tls_cert_file", e);
                Vec::new()
            });
        let tls_key_pem = SecretSource::or_credential(&s.tls_key, "tls-key")
            .read()
            .unwrap_or_else(|e| {
                p.bad("server.tls_key", e);
                Secret::new("")
            });
        if !tls_key_pem.is_empty() && !tls_key_pem.expose().contains("PRIVATE KEY-----") {
            p.bad("server.tls_key", "does not hold a PEM private key");
        }
        let client_ca_pem = s.client_ca_file.as_ref().and_then(|f| {
            crate::tls::read_pem(f, "CERTIFICATE")
                .map_err(|e| p.bad("server.client_ca_file", e))
                .ok()
        });
        p.in_range(
            "server.request_timeout_ms",
            s.request_timeout_ms,
            100,
            600_000,
        );
        p.in_range(
            "server.max_request_bytes",
            s.max_request_bytes,
            1024,
            4 * 1024 * 1024,
        );
        if s.max_concurrent_streams == 0 {
            p.bad("server.max_concurrent_streams", "must be at least 1");
        }
        p.in_range("server.max_connections", s.max_connections, 1, 1_000_000);
        if s.max_connections_per_address == 0 || s.max_connections_per_address > s.max_connections {
            p.bad(
                "server.max_connections_per_address",
                format!(
                    "{} must be 1..=max_connections ({})",
                    s.max_connections_per_address, s.max_connections
                ),
            );
        }
        p.in_range(
            "server.tls_handshake_timeout_ms",
            s.tls_handshake_timeout_ms,
            100,
            120_000,
        );
        p.in_range("server.idle_timeout_secs", s.idle_timeout_secs, 1, 86_400);
        p.in_range("server.keepalive_secs", s.keepalive_secs, 1, 3_600);
        if s.uniform_response_ms >= s.request_timeout_ms {
            p.bad(
                "server.uniform_response_ms",
                format!(
                    "{} must be shorter than server.request_timeout_ms ({})",
                    s.uniform_response_ms, s.request_timeout_ms
                ),
            );
        }
        let anonymous = s.anonymous_role.unwrap_or(if s.client_ca_file.is_some() {
            Role::None
        } else {
            Role::Portal
        });
        if matches!(anonymous, Role::Admin | Role::Helpdesk) {
            p.bad(
                "server.anonymous_role",
                format!(
                    "{:?}: clients without a certificate may be none, kiosk or portal",
                    anonymous.name()
                ),
            );
        }
        ServerConfig {
            listen,
            tls_cert_pem,
            tls_key_pem,
            client_ca_pem,
            access: Access {
                clients: client_rules(clients, s.client_ca_file.is_some(), p),
                anonymous,
            },
            reflection: s.reflection,
            request_timeout: Duration::from_millis(s.request_timeout_ms),
            max_request_bytes: s.max_request_bytes,
            max_concurrent_streams: s.max_concurrent_streams,
            per_client_requests_per_minute: s.per_client_requests_per_minute,
            uniform_response: Duration::from_millis(s.uniform_response_ms),
            watchdog: s.watchdog,
            max_connections: s.max_connections,
            max_connections_per_address: s.max_connections_per_address,
            tls_handshake_timeout: Duration::from_millis(s.tls_handshake_timeout_ms),
            idle_timeout: Duration::from_secs(s.idle_timeout_secs),
            keepalive: Duration::from_secs(s.keepalive_secs),
        }
    }
}

/// Checks `[[clients]]` into `p`; certificates are mapped only under mutual TLS.
fn client_rules(clients: &[RawClient], mtls: bool, p: &mut Problems) -> Vec<ClientRule> {
    if !clients.is_empty() && !mtls {
        p.bad(
            "clients",
            "client certificates are mapped to roles only under mutual TLS: set server.client_ca_file",
        );
    }
    let mut rules: Vec<ClientRule> = Vec::new();
    for (i, c) in clients.iter().enumerate() {
        let key = format!("clients[{i}]");
        let name = c.name.trim();
        if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
            p.bad(
                &format!("{key}.name"),
                "1-64 characters without control characters",
            );
        } else if rules.iter().any(|r| r.name == name) {
            p.bad(&format!("{key}.name"), format!("{name:?} is used twice"));
        }
        let matcher = match (&c.common_name, &c.san) {
            (Some(cn), None) if !cn.trim().is_empty() => Matcher::CommonName(cn.trim().into()),
            (None, Some(san)) if !san.trim().is_empty() => Matcher::San(san.trim().into()),
            _ => {
                p.bad(&key, "set exactly one of common_name or san (not empty)");
                Matcher::CommonName(String::new())
            }
        };
        let role = c.role.unwrap_or_else(|| {
            p.bad(
                &format!("{key}.role"),
                "required: kiosk, portal, helpdesk or admin",
            );
            Role::None
        });
        if c.requests_per_minute == Some(0) {
            p.bad(
                &format!("{key}.requests_per_minute"),
                "must be at least 1 (leave it out for the server default)",
            );
        }
        rules.push(ClientRule {
            name: name.to_string(),
            matcher,
            role,
            requests_per_minute: c.requests_per_minute,
        });
    }
    rules
}
