//! `ssprd.v1.ResetService`.

use super::pb::{self, reset_service_server::ResetService};
use super::registration::answers;
use super::{method_from_pb, method_pb};
use crate::method::{Method, totp};
use crate::secret::Secret;
use crate::service::{Challenge, Service};
use std::sync::Arc;
use tonic::{Request, Response, Status};

pub struct ResetApi {
    pub service: Arc<Service>,
}

impl ResetApi {
    fn challenges(&self, list: Vec<Challenge>) -> Vec<pb::MethodChallenge> {
        let bank = self.service.bank();
        list.into_iter()
            .map(|c| match c {
                Challenge::SecurityQuestions(ids) => pb::MethodChallenge {
                    method: method_pb(Method::SecurityQuestions) as i32,
                    challenge: Some(pb::method_challenge::Challenge::SecurityQuestions(
                        pb::SecurityQuestionsChallenge {
                            questions: ids
                                .iter()
                                .filter_map(|id| bank.get(id))
                                .map(|q| pb::SecurityQuestion {
                                    id: q.id.clone(),
                                    text: q.text.clone(),
                                    custom: q.custom,
                                })
                                .collect(),
                        },
                    )),
                },
                Challenge::Code {
                    method,
                    hint,
                    length,
                } => pb::MethodChallenge {
                    method: method_pb(method) as i32,
                    challenge: Some(pb::method_challenge::Challenge::Code(pb::CodeChallenge {
                        hint,
                        code_length: length as u32,
                    })),
                },
                Challenge::Authenticator => pb::MethodChallenge {
                    method: method_pb(Method::AuthenticatorCode) as i32,
                    challenge: Some(pb::method_challenge::Challenge::Authenticator(
                        pb::AuthenticatorChallenge {
                            code_length: u32::from(totp::DIGITS),
                        },
                    )),
                },
            })
            .collect()
    }
}

#[tonic::async_trait]
impl ResetService for ResetApi {
    async fn start_reset(
        &self,
        req: Request<pb::StartResetRequest>,
    ) -> Result<Response<pb::StartResetResponse>, Status> {
        let started = self.service.start_reset(&req.into_inner().username).await?;
        Ok(Response::new(pb::StartResetResponse {
            flow_id: started.flow_id,
            expires_at: started.expires_at as i64,
            methods_required: started.methods_required,
            attempts_left: started.attempts_left,
            methods: self.challenges(started.challenges),
        }))
    }

    async fn send_code(
        &self,
        req: Request<pb::SendCodeRequest>,
    ) -> Result<Response<pb::SendCodeResponse>, Status> {
        let r = req.into_inner();
        let method = method_from_pb("method", r.method)?;
        let sent = self.service.send_code(&r.flow_id, method).await?;
        Ok(Response::new(pb::SendCodeResponse {
            expires_at: sent.expires_at as i64,
            pending: sent.pending,
        }))
    }

    async fn verify_method(
        &self,
        req: Request<pb::VerifyMethodRequest>,
    ) -> Result<Response<pb::VerifyMethodResponse>, Status> {
        let r = req.into_inner();
        let v = match r.proof {
            Some(pb::verify_method_request::Proof::SecurityAnswers(a)) => {
                self.service
                    .verify_questions(&r.flow_id, answers(a.answers)?)
                    .await?
            }
            Some(pb::verify_method_request::Proof::Code(c)) => {
                let method = method_from_pb("proof.code.method", c.method)?;
                let code = Secret::new(c.code);
                self.service.verify_code(&r.flow_id, method, &code).await?
            }
            Some(pb::verify_method_request::Proof::AuthenticatorCode(c)) => {
                let code = Secret::new(c);
                self.service.verify_authenticator(&r.flow_id, &code).await?
            }
            None => {
                return Err(super::invalid(
                    "proof",
                    "PROOF_REQUIRED",
                    "set one proof: security_answers, code or authenticator_code",
                ));
            }
        };
        Ok(Response::new(pb::VerifyMethodResponse {
            verified: v.verified,
            methods_verified: v.methods_verified,
            methods_required: v.methods_required,
            remaining: self.challenges(v.remaining),
            attempts_left: v.attempts_left,
        }))
    }

    async fn get_password_policy(
        &self,
        req: Request<pb::GetPasswordPolicyRequest>,
    ) -> Result<Response<pb::GetPasswordPolicyResponse>, Status> {
        let p = self
            .service
            .password_policy(&req.into_inner().flow_id)
            .await?;
        Ok(Response::new(pb::GetPasswordPolicyResponse {
            min_length: p.min_length,
            max_length: p.max_length,
            history: p.history,
            complexity_required: p.complexity_required,
            banned_terms_checked: p.banned_terms_checked,
            names_refused: p.names_refused,
            min_strength: p.min_strength,
            breached_checked: p.breached_checked,
            common_checked: p.common_checked,
        }))
    }

    async fn complete_reset(
        &self,
        req: Request<pb::CompleteResetRequest>,
    ) -> Result<Response<pb::CompleteResetResponse>, Status> {
        let r = req.into_inner();
        let password = Secret::new(r.new_password);
        let done = self
            .service
            .complete_reset(&r.flow_id, &password, r.unlock)
            .await?;
        Ok(Response::new(pb::CompleteResetResponse {
            verified_by_bind: done.verified_by_bind,
            unlocked: done.unlocked,
        }))
    }

    async fn change_password(
        &self,
        req: Request<pb::ChangePasswordRequest>,
    ) -> Result<Response<pb::ChangePasswordResponse>, Status> {
        let r = req.into_inner();
        let current = Secret::new(r.current_password);
        let new = Secret::new(r.new_password);
        let changed = self
            .service
            .change_password(&r.username, &current, &new)
            .await?;
        Ok(Response::new(pb::ChangePasswordResponse {
            was_expired: changed.was_expired,
            was_must_change: changed.was_must_change,
        }))
    }

    async fn unlock_account(
        &self,
        req: Request<pb::UnlockAccountRequest>,
    ) -> Result<Response<pb::UnlockAccountResponse>, Status> {
        let was_locked = self
            .service
            .unlock_account(&req.into_inner().flow_id)
            .await?;
        Ok(Response::new(pb::UnlockAccountResponse { was_locked }))
    }
}
