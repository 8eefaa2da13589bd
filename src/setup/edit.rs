//! The configuration file as the setup leaves it: the answers written into the existing
//! file (or the package's commented template), everything else — comments, other keys,
//! their order — left as it was. Pure: text in, text out.

use crate::directory::settings::Flavour;
use std::path::PathBuf;
use toml_edit::{Array, ArrayOfTables, DocumentMut, Item, Table, Value};

/// The package's configuration file, the starting point when there is none yet.
pub const TEMPLATE: &str = include_str!("../../packaging/ssprd.toml");

/// The SMTP server for email codes and notifications.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub host: String,
    pub port: u16,
    pub from: String,
    pub ca_file: Option<PathBuf>,
}

/// The web portal: its public address and where it listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Portal {
    /// `https://host[:port]/`.
    pub public_url: String,
    /// The port it listens on (all addresses).
    pub port: u16,
}

/// Who may use self-service: `[policy] scope` and `scope_groups`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rollout {
    None,
    /// Members of these groups (DNs; nested membership counts).
    Groups(Vec<String>),
    All,
}

/// What the setup writes into the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub flavour: Flavour,
    pub uris: Vec<String>,
    pub ca_file: Option<PathBuf>,
    pub bind_dn: String,
    pub base_dn: String,
    /// OpenLDAP's default password policy entry, if any.
    pub ppolicy_dn: Option<String>,
    pub organization: String,
    /// None: email is not configured and not an enabled method.
    pub email: Option<Email>,
    pub tls_cert_file: PathBuf,
    pub client_ca_file: PathBuf,
    /// The common name of the first admin client certificate.
    pub admin_name: String,
    pub rollout: Rollout,
    /// None: the portal is off.
    pub portal: Option<Portal>,
}

/// The user search every flavour starts with.
pub fn user_search(flavour: Flavour) -> (&'static str, &'static str) {
    match flavour {
        Flavour::Openldap => ("(objectClass=inetOrgPerson)", "uid"),
        Flavour::ActiveDirectory => (
            "(&(objectCategory=person)(objectClass=user))",
            "sAMAccountName",
        ),
    }
}

/// `text` with `s` applied. Errors when `text` is not TOML or a section setup writes is not a
/// table.
pub fn apply(text: &str, s: &Settings) -> Result<String, String> {
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| format!("not valid TOML: {}", e.message()))?;
    let (filter, login) = user_search(s.flavour);

    let dir = section(&mut doc, "directory")?;
    set(
        dir,
        "flavour",
        match s.flavour {
            Flavour::Openldap => "openldap",
            Flavour::ActiveDirectory => "active_directory",
        },
    );
    set(dir, "uris", strings(&s.uris));
    match &s.ca_file {
        Some(f) => set(dir, "ca_file", f.display().to_string()),
        None => drop(dir.remove("ca_file")),
    }
    // Plain ldap:// URIs are always upgraded: the setup never configures a connection
    // without TLS.
    let plain = s
        .uris
        .iter()
        .any(|u| u.to_ascii_lowercase().starts_with("ldap://"));
    set(dir, "starttls", plain);
    set(dir, "allow_insecure", false);
    set(dir, "bind_dn", s.bind_dn.as_str());
    // The password comes from the credential the unit loads (the file the setup writes).
    dir.remove("bind_password");
    set(dir, "base_dn", s.base_dn.as_str());
    set(dir, "user_filter", filter);
    set(dir, "login_attribute", login);
    match (&s.ppolicy_dn, s.flavour) {
        (Some(p), Flavour::Openldap) => set(dir, "ppolicy_dn", p.as_str()),
        _ => drop(dir.remove("ppolicy_dn")),
    }
    if s.flavour == Flavour::ActiveDirectory {
        dir.remove("openldap_password_write");
    }

    let server = section(&mut doc, "server")?;
    set(
        server,
        "tls_cert_file",
        s.tls_cert_file.display().to_string(),
    );
    server.remove("tls_key");
    set(
        server,
        "client_ca_file",
        s.client_ca_file.display().to_string(),
    );

    let auth = section(&mut doc, "authenticator")?;
    set(auth, "issuer", s.organization.as_str());
    auth.remove("key");

    match &s.email {
        Some(e) => {
            let email = section(&mut doc, "email")?;
            set(email, "host", e.host.as_str());
            set(email, "port", i64::from(e.port));
            set(
                email,
                "tls",
                if e.port == 465 {
                    "implicit"
                } else {
                    "starttls"
                },
            );
            set(email, "from", e.from.as_str());
            set(email, "organization", s.organization.as_str());
            match &e.ca_file {
                Some(f) => set(email, "ca_file", f.display().to_string()),
                None => drop(email.remove("ca_file")),
            }
        }
        None => drop(doc.remove("email")),
    }
    let policy = section(&mut doc, "policy")?;
    let mut methods: Vec<String> = policy
        .get("enabled_methods")
        .and_then(Item::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_else(|| vec!["security_questions".into(), "authenticator_code".into()]);
    let has_email = methods.iter().any(|m| m == "email");
    match (&s.email, has_email) {
        (None, true) => methods.retain(|m| m != "email"),
        (Some(_), false) => methods.push("email".into()),
        _ => {}
    }
    set(policy, "enabled_methods", strings(&methods));
    match &s.rollout {
        Rollout::None => set(policy, "scope", "none"),
        Rollout::All => set(policy, "scope", "all"),
        Rollout::Groups(groups) => {
            set(policy, "scope", "selected");
            set(policy, "scope_groups", strings(groups));
        }
    }

    match &s.portal {
        Some(p) => {
            let portal = section(&mut doc, "portal")?;
            set(portal, "enabled", true);
            set(portal, "listen", format!("0.0.0.0:{}", p.port));
            set(portal, "public_url", p.public_url.as_str());
        }
        None => {
            if doc.contains_key("portal") {
                set(section(&mut doc, "portal")?, "enabled", false);
            }
        }
    }

    if let ClientEntry::OtherRole(r) = client(&mut doc, &s.admin_name, "admin")? {
        return Err(format!(
            "a [[clients]] entry gives {:?} the role {r:?}: choose another admin name",
            s.admin_name
        ));
    }
    Ok(doc.to_string())
}

/// What [`add_client`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEntry {
    Added,
    /// An entry for that common name with that role is there already.
    Present,
    /// An entry for that common name has another role (which is left as it is).
    OtherRole(String),
}

/// A `[[clients]]` entry giving the certificate with common name `name` the role `role`,
/// unless one for that common name is there.
pub fn add_client(text: &str, name: &str, role: &str) -> Result<(String, ClientEntry), String> {
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| format!("not valid TOML: {}", e.message()))?;
    let found = client(&mut doc, name, role)?;
    Ok((doc.to_string(), found))
}

fn client(doc: &mut DocumentMut, name: &str, role: &str) -> Result<ClientEntry, String> {
    let clients = doc
        .entry("clients")
        .or_insert_with(|| Item::ArrayOfTables(ArrayOfTables::new()));
    let clients = clients
        .as_array_of_tables_mut()
        .ok_or("clients must be an array of tables ([[clients]])")?;
    let known = clients
        .iter()
        .find(|t| t.get("common_name").and_then(Item::as_str) == Some(name))
        .map(|t| {
            t.get("role")
                .and_then(Item::as_str)
                .unwrap_or("")
                .to_string()
        });
    Ok(match known {
        Some(r) if r == role => ClientEntry::Present,
        Some(r) => ClientEntry::OtherRole(r),
        None => {
            let mut t = Table::new();
            t.insert("name", toml_edit::value(name));
            t.insert("common_name", toml_edit::value(name));
            t.insert("role", toml_edit::value(role));
            clients.push(t);
            ClientEntry::Added
        }
    })
}

/// The table `name`, created when absent.
fn section<'d>(doc: &'d mut DocumentMut, name: &str) -> Result<&'d mut Table, String> {
    doc.entry(name)
        .or_insert_with(|| Item::Table(Table::new()))
        .as_table_mut()
        .ok_or_else(|| format!("[{name}] must be a table"))
}

/// Sets `key`, keeping the comments around an existing value.
fn set(t: &mut Table, key: &str, v: impl Into<Value>) {
    let mut v: Value = v.into();
    match t.get_mut(key).and_then(Item::as_value_mut) {
        // In place: the key, and the comments above it, stay.
        Some(old) => {
            *v.decor_mut() = old.decor().clone();
            *old = v;
        }
        None => {
            t.insert(key, Item::Value(v));
        }
    }
}

fn strings(items: &[String]) -> Value {
    Value::Array(items.iter().map(String::as_str).collect::<Array>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RawConfig;

    fn settings() -> Settings {
        Settings {
            flavour: Flavour::Openldap,
            uris: vec![
                "ldaps://ldap1.corp.test".into(),
                "ldap://ldap2.corp.test".into(),
            ],
            ca_file: Some("/etc/ssl/corp.pem".into()),
            bind_dn: "cn=sspr,ou=services,dc=corp,dc=test".into(),
            base_dn: "ou=people,dc=corp,dc=test".into(),
            ppolicy_dn: Some("cn=default,ou=policies,dc=corp,dc=test".into()),
            organization: "Corp Test".into(),
            email: None,
            tls_cert_file: "/etc/ssprd/tls/server.crt".into(),
            client_ca_file: "/etc/ssprd/tls/ca.crt".into(),
            admin_name: "ssprd-admin".into(),
            rollout: Rollout::All,
            portal: None,
        }
    }

    fn parse(text: &str) -> RawConfig {
        toml::from_str(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    #[test]
    fn the_template_gets_the_answers_and_keeps_its_comments() {
        let out = apply(TEMPLATE, &settings()).unwrap();
        let raw = parse(&out);
        let d = &raw.directory;
        assert_eq!(d.flavour, Flavour::Openldap);
        assert_eq!(d.uris, settings().uris);
        assert!(d.starttls, "an ldap:// URI is upgraded");
        assert!(!d.allow_insecure);
        assert_eq!(d.bind_dn, "cn=sspr,ou=services,dc=corp,dc=test");
        assert_eq!(d.base_dn, "ou=people,dc=corp,dc=test");
        assert_eq!(d.ppolicy_dn, "cn=default,ou=policies,dc=corp,dc=test");
        assert_eq!(d.bind_password, None, "the credential applies");
        assert_eq!(
            raw.server.client_ca_file.as_deref(),
            Some(std::path::Path::new("/etc/ssprd/tls/ca.crt"))
        );
        assert_eq!(raw.authenticator.issuer, "Corp Test");
        assert!(!out.contains("\n[email]\n"), "no SMTP server: no [email]");
        assert!(!raw.policy.enabled_methods.iter().any(|m| m == "email"));
        assert_eq!(raw.clients.len(), 1);
        assert_eq!(raw.clients[0].common_name.as_deref(), Some("ssprd-admin"));
        // The documentation around what changed, and what did not change, is still there.
        assert!(
            out.contains("# Tried in order; the next is used when one cannot be reached.\nuris = ")
        );
        assert!(out.contains("# Least-privilege service account"));
        assert!(out.contains("uniform_response_ms = 400"));
        assert!(
            !out.contains("ldaps://ldap1.example.org"),
            "no placeholder URI left"
        );
    }

    #[test]
    fn active_directory_gets_its_user_search_and_loses_openldap_keys() {
        let s = Settings {
            flavour: Flavour::ActiveDirectory,
            ..settings()
        };
        let raw = parse(&apply(TEMPLATE, &s).unwrap());
        assert_eq!(raw.directory.flavour, Flavour::ActiveDirectory);
        assert_eq!(
            raw.directory.user_filter,
            "(&(objectCategory=person)(objectClass=user))"
        );
        assert_eq!(raw.directory.login_attribute, "sAMAccountName");
        assert_eq!(raw.directory.ppolicy_dn, "", "ppolicy is OpenLDAP's");
    }

    #[test]
    fn email_is_configured_and_enabled_when_given() {
        let s = Settings {
            email: Some(Email {
                host: "mail.corp.test".into(),
                port: 465,
                from: "IT <it@corp.test>".into(),
                ca_file: None,
            }),
            ..settings()
        };
        let once = apply(TEMPLATE, &s).unwrap();
        let raw = parse(&once);
        assert_eq!(raw.email.host, "mail.corp.test");
        assert_eq!(raw.email.port, 465);
        assert_eq!(raw.email.from, "IT <it@corp.test>");
        assert_eq!(raw.email.organization, "Corp Test");
        assert!(raw.policy.enabled_methods.iter().any(|m| m == "email"));
        // Then taken away on a second run.
        let raw = parse(&apply(&once, &settings()).unwrap());
        assert!(!raw.policy.enabled_methods.iter().any(|m| m == "email"));
    }

    #[test]
    fn the_portal_is_turned_on_and_off() {
        let s = Settings {
            portal: Some(Portal {
                public_url: "https://sspr.corp.test/".into(),
                port: 8443,
            }),
            ..settings()
        };
        let on = apply(TEMPLATE, &s).unwrap();
        let raw = parse(&on);
        assert!(raw.portal.enabled);
        assert_eq!(raw.portal.public_url, "https://sspr.corp.test/");
        assert_eq!(raw.portal.listen, "0.0.0.0:8443");
        assert!(on.contains("# The web portal"), "its comments stay");
        let raw = parse(&apply(&on, &settings()).unwrap());
        assert!(!raw.portal.enabled, "turned off on a later run");
        assert_eq!(raw.portal.public_url, "https://sspr.corp.test/");
    }

    #[test]
    fn the_rollout_is_written() {
        let s = Settings {
            rollout: Rollout::Groups(vec!["cn=pilot,ou=groups,dc=corp,dc=test".into()]),
            ..settings()
        };
        let raw = parse(&apply(TEMPLATE, &s).unwrap());
        assert_eq!(raw.policy.scope, crate::policy::Scope::Selected);
        assert_eq!(
            raw.policy.scope_groups,
            ["cn=pilot,ou=groups,dc=corp,dc=test"]
        );
        let s = Settings {
            rollout: Rollout::None,
            ..settings()
        };
        let raw = parse(&apply(TEMPLATE, &s).unwrap());
        assert_eq!(raw.policy.scope, crate::policy::Scope::None);
    }

    #[test]
    fn a_second_run_changes_nothing_more() {
        let once = apply(TEMPLATE, &settings()).unwrap();
        let twice = apply(&once, &settings()).unwrap();
        assert_eq!(
            once, twice,
            "the admin entry is not added twice, nothing moves"
        );
    }

    #[test]
    fn keys_the_admin_added_survive() {
        let mine = "[directory]\npool_size = 3 # ours\nbind_dn = \"old\" # the account\n\n\
                    [[clients]]\nname = \"kiosk\"\ncommon_name = \"kiosk-1\"\nrole = \"kiosk\"\n";
        let out = apply(mine, &settings()).unwrap();
        assert!(out.contains("pool_size = 3 # ours"));
        assert!(out.contains("bind_dn = \"cn=sspr,ou=services,dc=corp,dc=test\" # the account"));
        let raw = parse(&out);
        assert_eq!(raw.clients.len(), 2);
    }

    #[test]
    fn clients_are_added_once_and_never_given_another_role() {
        let (once, found) = add_client(TEMPLATE, "kiosk-01", "kiosk").unwrap();
        assert_eq!(found, ClientEntry::Added);
        let raw = parse(&once);
        assert_eq!(raw.clients.len(), 1);
        assert_eq!(raw.clients[0].name, "kiosk-01");
        let (twice, found) = add_client(&once, "kiosk-01", "kiosk").unwrap();
        assert_eq!(
            (twice.as_str(), found),
            (once.as_str(), ClientEntry::Present)
        );
        let (_, found) = add_client(&once, "kiosk-01", "admin").unwrap();
        assert_eq!(found, ClientEntry::OtherRole("kiosk".into()));
        let s = Settings {
            admin_name: "kiosk-01".into(),
            ..settings()
        };
        assert!(apply(&once, &s).unwrap_err().contains("role \"kiosk\""));
    }

    #[test]
    fn what_is_not_toml_is_refused() {
        assert!(
            apply("[directory\n", &settings())
                .unwrap_err()
                .contains("not valid TOML")
        );
        assert!(
            apply("directory = 1\n", &settings())
                .unwrap_err()
                .contains("[directory]")
        );
    }
}
