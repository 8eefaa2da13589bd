//! "My methods": sign in with the current password (through the sign-in guard, like
//! BeginRegistration), then see the registration's status with its "registration
//! required" and "re-confirm" nudges, register security questions, an email address or a
//! phone (confirmed by a code), an authenticator app (QR code shown as an image, then a
//! first code), remove a method, re-confirm. Not offered in kiosk mode.

use super::session::{Flash, Registration};
use super::{ClientAddr, Portal, Visit, visit_of};
use crate::method::Method;
use crate::method::contact::ContactKind;
use crate::secret::Secret;
use crate::service::{RegistrationStatus, ServiceError};
use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;

type Fields = Form<HashMap<String, String>>;

/// What a change says on the next page: a notice's key and its arguments.
type Said = (&'static str, Vec<(&'static str, String)>);

fn kind_named(name: &str) -> Option<ContactKind> {
    match name {
        "email" => Some(ContactKind::Email),
        "mobile" => Some(ContactKind::Mobile),
        "office" => Some(ContactKind::Office),
        _ => None,
    }
}

fn kind_name(kind: ContactKind) -> &'static str {
    match kind {
        ContactKind::Email => "email",
        ContactKind::Mobile => "mobile",
        ContactKind::Office => "office",
    }
}

/// Kiosks have no registration pages.
fn kiosk(portal: &Portal, visit: &mut Visit) -> Option<Response> {
    portal.cfg.kiosk.then(|| {
        visit.session.flash = Some(Flash::problem("NOT_FOUND", None));
        portal.render(
            visit,
            StatusCode::NOT_FOUND,
            "problem.html",
            minijinja::context! {},
        )
    })
}

#[derive(Serialize)]
struct BankQuestion {
    id: String,
    text: String,
}

#[derive(Serialize)]
struct ContactView {
    kind: &'static str,
    masked: String,
}

pub(super) async fn page(
    State(portal): State<Arc<Portal>>,
    client: ClientAddr,
    headers: HeaderMap,
) -> Response {
    let mut visit = visit_of(&portal, &headers, client, "/methods");
    if let Some(r) = kiosk(&portal, &mut visit) {
        return r;
    }
    let Some(reg) = visit.session.registration.clone() else {
        return portal.render(
            &mut visit,
            StatusCode::OK,
            "sign_in.html",
            minijinja::context! {},
        );
    };
    let status = match portal.service.get_registration(reg.token.expose()).await {
        Ok(s) => s,
        Err(e) => return ended(&portal, &mut visit, &e),
    };
    render_status(&portal, &mut visit, &reg, &status, &[])
}

/// The page of a signed-in user; `typed` is a refused questions form's (question, answer)
/// pairs, shown in it again (with status 422: the page answers that POST itself, so the
/// answers never go into the session).
fn render_status(
    portal: &Portal,
    visit: &mut Visit,
    reg: &Registration,
    status: &RegistrationStatus,
    typed: &[(String, String)],
) -> Response {
    let lang = visit.lang;
    let enabled: Vec<&str> = status.enabled_methods.iter().map(|m| m.name()).collect();
    let registered: Vec<&str> = status.methods.iter().map(|m| m.name()).collect();
    let bank: Vec<BankQuestion> = portal
        .service
        .bank()
        .all()
        .iter()
        .map(|q| BankQuestion {
            id: q.id.clone(),
            text: super::reset::question_text(portal, lang, &q.id),
        })
        .collect();
    let contacts: Vec<ContactView> = status
        .contacts
        .iter()
        .map(|(k, v)| ContactView {
            kind: kind_name(*k),
            masked: v.clone(),
        })
        .collect();
    let has = |m: Method| status.enabled_methods.contains(&m);
    let contact_kinds: Vec<&str> = [
        ("email", has(Method::Email)),
        ("mobile", has(Method::MobileSms) || has(Method::MobileVoice)),
        ("office", has(Method::OfficeVoice)),
    ]
    .into_iter()
    .filter_map(|(k, on)| on.then_some(k))
    .collect();
    let pending: Vec<&str> = reg.pending.iter().map(|k| kind_name(*k)).collect();
    let enrolment_key = reg
        .enrolment
        .as_ref()
        .map(|(_, key)| key.expose().to_string());
    let count = portal.service.question_policy().register_count;
    let http_status = if typed.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    portal.render(
        visit,
        http_status,
        "methods.html",
        minijinja::context! {
            login => reg.login.clone(),
            complete => status.complete,
            registration_required => status.registration_required,
            reconfirm_due => status.reconfirm_due,
            methods_required => status.methods_required,
            enabled,
            registered,
            questions_registered => status.question_ids.len(),
            bank => minijinja::value::Serde(bank),
            question_slots => (0..count).collect::<Vec<_>>(),
            contacts => minijinja::value::Serde(contacts),
            pending,
            contact_kinds,
            enrolment_key,
            typed => typed.to_vec(),
            min_answer => crate::method::questions::MIN_ANSWER_CHARS,
            max_answer => crate::method::questions::MAX_ANSWER_CHARS,
        },
    )
}

/// The registration session is gone (expired): sign in again.
fn ended(portal: &Portal, visit: &mut Visit, e: &ServiceError) -> Response {
    visit.session.registration = None;
    portal.refuse(visit, "/methods", None, e)
}

pub(super) async fn sign_in(
    State(portal): State<Arc<Portal>>,
    client: ClientAddr,
    headers: HeaderMap,
    Form(mut form): Fields,
) -> Response {
    let mut visit = visit_of(&portal, &headers, client, "/methods");
    if let Some(r) = kiosk(&portal, &mut visit) {
        return r;
    }
    if !portal.csrf_ok(&visit, &form) {
        return portal.forbidden(&mut visit);
    }
    let login = form
        .get("login")
        .map(|l| l.trim().to_string())
        .unwrap_or_default();
    let password = Secret::new(form.remove("password").unwrap_or_default());
    // The page's language becomes the user's: their messages will speak it.
    match portal
        .service
        .begin_registration(&login, &password, visit.lang)
        .await
    {
        Ok((token, _, status)) => {
            portal.rotate(&mut visit);
            visit.session.registration = Some(Registration {
                token: Secret::new(token),
                login: status.login,
                pending: Vec::new(),
                enrolment: None,
            });
            portal.redirect(&mut visit, "/methods")
        }
        Err(e) => portal.refuse_keeping(&mut visit, "/methods", Some("login"), &e, &login),
    }
}

/// The visit and sign-in of a form posted by a signed-in user — or the page that refuses it
/// (a kiosk, a forged form, a session that ended).
fn signed_in(
    portal: &Portal,
    headers: &HeaderMap,
    client: ClientAddr,
    form: &HashMap<String, String>,
) -> Result<(Visit, Registration), Box<Response>> {
    let mut visit = visit_of(portal, headers, client, "/methods");
    if let Some(r) = kiosk(portal, &mut visit) {
        return Err(Box::new(r));
    }
    if !portal.csrf_ok(&visit, form) {
        return Err(Box::new(portal.forbidden(&mut visit)));
    }
    match visit.session.registration.clone() {
        Some(reg) => Ok((visit, reg)),
        None => Err(Box::new(portal.session_ended(&mut visit, "/methods"))),
    }
}

/// Runs one change for the signed-in user; back to the page with `notice` or the refusal.
async fn change<F, Fut>(
    portal: Arc<Portal>,
    client: ClientAddr,
    headers: HeaderMap,
    form: HashMap<String, String>,
    field: Option<&str>,
    run: F,
) -> Response
where
    F: FnOnce(Arc<Portal>, Registration, HashMap<String, String>) -> Fut,
    Fut: std::future::Future<Output = Result<(Registration, Said), ServiceError>>,
{
    let (mut visit, reg) = match signed_in(&portal, &headers, client, &form) {
        Ok(v) => v,
        Err(refused) => return *refused,
    };
    match run(portal.clone(), reg, form).await {
        Ok((reg, (notice, mut args))) => {
            visit.session.registration = Some(reg);
            // Where the next step is typed, when there is one: the notice is shown there.
            let at = match notice {
                "notice-contact-code-sent" => field.map(|f| f.replace("-value", "")),
                "notice-scan-code" => Some("authenticator".to_string()),
                _ => None,
            };
            let to = at
                .as_ref()
                .map_or("/methods".to_string(), |a| format!("/methods#{a}-title"));
            args.extend(at.map(|a| ("at", a)));
            visit.session.flash = Some(Flash::Notice { key: notice, args });
            portal.redirect(&mut visit, &to)
        }
        Err(e @ ServiceError::RegistrationTokenInvalid) => ended(&portal, &mut visit, &e),
        Err(e) => portal.refuse(&mut visit, "/methods", field, &e),
    }
}

/// Saves the questions; a refused form is shown again at once with what was typed (the
/// question picked and the answer of each), its refusal at the answer it concerns.
pub(super) async fn questions(
    State(portal): State<Arc<Portal>>,
    client: ClientAddr,
    headers: HeaderMap,
    Form(mut form): Fields,
) -> Response {
    let (mut visit, reg) = match signed_in(&portal, &headers, client, &form) {
        Ok(v) => v,
        Err(refused) => return *refused,
    };
    let count = portal.service.question_policy().register_count;
    let typed: Vec<(String, String)> = (0..count)
        .map(|i| {
            let q = form.remove(&format!("question-{i}")).unwrap_or_default();
            let a = form.remove(&format!("answer-{i}")).unwrap_or_default();
            (q, a)
        })
        .collect();
    let answers = typed
        .iter()
        .map(|(q, a)| (q.clone(), Secret::new(a.clone())))
        .collect();
    let refused = match portal
        .service
        .set_security_questions(reg.token.expose(), answers)
        .await
    {
        Ok(_) => {
            visit.session.flash = Some(Flash::Notice {
                key: "notice-questions-saved",
                args: Vec::new(),
            });
            return portal.redirect(&mut visit, "/methods");
        }
        Err(e @ ServiceError::RegistrationTokenInvalid) => return ended(&portal, &mut visit, &e),
        Err(e) => e,
    };
    // The answer the refusal concerns, when it names one.
    let at = match &refused {
        ServiceError::InvalidArgument { message, .. } => typed
            .iter()
            .position(|(q, _)| !q.is_empty() && message.contains(&format!("{q:?}")))
            .unwrap_or(0),
        _ => 0,
    };
    visit.session.flash = Some(super::problem_of(&refused, Some(&format!("answer-{at}"))));
    match portal.service.get_registration(reg.token.expose()).await {
        Ok(status) => render_status(&portal, &mut visit, &reg, &status, &typed),
        Err(e) => ended(&portal, &mut visit, &e),
    }
}

pub(super) async fn add_contact(
    State(portal): State<Arc<Portal>>,
    client: ClientAddr,
    headers: HeaderMap,
    Form(form): Fields,
) -> Response {
    let field = form
        .get("kind")
        .map_or("email".to_string(), |k| format!("{k}-value"));
    change(
        portal,
        client,
        headers,
        form,
        Some(&field),
        |p, mut reg, form| async move {
            let kind = form
                .get("kind")
                .and_then(|k| kind_named(k))
                .ok_or(ServiceError::MethodNotAvailable)?;
            let value = form.get("value").map(|v| v.trim()).unwrap_or_default();
            let voice = form.get("voice").is_some_and(|v| v == "on") || kind == ContactKind::Office;
            let (hint, _) = p
                .service
                .add_contact(reg.token.expose(), kind, value, voice)
                .await?;
            if !reg.pending.contains(&kind) {
                reg.pending.push(kind);
            }
            Ok((reg, ("notice-contact-code-sent", vec![("hint", hint)])))
        },
    )
    .await
}

pub(super) async fn confirm_contact(
    State(portal): State<Arc<Portal>>,
    client: ClientAddr,
    headers: HeaderMap,
    Form(form): Fields,
) -> Response {
    let field = form
        .get("kind")
        .map_or("email".to_string(), |k| format!("{k}-code"));
    change(
        portal,
        client,
        headers,
        form,
        Some(&field),
        |p, mut reg, mut form| async move {
            let kind = form
                .get("kind")
                .and_then(|k| kind_named(k))
                .ok_or(ServiceError::MethodNotAvailable)?;
            let code = Secret::new(form.remove("code").unwrap_or_default().trim().to_string());
            p.service
                .confirm_contact(reg.token.expose(), kind, &code)
                .await?;
            reg.pending.retain(|k| *k != kind);
            Ok((reg, ("notice-contact-confirmed", Vec::new())))
        },
    )
    .await
}

pub(super) async fn enroll(
    State(portal): State<Arc<Portal>>,
    client: ClientAddr,
    headers: HeaderMap,
    Form(form): Fields,
) -> Response {
    change(
        portal,
        client,
        headers,
        form,
        None,
        |p, mut reg, _| async move {
            let e = p.service.enroll_authenticator(reg.token.expose()).await?;
            let key = url::Url::parse(e.uri.expose())
                .ok()
                .and_then(|u| {
                    u.query_pairs()
                        .find(|(k, _)| k == "secret")
                        .map(|(_, v)| v.into_owned())
                })
                .unwrap_or_default();
            reg.enrolment = Some((e.qr_png, Secret::new(key)));
            Ok((reg, ("notice-scan-code", Vec::new())))
        },
    )
    .await
}

pub(super) async fn confirm_authenticator(
    State(portal): State<Arc<Portal>>,
    client: ClientAddr,
    headers: HeaderMap,
    Form(form): Fields,
) -> Response {
    change(
        portal,
        client,
        headers,
        form,
        Some("authenticator-code"),
        |p, mut reg, mut form| async move {
            let code = Secret::new(form.remove("code").unwrap_or_default().trim().to_string());
            p.service
                .confirm_authenticator(reg.token.expose(), &code)
                .await?;
            reg.enrolment = None;
            Ok((reg, ("notice-authenticator-added", Vec::new())))
        },
    )
    .await
}

/// The QR code of the enrolment in progress (never cached).
pub(super) async fn qr(
    State(portal): State<Arc<Portal>>,
    client: ClientAddr,
    headers: HeaderMap,
) -> Response {
    let visit = visit_of(&portal, &headers, client, "/methods/authenticator.png");
    match visit.session.registration.and_then(|r| r.enrolment) {
        Some((png, _)) if !portal.cfg.kiosk => (
            [
                (header::CONTENT_TYPE, "image/png"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            png,
        )
            .into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

pub(super) async fn remove(
    State(portal): State<Arc<Portal>>,
    client: ClientAddr,
    headers: HeaderMap,
    Form(form): Fields,
) -> Response {
    change(
        portal,
        client,
        headers,
        form,
        None,
        |p, reg, form| async move {
            let method = form
                .get("method")
                .and_then(|m| Method::ALL.into_iter().find(|x| x.name() == m))
                .ok_or(ServiceError::MethodNotAvailable)?;
            p.service.remove_method(reg.token.expose(), method).await?;
            Ok((reg, ("notice-method-removed", Vec::new())))
        },
    )
    .await
}

pub(super) async fn reconfirm(
    State(portal): State<Arc<Portal>>,
    client: ClientAddr,
    headers: HeaderMap,
    Form(form): Fields,
) -> Response {
    change(
        portal,
        client,
        headers,
        form,
        None,
        |p, reg, _| async move {
            p.service.reconfirm_registration(reg.token.expose()).await?;
            Ok((reg, ("notice-reconfirmed", Vec::new())))
        },
    )
    .await
}

pub(super) async fn sign_out(
    State(portal): State<Arc<Portal>>,
    client: ClientAddr,
    headers: HeaderMap,
    Form(form): Fields,
) -> Response {
    let mut visit = visit_of(&portal, &headers, client, "/methods");
    if !portal.csrf_ok(&visit, &form) {
        return portal.forbidden(&mut visit);
    }
    visit.session.registration = None;
    portal.redirect(&mut visit, "/")
}
