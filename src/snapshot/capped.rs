//! A connector that caps the TCP connections open to one upstream.
//!
//! hyper-util's pool bounds idle connections but not connections in use or being opened,
//! so a client that opens and cancels requests fast (a paced rapid reset) could make the
//! gateway open one upstream connection per request and exhaust source ports. Each
//! connection holds a permit of the route's semaphore for its whole life (in use or
//! pooled); a connect that finds none free waits for one up to `connect_timeout`, then
//! fails as a connect error (502), while hyper-util hands it a pooled connection if one
//! comes back first.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::Service;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// [`HttpConnector`] plus the per-upstream connection cap.
#[derive(Clone, Debug)]
pub struct CappedConnector {
    inner: HttpConnector,
    permits: Arc<Semaphore>,
    wait: Duration,
}

impl CappedConnector {
    pub fn new(inner: HttpConnector, max: usize, wait: Duration) -> Self {
        Self {
            inner,
            permits: Arc::new(Semaphore::new(max.max(1))),
            wait,
        }
    }
}

/// An upstream connection and its share of the cap, released when hyper drops it.
#[derive(Debug)]
pub struct CappedStream {
    io: TokioIo<TcpStream>,
    _permit: OwnedSemaphorePermit,
}

impl Service<Uri> for CappedConnector {
    type Response = CappedStream;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<CappedStream, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let permits = self.permits.clone();
        let wait = self.wait;
        // The permit is taken before the connect starts, so a cancelled request that was
        // waiting for one never opens a socket.
        let mut inner = self.inner.clone();
        Box::pin(async move {
            let permit = match tokio::time::timeout(wait, permits.acquire_owned()).await {
                Ok(Ok(p)) => p,
                Ok(Err(_)) => return Err("upstream connection limit closed".into()),
                Err(_) => return Err("upstream connection limit reached".into()),
            };
            let io = inner.call(dst).await.map_err(BoxError::from)?;
            Ok(CappedStream {
                io,
                _permit: permit,
            })
        })
    }
}

impl Connection for CappedStream {
    fn connected(&self) -> Connected {
        self.io.connected()
    }
}

impl Read for CappedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl Write for CappedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
}
