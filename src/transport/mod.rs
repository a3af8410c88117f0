//! `accept -> tls -> http`: everything before the request pipeline sees a request.
//!
//! - [`server`]: the client-facing listener (accept, connection limits, handshake and header
//!   timeouts, graceful shutdown) and the hyper h1/h2 builder.
//! - [`reuseport`]: one listening socket per worker on the same port (`SO_REUSEPORT`).
//! - `drive`: a served connection under its watchdog and the drain / kill signals.
//! - `park`: HTTP/1.1 connections held without hyper's buffers while they wait.
//! - [`tls`]: rustls server configuration and the process's crypto provider.
//! - [`h1_guard`]: the HTTP/1.1 request-smuggling guard in front of hyper's parser.
//! - [`conn`]: the per-connection facts (`ConnInfo`, `ClientIp`) every request carries.
//! - [`early`]: the first step inside `observe`, answering the h1 guard's refusals so
//!   they are counted and logged like every other answer.

/// `AsyncWrite` for a read-side wrapper: every write call goes straight to its `$field`
/// (the wrappers watch or replay what is read; writes pass untouched).
macro_rules! forward_async_write {
    ($ty:ident, $field:ident) => {
        impl<T: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for $ty<T> {
            fn poll_write(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                std::pin::Pin::new(&mut self.$field).poll_write(cx, buf)
            }

            fn poll_write_vectored(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                bufs: &[std::io::IoSlice<'_>],
            ) -> std::task::Poll<std::io::Result<usize>> {
                std::pin::Pin::new(&mut self.$field).poll_write_vectored(cx, bufs)
            }

            fn is_write_vectored(&self) -> bool {
                self.$field.is_write_vectored()
            }

            fn poll_flush(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::pin::Pin::new(&mut self.$field).poll_flush(cx)
            }

            fn poll_shutdown(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::pin::Pin::new(&mut self.$field).poll_shutdown(cx)
            }
        }
    };
}
use forward_async_write;

mod activity;
pub mod conn;
mod drive;
pub mod early;
pub mod h1_guard;
pub mod limits;
mod park;
pub mod preface;
pub mod reuseport;
pub mod server;
pub mod tls;
