//! The daemon: opens the store, builds the directory client, the deliveries and the
//! service from the checked [`Config`], runs the expiry sweeper, the outbox worker and the
//! readiness checks, serves the management listener when configured
//! ([`crate::management`]), the web portal when enabled ([`crate::portal`]) and the gRPC
//! endpoint ([`crate::grpc`]) with systemd readiness,
//! watchdog and stopping notifications. A store that can no longer write stops it.

use crate::config::Config;
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
    let (path, cache) = (cfg.store.path.clone(), cfg.store.cache_bytes);
    let store: Arc<dyn Store> = Arc::new(
        tokio::task::spawn_blocking(move || SledStore::open_with_cache(&path, cache))
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
            limits: cfg.limits.clone(),
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
            exposure: crate::service::status::Exposure {
                mutual_tls: cfg.server.client_ca_pem.is_some(),
                reflection: cfg.server.reflection,
                metrics_listen: cfg.metrics.listen.map(|a| a.to_string()),
                portal_url: cfg.portal.as_ref().map(|p| p.origin.clone()),
                portal_kiosk: cfg.portal.as_ref().is_some_and(|p| p.kiosk),
            },
            outbox_stuck_after_secs: cfg.metrics.outbox_stuck_after_secs,
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
    // Attempts a crashed run left in accounts' budgets are released before any call.
    match crate::service::as_actor("ssprd".into(), service.release_interrupted_checks()).await {
        Ok(0) => {}
        Ok(n) => warn!(
            attempts = n,
            "released checks an earlier run left unsettled"
        ),
        Err(e) => warn!(error = %e, "unsettled checks of an earlier run not released"),
    }

    let tls = Arc::new(
        crate::tls::server_config(
            &cfg.server.tls_cert_pem,
            cfg.server.tls_key_pem.expose().as_bytes(),
            cfg.server.client_ca_pem.as_deref(),
        )
        .map_err(ServeError::Setup)?,
    );

    // Bound before any task starts: a taken address fails the start cleanly.
    let management_listener = match cfg.metrics.listen {
        Some(addr) => Some(TcpListener::bind(addr).await.map_err(|e| {
            ServeError::Setup(format!("metrics.listen: cannot listen on {addr}: {e}"))
        })?),
        None => None,
    };

    let portal_listener = match &cfg.portal {
        Some(p) => Some(TcpListener::bind(p.listen).await.map_err(|e| {
            ServeError::Setup(format!("portal.listen: cannot listen on {}: {e}", p.listen))
        })?),
        None => None,
    };

    let outbox = tokio::spawn(service.clone().run_outbox(cfg.outbox));

    // Password writes a crash cut off are decided now (and their records written), not at
    // the user's next write; while the directory cannot say, again every sweep interval.
    let decider = {
        let service = service.clone();
        let every = cfg.store.sweep_interval;
        tokio::spawn(crate::service::as_actor("ssprd".into(), async move {
            loop {
                match service.decide_interrupted_writes().await {
                    Ok(0) => break,
                    Ok(n) => info!(
                        users = n,
                        "interrupted password writes wait for the directory"
                    ),
                    Err(e) => warn!(error = %e, "interrupted password writes not read"),
                }
                tokio::time::sleep(every).await;
            }
        }))
    };

    // Readiness, checked in the background: the gRPC health status and `/readyz`.
    let (readiness_tx, readiness) =
        tokio::sync::watch::channel(crate::service::health::Readiness::unchecked());
    let (serving_tx, serving) = tokio::sync::watch::channel(false);
    let checks = tokio::spawn(crate::management::watch_readiness(
        service.clone(),
        cfg.metrics.ready_check,
        readiness_tx,
        serving_tx,
    ));
    let management = management_listener.map(|listener| {
        tokio::spawn(crate::management::serve(
            listener,
            cfg.metrics.allow_remote,
            readiness,
        ))
    });

    // The web portal, on its own listener; it stops with the daemon.
    let (portal_stop, portal_stopped) = tokio::sync::watch::channel(false);
    let portal = match (cfg.portal.clone(), portal_listener) {
        (Some(p), Some(listener)) => {
            let service = service.clone();
            let mut stopped = portal_stopped.clone();
            Some(tokio::spawn(async move {
                let r = crate::portal::serve(p, service, listener, async move {
                    let _ = stopped.wait_for(|s| *s).await;
                })
                .await;
                if let Err(e) = &r {
                    tracing::error!(error = %e, "the portal could not start");
                }
                r
            }))
        }
        _ => None,
    };

    // Expired flows and sessions are deleted in the background; every tenth round (at most
    // every ten minutes) the decoys' sample of registrations is taken again, the first
    // time at once.
    let sweeper = {
        let store = service.store().clone();
        let clock_service = service.clone();
        let every = cfg.store.sweep_interval;
        let retention = cfg.audit_retention;
        let resample = (every * 10).min(std::time::Duration::from_secs(600));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            let mut sampled: Option<tokio::time::Instant> = None;
            loop {
                tick.tick().await;
                if sampled.is_none_or(|at| at.elapsed() >= resample) {
                    sampled = Some(tokio::time::Instant::now());
                    match clock_service.refresh_likenesses().await {
                        Ok(n) => tracing::debug!(registrations = n, "decoys' sample taken"),
                        Err(e) => warn!(error = %e, "decoys' sample not taken"),
                    }
                }
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

    // A store that can no longer make writes durable stops the daemon (systemd restarts it,
    // and it starts again from what is on disk once the disk has room).
    let mut failed = service.store().failed();
    let store_failure = Arc::new(std::sync::Mutex::new(None::<String>));
    let noted = store_failure.clone();
    let mut watchdog = None;
    let served = crate::grpc::serve(
        &cfg.server,
        service.clone(),
        tls,
        listener,
        serving,
        || {
            notify(&[
                sd_notify::NotifyState::Ready,
                sd_notify::NotifyState::Status("serving"),
            ]);
            watchdog = start_watchdog(cfg.server.watchdog);
        },
        async move {
            tokio::select! {
                _ = shutdown => info!("shutting down"),
                Ok(why) = failed.wait_for(Option::is_some) => {
                    let why = why.clone().unwrap_or_default();
                    tracing::error!(reason = %why, "storage failed: stopping");
                    *noted.lock().expect("lock") = Some(why);
                }
            }
            notify(&[sd_notify::NotifyState::Stopping]);
            // Both listeners stop taking calls at once and drain side by side.
            let _ = portal_stop.send(true);
        },
    )
    .await;
    // Wait for the background tasks to end, each within a bound (a stop must end well
    // inside the unit's TimeoutStopSec): the store must be closed when serve returns, so the
    // next daemon (or `ssprd audit`) can open it. Code deliveries still running are
    // abandoned (the user asks for another code); notifications stay in the outbox.
    if let Some(p) = portal {
        ended("the portal", p, crate::portal::SHUTDOWN_GRACE + TASK_END).await;
    }
    for (name, task) in [
        ("the sweeper", sweeper),
        ("the interrupted-write decider", decider),
        ("the outbox worker", outbox),
        ("the readiness checks", checks),
    ] {
        task.abort();
        ended(name, task, TASK_END).await;
    }
    if let Some(m) = management {
        m.abort();
        ended("the management listener", m, TASK_END).await;
    }
    if tokio::time::timeout(TASK_END, service.stop_deliveries())
        .await
        .is_err()
    {
        warn!("code deliveries did not end in time: abandoned");
    }
    if let Some(w) = watchdog {
        w.abort();
        ended("the watchdog", w, TASK_END).await;
    }
    served.map_err(ServeError::Setup)?;
    if let Some(why) = store_failure.lock().expect("lock").take() {
        return Err(ServeError::Store(crate::store::StoreError::Unavailable(
            why,
        )));
    }
    info!("stopped");
    Ok(())
}

/// How long an aborted background task gets to end at shutdown (it ends at its next await:
/// longer means it is stuck, and it is abandoned).
const TASK_END: std::time::Duration = std::time::Duration::from_secs(2);

/// Waits at most `within` for `task` to end; says so when it did not (it is abandoned: the
/// process exits without it).
async fn ended<T>(name: &str, task: tokio::task::JoinHandle<T>, within: std::time::Duration) {
    if tokio::time::timeout(within, task).await.is_err() {
        warn!(
            task = name,
            ?within,
            "did not end in time at shutdown: abandoned"
        );
    }
}

/// Watchdog pings at half the interval systemd asks for, from READY on (when `enabled` and
/// systemd asks).
fn start_watchdog(enabled: bool) -> Option<tokio::task::JoinHandle<()>> {
    let interval = sd_notify::watchdog_enabled().filter(|_| enabled)?;
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
