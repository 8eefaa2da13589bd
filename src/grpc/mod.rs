//! The gRPC endpoint: the services behind the HTTP/2 listener, and the `[server]` /
//! `[[clients]]` settings that shape it.
//!
//! Every call passes, outermost first: the connection's activity count (`listener`), its
//! count and time (`metered`), its deadline (`DeadlineLayer`), the client's identity, role
//! and quota (`ClientLayer`), the wire checks (`api::wire`), then the service it names.
//! Health (following the daemon's readiness) and (optionally) both versions of reflection
//! are served beside the three `ssprd.v1` services.

mod metered;
pub mod settings;

pub use settings::{RawClient, RawServer, ServerConfig};

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
use crate::deadline;
use crate::listener;
use crate::service::Service;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;
use tracing::{info, warn};

/// Serves the gRPC API on `listener` with `tls` until `shutdown` resolves. `ready` is
/// called once everything is set up and connections are about to be accepted. The health
/// service reports the whole server (`""`) and each `ssprd.v1` service as `SERVING` while
/// `serving` holds true, `NOT_SERVING` otherwise (the daemon's readiness). Fails (before
/// `ready`) only when the services cannot be built.
pub async fn serve(
    cfg: &ServerConfig,
    service: Arc<Service>,
    tls: Arc<rustls::ServerConfig>,
    listener: TcpListener,
    mut serving: tokio::sync::watch::Receiver<bool>,
    ready: impl FnOnce(),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    let (health, health_svc) = tonic_health::server::health_reporter();
    let services = [
        "",
        <RegistrationServiceServer<RegistrationApi> as tonic::server::NamedService>::NAME,
        <ResetServiceServer<ResetApi> as tonic::server::NamedService>::NAME,
        <AdminServiceServer<AdminApi> as tonic::server::NamedService>::NAME,
    ];
    let report = move |up: bool| {
        let health = health.clone();
        async move {
            let status = if up {
                tonic_health::ServingStatus::Serving
            } else {
                tonic_health::ServingStatus::NotServing
            };
            for name in services {
                health.set_service_status(name, status).await;
            }
        }
    };
    let up = *serving.borrow_and_update();
    report(up).await;
    let health_task = tokio::spawn(async move {
        while serving.changed().await.is_ok() {
            let up = *serving.borrow_and_update();
            report(up).await;
        }
    });

    // Both reflection versions: grpcurl up to 1.8 and many tools still ask v1alpha.
    let (reflection_v1, reflection_v1alpha) = if cfg.reflection {
        let builder = || {
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        };
        let v1 = builder()
            .build_v1()
            .map_err(|e| format!("reflection: {e}"))?;
        let v1alpha = builder()
            .build_v1alpha()
            .map_err(|e| format!("reflection: {e}"))?;
        (Some(v1), Some(v1alpha))
    } else {
        (None, None)
    };

    let limit = cfg.max_request_bytes;
    let registration = RegistrationServiceServer::new(RegistrationApi {
        service: service.clone(),
    })
    .max_decoding_message_size(limit);
    let reset = ResetServiceServer::new(ResetApi {
        service: service.clone(),
    })
    .max_decoding_message_size(limit);
    let admin = AdminServiceServer::new(AdminApi { service }).max_decoding_message_size(limit);

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
        .layer(metered::MeteredLayer::new())
        .layer(DeadlineLayer {
            timeout: cfg.request_timeout,
        })
        .layer(ClientLayer::new(cfg))
        .layer(crate::api::wire::WireLayer::new(limit))
        .service(routes.prepare());
    let limits = listener::Limits {
        protocol: listener::Protocol::Http2,
        max_connections: listener::fit_to_file_limit(cfg.max_connections),
        max_connections_per_address: cfg.max_connections_per_address,
        tls_handshake_timeout: cfg.tls_handshake_timeout,
        idle_timeout: cfg.idle_timeout,
        keepalive_interval: cfg.keepalive,
        max_concurrent_streams: cfg.max_concurrent_streams,
        // Calls in flight get their deadline, no more.
        shutdown_grace: cfg.request_timeout + std::time::Duration::from_secs(1),
    };

    info!(
        ?addr,
        reflection = cfg.reflection,
        mtls = cfg.client_ca_pem.is_some(),
        max_connections = limits.max_connections,
        "ssprd serving"
    );
    ready();
    listener::run(listener, tls, calls, limits, shutdown).await;
    health_task.abort();
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
    fn new(server: &ServerConfig) -> Self {
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
