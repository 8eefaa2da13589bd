//! Setup status: how far self-service password reset is set up and rolled out, whether the
//! daemon is ready, and what an administrator should do next — ssprd's answer to Entra's
//! "Let users reset their own passwords — Not started yet".
//!
//! [`Service::setup_status`] gathers the facts (policy, what the daemon can deliver,
//! registration coverage, readiness, how the endpoint is exposed); [`next_steps`] decides,
//! from those facts alone, what to advise.

use super::health::Readiness;
use super::{Service, ServiceError};
use crate::method::Method;
use crate::policy::Scope;

/// How the daemon's endpoints are exposed (facts of its configuration, given at build).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exposure {
    /// Clients are identified by certificate (`server.client_ca_file`).
    pub mutual_tls: bool,
    /// gRPC reflection is served.
    pub reflection: bool,
    /// The management listener's address, when it is on.
    pub metrics_listen: Option<String>,
    /// The web portal's public address, when it is on.
    pub portal_url: Option<String>,
    /// The portal is a kiosk (no registration pages).
    pub portal_kiosk: bool,
}

/// Who may use self-service now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rollout {
    /// Nobody: every StartReset gets a decoy flow.
    NotStarted,
    /// Members of these groups (nested membership counts).
    SelectedGroups(Vec<String>),
    All,
}

/// One method's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodSetup {
    pub method: Method,
    /// Enabled in the policy's current migration state.
    pub enabled: bool,
    /// The configuration it needs and the daemon lacks (`[email]`, `[gateway]`,
    /// `[authenticator] key`); `None` when it can be delivered.
    pub missing: Option<&'static str>,
    /// Registered users who can use it now.
    pub registered_users: u32,
}

/// The setup status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupStatus {
    pub rollout: Rollout,
    pub methods_required: u32,
    pub methods: Vec<MethodSetup>,
    /// Users with a registration, and those with enough methods to reset.
    pub registered_users: u32,
    pub complete_registrations: u32,
    pub require_registration: bool,
    pub exposure: Exposure,
    pub readiness: Readiness,
    /// What to do next, most urgent first.
    pub next_steps: Vec<String>,
}

/// What an administrator should do next, most urgent first (pure: from the facts of
/// `s`, whose `next_steps` it ignores).
pub fn next_steps(s: &SetupStatus) -> Vec<String> {
    let mut out = Vec::new();
    let r = &s.readiness;
    if r.store != super::health::OK {
        out.push(format!(
            "The store does not take writes ({}): check the disk under store.path; the \
             daemon stops when a write cannot be made durable.",
            r.store
        ));
    }
    if r.directory != super::health::OK {
        out.push(format!(
            "The directory does not answer the service account ({}): check directory.uris, \
             directory.ca_file and the bind password.",
            r.directory
        ));
    }
    if r.outbox != super::health::OK {
        out.push(format!(
            "Notifications are not going out ({}): check the mail server ([email]) or the \
             SMS gateway ([gateway]).",
            r.outbox
        ));
    }
    for m in &s.methods {
        if m.enabled
            && let Some(section) = m.missing
        {
            out.push(format!(
                "{} is enabled but the daemon has no {section} configured: configure it, or \
                 disable the method in the policy.",
                m.method.name()
            ));
        }
    }
    match &s.rollout {
        Rollout::NotStarted => out.push(
            "Self-service password reset is not enabled for anyone yet: start with a pilot \
             group (`ssprd admin policy set scope=selected scope_groups=<group DN>`), then \
             all users (`scope=all`)."
                .into(),
        ),
        Rollout::SelectedGroups(_) => out.push(
            "Self-service is enabled for selected groups: when the pilot goes well, enable \
             it for all users (`ssprd admin policy set scope=all`)."
                .into(),
        ),
        Rollout::All => {}
    }
    if s.rollout != Rollout::NotStarted {
        if s.registered_users == 0 {
            out.push(
                "No user has registered yet: have portals ask users to register \
                 (`require_registration=true`), or fill contacts from the directory \
                 (`ssprd admin prefill`)."
                    .into(),
            );
        } else if s.complete_registrations < s.registered_users {
            out.push(format!(
                "{} of {} registered users cannot reset yet (fewer methods than the {} \
                 required): ask them to complete their registration{}.",
                s.registered_users - s.complete_registrations,
                s.registered_users,
                s.methods_required,
                if s.require_registration {
                    ""
                } else {
                    " (`require_registration=true` makes portals ask)"
                }
            ));
        }
    }
    if !s.exposure.mutual_tls {
        out.push(
            "Clients are not identified by certificate: set server.client_ca_file and \
             [[clients]] so kiosks, portals and admin tools each get their own role."
                .into(),
        );
    }
    if s.exposure.reflection {
        out.push(
            "gRPC reflection is on: turn it off in production (server.reflection = false).".into(),
        );
    }
    if s.exposure.metrics_listen.is_none() {
        out.push(
            "Nothing monitors the daemon: set [metrics] listen to scrape /metrics and probe \
             /readyz."
                .into(),
        );
    }
    if s.exposure.portal_url.is_none() {
        out.push(
            "Users have no web page to reset, change or register: enable [portal] (its \
             public_url and a certificate their browsers trust), unless your own kiosk or \
             portal clients of the API serve them."
                .into(),
        );
    }
    out
}

impl Service {
    /// The setup status now, with readiness checked for the call.
    pub async fn setup_status(&self) -> Result<SetupStatus, ServiceError> {
        let policy = self.sspr();
        let enabled = policy.effective_methods();
        let regs = self.store.registrations().await?;
        let coverage = self.coverage(&regs);
        let methods = Method::ALL
            .iter()
            .map(|&m| MethodSetup {
                method: m,
                enabled: enabled.contains(&m),
                missing: self.context.missing_for(m),
                registered_users: coverage.per_method.get(&m).copied().unwrap_or(0),
            })
            .collect();
        let mut s = SetupStatus {
            rollout: match policy.scope {
                Scope::None => Rollout::NotStarted,
                Scope::Selected => Rollout::SelectedGroups(policy.scope_groups.clone()),
                Scope::All => Rollout::All,
            },
            methods_required: policy.methods_required,
            methods,
            registered_users: coverage.registered_users,
            complete_registrations: coverage.complete,
            require_registration: policy.require_registration,
            exposure: self.opts.exposure.clone(),
            readiness: self.readiness().await,
            next_steps: Vec::new(),
        };
        s.next_steps = next_steps(&s);
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::health::OK;

    fn ready() -> Readiness {
        Readiness {
            store: OK.into(),
            directory: OK.into(),
            outbox: OK.into(),
            outbox_backlog: 0,
            outbox_oldest_secs: 0,
        }
    }

    /// Rolled out to everyone, every user complete, locked down and monitored.
    fn done() -> SetupStatus {
        SetupStatus {
            rollout: Rollout::All,
            methods_required: 1,
            methods: vec![MethodSetup {
                method: Method::Email,
                enabled: true,
                missing: None,
                registered_users: 10,
            }],
            registered_users: 10,
            complete_registrations: 10,
            require_registration: true,
            exposure: Exposure {
                mutual_tls: true,
                reflection: false,
                metrics_listen: Some("127.0.0.1:9850".into()),
                portal_url: Some("https://sspr.example.org".into()),
                portal_kiosk: false,
            },
            readiness: ready(),
            next_steps: Vec::new(),
        }
    }

    #[test]
    fn each_gap_gets_its_step_and_a_finished_setup_none() {
        assert_eq!(next_steps(&done()), Vec::<String>::new());
        // (what is changed, a phrase the step must contain)
        type Case = (fn(&mut SetupStatus), &'static str);
        let table: [Case; 10] = [
            (
                |s| s.readiness.store = "disk full".into(),
                "store does not take writes (disk full)",
            ),
            (
                |s| s.readiness.directory = "down".into(),
                "directory does not answer the service account (down)",
            ),
            (
                |s| s.readiness.outbox = "stuck".into(),
                "Notifications are not going out",
            ),
            (
                |s| s.methods[0].missing = Some("[email]"),
                "email is enabled but the daemon has no [email]",
            ),
            (
                |s| s.rollout = Rollout::NotStarted,
                "not enabled for anyone yet",
            ),
            (
                |s| s.rollout = Rollout::SelectedGroups(vec!["cn=pilot".into()]),
                "enable it for all users",
            ),
            (
                |s| {
                    s.registered_users = 0;
                    s.complete_registrations = 0
                },
                "No user has registered yet",
            ),
            (
                |s| s.complete_registrations = 7,
                "3 of 10 registered users cannot reset yet",
            ),
            (
                |s| s.exposure.mutual_tls = false,
                "not identified by certificate",
            ),
            (|s| s.exposure.reflection = true, "reflection is on"),
        ];
        for (change, phrase) in table {
            let mut s = done();
            change(&mut s);
            let steps = next_steps(&s);
            assert_eq!(steps.len(), 1, "{phrase}: {steps:?}");
            assert!(steps[0].contains(phrase), "{phrase}: {steps:?}");
        }
        let mut s = done();
        s.exposure.metrics_listen = None;
        assert!(next_steps(&s)[0].contains("[metrics] listen"));
        let mut s = done();
        s.exposure.portal_url = None;
        assert!(next_steps(&s)[0].contains("enable [portal]"));
    }

    #[test]
    fn a_disabled_method_needs_no_configuration_and_a_fresh_setup_needs_no_registrations_yet() {
        let mut s = done();
        s.methods[0].enabled = false;
        s.methods[0].missing = Some("[email]");
        assert!(next_steps(&s).is_empty());
        // Before the rollout, nobody is asked to register.
        let mut s = done();
        s.rollout = Rollout::NotStarted;
        s.registered_users = 0;
        s.complete_registrations = 0;
        assert_eq!(next_steps(&s).len(), 1);
    }

    #[test]
    fn urgent_steps_come_first() {
        let mut s = done();
        s.rollout = Rollout::NotStarted;
        s.readiness.directory = "down".into();
        let steps = next_steps(&s);
        assert!(steps[0].contains("directory") && steps[1].contains("not enabled"));
    }
}
