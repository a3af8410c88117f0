//! What one connection's IO has seen, shared by the IO wrapper, the service and the
//! watchdog of `crate::transport::server` (split from it to keep files readable).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};

use crate::transport::h1_guard::H1Guard;

/// Per-connection state shared by the IO wrapper, the service and the watchdog.
#[derive(Debug, Default)]
pub(crate) struct ConnActivity {
    /// Requests dispatched so far (the watchdog's idle clock resets when it moves).
    pub(crate) dispatched: AtomicU64,
    /// Requests whose response body has not finished (or been dropped) yet.
    pub(crate) in_flight: AtomicU32,
    /// An HTTP/1.1 request head has started and not ended (from the h1 guard).
    pub(crate) head_pending: AtomicBool,
    /// An HTTP/1.1 request head carried both Content-Length and Transfer-Encoding.
    pub(crate) smuggling: AtomicBool,
    /// An HTTP/1.1 request head exceeded `max_header_bytes`.
    pub(crate) head_too_large: AtomicBool,
    /// An HTTP/1.1 request used a transfer coding other than plain `chunked`.
    pub(crate) unsupported_coding: AtomicBool,
    /// The h1 guard stopped following the stream (upgrade, or input it cannot follow):
    /// the connection closes after the current response, so nothing unchecked follows.
    pub(crate) guard_stopped: AtomicBool,
    /// Requests dropped before they answered (the client reset the stream or left).
    pub(crate) cancelled: Arc<AtomicU32>,
    /// HTTP/1.1: requests the h1 guard saw end (head and body).
    pub(crate) completed: AtomicU64,
    /// HTTP/1.1: the h1 guard is between requests (see [`H1Guard::at_boundary`]).
    pub(crate) at_boundary: AtomicBool,
    /// A request or response asked for the connection to close after it (`Connection:
    /// close`, HTTP/1.0): hyper closes it, so it must not be parked and kept.
    pub(crate) close_requested: AtomicBool,
    /// Set by the driver while it ends hyper's connection to park it: the IO's shutdown
    /// is then skipped and the stream handed back (`crate::transport::park`).
    pub(crate) parking: AtomicBool,
}

impl ConnActivity {
    /// True when hyper's HTTP/1.1 connection holds nothing unanswered or unread: every
    /// request the guard saw end was dispatched, none is in flight, the guard is between
    /// requests, and nothing asked for the connection to close. Only then can hyper's
    /// connection be ended and rebuilt later without losing or re-ordering a byte.
    pub(crate) fn h1_parkable(&self) -> bool {
        self.in_flight.load(Ordering::Relaxed) == 0
            && self.at_boundary.load(Ordering::Relaxed)
            && self.completed.load(Ordering::Relaxed) == self.dispatched.load(Ordering::Relaxed)
            && !self.head_pending.load(Ordering::Relaxed)
            && !self.guard_stopped.load(Ordering::Relaxed)
            && !self.close_requested.load(Ordering::Relaxed)
            && !self.smuggling.load(Ordering::Relaxed)
            && !self.head_too_large.load(Ordering::Relaxed)
            && !self.unsupported_coding.load(Ordering::Relaxed)
    }
}

/// IO wrapper that, on HTTP/1.1 connections, follows the request stream with the
/// [`H1Guard`] and publishes what it sees for the service and the watchdog.
pub(crate) struct Tracked<T> {
    pub(crate) inner: T,
    pub(crate) activity: Arc<ConnActivity>,
    pub(crate) guard: Option<H1Guard>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Tracked<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        let this = &mut *self;
        if let Some(g) = this.guard.as_mut()
            && buf.filled().len() > before
        {
            g.feed(&buf.filled()[before..]);
            let a = &this.activity;
            a.head_pending.store(g.in_head(), Ordering::Relaxed);
            a.at_boundary.store(g.at_boundary(), Ordering::Relaxed);
            a.completed.store(g.completed(), Ordering::Relaxed);
            if g.conflict() {
                a.smuggling.store(true, Ordering::Relaxed);
            }
            if g.too_large() {
                a.head_too_large.store(true, Ordering::Relaxed);
            }
            if g.unsupported_coding() {
                a.unsupported_coding.store(true, Ordering::Relaxed);
            }
            if g.stopped() {
                // A head the guard gave up on mid-way is still unfinished: keep the header
                // timer running until hyper dispatches (or refuses) it.
                a.head_pending.store(g.stopped_in_head(), Ordering::Relaxed);
                a.guard_stopped.store(true, Ordering::Relaxed);
                a.at_boundary.store(false, Ordering::Relaxed);
                this.guard = None;
            }
        }
        r
    }
}

super::forward_async_write!(Tracked, inner);
