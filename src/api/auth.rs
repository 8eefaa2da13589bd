//! Client identity and roles. Under mutual TLS every client certificate is mapped, by its
//! subject common name or a subject alternative name, to a configured client with a role;
//! each role may call a fixed list of RPCs, matched on the exact request path (no
//! normalisation, so spelling variants of a method name match nothing).
//!
//! | role | may call |
//! |---|---|
//! | `kiosk` | `ResetService` |
//! | `portal` | `ResetService`, `RegistrationService` |
//! | `helpdesk` | `AdminService.UnlockUser`, `AdminService.ResetUserPassword` |
//! | `admin` | everything |
//!
//! Health checks are open to every client; reflection to every client with a role. A call
//! without a certificate that the anonymous role does not cover is UNAUTHENTICATED; a
//! certificate that maps to no client, or a call outside the client's role, is
//! PERMISSION_DENIED. (A certificate from another CA never gets this far: the TLS handshake
//! refuses it.)

use serde::{Deserialize, Serialize};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// What a client may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// No rights: only health checks.
    None,
    Kiosk,
    Portal,
    Helpdesk,
    Admin,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Kiosk => "kiosk",
            Self::Portal => "portal",
            Self::Helpdesk => "helpdesk",
            Self::Admin => "admin",
        }
    }

    /// Whether this role may call the RPC at `path` (`/package.Service/Method`).
    pub fn allows(self, path: &str) -> bool {
        if OPEN.contains(&path) {
            return true;
        }
        if self == Self::None {
            return false;
        }
        if REFLECTION.contains(&path) {
            return true;
        }
        let Some((service, method)) = split(path) else {
            return false;
        };
        match self {
            Self::None => false,
            Self::Kiosk => service == RESET.0 && RESET.1.contains(&method),
            Self::Portal => {
                (service == RESET.0 && RESET.1.contains(&method))
                    || (service == REGISTRATION.0 && REGISTRATION.1.contains(&method))
            }
            Self::Helpdesk => service == ADMIN.0 && HELPDESK_ADMIN.contains(&method),
            Self::Admin => [RESET, REGISTRATION, ADMIN]
                .iter()
                .any(|(s, ms)| service == *s && ms.contains(&method)),
        }
    }
}

const OPEN: &[&str] = &[
    "/grpc.health.v1.Health/Check",
    "/grpc.health.v1.Health/Watch",
];
const REFLECTION: &[&str] = &[
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
];
const RESET: (&str, &[&str]) = (
    "ssprd.v1.ResetService",
    &[
        "StartReset",
        "SendCode",
        "VerifyMethod",
        "GetPasswordPolicy",
        "CompleteReset",
        "UnlockAccount",
        "ChangePassword",
    ],
);
const REGISTRATION: (&str, &[&str]) = (
    "ssprd.v1.RegistrationService",
    &[
        "BeginRegistration",
        "GetRegistration",
        "SetSecurityQuestions",
        "ListSecurityQuestions",
        "AddContact",
        "ConfirmContact",
        "EnrollAuthenticator",
        "ConfirmAuthenticator",
        "RemoveMethod",
        "ReconfirmRegistration",
    ],
);
const ADMIN: (&str, &[&str]) = (
    "ssprd.v1.AdminService",
    &[
        "GetPolicy",
        "UpdatePolicy",
        "GetUser",
        "SetContact",
        "RevokeMethods",
        "ResetUserPassword",
        "UnlockUser",
        "ClearBlock",
        "Prefill",
        "GetReport",
        "QueryAudit",
        "GetSetupStatus",
    ],
);
const HELPDESK_ADMIN: &[&str] = &["UnlockUser", "ResetUserPassword"];

/// `/svc/method` → (`svc`, `method`), refusing anything with extra or empty segments.
fn split(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix('/')?;
    let (s, m) = rest.split_once('/')?;
    (!s.is_empty() && !m.is_empty() && !m.contains('/')).then_some((s, m))
}

/// How a configured client is recognised in its certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matcher {
    /// The subject's common name equals this.
    CommonName(String),
    /// A DNS, email or URI subject alternative name equals this.
    San(String),
}

/// A configured client: name (for audit and quotas), how to recognise it, its role, and
/// its own request quota (requests per minute; `None`: the server default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRule {
    pub name: String,
    pub matcher: Matcher,
    pub role: Role,
    pub requests_per_minute: Option<u32>,
}

/// The names a client certificate carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertNames {
    pub common_names: Vec<String>,
    pub sans: Vec<String>,
}

impl CertNames {
    /// Parses a DER certificate (already verified by the TLS layer).
    pub fn from_der(der: &[u8]) -> Option<Self> {
        use x509_parser::prelude::*;
        let (_, cert) = X509Certificate::from_der(der).ok()?;
        let common_names = cert
            .subject()
            .iter_common_name()
            .filter_map(|cn| cn.as_str().ok().map(str::to_string))
            .collect();
        let mut sans = Vec::new();
        if let Ok(Some(ext)) = cert.subject_alternative_name() {
            for name in &ext.value.general_names {
                match name {
                    GeneralName::DNSName(s) | GeneralName::RFC822Name(s) | GeneralName::URI(s) => {
                        sans.push((*s).to_string())
                    }
                    _ => {}
                }
            }
        }
        Some(Self { common_names, sans })
    }
}

/// Who a request comes from, once identified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The configured client name; empty for anonymous or unknown clients.
    pub client: String,
    pub role: Role,
    /// Index into the configured clients (for per-client quotas).
    pub rule: Option<usize>,
}

/// Maps certificates to clients and decides each call.
#[derive(Debug, Clone)]
pub struct Access {
    pub clients: Vec<ClientRule>,
    /// Role of clients without a certificate.
    pub anonymous: Role,
}

impl Access {
    /// Identifies the client of a request: `names` of its certificate (`None`: no
    /// certificate). A certificate that matches no configured client has no rights.
    pub fn identify(&self, names: Option<&CertNames>) -> Identity {
        let Some(names) = names else {
            return Identity {
                client: String::new(),
                role: self.anonymous,
                rule: None,
            };
        };
        let found = self.clients.iter().position(|c| match &c.matcher {
            Matcher::CommonName(cn) => names.common_names.iter().any(|n| n == cn),
            Matcher::San(san) => names.sans.iter().any(|n| n.eq_ignore_ascii_case(san)),
        });
        match found {
            Some(i) => Identity {
                client: self.clients[i].name.clone(),
                role: self.clients[i].role,
                rule: Some(i),
            },
            None => Identity {
                client: String::new(),
                role: Role::None,
                rule: None,
            },
        }
    }

    /// `Ok` when `who` may call `path`; else the status to answer with.
    pub fn check(&self, who: &Identity, has_cert: bool, path: &str) -> Result<(), Status> {
        if who.role.allows(path) {
            return Ok(());
        }
        if !has_cert {
            return Err(denied(
                Code::Unauthenticated,
                "CLIENT_CERTIFICATE_REQUIRED",
                "this call needs a client certificate",
            ));
        }
        if who.rule.is_none() {
            return Err(denied(
                Code::PermissionDenied,
                "CLIENT_UNKNOWN",
                "the client certificate is not mapped to a client in the daemon's configuration",
            ));
        }
        Err(denied(
            Code::PermissionDenied,
            "ROLE_NOT_PERMITTED",
            &format!("the {} role may not call {path}", who.role.name()),
        ))
    }
}

fn denied(code: Code, reason: &str, message: &str) -> Status {
    let mut details = ErrorDetails::new();
    details.set_error_info(
        reason,
        super::ERROR_DOMAIN,
        std::collections::HashMap::new(),
    );
    Status::with_error_details(code, message, details)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The role lists and the served descriptors agree: the admin role may call every
    /// `ssprd.v1` method (a new RPC must be placed in the lists), and no role names a method
    /// that is not served (a typo).
    #[test]
    fn every_served_method_is_in_the_role_lists_and_every_listed_one_is_served() {
        let served = crate::api::wire::Methods::served();
        for path in served.paths().filter(|p| p.starts_with("/ssprd.v1.")) {
            assert!(
                Role::Admin.allows(path),
                "{path} is not in the admin role's list"
            );
        }
        for (service, methods) in [RESET, REGISTRATION, ADMIN] {
            for m in methods {
                let path = format!("/{service}/{m}");
                assert!(served.knows(&path), "{path} is listed but not served");
            }
        }
        for path in OPEN.iter().chain(REFLECTION) {
            assert!(served.knows(path), "{path} is listed but not served");
        }
    }

    #[test]
    fn roles_allow_exact_paths_only() {
        let reset = "/ssprd.v1.ResetService/StartReset";
        let reg = "/ssprd.v1.RegistrationService/BeginRegistration";
        let unlock = "/ssprd.v1.AdminService/UnlockUser";
        let policy = "/ssprd.v1.AdminService/UpdatePolicy";
        let health = "/grpc.health.v1.Health/Check";
        assert!(Role::Kiosk.allows(reset) && !Role::Kiosk.allows(reg));
        assert!(Role::Portal.allows(reset) && Role::Portal.allows(reg));
        assert!(!Role::Portal.allows(unlock));
        assert!(Role::Helpdesk.allows(unlock) && !Role::Helpdesk.allows(policy));
        assert!(!Role::Helpdesk.allows(reset));
        assert!(Role::Admin.allows(policy) && Role::Admin.allows(reg));
        assert!(Role::None.allows(health) && !Role::None.allows(reset));
        for variant in [
            "/ssprd.v1.AdminService/updatepolicy",
            "/ssprd.v1.adminservice/UpdatePolicy",
            "//ssprd.v1.AdminService/UpdatePolicy",
            "/ssprd.v1.AdminService/UpdatePolicy/",
            "/ssprd.v1.AdminService//UpdatePolicy",
            "/ssprd.v1.AdminService/UpdatePolicy%00",
            "ssprd.v1.AdminService/UpdatePolicy",
            "/ssprd.v1.AdminService/UpdatePolicy?x=1",
        ] {
            assert!(!Role::Admin.allows(variant), "{variant}");
        }
    }

    #[test]
    fn certificates_map_to_clients() {
        let access = Access {
            clients: vec![
                ClientRule {
                    name: "kiosk-1".into(),
                    matcher: Matcher::CommonName("kiosk-01".into()),
                    role: Role::Kiosk,
                    requests_per_minute: Some(10),
                },
                ClientRule {
                    name: "ops".into(),
                    matcher: Matcher::San("ops.example.org".into()),
                    role: Role::Admin,
                    requests_per_minute: None,
                },
            ],
            anonymous: Role::None,
        };
        let kiosk = CertNames {
            common_names: vec!["kiosk-01".into()],
            sans: vec![],
        };
        let id = access.identify(Some(&kiosk));
        assert_eq!((id.client.as_str(), id.role), ("kiosk-1", Role::Kiosk));
        let ops = CertNames {
            common_names: vec!["whatever".into()],
            sans: vec!["OPS.example.org".into()],
        };
        assert_eq!(access.identify(Some(&ops)).role, Role::Admin);
        let stranger = CertNames {
            common_names: vec!["kiosk-01x".into()],
            sans: vec![],
        };
        let id = access.identify(Some(&stranger));
        assert_eq!(id.role, Role::None);
        let admin_path = "/ssprd.v1.AdminService/GetUser";
        assert_eq!(
            access.check(&id, true, admin_path).unwrap_err().code(),
            Code::PermissionDenied
        );
        let anon = access.identify(None);
        assert_eq!(
            access.check(&anon, false, admin_path).unwrap_err().code(),
            Code::Unauthenticated
        );
        let k = access.identify(Some(&kiosk));
        assert_eq!(
            access.check(&k, true, admin_path).unwrap_err().code(),
            Code::PermissionDenied
        );
        assert!(
            access
                .check(&k, true, "/ssprd.v1.ResetService/StartReset")
                .is_ok()
        );
    }
}
