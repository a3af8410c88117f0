//! The end-to-end tests, one binary: every module drives the real gateway (or the library
//! behind it) in-process on 127.0.0.1 port 0, with its own upstreams, key servers and state.
//! One binary means [`support`] and the library are linked once, not once per file.
//!
//! - `authn_*`: token validation through the running gateway and through `Authenticator`.
//! - `decisions_*`: Conditional Access decisions end to end (grants, conditions, lifecycle).
//! - `proxy_*`: forwarding, connections, errors, operations of the proxy itself.
//! - `ops`: metrics, admin endpoints, reload, the binary's subcommands.
//! - `observe_phases`: the decision log's phase fields and `Server-Timing`.
//! - `client_compat`: real client libraries (azure-core in Python, MSAL.NET's parser).
//! - `policy_props`, `robustness`: property tests of everything that faces the internet.

mod support;

mod authn_accept;
mod authn_e2e;
mod authn_refusals;
mod authn_rotation;
mod client_compat;
mod decisions_conditions;
mod decisions_grants;
mod decisions_lifecycle;
mod demo;
mod gateway_errors;
mod layout;
mod observe_phases;
mod ops;
mod policy_props;
mod proxy_connections;
mod proxy_errors;
mod proxy_forwarding;
mod proxy_ops;
mod proxy_smoke;
mod robustness;
mod transport_refusals;
