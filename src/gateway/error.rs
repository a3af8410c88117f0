//! Why the gateway did not start, or refused a reload: typed, so callers (main, tests,
//! the reload loop) can tell a port in use from a bad certificate from a config change
//! that needs a restart, and the message still names the config key.

use std::fmt;
use std::net::SocketAddr;

use crate::snapshot::SnapshotError;
use crate::transport::tls::TlsError;

/// Why the gateway could not start.
#[derive(Debug)]
pub enum StartError {
    /// The TLS certificate or key (`[listen] tls_*`) did not load.
    Tls(TlsError),
    /// The decision log sink (`[log] decisions`) could not be opened.
    DecisionLog(std::io::Error),
    /// Routes, issuers or policies did not build.
    Snapshot(SnapshotError),
    /// A listener could not bind (`key` is `listen.address` or `admin.address`).
    Bind {
        key: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// A bound listener has no local address.
    LocalAddr {
        key: &'static str,
        source: std::io::Error,
    },
    /// A worker thread, its runtime or its listener could not be set up
    /// (`[runtime] scheduler = "per_core"`).
    Workers(std::io::Error),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Tls(e) => write!(f, "{e}"),
            StartError::DecisionLog(e) => write!(f, "decision log: {e}"),
            StartError::Snapshot(e) => write!(f, "{e}"),
            StartError::Bind { key, addr, source } => write!(f, "{key} {addr}: {source}"),
            StartError::LocalAddr { key, source } => write!(f, "{key}: {source}"),
            StartError::Workers(e) => write!(f, "runtime.scheduler: cannot start a worker: {e}"),
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StartError::Tls(e) => Some(e),
            StartError::DecisionLog(e) | StartError::Workers(e) => Some(e),
            StartError::Snapshot(e) => Some(e),
            StartError::Bind { source, .. } | StartError::LocalAddr { source, .. } => Some(source),
        }
    }
}

/// Why a reload was refused; the running config keeps serving either way.
#[derive(Debug)]
pub enum ReloadError {
    /// The change is to something fixed for the process's life; the message says what.
    NeedsRestart(String),
    /// The new TLS certificate or key did not load.
    Tls(TlsError),
    /// The new routes, issuers or policies did not build.
    Snapshot(SnapshotError),
}

impl ReloadError {
    /// Whether `needle` is in the message (for callers and tests that match on text).
    pub fn contains(&self, needle: &str) -> bool {
        self.to_string().contains(needle)
    }
}

impl fmt::Display for ReloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReloadError::NeedsRestart(m) => f.write_str(m),
            ReloadError::Tls(e) => write!(f, "{e}"),
            ReloadError::Snapshot(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ReloadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReloadError::NeedsRestart(_) => None,
            ReloadError::Tls(e) => Some(e),
            ReloadError::Snapshot(e) => Some(e),
        }
    }
}
