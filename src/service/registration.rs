//! Registration: prove the current password, then register security questions, contacts
//! (confirmed by a code sent to them) and an authenticator app.

use super::sign_in::SignIn;
use super::{
    AuthenticatorEnrolment, RegistrationStatus, Service, ServiceError, check_login, new_token,
    token_hash,
};
use crate::delivery::Content;
use crate::directory::BindOutcome;
use crate::flow::registration::{self, Change};
use crate::method::contact::{self, ContactKind};
use crate::method::{Method, code, totp};
use crate::secret::Secret;
use crate::store::{
    Authenticator, Contact, RegisteredQuestion, Registration, RegistrationSession, TokenHash,
};
use tracing::instrument;

impl Service {
    /// Proves the user by a bind with the current password; opens a registration session.
    /// `language` is the language the user speaks (a tag such as `de-CH`; empty: not
    /// said): each change they make remembers it for their messages. Answers no sooner
    /// than the uniform response time: a wrong password for an existing account (a bind)
    /// and an unknown name (none) take the same time.
    #[instrument(skip_all)]
    pub async fn begin_registration(
        &self,
        login: &str,
        password: &Secret,
        language: &str,
    ) -> Result<(String, u64, RegistrationStatus), ServiceError> {
        self.uniformly(self.begin_registration_unpadded(login, password, language))
            .await
    }

    async fn begin_registration_unpadded(
        &self,
        login: &str,
        password: &Secret,
        language: &str,
    ) -> Result<(String, u64, RegistrationStatus), ServiceError> {
        let login = check_login(login)?;
        let language = check_language(language)?;
        if password.is_empty() {
            return Err(ServiceError::InvalidCredentials);
        }
        let user = self.directory.find_user(login).await?;
        // Through the sign-in guard: wrong passwords never lock the directory account, and
        // an unknown name is counted (and paused) alike.
        let checked = match &user {
            Some(u) => self.check_password(u, password).await?,
            None => self.check_stand_in(login, password).await?,
        };
        let user = match (checked, user) {
            (SignIn::Checked(BindOutcome::Ok | BindOutcome::MustChange), Some(u)) => u,
            (SignIn::Paused(p), _) => {
                self.audit("registration.begin", login, "failure", "sign_in_paused")
                    .await;
                return Err(self.paused(p));
            }
            (SignIn::Checked(other), _) => {
                let reason = format!("{other:?}").to_lowercase();
                self.audit("registration.begin", login, "failure", &reason)
                    .await;
                return Err(ServiceError::InvalidCredentials);
            }
        };
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
            language: language.map(str::to_string),
            sends: 0,
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
        let (_, after) = self
            .update_registration(&s, Change::Reconfirmed(self.now()))
            .await?;
        self.audit("registration.reconfirm", &s.login, "success", "")
            .await;
        Ok(self.status(&s.login, Some(&after), &self.methods_or_none(s.admin)))
    }

    /// Applies `change` to the session's user's registration
    /// ([`Service::modify_registration`]); audits it and notifies old channels when a user
    /// who had registered methods changes one.
    async fn update_registration(
        &self,
        s: &RegistrationSession,
        change: Change,
    ) -> Result<(Option<Registration>, Registration), ServiceError> {
        let (before, after) = self
            .modify_registration(&s.user_id, &s.login, |r| {
                registration::apply(r, &change);
                if s.language.is_some() {
                    r.language.clone_from(&s.language);
                }
            })
            .await?;
        if let Some((method, what)) = registration::described(&change, before.as_ref()) {
            self.after_change(s, &before, method, what).await;
        }
        Ok((before, after))
    }

    /// Audits a changed method and tells the old channels of a user who could reset.
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
            // The old channels, in the language the user speaks now.
            let mut before = before.clone();
            if s.language.is_some() {
                before.language.clone_from(&s.language);
            }
            self.notify_contacts(
                &before,
                crate::delivery::Notice::MethodChanged {
                    method: method.name().to_string(),
                    change: change.to_string(),
                },
            )
            .await;
        }
    }

    /// When a method added in this session may be used for reset
    /// ([`registration::usable_from`]).
    fn usable_from(&self, s: &RegistrationSession) -> u64 {
        registration::usable_from(s, self.now(), self.limits.cooloff_secs)
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
        let normalised = registration::answers_to_register(
            &self.bank,
            self.question_policy().register_count,
            &answers,
        )?;
        drop(answers);
        let mut registered = Vec::with_capacity(normalised.len());
        for (qid, n) in normalised {
            registered.push(RegisteredQuestion {
                question_id: qid,
                answer_hash: self.hasher.hash(n).await,
            });
        }
        let (_, after) = self
            .update_registration(&s, Change::Questions(registered))
            .await?;
        Ok(self.status(&s.login, Some(&after), &self.methods_or_none(s.admin)))
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
        let method = registration::contact_method(kind, voice);
        self.require_enabled(&s, method)?;
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
        // Bounded per session, per account and per destination (whichever account asks),
        // each over the windows reset codes are counted in, apart from them (the account's
        // own reset codes are not used up by registering): nobody can flood a mailbox or a
        // phone through here.
        if let Err(r) = registration::may_send_confirmation(&s, &self.limits.codes) {
            self.audit(
                "registration.contact_code_sent",
                &s.login,
                "failure",
                "too_many_codes",
            )
            .await;
            return Err(r.into());
        }
        let kind_of_send = "registration.contact_code_sent";
        let account = format!("confirmations:{}", s.user_id);
        self.take_send(&account, &s.login, kind_of_send).await?;
        let destination = registration::destination_key(&self.code_key, kind, &value);
        self.take_send(&destination, &s.login, kind_of_send).await?;
        let code = code::generate(self.limits.codes.length);
        let mac = code::mac(
            &self.code_key,
            &registration::contact_context(&h, kind),
            code.expose(),
        );
        let (next, expires_at) = registration::contact_code_sent(
            &s,
            kind,
            value.clone(),
            mac,
            self.now(),
            &self.limits.codes,
        );
        let to = Self::channel(method, &value).expect("a contact method");
        let content = Content::ConfirmContact {
            code,
            minutes: self.limits.codes.ttl_secs / 60,
        };
        self.deliver
            .deliver(&to, &content, s.language.as_deref(), &super::new_token())
            .await?;
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
        let p = match registration::contact_submitted(&s, kind, self.now())? {
            registration::ContactCheck::Expired { next } => {
                self.store.swap_session(&h, &s, &next).await?;
                return Err(ServiceError::CodeExpired);
            }
            registration::ContactCheck::Compare { pending } => pending,
        };
        let right = code::verify(
            &self.code_key,
            &registration::contact_context(&h, kind),
            submitted.expose(),
            &p.code_mac,
        );
        let next = registration::contact_checked(&s, &p, right);
        if !right {
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
        let (_, after) = self
            .update_registration(&s, Change::Contact(contact))
            .await?;
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
        let (_, after) = self
            .update_registration(&s, Change::Authenticator(auth))
            .await?;
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
        let (_, after) = self.update_registration(&s, Change::Remove(method)).await?;
        Ok(self.status(&s.login, Some(&after), &self.methods_or_none(s.admin)))
    }
}

/// The language of a request: `None` when not given or not one ssprd speaks (messages then
/// use the default); a tag that is not a language tag is refused (LANGUAGE_INVALID).
fn check_language(tag: &str) -> Result<Option<&'static str>, ServiceError> {
    let tag = tag.trim();
    if tag.is_empty() {
        return Ok(None);
    }
    if !crate::language::well_formed(tag) {
        return Err(ServiceError::invalid(
            "language",
            "LANGUAGE_INVALID",
            "not a language tag such as \"en\" or \"de-CH\"",
        ));
    }
    Ok(crate::language::supported(tag))
}
