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
