//! Forgot password and unlock: the user's name → the methods with their masked hints (send
//! a code, answer the drawn questions, an authenticator code) → a second method when the
//! policy asks for two → the new password, with the effective rules shown first → done.
//! Unknown, unregistered, out-of-scope and disabled users get decoy flows from the service:
//! the same pages, failing only at verification.

use super::session::{Done, Flash, Flow, Purpose};
use super::{ClientAddr, Portal, Visit, visit_of};
use crate::flow::reset::Challenge;
use crate::method::Method;
use crate::secret::Secret;
use crate::service::{ServiceError, Verification};
use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;

type Fields = Form<HashMap<String, String>>;

fn start_path(purpose: Purpose) -> &'static str {
    match purpose {
        Purpose::Reset => "/reset",
        Purpose::Unlock => "/unlock",
        Purpose::Change => "/change",
    }
}

pub(super) fn purpose_name(purpose: Purpose) -> &'static str {
    match purpose {
        Purpose::Reset => "reset",
        Purpose::Unlock => "unlock",
        Purpose::Change => "change",
    }
}

/// A method by its form name.
fn method_named(name: &str) -> Option<Method> {
    Method::ALL.into_iter().find(|m| m.name() == name)
}

fn start_page(portal: &Portal, visit: &mut Visit, purpose: Purpose) -> Response {
    let login = visit
        .session
        .flow
        .as_ref()
        .map(|f| f.login.clone())
        .unwrap_or_default();
    portal.render(
        visit,
        StatusCode::OK,
        "start.html",
        minijinja::context! { purpose => purpose_name(purpose), login },
    )
}

pub(super) async fn start_reset_page(
    State(portal): State<Arc<Portal>>,
    client: ClientAddr,
    headers: HeaderMap,
) -> Response {
    let mut visit = visit_of(&portal, &headers, client, "/reset");
    start_page(&portal, &mut visit, Purpose::Reset)
}

pub(super) async fn start_unlock_page(
    State(portal): State<Arc<Portal>>,
    client: ClientAddr,
    headers: HeaderMap,
) -> Response {
    let mut visit = visit_of(&portal, &headers, client, "/unlock");
    start_page(&portal, &mut visit, Purpose::Unlock)
}

pub(super) async fn start_reset(
    State(portal): State<Arc<Portal>>,
    client: ClientAddr,
    headers: HeaderMap,
    Form(form): Fields,
) -> Response {
    start(portal, client, headers, form, Purpose::Reset).await
}

pub(super) async fn start_unlock(
    State(portal): State<Arc<Portal>>,
    client: ClientAddr,
    headers: HeaderMap,
    Form(form): Fields,
) -> Response {
    start(portal, client, headers, form, Purpose::Unlock).await
}

async fn start(
    portal: Arc<Portal>,
    client: ClientAddr,
    headers: HeaderMap,
    form: HashMap<String, String>,
    purpose: Purpose,
) -> Response {
    let path = start_path(purpose);
    let mut visit = visit_of(&portal, &headers, client, path);
    if !portal.csrf_ok(&visit, &form) {
        return portal.forbidden(&mut visit);
    }
    let login = form.get("login").map(|l| l.trim()).unwrap_or_default();
    visit.session.flow = None;
    visit.session.done = None;
    match portal.service.start_reset(login).await {
        Ok(started) => {
            portal.rotate(&mut visit);
            visit.session.flow = Some(Flow {
                id: Secret::new(started.flow_id),
                purpose,
                login: login.to_string(),
                required: started.methods_required,
                verified: 0,
                challenges: started.challenges,
                sent: Vec::new(),
                ready: false,
                attempts_left: started.attempts_left,
            });
            portal.redirect(&mut visit, "/verify")
        }
        Err(e) => portal.refuse_keeping(&mut visit, path, Some("login"), &e, login),
    }
}

/// One method as the verify page shows it.
#[derive(Serialize)]
struct MethodView {
    /// `questions`, `code` or `authenticator`.
    kind: &'static str,
    method: &'static str,
    hint: String,
    length: usize,
    sent: bool,
    questions: Vec<QuestionView>,
}

#[derive(Serialize)]
struct QuestionView {
    id: String,
    text: String,
}

/// The text of a question of the bank in `lang` (the bank's own text for custom ones).
pub(super) fn question_text(portal: &Portal, lang: &str, id: &str) -> String {
    let key = format!("question-{}", id.replace('.', "-"));
    if super::i18n::has("en", &key) {
        return super::i18n::text(lang, &key, &[]);
    }
    portal
        .service
        .bank()
        .get(id)
        .map_or_else(|| id.to_string(), |q| q.text.clone())
}

fn views(portal: &Portal, lang: &str, flow: &Flow) -> Vec<MethodView> {
    flow.challenges
        .iter()
        .map(|c| match c {
            Challenge::SecurityQuestions(ids) => MethodView {
                kind: "questions",
                method: Method::SecurityQuestions.name(),
                hint: String::new(),
                length: 0,
                sent: false,
                questions: ids
                    .iter()
                    .map(|id| QuestionView {
                        id: id.clone(),
                        text: question_text(portal, lang, id),
                    })
                    .collect(),
            },
            Challenge::Code {
                method,
                hint,
                length,
            } => MethodView {
                kind: "code",
                method: method.name(),
                hint: hint.clone(),
                length: *length,
                sent: flow.sent.contains(method),
                questions: Vec::new(),
            },
            Challenge::Authenticator => MethodView {
                kind: "authenticator",
                method: Method::AuthenticatorCode.name(),
                hint: String::new(),
                length: 6,
                sent: false,
                questions: Vec::new(),
            },
        })
        .collect()
}

pub(super) async fn verify_page(
    State(portal): State<Arc<Portal>>,
    client: ClientAddr,
    headers: HeaderMap,
) -> Response {
    let mut visit = visit_of(&portal, &headers, client, "/verify");
    let Some(flow) = visit.session.flow.clone() else {
        return portal.redirect(&mut visit, "/");
    };
    if flow.ready {
        return portal.redirect(&mut visit, "/password");
    }
    let methods = views(&portal, visit.lang, &flow);
    portal.render(
        &mut visit,
        StatusCode::OK,
        "verify.html",
        minijinja::context! {
            purpose => purpose_name(flow.purpose),
            methods => minijinja::value::Serde(methods),
            required => flow.required,
            verified => flow.verified,
            attempts_left => flow.attempts_left,
        },
    )
}

pub(super) async fn send_code(
    State(portal): State<Arc<Portal>>,
    client: ClientAddr,
    headers: HeaderMap,
    Form(form): Fields,
) -> Response {
    let mut visit = visit_of(&portal, &headers, client, "/verify/send");
    if !portal.csrf_ok(&visit, &form) {
        return portal.forbidden(&mut visit);
    }
    let Some(mut flow) = visit.session.flow.clone() else {
        return portal.session_ended(&mut visit, "/");
    };
    let Some(method) = form.get("method").and_then(|m| method_named(m)) else {
        return portal.refuse(
            &mut visit,
            "/verify",
            None,
            &ServiceError::MethodNotAvailable,
        );
    };
    match portal.service.send_code(flow.id.expose(), method).await {
        Ok(_) => {
            if !flow.sent.contains(&method) {
                flow.sent.push(method);
            }
            let hint = flow
                .challenges
                .iter()
                .find_map(|c| match c {
                    Challenge::Code {
                        method: m, hint, ..
                    } if *m == method => Some(hint.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            visit.session.flow = Some(flow);
            visit.session.flash = Some(Flash::Notice {
                key: "notice-code-sent",
                args: vec![("hint", hint), ("at", method.name().to_string())],
            });
            // Straight to the method, where the code is typed.
            portal.redirect(&mut visit, &format!("/verify#method-{}", method.name()))
        }
        Err(e) => after_error(&portal, &mut visit, e, "/verify", None),
    }
}

pub(super) async fn verify(
    State(portal): State<Arc<Portal>>,
    client: ClientAddr,
    headers: HeaderMap,
    Form(mut form): Fields,
) -> Response {
    let mut visit = visit_of(&portal, &headers, client, "/verify");
    if !portal.csrf_ok(&visit, &form) {
        return portal.forbidden(&mut visit);
    }
    let Some(flow) = visit.session.flow.clone() else {
        return portal.session_ended(&mut visit, "/");
    };
    let Some(method) = form.get("method").and_then(|m| method_named(m)) else {
        return portal.refuse(
            &mut visit,
            "/verify",
            None,
            &ServiceError::MethodNotAvailable,
        );
    };
    let id = flow.id.expose();
    let field = format!("{}-code", method.name());
    let result = match method {
        Method::SecurityQuestions => {
            let ids = flow
                .challenges
                .iter()
                .find_map(|c| match c {
                    Challenge::SecurityQuestions(ids) => Some(ids.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            let answers = ids
                .iter()
                .enumerate()
                .map(|(i, q)| {
                    let a = form.remove(&format!("answer-{i}")).unwrap_or_default();
                    (q.clone(), Secret::new(a))
                })
                .collect();
            portal.service.verify_questions(id, answers).await
        }
        Method::AuthenticatorCode => {
            let code = Secret::new(form.remove("code").unwrap_or_default().trim().to_string());
            portal.service.verify_authenticator(id, &code).await
        }
        code_method => {
            let code = Secret::new(form.remove("code").unwrap_or_default().trim().to_string());
            portal.service.verify_code(id, code_method, &code).await
        }
    };
    let field = if method == Method::SecurityQuestions {
        "answer-0".to_string()
    } else {
        field
    };
    match result {
        Ok(v) => verified(&portal, &mut visit, flow, v, &field).await,
        Err(e) => after_error(&portal, &mut visit, e, "/verify", Some(&field)),
    }
}

/// After a proof: the next method, the new password, or (unlock) the unlock itself.
async fn verified(
    portal: &Portal,
    visit: &mut Visit,
    mut flow: Flow,
    v: Verification,
    field: &str,
) -> Response {
    flow.verified = v.methods_verified;
    flow.required = v.methods_required;
    flow.challenges = v.remaining;
    let ready = v.methods_verified >= v.methods_required;
    flow.ready = ready;
    flow.attempts_left = v.attempts_left;
    let purpose = flow.purpose;
    let id = flow.id.clone();
    visit.session.flow = Some(flow);
    if !v.verified {
        visit.session.flash = Some(Flash::problem("NOT_VERIFIED", Some(field)));
        return portal.redirect(visit, "/verify");
    }
    if !ready {
        visit.session.flash = Some(Flash::Notice {
            key: "notice-one-more",
            args: Vec::new(),
        });
        return portal.redirect(visit, "/verify");
    }
    match purpose {
        Purpose::Reset | Purpose::Change => portal.redirect(visit, "/password"),
        Purpose::Unlock => match portal.service.unlock_account(id.expose()).await {
            Ok(was_locked) => {
                visit.session.flow = None;
                visit.session.done = Some(Done {
                    purpose,
                    unlocked: was_locked,
                });
                portal.redirect(visit, "/done")
            }
            Err(e) => after_error(portal, visit, e, "/verify", None),
        },
    }
}

/// A refusal: errors that end the flow send the user back to its start; others stay.
fn after_error(
    portal: &Portal,
    visit: &mut Visit,
    e: ServiceError,
    to: &str,
    field: Option<&str>,
) -> Response {
    let ends = matches!(
        e,
        ServiceError::FlowInvalid | ServiceError::TooManyAttempts | ServiceError::Blocked { .. }
    );
    if ends {
        let purpose = visit
            .session
            .flow
            .take()
            .map_or(Purpose::Reset, |f| f.purpose);
        return portal.refuse(visit, start_path(purpose), None, &e);
    }
    portal.refuse(visit, to, field, &e)
}

pub(super) async fn password_page(
    State(portal): State<Arc<Portal>>,
    client: ClientAddr,
    headers: HeaderMap,
) -> Response {
    let mut visit = visit_of(&portal, &headers, client, "/password");
    let Some(flow) = visit.session.flow.clone() else {
        return portal.redirect(&mut visit, "/");
    };
    if !flow.ready || flow.purpose != Purpose::Reset {
        return portal.redirect(&mut visit, "/verify");
    }
    // The directory down: the local rules, and the directory says the rest on submit.
    let policy = match portal.service.password_policy(flow.id.expose()).await {
        Ok(p) => p,
        Err(_) => portal.service.local_password_policy(),
    };
    let (min_length, max_length, rules) = rules_of(&policy);
    portal.render(
        &mut visit,
        StatusCode::OK,
        "password.html",
        minijinja::context! { min_length, max_length, rules, login => flow.login },
    )
}

/// The rules to list before the user types a new password: (minimum length, maximum
/// length, each rule's message key and its number).
pub(super) fn rules_of(
    p: &crate::service::EffectivePasswordPolicy,
) -> (u32, u32, Vec<(&'static str, u32)>) {
    let mut rules = vec![("rule-min-length", p.min_length)];
    let flags = [
        (p.complexity_required, "rule-complexity", 0),
        (p.history > 0, "rule-history", p.history),
        (p.names_refused, "rule-no-name", 0),
        (p.common_checked, "rule-not-common", 0),
        (p.breached_checked, "rule-not-breached", 0),
        (p.min_strength > 0, "rule-strength", p.min_strength),
    ];
    rules.extend(flags.into_iter().filter(|f| f.0).map(|(_, k, n)| (k, n)));
    (p.min_length.max(1), p.max_length, rules)
}

pub(super) async fn complete(
    State(portal): State<Arc<Portal>>,
    client: ClientAddr,
    headers: HeaderMap,
    Form(mut form): Fields,
) -> Response {
    let mut visit = visit_of(&portal, &headers, client, "/password");
    if !portal.csrf_ok(&visit, &form) {
        return portal.forbidden(&mut visit);
    }
    let Some(flow) = visit.session.flow.clone().filter(|f| f.ready) else {
        return portal.session_ended(&mut visit, "/");
    };
    let new = Secret::new(form.remove("new_password").unwrap_or_default());
    let again = Secret::new(form.remove("confirm_password").unwrap_or_default());
    if new.expose() != again.expose() {
        visit.session.flash = Some(Flash::problem("PASSWORDS_DIFFER", Some("confirm_password")));
        return portal.redirect(&mut visit, "/password");
    }
    let unlock = form.get("unlock").is_some_and(|v| v == "on");
    match portal
        .service
        .complete_reset(flow.id.expose(), &new, unlock)
        .await
    {
        Ok(done) => {
            visit.session.flow = None;
            visit.session.done = Some(Done {
                purpose: Purpose::Reset,
                unlocked: done.unlocked,
            });
            portal.redirect(&mut visit, "/done")
        }
        Err(ServiceError::AlreadyCompleted) => {
            visit.session.flow = None;
            visit.session.done = Some(Done {
                purpose: Purpose::Reset,
                unlocked: false,
            });
            portal.redirect(&mut visit, "/done")
        }
        Err(e) => after_error(&portal, &mut visit, e, "/password", Some("new_password")),
    }
}

pub(super) async fn done_page(
    State(portal): State<Arc<Portal>>,
    client: ClientAddr,
    headers: HeaderMap,
) -> Response {
    let mut visit = visit_of(&portal, &headers, client, "/done");
    // Shown once: on a shared machine the next person does not find it.
    let Some(done) = visit.session.done.take() else {
        return portal.redirect(&mut visit, "/");
    };
    portal.render(
        &mut visit,
        StatusCode::OK,
        "done.html",
        minijinja::context! { purpose => purpose_name(done.purpose), unlocked => done.unlocked },
    )
}
