//! `ssprd.v1.RegistrationService`.

use super::pb::{self, registration_service_server::RegistrationService};
use crate::method::Method;
use crate::policy::{MAX_ANSWER_CHARS, MIN_ANSWER_CHARS};
use crate::secret::Secret;
use crate::service::{RegistrationStatus, Service};
use std::sync::Arc;
use tonic::{Request, Response, Status};

pub struct RegistrationApi {
    pub service: Arc<Service>,
}

pub(crate) fn method_pb(m: Method) -> pb::Method {
    match m {
        Method::SecurityQuestions => pb::Method::SecurityQuestions,
    }
}

fn status_pb(s: RegistrationStatus) -> pb::RegistrationStatus {
    pb::RegistrationStatus {
        username: s.login,
        complete: s.complete,
        registered_methods: s.methods.into_iter().map(|m| method_pb(m) as i32).collect(),
        security_question_ids: s.question_ids,
        updated_at: s.updated_at as i64,
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
            .begin_registration(&r.username, &password)
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
}
