//! `ssprd.v1.AdminService`. Who may call it is decided before a request gets here (see
//! [`super::auth`]); this adapter converts messages and maps errors.

use super::pb::{self, admin_service_server::AdminService};
use super::registration::status_pb;
use super::{invalid, method_from_pb, method_pb};
use crate::method::contact::ContactKind;
use crate::policy::{Migration, Scope, SsprPolicy};
use crate::secret::Secret;
use crate::service::admin::{AdminContact, AdminResetRequest, AuditQuery, UserView};
use crate::service::{Service, ServiceError};
use std::pin::Pin;
use std::sync::Arc;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

pub struct AdminApi {
    pub service: Arc<Service>,
}

/// Most group DNs or notify addresses one policy list may hold (decode bound).
const MAX_LIST: usize = 50;

pub(crate) fn policy_pb(p: &SsprPolicy) -> pb::Policy {
    let methods = |v: &[crate::method::Method]| v.iter().map(|m| method_pb(*m) as i32).collect();
    pb::Policy {
        version: p.version,
        scope: match p.scope {
            Scope::None => pb::Scope::None,
            Scope::Selected => pb::Scope::Selected,
            Scope::All => pb::Scope::All,
        } as i32,
        scope_groups: p.scope_groups.clone(),
        methods_required: p.methods_required,
        reset_methods: methods(&p.reset_methods),
        unified_methods: methods(&p.unified_methods),
        migration: match p.migration {
            Migration::PreMigration => pb::MigrationState::PreMigration,
            Migration::InProgress => pb::MigrationState::InProgress,
            Migration::Complete => pb::MigrationState::Complete,
        } as i32,
        questions_to_register: p.questions_to_register,
        questions_to_answer: p.questions_to_answer,
        questions_not_only_method: p.questions_not_only_method,
        sms_alone_not_allowed: p.sms_alone_not_allowed,
        admin_policy: p.admin_policy,
        admin_groups: p.admin_groups.clone(),
        admin_count_is_admin: p.admin_count_is_admin,
        require_registration: p.require_registration,
        reconfirm_days: p.reconfirm_days,
        notify_users: p.notify_users,
        notify_admins: p.notify_admins,
        admin_notify_emails: p.admin_notify_emails.clone(),
        effective_methods: methods(&p.effective_methods()),
        updated_at: p.updated_at as i64,
        updated_by: p.updated_by.clone(),
    }
}

/// A policy from a request. Output-only fields are ignored.
pub(crate) fn policy_from_pb(p: pb::Policy) -> Result<SsprPolicy, Status> {
    let scope = match pb::Scope::try_from(p.scope) {
        Ok(pb::Scope::None) => Scope::None,
        Ok(pb::Scope::Selected) => Scope::Selected,
        Ok(pb::Scope::All) => Scope::All,
        _ => {
            return Err(invalid(
                "policy.scope",
                "SCOPE_INVALID",
                "scope must be NONE, SELECTED or ALL",
            ));
        }
    };
    let migration = match pb::MigrationState::try_from(p.migration) {
        Ok(pb::MigrationState::PreMigration) => Migration::PreMigration,
        Ok(pb::MigrationState::InProgress) => Migration::InProgress,
        Ok(pb::MigrationState::Complete) => Migration::Complete,
        _ => {
            return Err(invalid(
                "policy.migration",
                "MIGRATION_STATE_INVALID",
                "migration must be PRE_MIGRATION, IN_PROGRESS or COMPLETE",
            ));
        }
    };
    // A method the API does not know makes the policy invalid (POLICY_INVALID, with a
    // violation naming the list), like every other bad policy value.
    let methods = |field: &'static str, v: &[i32]| {
        v.iter()
            .map(|m| {
                method_from_pb(field, *m).map_err(|_| {
                    Status::from(ServiceError::InvalidPolicy(vec![(
                        field.trim_start_matches("policy.").to_string(),
                        format!("{m} is not a supported method"),
                    )]))
                })
            })
            .collect::<Result<Vec<_>, _>>()
    };
    for (field, list) in [
        ("policy.scope_groups", &p.scope_groups),
        ("policy.admin_groups", &p.admin_groups),
        ("policy.admin_notify_emails", &p.admin_notify_emails),
    ] {
        if list.len() > MAX_LIST {
            return Err(invalid(
                field,
                "LIST_TOO_LONG",
                &format!("at most {MAX_LIST} entries"),
            ));
        }
    }
    Ok(SsprPolicy {
        version: 0,
        scope,
        scope_groups: p
            .scope_groups
            .iter()
            .map(|g| g.trim().to_string())
            .collect(),
        methods_required: p.methods_required,
        reset_methods: methods("policy.reset_methods", &p.reset_methods)?,
        unified_methods: methods("policy.unified_methods", &p.unified_methods)?,
        migration,
        questions_to_register: p.questions_to_register,
        questions_to_answer: p.questions_to_answer,
        questions_not_only_method: p.questions_not_only_method,
        sms_alone_not_allowed: p.sms_alone_not_allowed,
        admin_policy: p.admin_policy,
        admin_groups: p
            .admin_groups
            .iter()
            .map(|g| g.trim().to_string())
            .collect(),
        admin_count_is_admin: p.admin_count_is_admin,
        require_registration: p.require_registration,
        reconfirm_days: p.reconfirm_days,
        notify_users: p.notify_users,
        notify_admins: p.notify_admins,
        admin_notify_emails: p
            .admin_notify_emails
            .iter()
            .map(|a| a.trim().to_string())
            .collect(),
        updated_at: 0,
        updated_by: String::new(),
    })
}

fn user_pb(u: UserView) -> pb::User {
    pb::User {
        username: u.login,
        display_name: u.display_name,
        in_scope: u.in_scope,
        admin: u.admin,
        registration: Some(status_pb(u.registration)),
        alternate_email: u.alternate_email,
        blocked_until: u.blocked_until as i64,
        recent_failures: u.recent_failures,
        directory_locked: u.directory_locked,
        directory_disabled: u.directory_disabled,
        sign_in_blocked_until: u.sign_in_blocked_until as i64,
        sign_in_failures: u.sign_in_failures,
        language: u.language,
    }
}

fn range(since: i64, until: i64) -> Result<(u64, u64), Status> {
    if since < 0 || until < 0 || (until > 0 && until < since) {
        return Err(invalid(
            "since",
            "TIME_RANGE_INVALID",
            "since and until are Unix seconds, 0 or positive, until ≥ since",
        ));
    }
    Ok((since as u64, until as u64))
}

type Streamed<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl AdminService for AdminApi {
    async fn get_policy(
        &self,
        _req: Request<pb::GetPolicyRequest>,
    ) -> Result<Response<pb::Policy>, Status> {
        Ok(Response::new(policy_pb(&self.service.sspr())))
    }

    async fn update_policy(
        &self,
        req: Request<pb::UpdatePolicyRequest>,
    ) -> Result<Response<pb::Policy>, Status> {
        let r = req.into_inner();
        let Some(p) = r.policy else {
            return Err(invalid("policy", "POLICY_REQUIRED", "policy is required"));
        };
        let p = policy_from_pb(p)?;
        let applied = self.service.update_policy(p, r.expected_version).await?;
        Ok(Response::new(policy_pb(&applied)))
    }

    async fn get_user(
        &self,
        req: Request<pb::GetUserRequest>,
    ) -> Result<Response<pb::User>, Status> {
        let u = self.service.get_user(&req.into_inner().username).await?;
        Ok(Response::new(user_pb(u)))
    }

    async fn set_contact(
        &self,
        req: Request<pb::SetContactRequest>,
    ) -> Result<Response<pb::User>, Status> {
        let r = req.into_inner();
        let what = match pb::AdminContactKind::try_from(r.kind) {
            Ok(pb::AdminContactKind::Email) => AdminContact::Contact(ContactKind::Email),
            Ok(pb::AdminContactKind::MobilePhone) => AdminContact::Contact(ContactKind::Mobile),
            Ok(pb::AdminContactKind::OfficePhone) => AdminContact::Contact(ContactKind::Office),
            Ok(pb::AdminContactKind::AlternateEmail) => AdminContact::AlternateEmail,
            _ => {
                return Err(invalid(
                    "kind",
                    "CONTACT_KIND_INVALID",
                    "kind must be EMAIL, MOBILE_PHONE, OFFICE_PHONE or ALTERNATE_EMAIL",
                ));
            }
        };
        if r.value.chars().count() > 320 {
            return Err(invalid("value", "CONTACT_INVALID", "value is too long"));
        }
        let u = self
            .service
            .set_contact(&r.username, what, &r.value)
            .await?;
        Ok(Response::new(user_pb(u)))
    }

    async fn revoke_methods(
        &self,
        req: Request<pb::RevokeMethodsRequest>,
    ) -> Result<Response<pb::User>, Status> {
        let r = req.into_inner();
        if r.methods.len() > 16 {
            return Err(invalid("methods", "TOO_MANY_METHODS", "at most 16 methods"));
        }
        let methods = r
            .methods
            .iter()
            .map(|m| method_from_pb("methods", *m))
            .collect::<Result<Vec<_>, _>>()?;
        let u = self.service.revoke_methods(&r.username, &methods).await?;
        Ok(Response::new(user_pb(u)))
    }

    async fn reset_user_password(
        &self,
        req: Request<pb::ResetUserPasswordRequest>,
    ) -> Result<Response<pb::ResetUserPasswordResponse>, Status> {
        let r = req.into_inner();
        let password = (!r.new_password.is_empty()).then(|| Secret::new(r.new_password));
        let out = self
            .service
            .admin_reset(
                &r.username,
                AdminResetRequest {
                    password,
                    must_change: !r.no_change_required,
                    unlock: r.unlock,
                    notify_alternate_email: r.notify_alternate_email,
                },
            )
            .await?;
        Ok(Response::new(pb::ResetUserPasswordResponse {
            generated_password: out
                .generated
                .as_ref()
                .map(|p| p.expose().to_string())
                .unwrap_or_default(),
            must_change: out.must_change,
            unlocked: out.unlocked,
            instructions_queued: out.instructions_queued,
        }))
    }

    async fn unlock_user(
        &self,
        req: Request<pb::UnlockUserRequest>,
    ) -> Result<Response<pb::UnlockUserResponse>, Status> {
        self.service
            .admin_unlock(&req.into_inner().username)
            .await?;
        Ok(Response::new(pb::UnlockUserResponse {}))
    }

    async fn clear_block(
        &self,
        req: Request<pb::ClearBlockRequest>,
    ) -> Result<Response<pb::User>, Status> {
        let u = self.service.clear_block(&req.into_inner().username).await?;
        Ok(Response::new(user_pb(u)))
    }

    type PrefillStream = Streamed<pb::PrefillProgress>;

    async fn prefill(
        &self,
        req: Request<pb::PrefillRequest>,
    ) -> Result<Response<Self::PrefillStream>, Status> {
        let r = req.into_inner();
        let (ptx, mut prx) = tokio::sync::mpsc::channel(16);
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<pb::PrefillProgress, Status>>(16);
        let service = self.service.clone();
        let actor = crate::service::current_actor();
        // The prefill runs to the end even if the client goes away: it is idempotent, and
        // a half-done run is worse than a finished one.
        let job = tokio::spawn(crate::service::as_actor(actor, async move {
            service.prefill(r.overwrite, r.dry_run, ptx).await
        }));
        tokio::spawn(async move {
            while let Some(p) = prx.recv().await {
                let msg = pb::PrefillProgress {
                    processed: p.processed,
                    total: p.total,
                    updated: p.updated,
                    skipped: p.skipped,
                    done: p.done,
                };
                let _ = tx.send(Ok(msg)).await;
            }
            match job.await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    let _ = tx.send(Err(e.into())).await;
                }
                Err(_) => {
                    let _ = tx.send(Err(Status::internal("prefill task failed"))).await;
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn get_report(
        &self,
        req: Request<pb::GetReportRequest>,
    ) -> Result<Response<pb::Report>, Status> {
        let r = req.into_inner();
        let (since, until) = range(r.since, r.until)?;
        let rep = self.service.report(since, until).await?;
        Ok(Response::new(pb::Report {
            registered_users: rep.registered_users,
            complete_registrations: rep.complete_registrations,
            coverage: rep
                .coverage
                .into_iter()
                .map(|(m, n)| pb::MethodCoverage {
                    method: method_pb(m) as i32,
                    users: n,
                })
                .collect(),
            resets: rep.resets,
            unlocks: rep.unlocks,
            admin_resets: rep.admin_resets,
            blocks: rep.blocks,
            failed_verifications: rep.failed_verifications,
            blocked_users: rep.blocked_users,
        }))
    }

    async fn get_setup_status(
        &self,
        _: Request<pb::GetSetupStatusRequest>,
    ) -> Result<Response<pb::SetupStatus>, Status> {
        use crate::service::status::Rollout;
        let s = self.service.setup_status().await?;
        let r = &s.readiness;
        let check = |name: &str, verdict: &str| {
            let ok = verdict == crate::service::health::OK;
            pb::ReadinessCheck {
                name: name.into(),
                ok,
                detail: if ok { String::new() } else { verdict.into() },
            }
        };
        let (scope, scope_groups) = match s.rollout {
            Rollout::NotStarted => (pb::Scope::None, Vec::new()),
            Rollout::SelectedGroups(groups) => (pb::Scope::Selected, groups),
            Rollout::All => (pb::Scope::All, Vec::new()),
        };
        Ok(Response::new(pb::SetupStatus {
            scope: scope as i32,
            scope_groups,
            methods_required: s.methods_required,
            methods: s
                .methods
                .iter()
                .map(|m| pb::MethodSetup {
                    method: method_pb(m.method) as i32,
                    enabled: m.enabled,
                    missing_configuration: m.missing.unwrap_or_default().into(),
                    registered_users: m.registered_users,
                })
                .collect(),
            registered_users: s.registered_users,
            complete_registrations: s.complete_registrations,
            require_registration: s.require_registration,
            mutual_tls: s.exposure.mutual_tls,
            reflection: s.exposure.reflection,
            metrics_listen: s.exposure.metrics_listen.clone().unwrap_or_default(),
            portal_url: s.exposure.portal_url.clone().unwrap_or_default(),
            portal_kiosk: s.exposure.portal_kiosk,
            ready: r.ready(),
            checks: vec![
                check("store", &r.store),
                check("directory", &r.directory),
                check("outbox", &r.outbox),
            ],
            outbox_backlog: r.outbox_backlog as u32,
            outbox_oldest_seconds: r.outbox_oldest_secs,
            next_steps: s.next_steps,
        }))
    }

    type QueryAuditStream = Streamed<pb::AuditEntry>;

    async fn query_audit(
        &self,
        req: Request<pb::QueryAuditRequest>,
    ) -> Result<Response<Self::QueryAuditStream>, Status> {
        let r = req.into_inner();
        let (since, until) = range(r.since, r.until)?;
        if r.username.chars().count() > crate::service::MAX_LOGIN_CHARS || r.kind.len() > 64 {
            return Err(invalid(
                "username",
                "QUERY_INVALID",
                "username or kind is too long",
            ));
        }
        let max = crate::service::admin::MAX_AUDIT_RESULTS;
        let limit = usize::try_from(r.limit)
            .ok()
            .filter(|&l| l <= max)
            .ok_or_else(|| {
                invalid(
                    "limit",
                    "LIMIT_INVALID",
                    &format!("limit must be 0..={max} (0: {max})"),
                )
            })?;
        let records = self
            .service
            .query_audit(&AuditQuery {
                since,
                until,
                user: r.username,
                kind: r.kind,
                limit,
            })
            .await?;
        let items = records.into_iter().map(|rec| {
            Ok(pb::AuditEntry {
                seq: rec.seq,
                at: rec.event.at as i64,
                kind: rec.event.kind,
                username: rec.event.user,
                outcome: rec.event.outcome,
                reason: rec.event.reason,
                actor: rec.event.actor,
            })
        });
        Ok(Response::new(Box::pin(tokio_stream::iter(items))))
    }
}
