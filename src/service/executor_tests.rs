//! Unit tests of the service as an executor, without any server: the in-memory store, a
//! scripted directory (one user; each password write answers as the test says) and a
//! recording delivery. The real slapd / Samba / SMTP tests remain the final gate; these pin
//! the write protocol's outcomes — written, refused, written but the reply lost, not
//! written and the reply lost — for an administrator's reset, in well under a second (the
//! settle wait runs on tokio's paused clock).

use super::admin::AdminResetRequest;
use super::*;
use crate::delivery::{Channel, Content, Deliver, DeliveryError};
use crate::directory::{
    BindOutcome, Directory, DirectoryError, DirectoryPasswordPolicy, DirectoryUser, Lockout,
    PolicyReason, UserListing,
};
use crate::store::memory::MemoryStore;
use crate::store::{FlowState, ResetFlow, TokenHash};
use std::sync::Mutex;

/// How the scripted directory answers the next password write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Write {
    Done,
    Refused,
    /// Applied, but the answer never came.
    AppliedReplyLost,
    /// Not applied, and no answer either.
    Lost,
}

struct ScriptedDirectory {
    user: DirectoryUser,
    next: Mutex<Write>,
    /// The password-change marker: moves with every applied write.
    marker: Mutex<u64>,
    writes: Mutex<Vec<Write>>,
}

impl ScriptedDirectory {
    fn new(next: Write) -> Self {
        Self {
            user: DirectoryUser {
                dn: "uid=alice,ou=people,dc=example,dc=org".into(),
                id: "alice-id".into(),
                login: "alice".into(),
                display_name: "Alice Example".into(),
                locked: false,
                disabled: false,
                admin_count: false,
            },
            next: Mutex::new(next),
            marker: Mutex::new(1),
            writes: Mutex::new(Vec::new()),
        }
    }
}

#[async_trait::async_trait]
impl Directory for ScriptedDirectory {
    async fn find_user(&self, login: &str) -> Result<Option<DirectoryUser>, DirectoryError> {
        Ok((login == self.user.login).then(|| self.user.clone()))
    }
    async fn check(&self) -> Result<(), DirectoryError> {
        Ok(())
    }
    async fn bind_as_user(&self, _: &str, _: &Secret) -> Result<BindOutcome, DirectoryError> {
        Ok(BindOutcome::Ok)
    }
    async fn set_password(
        &self,
        _: &DirectoryUser,
        _: &Secret,
        _: bool,
    ) -> Result<(), DirectoryError> {
        let how = *self.next.lock().unwrap();
        self.writes.lock().unwrap().push(how);
        let lost = || DirectoryError::Unavailable("scripted: no answer".into());
        match how {
            Write::Done => {
                *self.marker.lock().unwrap() += 1;
                Ok(())
            }
            Write::Refused => Err(DirectoryError::Refused(PolicyReason::InHistory)),
            Write::AppliedReplyLost => {
                *self.marker.lock().unwrap() += 1;
                Err(lost())
            }
            Write::Lost => Err(lost()),
        }
    }
    async fn change_password(
        &self,
        user: &DirectoryUser,
        _: &Secret,
        new: &Secret,
        _: BindOutcome,
    ) -> Result<(), DirectoryError> {
        self.set_password(user, new, false).await
    }
    async fn list_users(&self, _: &[String]) -> Result<UserListing, DirectoryError> {
        Ok(Vec::new())
    }
    async fn member_of_any(&self, _: &DirectoryUser, _: &[String]) -> Result<bool, DirectoryError> {
        Ok(false)
    }
    async fn password_marker(&self, _: &DirectoryUser) -> Result<Option<String>, DirectoryError> {
        Ok(Some(self.marker.lock().unwrap().to_string()))
    }
    async fn unlock(&self, _: &DirectoryUser) -> Result<(), DirectoryError> {
        Ok(())
    }
    async fn require_change(&self, _: &DirectoryUser) -> Result<(), DirectoryError> {
        Ok(())
    }
    async fn clear_failures(&self, _: &DirectoryUser) -> Result<(), DirectoryError> {
        Ok(())
    }
    async fn lockout(&self, _: &DirectoryUser) -> Result<Lockout, DirectoryError> {
        Ok(Lockout::default())
    }
    async fn password_policy(
        &self,
        _: &DirectoryUser,
    ) -> Result<DirectoryPasswordPolicy, DirectoryError> {
        Ok(DirectoryPasswordPolicy::default())
    }
}

/// Records what would have been sent.
#[derive(Default)]
struct RecordingDelivery(Mutex<Vec<Channel>>);

#[async_trait::async_trait]
impl Deliver for RecordingDelivery {
    async fn deliver(
        &self,
        to: &Channel,
        _: &Content,
        _: Option<&str>,
        _: &str,
    ) -> Result<(), DeliveryError> {
        self.0.lock().unwrap().push(to.clone());
        Ok(())
    }
}

async fn service(directory: Arc<ScriptedDirectory>, store: Arc<MemoryStore>) -> Arc<Service> {
    // The sections' defaults, each checked by its own module (the service sits below
    // `config`, which only composes them).
    let raw_policy = crate::policy::RawPolicy::default();
    let mut p = crate::problems::Problems::new();
    let methods = raw_policy.methods(&mut p);
    let policy = raw_policy.validate(
        &mut p,
        methods,
        crate::policy::settings::Deliverable {
            email: true,
            gateway: false,
            authenticator: true,
        },
    );
    let password =
        crate::password::RawPassword::default().validate(&mut p, &["Example".to_string()]);
    let sign_in = crate::lockout::RawSignIn::default().validate(&mut p);
    assert!(p.is_empty(), "{:?}", p.into_vec());
    let clock: Clock = Arc::new(|| 1_800_000_000);
    Arc::new(
        Service::new(
            Backends {
                store,
                directory,
                deliver: Arc::new(RecordingDelivery::default()),
                hasher: questions::AnswerHasher::new(1),
                sealer: None,
                clock: clock.clone(),
                wall_clock: clock,
                audit_forward: None,
            },
            Policies {
                reset: policy.reset,
                bank: policy.bank,
                limits: policy.limits,
                sspr: policy.sspr,
                context: policy.context,
                password: Arc::new(password),
                sign_in,
            },
            ServiceOptions {
                verify_after_write: true,
                require_change_after_reset: false,
                decoy_email_domain: "example.org".into(),
                issuer: "ssprd".into(),
                prefill: admin::RawPrefill::default()
                    .validate(&mut crate::problems::Problems::new()),
                uniform_response: std::time::Duration::ZERO,
                exposure: Default::default(),
                outbox_stuck_after_secs: 1800,
            },
        )
        .await
        .unwrap(),
    )
}

/// An open, verified self-service flow of the user, as StartReset and a proof leave it.
fn open_flow(user: &DirectoryUser) -> ResetFlow {
    serde_json::from_value(serde_json::json!({
        "user_key": user.id, "login": user.login, "dn": user.dn, "decoy": false,
        "created_at": 1_800_000_000u64, "expires_at": 1_800_000_900u64, "methods_required": 1,
        "questions_drawn": [], "verified": ["security_questions", "email"], "failed_attempts": 0,
        "state": "open"
    }))
    .unwrap()
}

fn reset_request() -> AdminResetRequest {
    AdminResetRequest {
        password: Some(Secret::new("Tz9!kq-Executor-77")),
        must_change: false,
        unlock: false,
        notify_alternate_email: false,
    }
}

/// The (outcome, reason) of every `admin.reset` audit record.
async fn admin_audit(store: &MemoryStore) -> Vec<(String, String)> {
    use crate::store::AuditLog;
    let (_, records) = store.audit_log().await.unwrap();
    records
        .into_iter()
        .filter(|r| r.event.kind == "admin.reset")
        .map(|r| (r.event.outcome, r.event.reason))
        .collect()
}

/// Every write outcome of an admin reset: the answer, the audit trail, whether the user's
/// open self-service flow was closed, and that nothing is left pending.
#[tokio::test(start_paused = true)]
async fn admin_reset_for_every_write_outcome() {
    use crate::store::Flows;
    let s = |a: &str, b: &str| (a.to_string(), b.to_string());
    let cases = [
        (Write::Done, true, vec![s("success", "")]),
        (
            Write::Refused,
            false,
            vec![s("failure", "PASSWORD_IN_HISTORY")],
        ),
        (
            Write::AppliedReplyLost,
            true,
            vec![s("indeterminate", "resolved_applied"), s("success", "")],
        ),
        (
            Write::Lost,
            false,
            vec![s("failure", "directory_unavailable")],
        ),
    ];
    for (how, written, audit) in cases {
        let directory = Arc::new(ScriptedDirectory::new(how));
        let store = Arc::new(MemoryStore::new());
        let svc = service(directory.clone(), store.clone()).await;
        let users_flow = TokenHash::of("the user's own flow");
        store
            .put_flow(&users_flow, &open_flow(&directory.user))
            .await
            .unwrap();

        let answer = svc.admin_reset("alice", reset_request()).await;
        assert_eq!(answer.is_ok(), written, "{how:?}: {:?}", answer.err());
        match (how, answer) {
            (Write::Refused, Err(e)) => {
                assert!(matches!(e, ServiceError::PasswordRefused(_)), "{e:?}")
            }
            (Write::Lost, Err(e)) => {
                assert!(matches!(e, ServiceError::DirectoryUnavailable), "{e:?}")
            }
            _ => {}
        }
        assert_eq!(admin_audit(&store).await, audit, "{how:?}");
        assert_eq!(
            *directory.writes.lock().unwrap(),
            [how],
            "{how:?}: one write, never retried"
        );
        let users = store.flow(&users_flow).await.unwrap().unwrap();
        let expected = if written {
            FlowState::Closed
        } else {
            FlowState::Open
        };
        assert_eq!(users.state, expected, "{how:?}: the user's flow");
        // No write intent is left behind on any of the user's flows.
        for id in store.flows_of("alice-id").await.unwrap() {
            let f = store.flow(&id).await.unwrap().unwrap();
            assert!(f.write.is_none(), "{how:?}: a pending intent is left");
            if f.by_admin {
                let state = if written {
                    FlowState::Completed
                } else {
                    FlowState::Closed
                };
                assert_eq!(f.state, state, "{how:?}: the admin's flow");
            }
        }
    }
}

/// An admin reset's write cut off with its outcome unknown (the intent stored, the daemon
/// gone) is decided before the next write for the user: here the directory shows it was
/// applied, so it is recorded as done and the user's self-service flow, opened before,
/// is closed instead of writing over the administrator's password.
#[tokio::test(start_paused = true)]
async fn a_cut_off_admin_write_is_decided_before_the_users_write() {
    use crate::store::Flows;
    let directory = Arc::new(ScriptedDirectory::new(Write::Done));
    let store = Arc::new(MemoryStore::new());
    let svc = service(directory.clone(), store.clone()).await;
    let user = directory.user.clone();
    // The user's verified flow, and an admin flow whose intent was stored at marker 1...
    let users_token = new_token();
    store
        .put_flow(&TokenHash::of(&users_token), &open_flow(&user))
        .await
        .unwrap();
    let mut cut_off = open_flow(&user);
    cut_off.by_admin = true;
    cut_off.verified.clear();
    cut_off.write = Some(crate::store::WriteIntent {
        marker: Some("1".into()),
        must_change: false,
        unlock: false,
    });
    store
        .put_flow(&TokenHash::of("the admin's cut-off write"), &cut_off)
        .await
        .unwrap();
    // ...and the directory applied it before the daemon went away.
    *directory.marker.lock().unwrap() = 2;

    let e = svc
        .complete_reset(&users_token, &Secret::new("Users-Own-Pass-4821"), false)
        .await
        .unwrap_err();
    assert!(matches!(e, ServiceError::FlowInvalid), "{e:?}");
    assert!(
        directory.writes.lock().unwrap().is_empty(),
        "the user's password was not written over the administrator's"
    );
    assert_eq!(
        admin_audit(&store).await,
        [(
            "success".to_string(),
            "resolved_after_interruption".to_string()
        )]
    );
}
