//! Registration: prove the current password, then register security questions, contacts
//! (confirmed by a code sent to them) and an authenticator app.

use super::sign_in::SignIn;
use super::{
    AuthenticatorEnrolment, RegistrationStatus, Service, ServiceError, check_login, new_token,
    token_hash,
};
use crate::delivery::Content;
use crate::directory::BindOutcome;
use crate::method::contact::{self, ContactKind};
use crate::method::{Method, code, questions, totp};
use crate::secret::Secret;
use crate::store::{
    Authenticator, Contact, PendingContact, RegisteredQuestion, Registration, RegistrationSession,
    TokenHash,
};
use std::collections::HashSet;
use tracing::instrument;

impl Service {
    /// Proves the user by a bind with the current password; opens a registration session.
    #[instrument(skip_all)]
    pub async fn begin_registration(
        &self,
        login: &str,
        password: &Secret,
    ) -> Result<(String, u64, RegistrationStatus), ServiceError> {
        let login = check_login(login)?;
        if password.is_empty() {
            return Err(ServiceError::InvalidCredentials);
        }
        let Some(user) = self.directory.find_user(login).await? else {
            self.audit(
                "registration.begin",
                login,
                "failure",
                "invalid_credentials",
            )
            .await;
            return Err(ServiceError::InvalidCredentials);
        };
        // Through the sign-in guard: wrong passwords never lock the directory account.
        match self.check_password(&user, password).await? {
            SignIn::Checked(BindOutcome::Ok | BindOutcome::MustChange) => {}
            SignIn::Checked(other) => {
                let reason = format!("{other:?}").to_lowercase();
                self.audit("registration.begin", login, "failure", &reason)
                    .await;
                return Err(ServiceError::InvalidCredentials);
            }
            SignIn::Refused => {
                self.audit("registration.begin", login, "failure", "sign_in_blocked")
                    .await;
                return Err(ServiceError::InvalidCredentials);
            }
        }
        let standing = self.standing(&self.sspr(), &user).await?;
        let Some(mp) = self
            .methods_of(standing.admin)
            .filter(|_| standing.in_scope)
        else {
            self.audit("registration.begin", &user.login, "failure", "not_in_scope")
                .await;
            return Err(ServiceError::NotInScope);
        };
        let token = new_token();
        let expires_at = self.now() + self.policy.registration_ttl_secs;
        let reg = self.store.registration(&user.id).await?;
        let session = RegistrationSession {
            user_id: user.id.clone(),
            login: user.login.clone(),
            dn: user.dn.clone(),
            expires_at,
            established: self.status(&user.login, reg.as_ref(), &mp).complete,
            admin: standing.admin,
            pending_contacts: vec![],
            pending_authenticator: None,
        };
        self.store
            .put_session(&TokenHash::of(&token), &session)
            .await?;
        self.audit("registration.begin", &user.login, "success", "")
            .await;
        Ok((
            token,
            expires_at,
            self.status(&user.login, reg.as_ref(), &mp),
        ))
    }

    async fn session(&self, token: &str) -> Result<(TokenHash, RegistrationSession), ServiceError> {
        let h = token_hash(token, "registration_token")?;
        match self.store.session(&h).await? {
            Some(s) if s.expires_at > self.now() => Ok((h, s)),
            _ => Err(ServiceError::RegistrationTokenInvalid),
        }
    }

    pub async fn get_registration(&self, token: &str) -> Result<RegistrationStatus, ServiceError> {
        let (_, s) = self.session(token).await?;
        let reg = self.store.registration(&s.user_id).await?;
        Ok(self.status(&s.login, reg.as_ref(), &self.methods_or_none(s.admin)))
    }

    /// The user confirms the registered methods are still theirs.
    #[instrument(skip_all)]
    pub async fn reconfirm_registration(
        &self,
        token: &str,
    ) -> Result<RegistrationStatus, ServiceError> {
        let (_, s) = self.session(token).await?;
        if self.store.registration(&s.user_id).await?.is_none() {
            return Err(ServiceError::NothingToConfirm("nothing is registered yet"));
        }
        let t = self.now();
        let (_, after) = self
            .update_registration(&s, |r| r.reconfirmed_at = t)
            .await?;
        self.audit("registration.reconfirm", &s.login, "success", "")
            .await;
        Ok(self.status(&s.login, Some(&after), &self.methods_or_none(s.admin)))
    }

    /// [`Service::modify_registration`] for the session's user.
    async fn update_registration(
        &self,
        s: &RegistrationSession,
        change: impl Fn(&mut Registration),
    ) -> Result<(Option<Registration>, Registration), ServiceError> {
        self.modify_registration(&s.user_id, &s.login, change).await
    }

    /// Notifies old channels when a user who had registered methods changes one.
    async fn after_change(
        &self,
        s: &RegistrationSession,
        before: &Option<Registration>,
        method: Method,
        change: &'static str,
    ) {
        self.audit(
            &format!("registration.{}", method.name()),
            &s.login,
            "success",
            change,
        )
        .await;
        if let Some(before) = before
            && !self
                .usable(before, &self.methods_or_none(s.admin))
                .is_empty()
        {
            self.notify_contacts(
                before,
                crate::delivery::Notice::MethodChanged {
                    method: method.name().to_string(),
                    change: change.to_string(),
                },
            )
            .await;
        }
    }

    /// When a method added in this session may be used for reset: at once during the first
    /// registration, after the cool-off period for a change by a registered user.
    fn usable_from(&self, s: &RegistrationSession) -> u64 {
        if s.established {
            self.now() + self.base.cooloff_secs
        } else {
            0
        }
    }

    fn require_enabled(&self, s: &RegistrationSession, m: Method) -> Result<(), ServiceError> {
        if self.methods_or_none(s.admin).is_enabled(m) {
            Ok(())
        } else {
            Err(ServiceError::MethodNotEnabled(m.name()))
        }
    }

    /// Replaces the user's questions and answers.
    #[instrument(skip_all)]
    pub async fn set_security_questions(
        &self,
        token: &str,
        answers: Vec<(String, Secret)>,
    ) -> Result<RegistrationStatus, ServiceError> {
        let (_, s) = self.session(token).await?;
        self.require_enabled(&s, Method::SecurityQuestions)?;
        let want = self.question_policy().register_count;
        if answers.len() != want {
            return Err(ServiceError::invalid(
                "answers",
                "WRONG_QUESTION_COUNT",
                format!(
                    "register exactly {want} questions ({} given)",
                    answers.len()
                ),
            ));
        }
        let mut seen_q = HashSet::new();
        let mut seen_a = HashSet::new();
        let mut normalised = Vec::with_capacity(want);
        for (qid, answer) in &answers {
            if self.bank.get(qid).is_none() {
                return Err(ServiceError::invalid(
                    "answers.question_id",
                    "UNKNOWN_QUESTION",
                    format!("{qid:?} is not a question of the bank (see ListSecurityQuestions)"),
                ));
            }
            if !seen_q.insert(qid.clone()) {
                return Err(ServiceError::invalid(
                    "answers.question_id",
                    "DUPLICATE_QUESTION",
                    format!("question {qid:?} is answered twice"),
                ));
            }
            let n = questions::normalise_checked(answer.expose()).map_err(|e| {
                ServiceError::invalid(
                    "answers.answer",
                    match e {
                        questions::AnswerError::TooShort => "ANSWER_TOO_SHORT",
                        questions::AnswerError::TooLong => "ANSWER_TOO_LONG",
                    },
                    format!("answer to {qid:?}: {e}"),
                )
            })?;
            if !seen_a.insert(n.expose().to_owned()) {
                return Err(ServiceError::invalid(
                    "answers.answer",
                    "DUPLICATE_ANSWER",
                    "two questions have the same answer; each answer must be different",
                ));
            }
            normalised.push((qid.clone(), n));
        }
        seen_a.clear();
        let mut registered = Vec::with_capacity(want);
        for (qid, n) in normalised {
            registered.push(RegisteredQuestion {
                question_id: qid,
                answer_hash: self.hasher.hash(n).await,
            });
        }
        let (before, after) = self
            .update_registration(&s, |r| r.questions = registered.clone())
            .await?;
        let change = if before.as_ref().is_some_and(|b| !b.questions.is_empty()) {
            "changed"
        } else {
            "added"
        };
        self.after_change(&s, &before, Method::SecurityQuestions, change)
            .await;
        Ok(self.status(&s.login, Some(&after), &self.methods_or_none(s.admin)))
    }

    /// The method a contact kind registers (for the enabled check).
    fn contact_enabled(
        &self,
        s: &RegistrationSession,
        kind: ContactKind,
        voice: bool,
    ) -> Result<Method, ServiceError> {
        let m = match (kind, voice) {
            (ContactKind::Email, _) => Method::Email,
            (ContactKind::Mobile, false) => Method::MobileSms,
            (ContactKind::Mobile, true) => Method::MobileVoice,
            (ContactKind::Office, _) => Method::OfficeVoice,
        };
        self.require_enabled(s, m)?;
        Ok(m)
    }

    /// Sends a confirmation code to a new contact and keeps it pending in the session.
    #[instrument(skip_all)]
    pub async fn add_contact(
        &self,
        token: &str,
        kind: ContactKind,
        value: &str,
        voice: bool,
    ) -> Result<(String, u64), ServiceError> {
        let (h, s) = self.session(token).await?;
        let method = self.contact_enabled(&s, kind, voice)?;
        let value = contact::normalise(kind, value).map_err(|e| {
            ServiceError::invalid(
                "value",
                match kind {
                    ContactKind::Email => "EMAIL_INVALID",
                    _ => "PHONE_INVALID",
                },
                e.to_string(),
            )
        })?;
        let code = code::generate(self.base.codes.length);
        let context = format!("reg:{}:{kind:?}", hex::encode(h.0));
        let expires_at = self.now() + self.base.codes.ttl_secs;
        let pending = PendingContact {
            kind,
            value: value.clone(),
            code_mac: code::mac(&self.code_key, &context, code.expose()),
            expires_at,
            tries_left: self.base.codes.max_tries,
        };
        let to = Self::channel(method, &value).expect("a contact method");
        let content = Content::ConfirmContact {
            code,
            minutes: self.base.codes.ttl_secs / 60,
        };
        self.deliver
            .deliver(&to, &content, &super::new_token())
            .await?;
        let mut next = s.clone();
        next.pending_contacts.retain(|p| p.kind != kind);
        next.pending_contacts.push(pending);
        if !self.store.swap_session(&h, &s, &next).await? {
            return Err(ServiceError::RegistrationTokenInvalid);
        }
        self.audit("registration.contact_code_sent", &s.login, "success", "")
            .await;
        Ok((contact::mask(kind, &value), expires_at))
    }

    /// Confirms a pending contact with its code; it then counts as registered.
    #[instrument(skip_all)]
    pub async fn confirm_contact(
        &self,
        token: &str,
        kind: ContactKind,
        submitted: &Secret,
    ) -> Result<RegistrationStatus, ServiceError> {
        let (h, s) = self.session(token).await?;
        let Some(p) = s.pending_contacts.iter().find(|p| p.kind == kind).cloned() else {
            return Err(ServiceError::NothingToConfirm(
                "no code was sent for this kind of contact",
            ));
        };
        let mut next = s.clone();
        next.pending_contacts.retain(|x| x.kind != kind);
        if p.expires_at <= self.now() || p.tries_left == 0 {
            self.store.swap_session(&h, &s, &next).await?;
            return Err(ServiceError::CodeExpired);
        }
        let context = format!("reg:{}:{kind:?}", hex::encode(h.0));
        if !code::verify(&self.code_key, &context, submitted.expose(), &p.code_mac) {
            let mut left = p.clone();
            left.tries_left -= 1;
            if left.tries_left > 0 {
                next.pending_contacts.push(left);
            }
            self.store.swap_session(&h, &s, &next).await?;
            self.audit(
                "registration.contact_confirm",
                &s.login,
                "failure",
                "wrong_code",
            )
            .await;
            return Err(ServiceError::CodeInvalid);
        }
        // Single use: whoever removes the pending code first wins.
        if !self.store.swap_session(&h, &s, &next).await? {
            return Err(ServiceError::CodeExpired);
        }
        let contact = Contact {
            kind,
            value: p.value.clone(),
            confirmed_at: self.now(),
            usable_from: self.usable_from(&s),
        };
        let (before, after) = self
            .update_registration(&s, |r| {
                r.contacts.retain(|c| c.kind != kind);
                r.contacts.push(contact.clone());
            })
            .await?;
        let method = match kind {
            ContactKind::Email => Method::Email,
            ContactKind::Mobile => Method::MobileSms,
            ContactKind::Office => Method::OfficeVoice,
        };
        let change = if before.as_ref().and_then(|b| b.contact(kind)).is_some() {
            "changed"
        } else {
            "added"
        };
        self.after_change(&s, &before, method, change).await;
        Ok(self.status(&s.login, Some(&after), &self.methods_or_none(s.admin)))
    }

    fn sealer(&self) -> Result<&totp::Sealer, ServiceError> {
        self.sealer.as_ref().ok_or(ServiceError::MethodNotEnabled(
            Method::AuthenticatorCode.name(),
        ))
    }

    /// Starts an authenticator enrolment: a new secret, shown once.
    #[instrument(skip_all)]
    pub async fn enroll_authenticator(
        &self,
        token: &str,
    ) -> Result<AuthenticatorEnrolment, ServiceError> {
        let (h, s) = self.session(token).await?;
        self.require_enabled(&s, Method::AuthenticatorCode)?;
        let sealer = self.sealer()?;
        let e = totp::enrol(&self.opts.issuer, &s.login);
        let mut next = s.clone();
        next.pending_authenticator = Some(sealer.seal(&e.secret, &s.user_id));
        if !self.store.swap_session(&h, &s, &next).await? {
            return Err(ServiceError::RegistrationTokenInvalid);
        }
        Ok(AuthenticatorEnrolment {
            uri: e.uri,
            qr_png: e.qr_png,
            qr_text: e.qr_text,
        })
    }

    /// Completes the enrolment with a first valid code from the app.
    #[instrument(skip_all)]
    pub async fn confirm_authenticator(
        &self,
        token: &str,
        submitted: &Secret,
    ) -> Result<RegistrationStatus, ServiceError> {
        let (h, s) = self.session(token).await?;
        let sealer = self.sealer()?;
        let Some(sealed) = s.pending_authenticator.clone() else {
            return Err(ServiceError::NothingToConfirm(
                "call EnrollAuthenticator first",
            ));
        };
        let secret = sealer
            .open(&sealed, &s.user_id)
            .ok_or(ServiceError::NothingToConfirm(
                "the enrolment is not readable; enrol again",
            ))?;
        let Some(step) = totp::check(&secret, submitted.expose(), self.wall_now(), None) else {
            self.audit(
                "registration.authenticator",
                &s.login,
                "failure",
                "wrong_code",
            )
            .await;
            return Err(ServiceError::CodeInvalid);
        };
        let mut next = s.clone();
        next.pending_authenticator = None;
        if !self.store.swap_session(&h, &s, &next).await? {
            return Err(ServiceError::CodeExpired);
        }
        let auth = Authenticator {
            sealed_secret: sealed,
            last_step: step,
            enrolled_at: self.now(),
            usable_from: self.usable_from(&s),
        };
        let (before, after) = self
            .update_registration(&s, |r| r.authenticator = Some(auth.clone()))
            .await?;
        let change = if before.as_ref().is_some_and(|b| b.authenticator.is_some()) {
            "changed"
        } else {
            "added"
        };
        self.after_change(&s, &before, Method::AuthenticatorCode, change)
            .await;
        Ok(self.status(&s.login, Some(&after), &self.methods_or_none(s.admin)))
    }

    /// Removes a registered method; old channels (the removed one included) are told.
    #[instrument(skip_all)]
    pub async fn remove_method(
        &self,
        token: &str,
        method: Method,
    ) -> Result<RegistrationStatus, ServiceError> {
        let (_, s) = self.session(token).await?;
        let (before, after) = self
            .update_registration(&s, |r| match method {
                Method::SecurityQuestions => r.questions.clear(),
                Method::AuthenticatorCode => r.authenticator = None,
                m => {
                    let kind = m.contact_kind().expect("a contact method");
                    r.contacts.retain(|c| c.kind != kind);
                }
            })
            .await?;
        self.after_change(&s, &before, method, "removed").await;
        Ok(self.status(&s.login, Some(&after), &self.methods_or_none(s.admin)))
    }
}
