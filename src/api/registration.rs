//! `ssprd.v1.RegistrationService`.

use super::pb::{self, registration_service_server::RegistrationService};
use super::{method_from_pb, method_pb};
use crate::method::contact::ContactKind;
use crate::method::questions::{MAX_ANSWER_CHARS, MIN_ANSWER_CHARS};
use crate::secret::Secret;
use crate::service::{RegistrationStatus, Service};
use std::sync::Arc;
use tonic::{Request, Response, Status};

pub struct RegistrationApi {
    pub service: Arc<Service>,
}

fn kind_pb(k: ContactKind) -> pb::ContactKind {
    match k {
        ContactKind::Email => pb::ContactKind::Email,
        ContactKind::Mobile => pb::ContactKind::MobilePhone,
        ContactKind::Office => pb::ContactKind::OfficePhone,
    }
}

fn kind_from_pb(v: i32) -> Result<ContactKind, Status> {
    match pb::ContactKind::try_from(v) {
        Ok(pb::ContactKind::Email) => Ok(ContactKind::Email),
        Ok(pb::ContactKind::MobilePhone) => Ok(ContactKind::Mobile),
        Ok(pb::ContactKind::OfficePhone) => Ok(ContactKind::Office),
        _ => Err(super::invalid(
            "kind",
            "CONTACT_KIND_INVALID",
            "kind must be EMAIL, MOBILE_PHONE or OFFICE_PHONE",
        )),
    }
}

pub(crate) fn status_pb(s: RegistrationStatus) -> pb::RegistrationStatus {
    pb::RegistrationStatus {
        username: s.login,
        complete: s.complete,
        registered_methods: s.methods.into_iter().map(|m| method_pb(m) as i32).collect(),
        security_question_ids: s.question_ids,
        updated_at: s.updated_at as i64,
        contacts: s
            .contacts
            .into_iter()
            .map(|(k, hint)| pb::RegisteredContact {
                kind: kind_pb(k) as i32,
                hint,
            })
            .collect(),
        methods_required: s.methods_required,
        registration_required: s.registration_required,
        reconfirm_due: s.reconfirm_due,
        enabled_methods: s
            .enabled_methods
            .into_iter()
            .map(|m| method_pb(m) as i32)
            .collect(),
        reconfirmed_at: s.reconfirmed_at as i64,
    }
}

/// Moves answers out of the request into secrets (the request's strings are dropped).
pub(crate) fn answers(list: Vec<pb::QuestionAnswer>) -> Result<Vec<(String, Secret)>, Status> {
    if list.len() > 16 {
        return Err(super::invalid(
            "answers",
            "TOO_MANY_ANSWERS",
            "at most 16 answers per request",
        ));
    }
    Ok(list
        .into_iter()
        .map(|a| (a.question_id, Secret::new(a.answer)))
        .collect())
}

#[tonic::async_trait]
impl RegistrationService for RegistrationApi {
    async fn begin_registration(
        &self,
        req: Request<pb::BeginRegistrationRequest>,
    ) -> Result<Response<pb::BeginRegistrationResponse>, Status> {
        let r = req.into_inner();
        let password = Secret::new(r.password);
        let (token, expires_at, status) = self
            .service
            .begin_registration(&r.username, &password, &r.language)
            .await?;
        Ok(Response::new(pb::BeginRegistrationResponse {
            registration_token: token,
            expires_at: expires_at as i64,
            status: Some(status_pb(status)),
        }))
    }

    async fn get_registration(
        &self,
        req: Request<pb::GetRegistrationRequest>,
    ) -> Result<Response<pb::GetRegistrationResponse>, Status> {
        let status = self
            .service
            .get_registration(&req.into_inner().registration_token)
            .await?;
        Ok(Response::new(pb::GetRegistrationResponse {
            status: Some(status_pb(status)),
        }))
    }

    async fn reconfirm_registration(
        &self,
        req: Request<pb::ReconfirmRegistrationRequest>,
    ) -> Result<Response<pb::ReconfirmRegistrationResponse>, Status> {
        let status = self
            .service
            .reconfirm_registration(&req.into_inner().registration_token)
            .await?;
        Ok(Response::new(pb::ReconfirmRegistrationResponse {
            status: Some(status_pb(status)),
        }))
    }

    async fn set_security_questions(
        &self,
        req: Request<pb::SetSecurityQuestionsRequest>,
    ) -> Result<Response<pb::SetSecurityQuestionsResponse>, Status> {
        let r = req.into_inner();
        let list = answers(r.answers)?;
        let status = self
            .service
            .set_security_questions(&r.registration_token, list)
            .await?;
        Ok(Response::new(pb::SetSecurityQuestionsResponse {
            status: Some(status_pb(status)),
        }))
    }

    async fn list_security_questions(
        &self,
        _req: Request<pb::ListSecurityQuestionsRequest>,
    ) -> Result<Response<pb::ListSecurityQuestionsResponse>, Status> {
        let p = self.service.question_policy();
        Ok(Response::new(pb::ListSecurityQuestionsResponse {
            questions: self
                .service
                .bank()
                .all()
                .iter()
                .map(|q| pb::SecurityQuestion {
                    id: q.id.clone(),
                    text: q.text.clone(),
                    custom: q.custom,
                })
                .collect(),
            register_count: p.register_count as u32,
            reset_count: p.reset_count as u32,
            min_answer_length: MIN_ANSWER_CHARS as u32,
            max_answer_length: MAX_ANSWER_CHARS as u32,
        }))
    }

    async fn add_contact(
        &self,
        req: Request<pb::AddContactRequest>,
    ) -> Result<Response<pb::AddContactResponse>, Status> {
        let r = req.into_inner();
        let kind = kind_from_pb(r.kind)?;
        let (hint, expires_at) = self
            .service
            .add_contact(&r.registration_token, kind, &r.value, r.voice)
            .await?;
        Ok(Response::new(pb::AddContactResponse {
            hint,
            code_expires_at: expires_at as i64,
        }))
    }

    async fn confirm_contact(
        &self,
        req: Request<pb::ConfirmContactRequest>,
    ) -> Result<Response<pb::ConfirmContactResponse>, Status> {
        let r = req.into_inner();
        let kind = kind_from_pb(r.kind)?;
        let code = Secret::new(r.code);
        let status = self
            .service
            .confirm_contact(&r.registration_token, kind, &code)
            .await?;
        Ok(Response::new(pb::ConfirmContactResponse {
            status: Some(status_pb(status)),
        }))
    }

    async fn enroll_authenticator(
        &self,
        req: Request<pb::EnrollAuthenticatorRequest>,
    ) -> Result<Response<pb::EnrollAuthenticatorResponse>, Status> {
        let e = self
            .service
            .enroll_authenticator(&req.into_inner().registration_token)
            .await?;
        Ok(Response::new(pb::EnrollAuthenticatorResponse {
            otpauth_uri: e.uri.expose().to_string(),
            qr_png: e.qr_png,
            qr_text: e.qr_text,
        }))
    }

    async fn confirm_authenticator(
        &self,
        req: Request<pb::ConfirmAuthenticatorRequest>,
    ) -> Result<Response<pb::ConfirmAuthenticatorResponse>, Status> {
        let r = req.into_inner();
        let code = Secret::new(r.code);
        let status = self
            .service
            .confirm_authenticator(&r.registration_token, &code)
            .await?;
        Ok(Response::new(pb::ConfirmAuthenticatorResponse {
            status: Some(status_pb(status)),
        }))
    }

    async fn remove_method(
        &self,
        req: Request<pb::RemoveMethodRequest>,
    ) -> Result<Response<pb::RemoveMethodResponse>, Status> {
        let r = req.into_inner();
        let method = method_from_pb("method", r.method)?;
        let status = self
            .service
            .remove_method(&r.registration_token, method)
            .await?;
        Ok(Response::new(pb::RemoveMethodResponse {
            status: Some(status_pb(status)),
        }))
    }
}
