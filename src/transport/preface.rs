//! The HTTP/2 client preface, checked before hyper sees an `h2` connection.
//!
//! hyper-util's auto server chooses HTTP/1.1 or HTTP/2 by sniffing the first bytes, not by
//! ALPN: a client that negotiated `h2` and then spoke HTTP/1.1 was served as HTTP/1.1
//! without the h1 guard (which only follows connections that negotiated HTTP/1.1), and a
//! broken preface was closed without the GOAWAY RFC 9113 section 3.4 asks for (h2spec
//! 3.5). So an `h2` connection must start with the preface within `header_read_timeout`;
//! otherwise it gets our (empty) SETTINGS and a GOAWAY(PROTOCOL_ERROR), and is closed.
//! The bytes read are replayed to hyper by [`Rewind`].

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

/// RFC 9113 section 3.4.
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// An empty SETTINGS frame (the server preface) then GOAWAY(last stream 0, PROTOCOL_ERROR).
const SETTINGS_THEN_GOAWAY: [u8; 26] = [
    0, 0, 0, 4, 0, 0, 0, 0, 0, // SETTINGS, length 0, stream 0
    0, 0, 8, 7, 0, 0, 0, 0, 0, // GOAWAY, length 8, stream 0
    0, 0, 0, 0, // last stream id 0
    0, 0, 0, 1, // PROTOCOL_ERROR
];

/// Why an `h2` connection was refused before hyper saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrefaceError {
    /// The first bytes are not the preface (GOAWAY sent).
    Invalid,
    /// The preface did not arrive within the timeout, or the client closed first.
    Timeout,
    Closed,
}

/// Read the preface (stopping at the first wrong byte). On a wrong byte, answer with
/// GOAWAY(PROTOCOL_ERROR) before returning the error; the caller closes.
pub async fn expect_preface<T: AsyncRead + AsyncWrite + Unpin>(
    io: &mut T,
    timeout: Duration,
) -> Result<(), PrefaceError> {
    let mut got = [0u8; 24];
    let mut n = 0;
    let read = async {
        while n < got.len() {
            let k = io
                .read(&mut got[n..])
                .await
                .map_err(|_| PrefaceError::Closed)?;
            if k == 0 {
                return Err(PrefaceError::Closed);
            }
            n += k;
            if got[..n] != PREFACE[..n] {
                return Err(PrefaceError::Invalid);
            }
        }
        Ok(())
    };
    match tokio::time::timeout(timeout, read).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(PrefaceError::Invalid)) => {
            // Best effort, bounded: the client may not read.
            let _ = tokio::time::timeout(timeout, async {
                io.write_all(&SETTINGS_THEN_GOAWAY).await?;
                io.flush().await?;
                io.shutdown().await
            })
            .await;
            Err(PrefaceError::Invalid)
        }
        Ok(Err(e)) => Err(e),
        Err(_) => Err(PrefaceError::Timeout),
    }
}

/// An IO that first yields the bytes already read from it (the preface of an `h2`
/// connection, or the byte a parked HTTP/1.1 connection waited for, see
/// [`Rewind::poll_fill`]), then the stream itself. The bytes live inline: no allocation.
pub struct Rewind<T> {
    inner: T,
    replay: [u8; PREFACE.len()],
    start: u8,
    end: u8,
}

impl<T> Rewind<T> {
    /// `preface_read`: whether [`expect_preface`] consumed the preface from `inner`.
    pub fn new(inner: T, preface_read: bool) -> Self {
        let end = if preface_read { PREFACE.len() as u8 } else { 0 };
        Self {
            inner,
            replay: *PREFACE,
            start: 0,
            end,
        }
    }

    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    fn pending(&self) -> &[u8] {
        &self.replay[usize::from(self.start)..usize::from(self.end)]
    }
}

impl<T: AsyncRead + Unpin> Rewind<T> {
    /// Wait until at least one byte can be read, reading (and keeping for replay) one
    /// byte if none is held yet. `Ok(false)`: the stream ended. This is how a parked
    /// connection waits for its next request without a read buffer of its own; bytes the
    /// TLS layer already decrypted count as readable, so none is left waiting.
    pub fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
        if self.start < self.end {
            return Poll::Ready(Ok(true));
        }
        let mut one = ReadBuf::new(&mut self.replay[..1]);
        std::task::ready!(Pin::new(&mut self.inner).poll_read(cx, &mut one))?;
        let n = one.filled().len();
        self.start = 0;
        self.end = n as u8;
        Poll::Ready(Ok(n > 0))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Rewind<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let pending = self.pending();
        if !pending.is_empty() {
            let k = pending.len().min(buf.remaining());
            buf.put_slice(&pending[..k]);
            self.start += k as u8;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

super::forward_async_write!(Rewind, inner);
