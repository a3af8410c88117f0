//! HTTP/1.1 connections parked while they wait for a request.
//!
//! hyper's HTTP/1.1 connection owns an 8 KiB read buffer and an 8 KiB head write buffer
//! from its first read to its end, whatever the connection is doing; neither size can be
//! configured. Most of a keep-alive connection's life is spent waiting, so a connection
//! is *parked* instead: without hyper's connection (and its buffers) while no request is
//! on the wire, and with a new one built when the next request's first byte arrives
//! ([`Rewind::poll_fill`] waits for it without a buffer of its own and replays it).
//!
//! - A new connection starts parked: hyper is built when the first byte arrives.
//! - A served connection is parked once hyper holds nothing unread or unanswered
//!   ([`ConnActivity::h1_parkable`]) and it has been quiet: no new request between two
//!   checks [`QUICK_PARK`] apart, made once after hyper is built (so a client that sends
//!   one request and waits gives its buffers back within a fifth of a second, and a burst
//!   of such clients does not hold thousands of them at once), or afterwards for a whole
//!   watchdog tick (a busy keep-alive connection is checked by the watchdog alone, so it
//!   is not rebuilt between requests). hyper's connection is ended with a graceful
//!   shutdown whose IO shutdown is skipped, and the [`Lease`] hands the stream back when
//!   hyper drops it.
//! - The watchdog keeps running across parks, so `header_read_timeout` (the first
//!   request must start in time; a started head must complete in time) and
//!   `idle_timeout` hold exactly as they do for a connection hyper keeps.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::oneshot;

use crate::transport::activity::{ConnActivity, Tracked};
use crate::transport::drive::{Expired, GracefulConn, Watchdog};
use crate::transport::limits::Pressure;
use crate::transport::preface::Rewind;
use crate::transport::server::{ServerSettings, Shutdown};

/// The connection's IO as hyper holds it: handed back through `back` when hyper drops it
/// after the driver ended hyper's connection to park it (and only then).
pub(super) struct Lease<T> {
    io: Option<Tracked<T>>,
    back: Option<oneshot::Sender<Tracked<T>>>,
}

impl<T: Unpin> Lease<T> {
    fn io(&mut self) -> io::Result<Pin<&mut Tracked<T>>> {
        match self.io.as_mut() {
            Some(io) => Ok(Pin::new(io)),
            None => Err(io::Error::other("connection IO already handed back")),
        }
    }
}

impl<T> Lease<T> {
    fn parking(&self) -> bool {
        self.io
            .as_ref()
            .is_some_and(|io| io.activity.parking.load(Ordering::Relaxed))
    }
}

impl<T> Drop for Lease<T> {
    fn drop(&mut self) {
        if self.parking()
            && let (Some(io), Some(back)) = (self.io.take(), self.back.take())
        {
            // The driver is waiting for it; if it is gone, the stream just closes.
            let _ = back.send(io);
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Lease<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.io()?.poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Lease<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.io()?.poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.io()?.poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.as_ref().is_some_and(|io| io.is_write_vectored())
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io()?.poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.parking() {
            // hyper ends its connection because we park it: the stream stays open.
            return Poll::Ready(Ok(()));
        }
        self.io()?.poll_shutdown(cx)
    }
}

/// The early park check's interval: one pair of checks this far apart follows each build
/// of hyper's connection (see the module doc).
const QUICK_PARK: Duration = Duration::from_millis(100);

/// Start parking: hyper ends its connection and the [`Lease`] hands the stream back.
fn begin_park<C: GracefulConn>(activity: &ConnActivity, conn: Pin<&mut C>) {
    activity.parking.store(true, Ordering::Relaxed);
    conn.shutdown();
}

/// Close a parked connection politely (TLS close_notify, then TCP FIN), as hyper does for
/// an idle connection; bounded, since the client may not read.
async fn close<T: AsyncWrite + Unpin>(io: &mut T, within: Duration, shutdown: &mut Shutdown) {
    tokio::select! {
        _ = tokio::time::timeout(within, io.shutdown()) => {}
        _ = shutdown.kill.changed() => {}
    }
}

/// Serve an HTTP/1.1 connection, parked whenever it waits for a request (module doc).
/// `make` builds hyper's connection around the stream each time a request arrives.
pub(super) async fn serve_h1<T, F, C>(
    mut io: Tracked<Rewind<T>>,
    make: F,
    settings: &ServerSettings,
    mut shutdown: Shutdown,
    peer: SocketAddr,
    pressure: Pressure,
) where
    T: AsyncRead + AsyncWrite + Unpin,
    F: Fn(TokioIo<Lease<Rewind<T>>>) -> C,
    C: GracefulConn,
{
    let activity: std::sync::Arc<ConnActivity> = io.activity.clone();
    let mut dog = Watchdog::new(activity.clone(), settings, pressure);
    let sleep = tokio::time::sleep(dog.tick());
    tokio::pin!(sleep);
    let linger = settings.header_read_timeout;
    loop {
        // Parked: wait for the next request's first byte under the watchdog.
        loop {
            if *shutdown.kill.borrow() {
                return;
            }
            if *shutdown.drain.borrow() {
                close(&mut io, linger, &mut shutdown).await;
                return;
            }
            tokio::select! {
                r = std::future::poll_fn(|cx| io.inner.poll_fill(cx)) => match r {
                    Ok(true) => break,
                    Ok(false) => return,
                    Err(e) => {
                        tracing::debug!(%peer, error = %e, "connection ended with error");
                        return;
                    }
                },
                () = &mut sleep => {
                    sleep.as_mut().reset(tokio::time::Instant::now() + dog.tick());
                    match dog.check() {
                        None => {}
                        Some(Expired::Idle) => {
                            close(&mut io, linger, &mut shutdown).await;
                            return;
                        }
                        Some(why) => {
                            tracing::debug!(%peer, ?why, "closing parked connection");
                            return;
                        }
                    }
                }
                // Seen at the top of the loop.
                _ = shutdown.drain.changed() => {}
                _ = shutdown.kill.changed() => return,
            }
        }

        // A request is arriving: serve it (and what follows) with hyper until the
        // connection ends, or is quiet again and can be parked.
        let (back, mut returned) = oneshot::channel();
        let lease = Lease {
            io: Some(io),
            back: Some(back),
        };
        let mut conn = Box::pin(make(TokioIo::new(lease)));
        let mut closing = false;
        let mut parking = false;
        // The early park check: `Some(n)` once the first of its two checks saw `n`
        // requests dispatched; disarmed after the second.
        let quick = tokio::time::sleep(QUICK_PARK);
        tokio::pin!(quick);
        let mut quick_armed = true;
        let mut quick_seen: Option<u64> = None;
        loop {
            tokio::select! {
                res = conn.as_mut() => {
                    if let Err(e) = res {
                        tracing::debug!(%peer, error = %e, "connection ended with error");
                        parking = false;
                    }
                    break;
                }
                () = &mut quick, if quick_armed && !closing => {
                    let dispatched = activity.dispatched.load(Ordering::Relaxed);
                    match quick_seen {
                        None => {
                            quick_seen = Some(dispatched);
                            quick.as_mut().reset(tokio::time::Instant::now() + QUICK_PARK);
                        }
                        Some(before) => {
                            quick_armed = false;
                            if before == dispatched && activity.h1_parkable() {
                                begin_park(&activity, conn.as_mut());
                                closing = true;
                                parking = true;
                            }
                        }
                    }
                }
                () = &mut sleep, if !closing => {
                    sleep.as_mut().reset(tokio::time::Instant::now() + dog.tick());
                    match dog.check() {
                        None if dog.quiet() && activity.h1_parkable() => {
                            begin_park(&activity, conn.as_mut());
                            closing = true;
                            parking = true;
                        }
                        None => {}
                        Some(Expired::Idle) => {
                            conn.as_mut().shutdown();
                            closing = true;
                        }
                        Some(why) => {
                            tracing::debug!(%peer, ?why, "closing connection");
                            return;
                        }
                    }
                }
                _ = shutdown.drain.changed(), if !closing => {
                    conn.as_mut().shutdown();
                    closing = true;
                }
                _ = shutdown.kill.changed() => return,
            }
        }
        // Dropping hyper's connection drops the lease, which hands the stream back.
        drop(conn);
        activity.parking.store(false, Ordering::Relaxed);
        if !parking {
            return;
        }
        match returned.try_recv() {
            // Checked again: hyper may have read bytes while it finished.
            Ok(back) if activity.h1_parkable() => io = back,
            _ => return,
        }
    }
}

#[cfg(test)]
#[path = "park_tests.rs"]
mod tests;
