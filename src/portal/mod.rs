//! The web portal: the pages people use in a browser to reset a forgotten password or
//! unlock their account, served by the daemon on its own HTTPS listener (`[portal]`). It
//! calls the same [`Service`] as the gRPC API, in process: no rule is written twice.
//!
//! - [`settings`]: the `[portal]` section;
//! - `session`: server-side sessions behind a `__Host-` cookie, with the CSRF token
//!   every form carries;
//! - `page`: templates (minijinja, auto-escaped, replaceable from a directory) and the
//!   security headers of every response;
//! - [`i18n`]: English, German and French (Fluent), chosen by `Accept-Language` or the
//!   selector;
//! - `reset`: forgot password and unlock: name → methods → new password → done;
//! - `change`: change a known (or expired, or must-change) password;
//! - `methods`: "My methods", registration after signing in with the current password.
//!
//! Every response carries a strict Content-Security-Policy (no inline script or style,
//! nothing from elsewhere, no framing), HSTS, `Referrer-Policy: no-referrer` and
//! `Cache-Control: no-store`; no flow id or token ever appears in a URL; every POST must
//! carry the session's CSRF token and may not come from another site; each client address
//! has a request budget; every action is audited as `portal <client address>`.

mod change;
pub mod i18n;
mod methods;
mod page;
mod reset;
mod session;
pub mod settings;

use crate::listener::{self, ConnectInfo};
use crate::service::{Service, ServiceError};
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use minijinja::Environment;
use page::Html;
use serde::Serialize;
use session::{CsrfKey, Flash, Session, Sessions};
use settings::PortalConfig;
use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use tokio::net::TcpListener;
use tracing::{info, warn};

/// The portal: its settings, templates, sessions and per-address budget.
pub struct Portal {
    service: Arc<Service>,
    cfg: PortalConfig,
    env: Environment<'static>,
    sessions: Sessions,
    csrf: CsrfKey,
    limiter: Option<governor::DefaultKeyedRateLimiter<IpAddr>>,
    theme_css: String,
}

/// What one request brings: the browser's id and stored session (empty when none is
/// stored), its language and client address.
pub(crate) struct Visit {
    id: String,
    session: Session,
    /// The browser brought no session cookie: its id is new, and the response sets it.
    fresh: bool,
    /// The session's chosen language, else the browser's `Accept-Language`.
    lang: &'static str,
    client: IpAddr,
    path: String,
}

/// The context every template gets.
#[derive(Serialize)]
struct Common<'a> {
    lang: &'a str,
    organization: &'a str,
    logo: bool,
    kiosk: bool,
    kiosk_timeout: u64,
    csrf: &'a str,
    languages: Vec<(&'static str, &'static str)>,
    path: &'a str,
    problem: Option<ProblemView>,
    notice: Option<String>,
    /// The section the notice belongs to (shown there rather than at the top).
    notice_at: Option<String>,
    /// What a refused form had, to show in it again.
    kept: Kept,
}

/// The fields of a refused form shown again (never a password).
#[derive(Serialize, Default)]
struct Kept {
    login: String,
}

/// An error shown at the top of a page, linked to its field.
#[derive(Serialize, Clone)]
struct ProblemView {
    reason: String,
    text: String,
    field: Option<String>,
}

impl Portal {
    pub fn new(cfg: PortalConfig, service: Arc<Service>, csrf: CsrfKey) -> Result<Self, String> {
        let env = page::environment(&cfg.templates)?;
        let idle = if cfg.kiosk {
            cfg.kiosk_timeout
        } else {
            cfg.session_idle
        };
        let limiter = NonZeroU32::new(cfg.requests_per_minute_per_address)
            .map(|n| governor::RateLimiter::keyed(governor::Quota::per_minute(n).allow_burst(n)));
        let theme_css = format!(":root {{ --accent: {}; }}\n", cfg.accent_colour);
        Ok(Self {
            sessions: Sessions::new(idle, cfg.max_sessions, cfg.max_sessions_per_address),
            csrf,
            service,
            env,
            limiter,
            theme_css,
            cfg,
        })
    }

    /// The routes (without the listener).
    pub fn router(self: Arc<Self>) -> Router {
        Router::new()
            .route("/", get(home))
            .route(
                "/reset",
                get(reset::start_reset_page).post(reset::start_reset),
            )
            .route(
                "/unlock",
                get(reset::start_unlock_page).post(reset::start_unlock),
            )
            .route("/verify", get(reset::verify_page).post(reset::verify))
            .route("/verify/send", post(reset::send_code))
            .route("/password", get(reset::password_page).post(reset::complete))
            .route("/done", get(reset::done_page))
            .route("/change", get(change::page).post(change::change))
            .route("/methods", get(methods::page))
            .route("/methods/sign-in", post(methods::sign_in))
            .route("/methods/sign-out", post(methods::sign_out))
            .route("/methods/questions", post(methods::questions))
            .route("/methods/contact", post(methods::add_contact))
            .route("/methods/confirm", post(methods::confirm_contact))
            .route("/methods/authenticator", post(methods::enroll))
            .route(
                "/methods/authenticator/confirm",
                post(methods::confirm_authenticator),
            )
            .route("/methods/authenticator.png", get(methods::qr))
            .route("/methods/remove", post(methods::remove))
            .route("/methods/reconfirm", post(methods::reconfirm))
            .route("/cancel", post(cancel))
            .route("/restart", get(restart))
            .route("/language", post(language))
            .route("/assets/portal.css", get(portal_css))
            .route("/assets/theme.css", get(theme_css))
            .route("/assets/portal.js", get(portal_js))
            .route("/assets/logo", get(logo))
            .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
            .fallback(not_found)
            .layer(axum::extract::DefaultBodyLimit::max(16 * 1024))
            .layer(axum::middleware::from_fn_with_state(self.clone(), guard))
            .with_state(self)
    }

    /// The client's address: the connection's peer, or — when that is a trusted proxy —
    /// the nearest untrusted address in `X-Forwarded-For`.
    fn client_of(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> IpAddr {
        let peer = peer.unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let trusted = |ip: &IpAddr| self.cfg.trusted_proxies.iter().any(|n| n.contains(ip));
        if !trusted(&peer) {
            return peer;
        }
        let forwarded: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|a| a.trim().parse().ok())
            .collect();
        forwarded
            .into_iter()
            .rev()
            .find(|ip| !trusted(ip))
            .unwrap_or(peer)
    }

    /// The request's browser id (a new one when it brought none), its stored session (an
    /// empty one when none is stored or it expired) and language. Nothing is stored here.
    fn visit(&self, headers: &HeaderMap, client: IpAddr, path: &str) -> Visit {
        let asked = i18n::negotiate(
            headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok()),
            i18n::supported(&self.cfg.default_language).unwrap_or("en"),
        );
        let (id, session, fresh) = match session::cookie_of(headers) {
            Some(id) => {
                let s = self.sessions.load(&id).unwrap_or_default();
                (id, s, false)
            }
            None => (session::token(), Session::default(), true),
        };
        Visit {
            lang: session.lang.unwrap_or(asked),
            id,
            session,
            fresh,
            client,
            path: path.to_string(),
        }
    }

    /// Renders `template` with the common context and `extra`; the flash is shown once.
    fn render(
        &self,
        visit: &mut Visit,
        status: StatusCode,
        template: &str,
        extra: minijinja::Value,
    ) -> Response {
        let page = self.page(visit, status, template, extra);
        self.finish(visit, page)
    }

    /// The page of [`Self::render`], the session not saved.
    fn page(
        &self,
        visit: &mut Visit,
        status: StatusCode,
        template: &str,
        extra: minijinja::Value,
    ) -> Response {
        let flash = visit.session.flash.take();
        let kept = Kept {
            login: visit.session.typed_login.take().unwrap_or_default(),
        };
        let notice_at = match &flash {
            Some(Flash::Notice { args, .. }) => args
                .iter()
                .find(|(k, _)| *k == "at")
                .map(|(_, v)| v.clone()),
            _ => None,
        };
        let (problem, notice) = match &flash {
            Some(Flash::Problem {
                reason,
                key,
                field,
                args,
            }) => (
                Some(ProblemView {
                    reason: reason.clone(),
                    text: reason_text(visit.lang, reason, key, args),
                    field: field.clone(),
                }),
                None,
            ),
            Some(Flash::Notice { key, args }) => (None, Some(i18n::text(visit.lang, key, args))),
            None => (None, None),
        };
        let common = Common {
            lang: visit.lang,
            organization: &self.cfg.organization,
            logo: self.cfg.logo.is_some(),
            kiosk: self.cfg.kiosk,
            kiosk_timeout: self.cfg.kiosk_timeout.as_secs(),
            csrf: &self.csrf.token(&visit.id),
            languages: i18n::LANGUAGES
                .iter()
                .map(|l| (*l, i18n::native_name(l)))
                .collect(),
            path: &visit.path,
            problem,
            notice,
            notice_at,
            kept,
        };
        let ctx = minijinja::context! { ..minijinja::Value::from(minijinja::value::Serde(&common)), ..extra };
        let body = self.env.get_template(template).and_then(|t| t.render(ctx));
        match body {
            Ok(body) => Html { status, body }.into_response(),
            Err(e) => {
                tracing::error!(template, error = %format!("{e:#}"), "portal template failed");
                Html {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    body: "<!doctype html><title>Error</title><p>The page could not be shown.</p>"
                        .into(),
                }
                .into_response()
            }
        }
    }

    /// Saves the session (when it holds anything: see [`Sessions::save`]) and sets the
    /// cookie on `response` when the id is new. A table with no room for a new session
    /// answers 503 with a page saying so, rather than sign anyone else out.
    fn finish(&self, visit: &mut Visit, mut response: Response) -> Response {
        let session = std::mem::take(&mut visit.session);
        if self
            .sessions
            .save(&visit.id, visit.client, session)
            .is_err()
        {
            warn!(client = %visit.client, "portal sessions full: a new session was refused");
            visit.session.flash = Some(Flash::problem("PORTAL_BUSY", None));
            let mut busy = self.page(
                visit,
                StatusCode::SERVICE_UNAVAILABLE,
                "problem.html",
                minijinja::context! {},
            );
            busy.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
            return busy;
        }
        if visit.fresh
            && let Ok(v) = HeaderValue::from_str(&session::set_cookie(&visit.id))
        {
            response.headers_mut().append(header::SET_COOKIE, v);
            visit.fresh = false;
        }
        response
    }

    /// Gives the browser a new id (and so a new CSRF token), its state kept, when it gains a
    /// power — a sign-in, a reset flow — so an id planted or seen before is worth nothing.
    fn rotate(&self, visit: &mut Visit) {
        if !visit.fresh {
            self.sessions.remove(&visit.id);
        }
        visit.id = session::token();
        visit.fresh = true;
    }

    /// A 303 to `to` (a path of this portal), the session saved.
    fn redirect(&self, visit: &mut Visit, to: &str) -> Response {
        self.finish(visit, Redirect::to(to).into_response())
    }

    /// A 303 to `to` saying that the session this form belonged to has ended (it expired,
    /// gave way, or the browser started again in another tab).
    fn session_ended(&self, visit: &mut Visit, to: &str) -> Response {
        visit.session.flash = Some(Flash::problem("SESSION_ENDED", None));
        self.redirect(visit, to)
    }

    /// [`Self::refuse`], the form showing `login` again.
    fn refuse_keeping(
        &self,
        visit: &mut Visit,
        to: &str,
        field: Option<&str>,
        e: &ServiceError,
        login: &str,
    ) -> Response {
        visit.session.typed_login = Some(login.to_string());
        self.refuse(visit, to, field, e)
    }

    /// A 303 back to `to` with `e` shown there.
    fn refuse(
        &self,
        visit: &mut Visit,
        to: &str,
        field: Option<&str>,
        e: &ServiceError,
    ) -> Response {
        visit.session.flash = Some(problem_of(e, field));
        self.redirect(visit, to)
    }

    /// Checks a POST's CSRF token against the browser's id. A browser that sent no cookie
    /// has no id to match: that is refused too.
    fn csrf_ok(&self, visit: &Visit, form: &HashMap<String, String>) -> bool {
        let sent = form.get("csrf").map(String::as_str).unwrap_or_default();
        !visit.fresh && self.csrf.matches(&visit.id, sent)
    }

    /// The page for a refused POST: the browser sent no session cookie (cookies off, or
    /// the browser was closed), or the form came from an older page of this browser (another
    /// tab, or before it started over) or from elsewhere. Nothing is stored for it.
    fn forbidden(&self, visit: &mut Visit) -> Response {
        warn!(client = %visit.client, path = %visit.path, "portal form refused: no session cookie or a wrong CSRF token");
        let reason = if visit.fresh {
            "FORM_EXPIRED"
        } else {
            "FORM_OUTDATED"
        };
        visit.session.flash = Some(Flash::problem(reason, None));
        self.render(
            visit,
            StatusCode::FORBIDDEN,
            "problem.html",
            minijinja::context! {},
        )
    }
}

/// A service error as a message for the next page.
fn problem_of(e: &ServiceError, field: Option<&str>) -> Flash {
    let reason = e.reason();
    let (key, args) = match e {
        ServiceError::PasswordRules(r) => (format!("reason-{reason}"), r.args()),
        // The directory's own refusals say which policy refused, without numbers.
        ServiceError::PasswordRefused(_) => (format!("directory-{reason}"), Vec::new()),
        // The service's own length limit, checked before the rules.
        ServiceError::InvalidArgument {
            reason: "PASSWORD_TOO_LONG",
            ..
        } => (
            format!("reason-{reason}"),
            vec![("n", crate::service::MAX_PASSWORD_CHARS.to_string())],
        ),
        ServiceError::InvalidArgument {
            reason: "ANSWER_TOO_SHORT" | "ANSWER_TOO_LONG",
            ..
        } => (
            format!("reason-{reason}"),
            vec![
                (
                    "min",
                    crate::method::questions::MIN_ANSWER_CHARS.to_string(),
                ),
                (
                    "max",
                    crate::method::questions::MAX_ANSWER_CHARS.to_string(),
                ),
            ],
        ),
        ServiceError::Blocked { retry_after_secs } if *retry_after_secs > 3_600 => (
            format!("reason-{reason}-HOURS"),
            vec![("hours", retry_after_secs.div_ceil(3_600).to_string())],
        ),
        ServiceError::Blocked { retry_after_secs } => (
            format!("reason-{reason}"),
            vec![("minutes", retry_after_secs.div_ceil(60).max(1).to_string())],
        ),
        ServiceError::SignInPaused {
            retry_after_secs: Some(secs),
        } => (
            format!("reason-{reason}"),
            vec![("minutes", secs.div_ceil(60).max(1).to_string())],
        ),
        ServiceError::SignInPaused {
            retry_after_secs: None,
        } => (format!("reason-{reason}-UNTIL_RESET"), Vec::new()),
        ServiceError::SendsThrottled { retry_after_secs } => (
            format!("reason-{reason}"),
            vec![("minutes", retry_after_secs.div_ceil(60).max(1).to_string())],
        ),
        _ => (format!("reason-{reason}"), Vec::new()),
    };
    Flash::Problem {
        reason: reason.to_string(),
        key,
        field: field.map(str::to_string),
        args,
    }
}

/// The translated text of a message key; a reason without one gets the generic text.
fn reason_text(lang: &str, reason: &str, key: &str, args: &[(&'static str, String)]) -> String {
    if i18n::has("en", key) {
        i18n::text(lang, key, args)
    } else {
        i18n::text(lang, "reason-OTHER", &[("reason", reason.to_string())])
    }
}

/// Every request: the client's address, its budget, the origin of a POST, the audit
/// actor, and the security headers on the answer.
async fn guard(State(portal): State<Arc<Portal>>, req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo>()
        .map(|c| c.remote.ip())
        .or_else(|| {
            req.extensions()
                .get::<axum::extract::ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip())
        });
    let client = portal.client_of(peer, req.headers());
    let asset = req.uri().path().starts_with("/assets/");
    let mut response = if !asset
        && portal
            .limiter
            .as_ref()
            .is_some_and(|l| l.check_key(&client).is_err())
    {
        warn!(%client, "portal rate limit reached");
        let mut visit = portal.visit(req.headers(), client, req.uri().path());
        visit.session.flash = Some(Flash::problem("CLIENT_RATE_LIMITED", None));
        let mut r = portal.render(
            &mut visit,
            StatusCode::TOO_MANY_REQUESTS,
            "problem.html",
            minijinja::context! {},
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
        r
    } else if req.method() == Method::POST && !same_origin(&portal.cfg.origin, req.headers()) {
        warn!(%client, path = %req.uri().path(), "portal form refused: posted from another site");
        let mut visit = portal.visit(req.headers(), client, req.uri().path());
        visit.session.flash = Some(Flash::problem("FORM_CROSS_SITE", None));
        portal.render(
            &mut visit,
            StatusCode::FORBIDDEN,
            "problem.html",
            minijinja::context! {},
        )
    } else {
        let headers = req.headers().clone();
        let path = req.uri().path().to_string();
        let mut req = req;
        req.extensions_mut().insert(ClientAddr(client));
        let answer = crate::service::as_actor(format!("portal {client}"), next.run(req)).await;
        portal.as_page(answer, &headers, client, &path)
    };
    page::secure_headers(response.headers_mut());
    response
}

impl Portal {
    /// A form the body extractor refused (too large, not a form, not readable) is answered
    /// with a portal page saying so, not the extractor's plain text.
    fn as_page(
        &self,
        answer: Response,
        headers: &HeaderMap,
        client: IpAddr,
        path: &str,
    ) -> Response {
        let plain = answer
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/plain"));
        let reason = match answer.status() {
            StatusCode::PAYLOAD_TOO_LARGE => "REQUEST_TOO_LARGE",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "UNSUPPORTED_CONTENT_TYPE",
            StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => "FORM_INVALID",
            _ => return answer,
        };
        if !plain {
            return answer;
        }
        let mut visit = self.visit(headers, client, path);
        visit.session.flash = Some(Flash::problem(reason, None));
        self.render(
            &mut visit,
            answer.status(),
            "problem.html",
            minijinja::context! {},
        )
    }
}

/// A POST's `Sec-Fetch-Site` and `Origin` (when the browser sends them) must say it came
/// from the portal itself. Under `Referrer-Policy: no-referrer` browsers send a form's
/// `Origin` as `null`: that says nothing either way (the CSRF token and the SameSite
/// cookie still decide).
fn same_origin(origin: &str, headers: &HeaderMap) -> bool {
    let from = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if from("sec-fetch-site").is_some_and(|s| s != "same-origin" && s != "none") {
        return false;
    }
    from("origin").is_none_or(|o| o == origin || o == "null")
}

/// The client address the guard found (in a request's extensions).
#[derive(Clone, Copy)]
pub(crate) struct ClientAddr(IpAddr);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<ClientAddr>()
            .copied()
            .unwrap_or(ClientAddr(IpAddr::from([0, 0, 0, 0]))))
    }
}

/// What every handler starts from.
pub(crate) fn visit_of(
    portal: &Portal,
    headers: &HeaderMap,
    client: ClientAddr,
    path: &str,
) -> Visit {
    portal.visit(headers, client.0, path)
}

async fn home(
    State(portal): State<Arc<Portal>>,
    client: ClientAddr,
    headers: HeaderMap,
) -> Response {
    let mut visit = visit_of(&portal, &headers, client, "/");
    portal.render(
        &mut visit,
        StatusCode::OK,
        "home.html",
        minijinja::context! {},
    )
}

async fn not_found(
    State(portal): State<Arc<Portal>>,
    client: ClientAddr,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    let mut visit = visit_of(&portal, &headers, client, uri.path());
    visit.session.flash = Some(Flash::problem("NOT_FOUND", None));
    portal.render(
        &mut visit,
        StatusCode::NOT_FOUND,
        "problem.html",
        minijinja::context! {},
    )
}

/// Paths the language selector and cancel may return to.
const BACK: &[&str] = &[
    "/",
    "/reset",
    "/unlock",
    "/verify",
    "/password",
    "/done",
    "/change",
    "/methods",
];

async fn language(
    State(portal): State<Arc<Portal>>,
    client: ClientAddr,
    headers: HeaderMap,
    axum::Form(form): axum::Form<HashMap<String, String>>,
) -> Response {
    let mut visit = visit_of(&portal, &headers, client, "/language");
    if !portal.csrf_ok(&visit, &form) {
        return portal.forbidden(&mut visit);
    }
    if let Some(lang) = form.get("lang").and_then(|l| i18n::supported(l)) {
        visit.session.lang = Some(lang);
    }
    let back = form
        .get("back")
        .map(String::as_str)
        .filter(|b| BACK.contains(b))
        .unwrap_or("/");
    portal.redirect(&mut visit, back)
}

async fn cancel(
    State(portal): State<Arc<Portal>>,
    client: ClientAddr,
    headers: HeaderMap,
    axum::Form(form): axum::Form<HashMap<String, String>>,
) -> Response {
    let mut visit = visit_of(&portal, &headers, client, "/cancel");
    if !portal.csrf_ok(&visit, &form) {
        return portal.forbidden(&mut visit);
    }
    visit.session.flow = None;
    visit.session.done = None;
    portal.redirect(&mut visit, "/")
}

/// Back to the start with a new session (the kiosk's timeout; harmless from elsewhere: a
/// cross-site link carries no SameSite=Strict cookie, so it ends nothing).
async fn restart(
    State(portal): State<Arc<Portal>>,
    client: ClientAddr,
    headers: HeaderMap,
) -> Response {
    let mut visit = visit_of(&portal, &headers, client, "/restart");
    portal.rotate(&mut visit);
    visit.session = Session::default();
    portal.redirect(&mut visit, "/")
}

fn asset(kind: &'static str, body: impl Into<axum::body::Body>) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body.into(),
    )
        .into_response()
}

async fn portal_css() -> Response {
    asset("text/css; charset=utf-8", include_str!("assets/portal.css"))
}

async fn theme_css(State(portal): State<Arc<Portal>>) -> Response {
    asset("text/css; charset=utf-8", portal.theme_css.clone())
}

async fn portal_js() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("assets/portal.js"),
    )
}

async fn logo(State(portal): State<Arc<Portal>>) -> Response {
    match &portal.cfg.logo {
        Some((bytes, kind)) => asset(kind, bytes.clone()),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// How long the portal's connections get to finish their calls at shutdown.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Serves the portal on `listener` until `shutdown` resolves.
pub async fn serve(
    cfg: PortalConfig,
    service: Arc<Service>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), String> {
    let tls =
        crate::tls::server_config(&cfg.tls_cert_pem, cfg.tls_key_pem.expose().as_bytes(), None)
            .map_err(|e| format!("portal TLS: {e}"))?;
    let mut tls = tls;
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let limits = listener::Limits {
        protocol: listener::Protocol::Http1And2,
        max_connections: listener::fit_to_file_limit(cfg.max_connections),
        max_connections_per_address: cfg.max_connections_per_address,
        tls_handshake_timeout: std::time::Duration::from_secs(10),
        idle_timeout: std::time::Duration::from_secs(120),
        keepalive_interval: std::time::Duration::from_secs(30),
        max_concurrent_streams: 32,
        shutdown_grace: SHUTDOWN_GRACE,
    };
    let csrf = service
        .store()
        .server_key("portal-csrf")
        .await
        .map(CsrfKey::new)
        .map_err(|e| format!("portal CSRF key: {e}"))?;
    let portal = Arc::new(Portal::new(cfg, service, csrf)?);
    let sweeper = {
        let portal = portal.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(30));
            loop {
                tick.tick().await;
                let held = portal.sessions.sweep();
                metrics::gauge!("ssprd_portal_sessions").set(held as f64);
                if let Some(l) = &portal.limiter {
                    l.retain_recent();
                }
            }
        })
    };
    info!(addr = ?listener.local_addr().ok(), public_url = %portal.cfg.origin, kiosk = portal.cfg.kiosk, "portal serving");
    let app = tower::ServiceBuilder::new()
        .layer_fn(listener::Activity::new)
        .service(portal.clone().router());
    listener::run(listener, Arc::new(tls), app, limits, shutdown).await;
    sweeper.abort();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::PolicyReason;
    use crate::password::Refusal;

    /// Every reason a service error can carry has a text of its own in every language.
    #[test]
    fn every_service_reason_has_a_text() {
        let invalid = |reason: &'static str| ServiceError::InvalidArgument {
            field: "f",
            reason,
            message: String::new(),
        };
        let mut errors = vec![
            ServiceError::InvalidCredentials,
            ServiceError::RegistrationTokenInvalid,
            ServiceError::FlowInvalid,
            ServiceError::NotVerified(String::new()),
            ServiceError::MethodNotEnabled("email"),
            ServiceError::MethodNotAvailable,
            ServiceError::DeliveryUnavailable,
            ServiceError::DeliveryRefused,
            ServiceError::DeliveryNotConfigured,
            ServiceError::TooManyCodes,
            ServiceError::SendsThrottled {
                retry_after_secs: 61,
            },
            ServiceError::SignInPaused {
                retry_after_secs: Some(1_800),
            },
            ServiceError::SignInPaused {
                retry_after_secs: None,
            },
            ServiceError::NothingToConfirm(""),
            ServiceError::CodeInvalid,
            ServiceError::CodeExpired,
            ServiceError::TooManyAttempts,
            ServiceError::VerificationsInProgress,
            ServiceError::Blocked {
                retry_after_secs: 60,
            },
            ServiceError::Blocked {
                retry_after_secs: 86_400,
            },
            ServiceError::DirectoryUnavailable,
            ServiceError::DirectoryFailed,
            ServiceError::StoreUnavailable,
            ServiceError::NotInScope,
            ServiceError::AlreadyCompleted,
            ServiceError::OutcomePending,
            ServiceError::ClientRateLimited,
            ServiceError::Contended,
        ];
        for r in [
            PolicyReason::TooShort,
            PolicyReason::TooLong,
            PolicyReason::InHistory,
            PolicyReason::InsufficientQuality,
            PolicyReason::TooYoung,
            PolicyReason::DoesNotMeetPolicy,
            PolicyReason::ChangeNotAllowed,
            PolicyReason::Other,
        ] {
            errors.push(ServiceError::PasswordRefused(r));
        }
        for r in [
            Refusal::TooShort(12),
            Refusal::TooLong(64),
            Refusal::Banned,
            Refusal::Common,
            Refusal::ContainsName,
            Refusal::TooWeak(3),
            Refusal::Breached,
        ] {
            errors.push(ServiceError::PasswordRules(r));
        }
        // The refusals of the forms' own fields.
        for reason in [
            "USERNAME_REQUIRED",
            "USERNAME_INVALID",
            "PASSWORD_REQUIRED",
            "PASSWORD_TOO_LONG",
            "PASSWORD_INVALID_CHARACTER",
            "METHOD_ALREADY_VERIFIED",
            "WRONG_QUESTIONS",
            "NOT_A_CODE_METHOD",
            "WRONG_QUESTION_COUNT",
            "UNKNOWN_QUESTION",
            "DUPLICATE_QUESTION",
            "ANSWER_TOO_SHORT",
            "ANSWER_TOO_LONG",
            "DUPLICATE_ANSWER",
            "EMAIL_INVALID",
            "PHONE_INVALID",
            "CONTACT_INVALID",
        ] {
            errors.push(invalid(reason));
        }
        for e in &errors {
            let Flash::Problem {
                reason, key, args, ..
            } = problem_of(e, None)
            else {
                unreachable!()
            };
            for lang in i18n::LANGUAGES {
                assert!(i18n::has(lang, &key), "{lang} has no {key} ({e:?})");
                let text = reason_text(lang, &reason, &key, &args);
                assert!(!text.contains('{'), "{lang} {key}: {text}");
            }
        }
    }
}
