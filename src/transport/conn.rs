//! Per-connection facts every request on that connection carries.

use std::net::SocketAddr;

/// Inserted into each request's extensions by the HTTP server step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnInfo {
    /// The TCP peer.
    pub peer: SocketAddr,
    /// True when the connection is TLS (always, on the client listener).
    pub tls: bool,
}

/// The client IP the policy engine and `X-Forwarded-For` use: the TCP peer, or the
/// right-most untrusted address of `X-Forwarded-For` when the peer is a trusted proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub std::net::IpAddr);
