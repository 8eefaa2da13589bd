//! Change password: the user name, the current password (also one that has expired or
//! must be changed after an administrator's reset) and the new one, twice. The service
//! checks the current password through the sign-in guard and uses the change operation
//! the directory offers (see `Service::change_password`).

use super::session::{Done, Flash, Purpose};
use super::{ClientAddr, Portal, visit_of};
use crate::secret::Secret;
use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use std::collections::HashMap;
use std::sync::Arc;

pub(super) async fn page(
    State(portal): State<Arc<Portal>>,
    client: ClientAddr,
    headers: HeaderMap,
) -> Response {
    let mut visit = visit_of(&portal, &headers, client, "/change");
    // The user is not known yet: the directory's default policy with the local rules, and
    // a word that the user's own may differ (a refusal on submit says which rule).
    let (min_length, max_length, rules) =
        super::reset::rules_of(&portal.service.default_password_policy().await);
    portal.render(
        &mut visit,
        StatusCode::OK,
        "change.html",
        minijinja::context! { min_length, max_length, rules },
    )
}

pub(super) async fn change(
    State(portal): State<Arc<Portal>>,
    client: ClientAddr,
    headers: HeaderMap,
    Form(mut form): Form<HashMap<String, String>>,
) -> Response {
    let mut visit = visit_of(&portal, &headers, client, "/change");
    if !portal.csrf_ok(&visit, &form) {
        return portal.forbidden(&mut visit);
    }
    let login = form
        .get("login")
        .map(|l| l.trim().to_string())
        .unwrap_or_default();
    let current = Secret::new(form.remove("current_password").unwrap_or_default());
    let new = Secret::new(form.remove("new_password").unwrap_or_default());
    let again = Secret::new(form.remove("confirm_password").unwrap_or_default());
    if new.expose() != again.expose() {
        visit.session.flash = Some(Flash::problem("PASSWORDS_DIFFER", Some("confirm_password")));
        visit.session.typed_login = Some(login);
        return portal.redirect(&mut visit, "/change");
    }
    match portal.service.change_password(&login, &current, &new).await {
        Ok(_) => {
            visit.session.done = Some(Done {
                purpose: Purpose::Change,
                unlocked: false,
            });
            portal.redirect(&mut visit, "/done")
        }
        Err(e) => {
            let field = match e {
                crate::service::ServiceError::InvalidCredentials => "current_password",
                crate::service::ServiceError::InvalidArgument {
                    field: "username", ..
                } => "login",
                _ => "new_password",
            };
            portal.refuse_keeping(&mut visit, "/change", Some(field), &e, &login)
        }
    }
}
