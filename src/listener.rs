//! The TLS listeners (the gRPC endpoint's, HTTP/2 only; the portal's, HTTP/1.1 and HTTP/2)
//! and their connections, built so that clients that hold connections open — idle, slow to
//! send their headers, or never finishing the TLS handshake — cannot take the daemon down:
//!
//! - at most `max_connections` connections, and `max_connections_per_address` from one
//!   client address (IPv6: one /64); when a new connection would cross a cap, the
//!   connection idle the longest is shed to make room — one still in its TLS handshake
//!   first — and only when none is idle is the new one closed;
//! - the TLS handshake must finish within `tls_handshake_timeout`;
//! - HTTP/2 keepalive pings find dead peers, and a connection without a call for
//!   `idle_timeout` is closed (GOAWAY first, so a client's next call reconnects cleanly);
//! - an HTTP/1.1 request's headers must arrive within `tls_handshake_timeout` too;
//! - when `accept` fails for lack of file descriptors the loop backs off (up to 1 s)
//!   instead of spinning, and the connection cap is kept below the open-file limit.

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rustls_pki_types::CertificateDer;
use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use tracing::{debug, info, warn};

/// File descriptors kept for everything but client connections: the store, logs, and the
/// outbound connections (directory, mail, gateway) the calls make.
const FD_RESERVE: u64 = 64;

/// How long a shed or idle connection gets to close after its GOAWAY.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Which HTTP a listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// gRPC: HTTP/2 only.
    Http2,
    /// Browsers: HTTP/1.1, and HTTP/2 when the client offers it.
    Http1And2,
}

/// The listener's limits (`[server]`, `[portal]`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub protocol: Protocol,
    pub max_connections: usize,
    pub max_connections_per_address: usize,
    pub tls_handshake_timeout: Duration,
    pub idle_timeout: Duration,
    pub keepalive_interval: Duration,
    pub max_concurrent_streams: u32,
    /// How long connections get to finish their calls at shutdown.
    pub shutdown_grace: Duration,
}

/// What a call knows of its connection (in the request's extensions).
#[derive(Clone)]
pub struct ConnectInfo {
    pub remote: SocketAddr,
    /// The client's certificate, when it presented one (verified against the client CA).
    pub client_cert: Option<CertificateDer<'static>>,
    conn: Arc<Conn>,
}

/// One connection in the registry.
struct Conn {
    id: u64,
    /// The registry's epoch, which `last_active` counts from.
    epoch: Instant,
    /// The client address the per-address cap counts (IPv6: its /64).
    key: IpAddr,
    /// Milliseconds since the registry's epoch of the last call's end (or of the accept).
    last_active: AtomicU64,
    in_flight: AtomicUsize,
    handshaken: AtomicBool,
    /// Chosen to make room: no longer counted against the caps.
    shedding: AtomicBool,
    shed: Notify,
}

/// The connections of one listener.
struct Registry {
    epoch: Instant,
    next_id: AtomicU64,
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
}

/// The key the per-address cap counts: the IPv4 address, or the /64 of an IPv6 one.
pub(crate) fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut seg = v6.segments();
                seg[4..].fill(0);
                IpAddr::V6(seg.into())
            }
        },
        v4 => v4,
    }
}

impl Registry {
    fn new() -> Self {
        Self {
            epoch: Instant::now(),
            next_id: AtomicU64::new(0),
            conns: Mutex::new(HashMap::new()),
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Registers a connection from `ip` if the caps allow, shedding the longest-idle
    /// connection (of that address, or of all) to make room; `None` when nothing could be
    /// shed.
    fn admit(&self, ip: IpAddr, limits: &Limits) -> Option<Arc<Conn>> {
        let key = address_key(ip);
        let mut conns = self.conns.lock().expect("registry lock");
        let counted = |c: &&Arc<Conn>| !c.shedding.load(Ordering::Relaxed);
        let from_key = conns
            .values()
            .filter(counted)
            .filter(|c| c.key == key)
            .count();
        if from_key >= limits.max_connections_per_address && !shed_one(&conns, Some(key)) {
            return None;
        }
        if conns.values().filter(counted).count() >= limits.max_connections
            && !shed_one(&conns, None)
        {
            return None;
        }
        let conn = Arc::new(Conn {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            epoch: self.epoch,
            key,
            last_active: AtomicU64::new(self.now_ms()),
            in_flight: AtomicUsize::new(0),
            handshaken: AtomicBool::new(false),
            shedding: AtomicBool::new(false),
            shed: Notify::new(),
        });
        conns.insert(conn.id, conn.clone());
        Some(conn)
    }

    fn remove(&self, id: u64) {
        self.conns.lock().expect("registry lock").remove(&id);
    }

    /// (connections counted against the cap, all open ones).
    fn counts(&self) -> (usize, usize) {
        let conns = self.conns.lock().expect("registry lock");
        let counted = conns
            .values()
            .filter(|c| !c.shedding.load(Ordering::Relaxed))
            .count();
        (counted, conns.len())
    }
}

/// Sheds the connection idle the longest (among those of `key`, when given): one without a
/// finished handshake first, then by the end of its last call. False when every candidate
/// has a call in progress.
fn shed_one(conns: &HashMap<u64, Arc<Conn>>, key: Option<IpAddr>) -> bool {
    let victim = conns
        .values()
        .filter(|c| !c.shedding.load(Ordering::Relaxed))
        .filter(|c| key.is_none_or(|k| c.key == k))
        .filter(|c| c.in_flight.load(Ordering::Relaxed) == 0)
        .min_by_key(|c| {
            (
                c.handshaken.load(Ordering::Relaxed),
                c.last_active.load(Ordering::Relaxed),
            )
        });
    match victim {
        Some(c) => {
            c.shedding.store(true, Ordering::Relaxed);
            c.shed.notify_one();
            true
        }
        None => false,
    }
}

impl Conn {
    /// Records activity now.
    fn touch(&self) {
        self.last_active
            .store(self.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
}

/// Removes a connection from the registry when its task ends, however it ends.
struct Registered {
    registry: Arc<Registry>,
    conn: Arc<Conn>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.registry.remove(self.conn.id);
    }
}

/// The connection cap that fits the process's open-file limit: the soft limit is raised
/// toward the hard one when the cap needs it, and the cap is lowered (with a warning) when
/// even that is not enough — half of what remains after `FD_RESERVE` goes to client
/// connections, the other half to the outbound connections their calls open.
pub fn fit_to_file_limit(max_connections: usize) -> usize {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    if crate::failpoint::active("listener.ignore_file_limit") {
        return max_connections;
    }
    let need = FD_RESERVE + 2 * max_connections as u64;
    let limit = getrlimit(Resource::Nofile);
    let soft = limit.current.unwrap_or(u64::MAX);
    if soft >= need {
        return max_connections;
    }
    let hard = limit.maximum.unwrap_or(u64::MAX);
    let raised = need.min(hard);
    let soft = if raised > soft
        && setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(raised),
                maximum: limit.maximum,
            },
        )
        .is_ok()
    {
        raised
    } else {
        soft
    };
    let fits = (soft.saturating_sub(FD_RESERVE) / 2).max(1) as usize;
    if fits < max_connections {
        warn!(
            open_file_limit = soft,
            max_connections = fits,
            configured = max_connections,
            "the open-file limit admits fewer client connections than configured; raise \
             LimitNOFILE to admit more"
        );
        fits
    } else {
        max_connections
    }
}

/// Whether an `accept` error means the process (or system) is out of descriptors or memory.
fn out_of_resources(e: &std::io::Error) -> bool {
    use rustix::io::Errno;
    matches!(
        Errno::from_io_error(e),
        Some(Errno::MFILE | Errno::NFILE | Errno::NOBUFS | Errno::NOMEM)
    )
}

/// Accepts connections on `listener` and serves `service` on each until `shutdown`
/// resolves; then lets open calls finish (up to `limits.shutdown_grace`) and returns.
pub async fn run<S, B>(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    service: S,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) where
    S: tower::Service<http::Request<hyper::body::Incoming>, Response = http::Response<B>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let registry = Arc::new(Registry::new());
    let mut http = auto::Builder::new(TokioExecutor::new());
    http.http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_concurrent_streams)
        .keep_alive_interval(limits.keepalive_interval)
        .keep_alive_timeout(Duration::from_secs(10))
        .max_header_list_size(16 * 1024);
    let http = match limits.protocol {
        Protocol::Http2 => http.http2_only(),
        Protocol::Http1And2 => {
            http.http1()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.tls_handshake_timeout)
                .max_buf_size(64 * 1024);
            http
        }
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let mut backoff = Duration::ZERO;
    let mut refused_logged: Option<Instant> = None;
    loop {
        while tasks.try_join_next().is_some() {}
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            r = listener.accept() => r,
        };
        let (tcp, remote) = match accepted {
            Ok(a) => {
                backoff = Duration::ZERO;
                a
            }
            Err(e) if out_of_resources(&e) => {
                backoff = (backoff * 2).clamp(Duration::from_millis(10), Duration::from_secs(1));
                let (counted, open) = registry.counts();
                warn!(error = %e, connections = counted, open, ?backoff, "cannot accept: out of file descriptors; backing off");
                tokio::select! {
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(backoff) => continue,
                }
            }
            Err(e) => {
                debug!(error = %e, "accept failed");
                continue;
            }
        };
        let Some(conn) = registry.admit(remote.ip(), &limits) else {
            // Every connection is busy with a call: this one cannot be served now.
            if refused_logged.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                let (counted, _) = registry.counts();
                warn!(client = %remote, connections = counted, "connection refused: all connections are busy");
                refused_logged = Some(Instant::now());
            }
            drop(tcp);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let registered = Registered {
            registry: registry.clone(),
            conn,
        };
        tasks.spawn(serve_one(
            tcp,
            remote,
            registered,
            acceptor.clone(),
            service.clone(),
            http.clone(),
            limits,
            stop_rx.clone(),
        ));
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let open = tasks.len();
    if open > 0 {
        info!(open, "waiting for open connections to finish their calls");
    }
    let drained = tokio::time::timeout(limits.shutdown_grace, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        warn!(
            open = tasks.len(),
            "closing connections still busy at the end of the shutdown grace"
        );
        tasks.shutdown().await;
    }
}

/// One connection: the TLS handshake within its timeout, then HTTP/2 until the client
/// closes, the connection is shed or idle too long, or the daemon stops.
#[allow(clippy::too_many_arguments)]
async fn serve_one<S, B>(
    tcp: TcpStream,
    remote: SocketAddr,
    registered: Registered,
    acceptor: tokio_rustls::TlsAcceptor,
    service: S,
    http: auto::Builder<TokioExecutor>,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) where
    S: tower::Service<http::Request<hyper::body::Incoming>, Response = http::Response<B>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let conn = registered.conn.clone();
    let registry = registered.registry.clone();
    let tls = tokio::select! {
        r = tokio::time::timeout(limits.tls_handshake_timeout, acceptor.accept(tcp)) => match r {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => {
                debug!(client = %remote, error = %e, "TLS handshake failed");
                return;
            }
            Err(_) => {
                debug!(client = %remote, "TLS handshake timed out");
                return;
            }
        },
        () = conn.shed.notified() => return,
        _ = stop.changed() => return,
    };
    conn.handshaken.store(true, Ordering::Relaxed);
    conn.touch();
    let info = ConnectInfo {
        remote,
        client_cert: tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first().cloned()),
        conn: conn.clone(),
    };
    let service = tower::util::MapRequest::new(
        service,
        move |mut req: http::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(info.clone());
            req
        },
    );
    let connection = http.serve_connection(TokioIo::new(tls), TowerToHyperService::new(service));
    let mut connection = std::pin::pin!(connection);
    let mut closing_by: Option<Instant> = None;
    loop {
        let idle_check = registry.epoch
            + Duration::from_millis(conn.last_active.load(Ordering::Relaxed))
            + limits.idle_timeout;
        let force_by = closing_by.unwrap_or_else(|| Instant::now() + limits.idle_timeout);
        tokio::select! {
            r = connection.as_mut() => {
                if let Err(e) = r {
                    debug!(client = %remote, error = %e, "connection ended with an error");
                }
                break;
            }
            () = conn.shed.notified(), if closing_by.is_none() => {
                debug!(client = %remote, "connection shed to make room");
                connection.as_mut().graceful_shutdown();
                closing_by = Some(Instant::now() + CLOSE_GRACE);
            }
            _ = stop.changed(), if closing_by.is_none() => {
                connection.as_mut().graceful_shutdown();
                closing_by = Some(Instant::now() + limits.shutdown_grace);
            }
            () = tokio::time::sleep_until(idle_check), if closing_by.is_none() => {
                let idle_ms = registry.now_ms().saturating_sub(conn.last_active.load(Ordering::Relaxed));
                if conn.in_flight.load(Ordering::Relaxed) == 0
                    && Duration::from_millis(idle_ms) >= limits.idle_timeout
                {
                    debug!(client = %remote, "closing an idle connection");
                    connection.as_mut().graceful_shutdown();
                    closing_by = Some(Instant::now() + CLOSE_GRACE);
                }
            }
            () = tokio::time::sleep_until(force_by), if closing_by.is_some() => break,
        }
    }
    drop(registered);
}

/// Counts a connection's calls in progress and when its last one ended (for idle
/// shedding), from the call's start to the end of its answer.
#[derive(Clone)]
pub struct Activity<S> {
    inner: S,
}

impl<S> Activity<S> {
    pub fn new(inner: S) -> Self {
        Self { inner }
    }
}

/// Ends a call's activity when dropped (the answer was sent, or the call was abandoned).
struct InFlight(Arc<Conn>);

impl InFlight {
    fn start(info: &ConnectInfo) -> Self {
        info.conn.in_flight.fetch_add(1, Ordering::Relaxed);
        Self(info.conn.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl<S, ReqB, ResB> tower::Service<http::Request<ReqB>> for Activity<S>
where
    S: tower::Service<http::Request<ReqB>, Response = http::Response<ResB>>,
    S::Future: Send + 'static,
    ResB: http_body::Body + Send + Unpin + 'static,
{
    type Response = http::Response<Tracked<ResB>>;
    type Error = S::Error;
    type Future =
        std::pin::Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<ReqB>) -> Self::Future {
        let guard = req.extensions().get::<ConnectInfo>().map(InFlight::start);
        let fut = self.inner.call(req);
        Box::pin(async move {
            let res = fut.await?;
            Ok(res.map(|inner| Tracked {
                inner,
                _guard: guard,
            }))
        })
    }
}

/// A response body that keeps its call counted as in progress until it is dropped.
pub struct Tracked<B> {
    inner: B,
    _guard: Option<InFlight>,
}

impl<B: http_body::Body + Unpin> http_body::Body for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<B::Data>, B::Error>>> {
        std::pin::Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
