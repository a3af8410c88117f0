//! `accept -> tls -> http`: the client-facing listener.
//!
//! Accepts are bounded by `max_connections` (a semaphore shared by every worker's accept
//! loop: past the limit each loop holds at most one accepted connection, unserved, until a
//! slot frees; the rest wait in the kernel backlog rather than being accepted and starved).
//! Each connection does its TLS handshake under `handshake_timeout`, then is served by
//! hyper's HTTP/1.1 builder when ALPN chose `http/1.1` (parked without hyper's buffers while
//! it waits for a request, see `crate::transport::park`), by hyper's HTTP/2 builder when it
//! chose `h2`, or by hyper-util's auto builder (either protocol, without ALPN; upgrades
//! allowed). A per-connection watchdog enforces
//! `header_read_timeout` (the first request must start, and an HTTP/1.1 head that started
//! must complete, in time; an `h2` connection must open with the preface, see
//! [`crate::transport::preface`]), the cancelled-stream budget and, near
//! `max_connections`, the early close of idle connections ([`crate::transport::limits`]), and
//! `idle_timeout` (no request in flight and no bytes moving), so that a keep-alive
//! connection waiting for its next request is governed by the idle timeout, not the header
//! timeout.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use arc_swap::ArcSwap;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use rustls::ServerConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;
use tower::{Service, ServiceExt};

use crate::body::Body;
use crate::config::ListenConfig;
use crate::ops::metrics::Metrics;
use crate::transport::activity::{ConnActivity, Tracked};
use crate::transport::conn::ConnInfo;
use crate::transport::drive::drive;
use crate::transport::early::EarlyRefusal;
use crate::transport::h1_guard::H1Guard;
use crate::transport::limits::{CancelGuard, Pressure};
use crate::transport::park::serve_h1;
use crate::transport::preface::{Rewind, expect_preface};

/// Connection limits and timeouts, fixed for the listener's life (a reload that changes
/// them is refused with a message that it needs a restart; see `crate::gateway`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSettings {
    pub handshake_timeout: Duration,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    pub max_header_bytes: usize,
    pub h2_max_concurrent_streams: u32,
}

impl From<&ListenConfig> for ServerSettings {
    fn from(l: &ListenConfig) -> Self {
        Self {
            handshake_timeout: l.handshake_timeout,
            header_read_timeout: l.header_read_timeout,
            idle_timeout: l.idle_timeout,
            max_connections: l.max_connections,
            max_header_bytes: l.max_header_bytes,
            h2_max_concurrent_streams: l.h2_max_concurrent_streams,
        }
    }
}

/// hyper's h1 read buffer cannot be smaller than this (it asserts).
const HYPER_MIN_BUF: usize = 8192;

/// Build hyper's HTTP/1.1 connection builder, for connections whose ALPN says `http/1.1`:
/// served without hyper-util's auto builder, an idle HTTP/1.1 connection carries no HTTP/2
/// state.
pub fn http1_builder(s: &ServerSettings) -> hyper::server::conn::http1::Builder {
    let mut b = hyper::server::conn::http1::Builder::new();
    b.timer(TokioTimer::new())
        // hyper arms this timer whenever it waits for a request head, including on an idle
        // keep-alive connection; the watchdog enforces the real header timeout, so hyper's
        // is only a backstop at the larger of the two.
        .header_read_timeout(s.header_read_timeout.max(s.idle_timeout))
        // A request head larger than the read buffer gets 431 from hyper.
        .max_buf_size(s.max_header_bytes.max(HYPER_MIN_BUF))
        .keep_alive(true);
    b
}

/// The HTTP/2 settings, applied alike to hyper's own h2 builder (connections whose ALPN
/// says `h2`) and to hyper-util's auto builder (connections without ALPN): two builder
/// types with the same methods, one list so they cannot drift apart.
macro_rules! h2_settings {
    ($b:expr, $s:expr) => {
        $b.timer(TokioTimer::new())
            .max_concurrent_streams($s.h2_max_concurrent_streams)
            .max_header_list_size(u32::try_from($s.max_header_bytes).unwrap_or(u32::MAX))
            // Windows sized for streaming large bodies without stalling on WINDOW_UPDATEs.
            .initial_stream_window_size(1024 * 1024)
            .initial_connection_window_size(4 * 1024 * 1024)
            .max_pending_accept_reset_streams(Some(64))
            // Streams we reset for the client's errors; resets the client sends over time
            // are budgeted by the watchdog (see `crate::transport::limits`).
            .max_local_error_reset_streams(Some(64))
            .keep_alive_interval(Some($s.idle_timeout / 2))
            .keep_alive_timeout(Duration::from_secs(20))
    };
}

/// Build hyper's HTTP/2 connection builder, for connections whose ALPN says `h2` (their
/// preface already checked, see [`crate::transport::preface`]): served without
/// hyper-util's auto builder, an h2 connection's task holds no HTTP/1.1 state and its
/// reads go through no version-sniffing wrapper.
pub fn http2_builder(s: &ServerSettings) -> hyper::server::conn::http2::Builder<TokioExecutor> {
    let mut b = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    h2_settings!(b, s);
    b
}

/// Build the hyper-util auto (h1 + h2) connection builder, for connections that
/// negotiated no ALPN protocol.
pub fn http_builder(s: &ServerSettings) -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        // hyper arms this timer whenever it waits for a request head, including on an idle
        // keep-alive connection; the watchdog below enforces the real header timeout, so
        // hyper's is only a backstop at the larger of the two.
        .header_read_timeout(s.header_read_timeout.max(s.idle_timeout))
        // A request head larger than the read buffer gets 431 from hyper.
        .max_buf_size(s.max_header_bytes.max(HYPER_MIN_BUF))
        .keep_alive(true);
    h2_settings!(b.http2(), s);
    b
}

/// Counts a request in flight from dispatch until its response body is finished or
/// dropped (so a long download is not "idle").
struct InFlightGuard(Arc<ConnActivity>);

impl InFlightGuard {
    fn new(activity: &Arc<ConnActivity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        activity.dispatched.fetch_add(1, Ordering::Relaxed);
        Self(activity.clone())
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The response body as hyper sees it: the pipeline's body plus the in-flight guard.
pub struct ConnBody {
    inner: Body,
    _guard: Option<InFlightGuard>,
}

impl http_body::Body for ConnBody {
    type Data = bytes::Bytes;
    type Error = crate::body::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// What an upgraded tunnel holds so it still counts as an open connection (permit and
/// gauge) and is closed when the grace period ends. Inserted into upgrade requests only.
#[derive(Clone)]
pub struct TunnelGuard {
    _slot: Arc<ConnSlot>,
    /// Turns true when remaining connections must close.
    pub kill: watch::Receiver<bool>,
}

/// One accepted connection's share of `max_connections` and of the open-connections
/// gauge; released when the last holder (connection task or upgraded tunnel) drops it.
struct ConnSlot {
    _permit: tokio::sync::OwnedSemaphorePermit,
    gauge: prometheus::IntGauge,
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

/// hyper's per-connection service: maps the body, tags the request with [`ConnInfo`],
/// applies the h1 guard's verdicts, tracks in-flight requests, and runs the tower stack.
#[derive(Clone)]
struct ConnService<S> {
    stack: S,
    info: ConnInfo,
    activity: Arc<ConnActivity>,
    slot: Arc<ConnSlot>,
    kill: watch::Receiver<bool>,
    /// HTTP/2: streams can be reset while the connection lives on.
    h2: bool,
    cancelled_total: prometheus::IntCounter,
}

impl<S> hyper::service::Service<Request<Incoming>> for ConnService<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + Unpin
        + 'static,
    S::Future: Send + Unpin + 'static,
{
    type Response = Response<ConnBody>;
    type Error = Infallible;
    type Future = ConnFuture<tower::util::Oneshot<S, Request<Body>>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let guard = InFlightGuard::new(&self.activity);
        // A head was dispatched: whatever the guard saw, it is complete now.
        self.activity.head_pending.store(false, Ordering::Relaxed);
        let refusal = if self.activity.smuggling.load(Ordering::Relaxed) {
            Some(crate::respond::Rejection::BadRequest(
                "Content-Length and Transfer-Encoding together are refused",
            ))
        } else if self.activity.head_too_large.load(Ordering::Relaxed) {
            Some(crate::respond::Rejection::HeaderTooLarge)
        } else if self.activity.unsupported_coding.load(Ordering::Relaxed) {
            Some(crate::respond::Rejection::UnsupportedTransferCoding)
        } else {
            None
        };
        if !self.h2 && asks_close(req.version(), req.headers()) {
            self.activity.close_requested.store(true, Ordering::Relaxed);
        }
        let mut req = req.map(Body::Incoming);
        // A refused request still goes through the stack, so it is counted and logged like
        // any other (the early-refusal step answers it before routing); its connection
        // closes after the answer.
        let refused = refusal.is_some();
        if let Some(rejection) = refusal {
            req.extensions_mut().insert(EarlyRefusal(rejection));
        }
        let upgrade = !refused
            && (req.method() == http::Method::CONNECT
                || req.headers().contains_key(http::header::UPGRADE));
        if upgrade {
            req.extensions_mut().insert(TunnelGuard {
                _slot: self.slot.clone(),
                kill: self.kill.clone(),
            });
        }
        req.extensions_mut().insert(self.info);
        ConnFuture::Serve {
            fut: self.stack.clone().oneshot(req),
            guard: Some(guard),
            upgrade,
            refused,
            deferred: self.h2,
            cancel: CancelGuard::new(
                self.activity.cancelled.clone(),
                self.cancelled_total.clone(),
            ),
        }
    }
}

/// Whether hyper closes an HTTP/1.1 connection after this message: HTTP/1.0 (kept alive
/// only on request, and rare), or a `Connection` header with the `close` option.
fn asks_close(version: http::Version, headers: &http::HeaderMap) -> bool {
    version < http::Version::HTTP_11
        || headers.get_all(http::header::CONNECTION).iter().any(|v| {
            v.as_bytes()
                .split(|&b| b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"))
        })
}

/// A request's future: served by the stack (refused requests too, see [`EarlyRefusal`]).
enum ConnFuture<F> {
    Serve {
        fut: F,
        guard: Option<InFlightGuard>,
        upgrade: bool,
        /// The h1 guard refused the request: the connection ends after the answer.
        refused: bool,
        /// Not polled yet: hyper checks for a RST_STREAM after our first `Pending`, so a
        /// stream reset together with its HEADERS is dropped before any upstream connect.
        deferred: bool,
        cancel: CancelGuard,
    },
}

impl<F: Future<Output = Result<Response<Body>, Infallible>> + Unpin> Future for ConnFuture<F> {
    type Output = Result<Response<ConnBody>, Infallible>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            ConnFuture::Serve {
                fut,
                guard,
                upgrade,
                refused,
                deferred,
                cancel,
            } => {
                if *deferred {
                    *deferred = false;
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                let Ok(mut resp) = std::task::ready!(Pin::new(fut).poll(cx));
                let stopped = guard
                    .as_ref()
                    .is_some_and(|g| g.0.guard_stopped.load(Ordering::Relaxed));
                if *refused
                    || ((*upgrade || stopped)
                        && resp.status() != http::StatusCode::SWITCHING_PROTOCOLS)
                {
                    // The h1 guard stopped following the stream (at an upgrade request that
                    // was then declined, or at input it could not follow): end the
                    // connection, so nothing it could not check reaches the upstream.
                    resp.headers_mut().insert(
                        http::header::CONNECTION,
                        http::HeaderValue::from_static("close"),
                    );
                    if let Some(g) = guard.as_ref() {
                        g.0.close_requested.store(true, Ordering::Relaxed);
                    }
                }
                cancel.answered();
                let guard = guard.take();
                Poll::Ready(Ok(resp.map(|inner| ConnBody {
                    inner,
                    _guard: guard,
                })))
            }
        }
    }
}

/// Signals for the accept loop and its connections.
#[derive(Debug, Clone)]
pub struct Shutdown {
    /// true = stop accepting and close connections gracefully.
    pub drain: watch::Receiver<bool>,
    /// true = drop whatever is still open (the grace period is over).
    pub kill: watch::Receiver<bool>,
}

/// Accept until told to drain; serve each connection in its own task, on the runtime this
/// loop runs on. `worker` labels the loop's accepts (`accessgate_worker_connections_total`).
#[allow(clippy::too_many_arguments)]
pub async fn run<S>(
    listener: TcpListener,
    tls: Arc<ArcSwap<ServerConfig>>,
    settings: ServerSettings,
    stack: S,
    metrics: Metrics,
    worker: usize,
    permits: Arc<Semaphore>,
    mut shutdown: Shutdown,
) where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + Sync
        + Unpin
        + 'static,
    S::Future: Send + Unpin + 'static,
{
    let builder = Arc::new(Builders {
        auto: http_builder(&settings),
        h1: http1_builder(&settings),
        h2: http2_builder(&settings),
    });
    let pressure = Pressure::new(metrics.open_connections.clone(), settings.max_connections);
    let cancelled_total = metrics.requests_total.with_label_values(&["", "cancelled"]);
    let accepted_here = metrics
        .worker_connections_total
        .with_label_values(&[&worker.to_string()]);
    let settings = Arc::new(settings);
    loop {
        if *shutdown.drain.borrow() {
            break;
        }
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.drain.changed() => break,
        };
        // The slot is taken after the accept, not before: with one accept loop per worker
        // a slot held by a loop whose listener gets no connection would strand
        // connections queued at another worker. A connection past the limit waits here,
        // unserved (its handshake does not start), and the loop accepts nothing more
        // until it has a slot: at most one such connection per accept loop.
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = shutdown.drain.changed() => break,
        };
        metrics.connections_total.inc();
        accepted_here.inc();
        let gauge = metrics.open_connections.clone();
        gauge.inc();
        let slot = Arc::new(ConnSlot {
            _permit: permit,
            gauge,
        });
        let tls = tls.load_full();
        let builder = builder.clone();
        let settings = settings.clone();
        let stack = stack.clone();
        let shutdown = shutdown.clone();
        let hs_failures = metrics.tls_handshake_failures_total.clone();
        let pressure = pressure.clone();
        let cancelled_total = cancelled_total.clone();
        tokio::spawn(async move {
            let accepted = Accepted {
                stream,
                peer,
                slot,
                pressure,
                cancelled_total,
            };
            serve_connection(
                accepted,
                tls,
                builder,
                settings,
                stack,
                shutdown,
                hs_failures,
            )
            .await;
        });
    }
}

/// One accepted TCP connection and its share of the connection limit.
struct Accepted {
    stream: TcpStream,
    peer: SocketAddr,
    slot: Arc<ConnSlot>,
    pressure: Pressure,
    cancelled_total: prometheus::IntCounter,
}

/// The connection builders, built once per listener.
struct Builders {
    auto: auto::Builder<TokioExecutor>,
    h1: hyper::server::conn::http1::Builder,
    h2: hyper::server::conn::http2::Builder<TokioExecutor>,
}

/// Handshake, then hand the connection to a task sized for its protocol.
///
/// A spawned task's allocation is the size of its future's largest state for the life of
/// the connection; doing the handshake here and serving in a second task means an idle
/// connection does not keep the handshake's (nor, for HTTP/1.1, HTTP/2's) state alive.
async fn serve_connection<S>(
    accepted: Accepted,
    tls: Arc<ServerConfig>,
    builders: Arc<Builders>,
    settings: Arc<ServerSettings>,
    stack: S,
    mut shutdown: Shutdown,
    hs_failures: prometheus::IntCounter,
) where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + Unpin
        + 'static,
    S::Future: Send + Unpin + 'static,
{
    let Accepted {
        stream,
        peer,
        slot,
        pressure,
        cancelled_total,
    } = accepted;
    let _ = stream.set_nodelay(true);
    let acceptor = TlsAcceptor::from(tls);
    let mut tls_stream = tokio::select! {
        r = tokio::time::timeout(settings.handshake_timeout, acceptor.accept(stream)) => match r {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                hs_failures.inc();
                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                return;
            }
            Err(_) => {
                hs_failures.inc();
                tracing::debug!(%peer, "TLS handshake timed out");
                return;
            }
        },
        _ = shutdown.kill.changed() => return,
    };
    let h2 = tls_stream.get_ref().1.alpn_protocol() == Some(b"h2");
    let tls_alpn_h1 = tls_stream.get_ref().1.alpn_protocol() == Some(b"http/1.1");
    if h2 {
        let checked = tokio::select! {
            r = expect_preface(&mut tls_stream, settings.header_read_timeout) => r,
            _ = shutdown.kill.changed() => return,
        };
        if let Err(e) = checked {
            tracing::debug!(%peer, error = ?e, "no HTTP/2 preface; closing");
            return;
        }
    }
    let activity = Arc::new(ConnActivity::default());
    let tracked = Tracked {
        inner: Rewind::new(tls_stream, h2),
        activity: activity.clone(),
        guard: (!h2).then(|| H1Guard::new(settings.max_header_bytes)),
    };
    let svc = ConnService {
        stack,
        // An IPv4 client on a dual-stack listener arrives as ::ffff:a.b.c.d; every address
        // comparison (trusted proxies, locations) is made on the IPv4 form.
        info: ConnInfo {
            peer: SocketAddr::new(peer.ip().to_canonical(), peer.port()),
            tls: true,
        },
        activity: activity.clone(),
        slot,
        kill: shutdown.kill.clone(),
        h2,
        cancelled_total,
    };
    if tls_alpn_h1 {
        // Parked between requests: see `crate::transport::park`.
        tokio::spawn(async move {
            let make = move |io| {
                builders
                    .h1
                    .serve_connection(io, svc.clone())
                    .with_upgrades()
            };
            serve_h1(tracked, make, &settings, shutdown, peer, pressure).await;
        });
    } else if h2 {
        // Built here and borrowed in place by the task (hyper's h2 connection is `Unpin`),
        // so the task's state holds it once, not also the IO and service it was built from.
        let mut conn = builders.h2.serve_connection(TokioIo::new(tracked), svc);
        tokio::spawn(async move {
            drive(
                Pin::new(&mut conn),
                activity,
                &settings,
                shutdown,
                peer,
                pressure,
            )
            .await;
        });
    } else {
        tokio::spawn(async move {
            let conn = std::pin::pin!(
                builders
                    .auto
                    .serve_connection_with_upgrades(TokioIo::new(tracked), svc)
            );
            drive(conn, activity, &settings, shutdown, peer, pressure).await;
        });
    }
}
