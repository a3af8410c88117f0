//! # accessgate
//!
//! A Conditional Access gateway: a TLS reverse proxy that validates the bearer token on
//! every request, checks the caller's managed-app and device-compliance state against
//! cached policy state, and forwards, blocks, asks for remediation, or forces a fresh sign-in.
//!
//! The request path, each step a tower layer testable alone:
//!
//! ```text
//! accept -> tls -> http -> route -> authenticate -> authorize -> forward
//!                                    (any rejection -> respond)
//! ```

pub mod authn;
pub mod body;
pub mod config;
pub mod conn;
pub mod ids;
pub mod metrics;
pub mod policy;
pub mod respond;
pub mod route;
pub mod snapshot;
pub mod authz;
pub mod state;
