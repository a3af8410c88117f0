//! The life of a served connection after its handshake: hyper's connection future under
//! the per-connection watchdog (`header_read_timeout`, `idle_timeout`) and the listener's
//! drain and kill signals. Generic over the connection type so HTTP/1.1 connections can be
//! served by hyper's h1 builder directly and the rest by hyper-util's auto builder.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::TokioExecutor;
use hyper_util::server::conn::auto;

use crate::transport::activity::ConnActivity;
use crate::transport::limits::{CancelBudget, Pressure};
use crate::transport::server::{ServerSettings, Shutdown};

/// Why the watchdog ended a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Expired {
    /// An HTTP/1.1 request head did not complete within `header_read_timeout`: drop.
    HeaderTimeout,
    /// No request in flight and none started for `idle_timeout` (or, near
    /// `max_connections`, for the shorter of the two timeouts): close politely.
    Idle,
    /// More cancelled streams than the budget allows: drop.
    TooManyCancelled,
}

/// The per-connection watchdog, checked every [`Watchdog::tick`] by the task serving the
/// connection (one timer per connection, reset after each check).
///
/// Idleness is judged by requests, not bytes: HTTP/2 PINGs (ours or the client's) keep
/// the socket busy without the connection doing any work.
/// The first request must start within `header` of the handshake: a connection that
/// never sends one does not hold its slot for the idle timeout.
pub(super) struct Watchdog {
    activity: Arc<ConnActivity>,
    header: Duration,
    idle: Duration,
    pressure: Pressure,
    tick: Duration,
    last_dispatched: u64,
    idle_for: Duration,
    head_for: Duration,
    budget: CancelBudget,
}

impl Watchdog {
    pub(super) fn new(
        activity: Arc<ConnActivity>,
        settings: &ServerSettings,
        pressure: Pressure,
    ) -> Self {
        let (header, idle) = (settings.header_read_timeout, settings.idle_timeout);
        // Check at a quarter of the shorter timeout (at most once a second): the timeouts
        // are enforced to within that granularity, at the cost of one timer per connection.
        let tick = (header.min(idle) / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
        let last_dispatched = activity.dispatched.load(Ordering::Relaxed);
        Self {
            activity,
            header,
            idle,
            pressure,
            tick,
            last_dispatched,
            idle_for: Duration::ZERO,
            head_for: Duration::ZERO,
            budget: CancelBudget::default(),
        }
    }

    /// Time between two checks.
    pub(super) fn tick(&self) -> Duration {
        self.tick
    }

    /// True once a whole tick passed with no request dispatched, none in flight and no
    /// head pending.
    pub(super) fn quiet(&self) -> bool {
        self.idle_for >= self.tick
    }

    /// One tick has passed: whether the connection must end.
    pub(super) fn check(&mut self) -> Option<Expired> {
        let activity = &self.activity;
        let tick = self.tick;
        let dispatched = activity.dispatched.load(Ordering::Relaxed);
        let in_flight = activity.in_flight.load(Ordering::Relaxed);
        let head_pending = activity.head_pending.load(Ordering::Relaxed) || dispatched == 0;
        if self
            .budget
            .exceeded(activity.cancelled.load(Ordering::Relaxed), tick)
        {
            return Some(Expired::TooManyCancelled);
        }
        if dispatched != self.last_dispatched || in_flight > 0 || head_pending {
            self.idle_for = Duration::ZERO;
        } else {
            self.idle_for += tick;
        }
        self.last_dispatched = dispatched;
        // A head that started while nothing was in flight must complete in time. (A
        // pipelined head read while a slow response is pending is our delay, not the
        // client's.)
        if head_pending && in_flight == 0 {
            self.head_for += tick;
            if self.head_for >= self.header {
                return Some(Expired::HeaderTimeout);
            }
        } else {
            self.head_for = Duration::ZERO;
        }
        if self.idle_for >= self.idle
            || (self.idle_for >= self.header.min(self.idle) && self.pressure.high())
        {
            return Some(Expired::Idle);
        }
        None
    }
}

/// A served connection the watchdog and the drain can end politely.
pub(super) trait GracefulConn: Future<Output = Result<(), Self::Error>> {
    type Error: std::fmt::Display;
    fn shutdown(self: Pin<&mut Self>);
}

impl<I, S, B> GracefulConn for hyper::server::conn::http1::UpgradeableConnection<I, S>
where
    S: hyper::service::HttpService<Incoming, ResBody = B>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    B: http_body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Error = hyper::Error;
    fn shutdown(self: Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

impl<I, S, B> GracefulConn for hyper::server::conn::http2::Connection<I, S, TokioExecutor>
where
    S: hyper::service::HttpService<Incoming, ResBody = B>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    B: http_body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    TokioExecutor: hyper::rt::bounds::Http2ServerConnExec<S::Future, B>,
{
    type Error = hyper::Error;
    fn shutdown(self: Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

impl<I, S, B> GracefulConn for auto::UpgradeableConnection<'_, I, S, TokioExecutor>
where
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    S::Future: 'static,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    B: http_body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    TokioExecutor: hyper_util::server::conn::auto::HttpServerConnExec<S::Future, B>,
{
    type Error = Box<dyn std::error::Error + Send + Sync>;
    fn shutdown(self: Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

/// Run a connection under its watchdog and the listener's drain / kill signals.
///
/// The connection comes pinned by the caller (`std::pin::pin!` on the expression that
/// builds it), not by value: an async fn keeps a by-value argument and the local it is
/// pinned into as two slots of its state, and the caller's binding a third, so hyper's
/// connection (most of the task) was held three times in every connection's task
/// allocation (`cargo bench --bench conn_memory` measures it).
pub(super) async fn drive<C: GracefulConn>(
    mut conn: Pin<&mut C>,
    activity: Arc<ConnActivity>,
    settings: &ServerSettings,
    mut shutdown: Shutdown,
    peer: SocketAddr,
    pressure: Pressure,
) {
    let mut dog = Watchdog::new(activity, settings, pressure);
    let sleep = tokio::time::sleep(dog.tick());
    tokio::pin!(sleep);
    let mut closing = false;
    if *shutdown.drain.borrow() {
        conn.as_mut().shutdown();
        closing = true;
    }
    loop {
        tokio::select! {
            res = conn.as_mut() => {
                if let Err(e) = res {
                    tracing::debug!(%peer, error = %e, "connection ended with error");
                }
                return;
            }
            () = &mut sleep, if !closing => {
                sleep.as_mut().reset(tokio::time::Instant::now() + dog.tick());
                match dog.check() {
                    None => {}
                    Some(Expired::HeaderTimeout) => {
                        tracing::debug!(%peer, "request head not received in time; closing");
                        return;
                    }
                    Some(Expired::TooManyCancelled) => {
                        tracing::debug!(%peer, "too many cancelled requests; closing");
                        return;
                    }
                    Some(Expired::Idle) => {
                        conn.as_mut().shutdown();
                        closing = true;
                    }
                }
            },
            _ = shutdown.drain.changed(), if !closing => {
                conn.as_mut().shutdown();
                closing = true;
            }
            _ = shutdown.kill.changed() => return,
        }
    }
}
