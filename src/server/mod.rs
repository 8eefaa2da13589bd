//! Wiring: opens the store, builds the directory client and the service, and serves gRPC
//! over TLS with health, optional reflection, request limits, the expiry sweeper, and
//! systemd readiness / watchdog notifications.
//!
//! Every call passes, outermost first: the connection's activity count (`listener`), its
//! deadline ([`DeadlineLayer`]), the client's identity, role and quota ([`ClientLayer`]),
//! the wire checks (`api::wire`), then the service it names.

mod listener;

use crate::api::auth::{Access, CertNames};
use crate::api::{
    FILE_DESCRIPTOR_SET,
    admin::AdminApi,
    pb::{
        admin_service_server::AdminServiceServer,
        registration_service_server::RegistrationServiceServer,
        reset_service_server::ResetServiceServer,
    },
    registration::RegistrationApi,
    reset::ResetApi,
};
use crate::config::Config;
use crate::deadline;
use crate::delivery::{Deliver, Dispatcher, gateway::Gateway, smtp::SmtpMailer};
use crate::directory::{Directory, ldap::LdapDirectory};
use crate::method::{questions::AnswerHasher, totp::Sealer};
use crate::service::{
    Backends, Clock, Policies, Service, ServiceOptions, system_clock, wall_clock,
};
use crate::store::{Store, sled::SledStore};
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;
use tracing::{info, warn};

/// Errors that stop the daemon from starting or serving.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Directory(#[from] crate::directory::DirectoryError),
    #[error("setup: {0}")]
    Setup(String),
}

/// Tells systemd something, when it is listening (`$NOTIFY_SOCKET`); otherwise a no-op.
fn notify(state: &[sd_notify::NotifyState]) {
    if std::env::var_os("NOTIFY_SOCKET").is_some()
        && let Err(e) = sd_notify::notify(state)
    {
        warn!(error = %e, "sd_notify failed");
    }
}

/// Builds the service from the configuration (opens the store: one daemon per database).
pub async fn build_service(
    cfg: &Config,
    clock: Clock,
    wall_clock: Clock,
) -> Result<Arc<Service>, ServeError> {
    let path = cfg.store_path.clone();
    let store: Arc<dyn Store> = Arc::new(
        tokio::task::spawn_blocking(move || SledStore::open(&path))
            .await
            .expect("store open task panicked")?,
    );
    let directory: Arc<dyn Directory> = Arc::new(crate::directory::WithinDeadline(Arc::new(
        LdapDirectory::new(cfg.directory.clone())?,
    )));
    let email = cfg
        .email
        .as_ref()
        .map(SmtpMailer::new)
        .transpose()
        .map_err(ServeError::Setup)?;
    let decoy_email_domain = cfg.email.as_ref().map_or("example.org".to_string(), |e| {
        e.from.email.domain().to_string()
    });
    let gateway = cfg
        .gateway
        .clone()
        .map(Gateway::new)
        .transpose()
        .map_err(ServeError::Setup)?;
    let deliver: Arc<dyn Deliver> = Arc::new(Dispatcher { email, gateway });
    let sealer = cfg
        .authenticator
        .as_ref()
        .map(|(_, key)| Sealer::from_key_text(key))
        .transpose()
        .map_err(ServeError::Setup)?;
    let service = Service::new(
        Backends {
            store,
            directory,
            deliver,
            hasher: AnswerHasher::new(cfg.max_concurrent_hashes),
            sealer,
            clock,
            wall_clock,
            audit_forward: cfg
                .audit_forward
                .as_ref()
                .map(|(kind, path)| crate::audit::Forwarder::new(*kind, path.clone()))
                .transpose()
                .map_err(|e| ServeError::Setup(format!("audit forwarding socket: {e}")))?,
        },
        Policies {
            reset: cfg.reset.clone(),
            bank: cfg.bank.clone(),
            methods: cfg.methods.clone(),
            sspr: cfg.sspr.clone(),
            context: cfg.policy_context,
            password: cfg.password.clone(),
            sign_in: cfg.sign_in,
        },
        ServiceOptions {
            verify_after_write: cfg.directory.verify_after_write,
            require_change_after_reset: cfg.directory.require_change_after_reset,
            decoy_email_domain,
            issuer: cfg
                .authenticator
                .as_ref()
                .map_or_else(|| "ssprd".to_string(), |(issuer, _)| issuer.clone()),
            prefill: cfg.prefill.clone(),
            uniform_response: cfg.server.uniform_response,
        },
    )
    .await?;
    Ok(Arc::new(service))
}

/// Serves the gRPC API on `listener` until `shutdown` resolves.
pub async fn serve(
    cfg: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    serve_with_clocks(cfg, listener, shutdown, system_clock(), wall_clock()).await
}

/// [`serve`] with every time taken from `clock` (tests step it).
pub async fn serve_with_clock(
    cfg: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    clock: Clock,
) -> Result<(), ServeError> {
    serve_with_clocks(cfg, listener, shutdown, clock.clone(), clock).await
}

/// [`serve`] with lifetimes and counters on `clock` and authenticator codes on `wall`.
pub async fn serve_with_clocks(
    cfg: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    clock: Clock,
    wall: Clock,
) -> Result<(), ServeError> {
    let service = build_service(&cfg, clock, wall).await?;

    let tls = Arc::new(
        crate::tls::server_config(
            &cfg.server.tls_cert_pem,
            cfg.server.tls_key_pem.expose().as_bytes(),
            cfg.server.client_ca_pem.as_deref(),
        )
        .map_err(ServeError::Setup)?,
    );

    let (health, health_svc) = tonic_health::server::health_reporter();
    health
        .set_serving::<RegistrationServiceServer<RegistrationApi>>()
        .await;
    health.set_serving::<ResetServiceServer<ResetApi>>().await;
    health.set_serving::<AdminServiceServer<AdminApi>>().await;

    // Both reflection versions: grpcurl up to 1.8 and many tools still ask v1alpha.
    let (reflection_v1, reflection_v1alpha) = if cfg.server.reflection {
        let builder = || {
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        };
        let v1 = builder()
            .build_v1()
            .map_err(|e| ServeError::Setup(format!("reflection: {e}")))?;
        let v1alpha = builder()
            .build_v1alpha()
            .map_err(|e| ServeError::Setup(format!("reflection: {e}")))?;
        (Some(v1), Some(v1alpha))
    } else {
        (None, None)
    };

    let limit = cfg.server.max_request_bytes;
    let registration = RegistrationServiceServer::new(RegistrationApi {
        service: service.clone(),
    })
    .max_decoding_message_size(limit);
    let reset = ResetServiceServer::new(ResetApi {
        service: service.clone(),
    })
    .max_decoding_message_size(limit);
    let admin = AdminServiceServer::new(AdminApi {
        service: service.clone(),
    })
    .max_decoding_message_size(limit);
    let outbox = tokio::spawn(service.clone().run_outbox(cfg.outbox));

    // Expired flows and sessions are deleted in the background.
    let sweeper = {
        let store = service.store().clone();
        let clock_service = service.clone();
        let every = cfg.sweep_interval;
        let retention = cfg.audit_retention;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                match store.sweep(clock_service.now()).await {
                    Ok(0) => {}
                    Ok(n) => info!(expired = n, "swept expired flows and sessions"),
                    Err(e) => warn!(error = %e, "sweep failed"),
                }
                if let Some(keep) = retention {
                    let before = clock_service.now().saturating_sub(keep.as_secs());
                    match store.prune_audit(before).await {
                        Ok(0) => {}
                        Ok(n) => info!(pruned = n, "audit records past retention pruned"),
                        Err(e) => warn!(error = %e, "audit pruning failed"),
                    }
                }
            }
        })
    };

    let addr = listener.local_addr().ok();
    let mut routes = tonic::service::Routes::new(health_svc)
        .add_service(registration)
        .add_service(reset)
        .add_service(admin);
    if let (Some(v1), Some(v1alpha)) = (reflection_v1, reflection_v1alpha) {
        routes = routes.add_service(v1).add_service(v1alpha);
    }
    let calls = tower::ServiceBuilder::new()
        .layer_fn(listener::Activity::new)
        .layer(DeadlineLayer {
            timeout: cfg.server.request_timeout,
        })
        .layer(ClientLayer::new(&cfg.server))
        .layer(crate::api::wire::WireLayer::new(limit))
        .service(routes.prepare());
    let limits = listener::Limits {
        max_connections: listener::fit_to_file_limit(cfg.server.max_connections),
        max_connections_per_address: cfg.server.max_connections_per_address,
        tls_handshake_timeout: cfg.server.tls_handshake_timeout,
        idle_timeout: cfg.server.idle_timeout,
        keepalive_interval: cfg.server.keepalive,
        max_concurrent_streams: cfg.server.max_concurrent_streams,
        shutdown_grace: std::time::Duration::from_secs(10),
    };

    info!(
        ?addr,
        reflection = cfg.server.reflection,
        mtls = cfg.server.client_ca_pem.is_some(),
        max_connections = limits.max_connections,
        "ssprd serving"
    );
    notify(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status("serving"),
    ]);
    // Watchdog pings at half the interval systemd asks for, from READY on.
    let watchdog = match sd_notify::watchdog_enabled() {
        Some(interval) if cfg.server.watchdog => {
            let every = interval / 2;
            info!(?every, "systemd watchdog enabled");
            Some(tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                loop {
                    tick.tick().await;
                    notify(&[sd_notify::NotifyState::Watchdog]);
                }
            }))
        }
        _ => None,
    };

    // A store that can no longer make writes durable stops the daemon (systemd restarts it,
    // and it starts again from what is on disk once the disk has room).
    let mut failed = service.store().failed();
    let store_failure = Arc::new(std::sync::Mutex::new(None::<String>));
    let noted = store_failure.clone();
    listener::run(listener, tls, calls, limits, async move {
        tokio::select! {
            _ = shutdown => info!("shutting down"),
            Ok(why) = failed.wait_for(Option::is_some) => {
                let why = why.clone().unwrap_or_default();
                tracing::error!(reason = %why, "storage failed: stopping");
                *noted.lock().expect("lock") = Some(why);
            }
        }
        notify(&[sd_notify::NotifyState::Stopping]);
    })
    .await;
    // Wait for the background tasks to end: the store must be closed when serve returns, so
    // the next daemon (or `ssprd audit`) can open it.
    sweeper.abort();
    let _ = sweeper.await;
    outbox.abort();
    let _ = outbox.await;
    service.stop_deliveries().await;
    if let Some(w) = watchdog {
        w.abort();
        let _ = w.await;
    }
    if let Some(why) = store_failure.lock().expect("lock").take() {
        return Err(ServeError::Store(crate::store::StoreError::Unavailable(
            why,
        )));
    }
    info!("stopped");
    Ok(())
}

type ClientLimiter = governor::DefaultKeyedRateLimiter<String>;
type OwnLimiter = governor::DefaultDirectRateLimiter;

/// Identifies the client of every request and decides whether it may make the call:
/// the certificate is mapped to a configured client and its role ([`Access`]); the call's
/// path is checked against the role; the client's quota is applied (its own, else the
/// per-client default keyed by certificate, else by IP address); and the request runs with
/// an actor name for the audit log — `name ip:port cert:<first 16 hex of the SHA-256 of the
/// certificate>`.
#[derive(Clone)]
struct ClientLayer {
    access: Arc<Access>,
    limiter: Option<Arc<ClientLimiter>>,
    /// Per configured client: its own quota, when it has one.
    own: Arc<Vec<Option<OwnLimiter>>>,
}

impl ClientLayer {
    fn new(server: &crate::config::ServerConfig) -> Self {
        let own = server
            .access
            .clients
            .iter()
            .map(|c| {
                c.requests_per_minute
                    .and_then(std::num::NonZeroU32::new)
                    .map(|n| governor::RateLimiter::direct(governor::Quota::per_minute(n)))
            })
            .collect();
        Self {
            access: Arc::new(server.access.clone()),
            limiter: std::num::NonZeroU32::new(server.per_client_requests_per_minute)
                .map(|n| Arc::new(governor::RateLimiter::keyed(governor::Quota::per_minute(n)))),
            own: Arc::new(own),
        }
    }
}

impl<S> tower::Layer<S> for ClientLayer {
    type Service = ClientService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        ClientService {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Clone)]
struct ClientService<S> {
    inner: S,
    layer: ClientLayer,
}

type HttpResponse = tonic::codegen::http::Response<tonic::body::Body>;

impl<S, B> tower::Service<tonic::codegen::http::Request<B>> for ClientService<S>
where
    S: tower::Service<tonic::codegen::http::Request<B>, Response = HttpResponse>,
    S::Future: Send + 'static,
{
    type Response = HttpResponse;
    type Error = S::Error;
    type Future =
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<HttpResponse, S::Error>> + Send>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: tonic::codegen::http::Request<B>) -> Self::Future {
        use sha2::Digest;
        let info = req.extensions().get::<listener::ConnectInfo>();
        let addr = info.map(|i| i.remote);
        let der = info.and_then(|i| i.client_cert.clone());
        let cert = der
            .as_ref()
            .map(|c| hex::encode(sha2::Sha256::digest(c.as_ref()))[..16].to_string());
        let names = der
            .as_ref()
            .map(|d| CertNames::from_der(d.as_ref()).unwrap_or_default());
        let who = self.layer.access.identify(names.as_ref());
        let mut actor = addr.map_or_else(|| "unknown".to_string(), |a| a.to_string());
        if !who.client.is_empty() {
            actor = format!("{} {actor}", who.client);
        }
        if let Some(fp) = &cert {
            actor.push_str(&format!(" cert:{fp}"));
        }
        let path = req.uri().path().to_string();
        if let Err(status) = self.layer.access.check(&who, der.is_some(), &path) {
            warn!(client = %actor, role = who.role.name(), %path, "call refused by role");
            return Box::pin(async move { Ok(status.into_http()) });
        }
        let own = who
            .rule
            .and_then(|i| self.layer.own.get(i))
            .and_then(Option::as_ref);
        let limited = match (own, &self.layer.limiter) {
            (Some(own), _) => own.check().is_err(),
            (None, Some(limiter)) => {
                let key =
                    cert.unwrap_or_else(|| addr.map_or_else(String::new, |a| a.ip().to_string()));
                limiter.check_key(&key).is_err()
            }
            (None, None) => false,
        };
        if limited {
            warn!(client = %actor, "per-client rate limit reached");
            let status: tonic::Status = crate::service::ServiceError::ClientRateLimited.into();
            return Box::pin(async move { Ok(status.into_http()) });
        }
        Box::pin(crate::service::as_actor(actor, self.inner.call(req)))
    }
}

/// Gives every call its deadline — the server's request timeout or the client's
/// `grpc-timeout`, whichever ends first — which the service answers before (see
/// [`crate::deadline`]). A call still running at its deadline is answered
/// `DEADLINE_EXCEEDED` with a reason, never CANCELLED; work it handed to a task of its own
/// (a password write) goes on.
#[derive(Clone)]
struct DeadlineLayer {
    timeout: std::time::Duration,
}

impl<S> tower::Layer<S> for DeadlineLayer {
    type Service = DeadlineService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        DeadlineService {
            inner,
            timeout: self.timeout,
        }
    }
}

#[derive(Clone)]
struct DeadlineService<S> {
    inner: S,
    timeout: std::time::Duration,
}

impl<S, B> tower::Service<tonic::codegen::http::Request<B>> for DeadlineService<S>
where
    S: tower::Service<tonic::codegen::http::Request<B>, Response = HttpResponse>,
    S::Future: Send + 'static,
{
    type Response = HttpResponse;
    type Error = S::Error;
    type Future =
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<HttpResponse, S::Error>> + Send>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: tonic::codegen::http::Request<B>) -> Self::Future {
        let asked = req
            .headers()
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(deadline::parse_grpc_timeout);
        let budget = asked.map_or(self.timeout, |a| a.min(self.timeout));
        let by = tokio::time::Instant::now() + budget;
        let call = deadline::scope(by, self.inner.call(req));
        Box::pin(async move {
            match tokio::time::timeout_at(by, call).await {
                Ok(answer) => answer,
                Err(_) => {
                    warn!(?budget, "a call ran past its deadline");
                    Ok(crate::api::status(
                        tonic::Code::DeadlineExceeded,
                        "DEADLINE_EXCEEDED",
                        None,
                        format!(
                            "the call did not finish within its deadline of {} ms; work it \
                             started may still complete",
                            budget.as_millis()
                        ),
                    )
                    .into_http())
                }
            }
        })
    }
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => {},
        _ = int.recv() => {},
    }
}
