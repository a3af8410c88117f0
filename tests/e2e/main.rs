//! The end-to-end tests, one binary: every module drives the real gateway (or the library
//! behind it) in-process on 127.0.0.1 port 0, with its own upstreams, key servers and state.
//! One binary means [`support`] and the library are linked once, not once per file.
//!
//! - `authn_*`: token validation through the running gateway and through `Authenticator`.
//! - `decisions_*`: Conditional Access decisions end to end (grants, conditions, lifecycle).
//! - `proxy_*`: forwarding, connections, errors, operations of the proxy itself.
//! - `ops`: metrics, admin endpoints, reload, the binary's subcommands.
//! - `runtime_workers`: `[runtime] scheduler = "per_core"`: every worker accepts and drains.
//! - `observe_phases`: the decision log's phase fields and `Server-Timing`.
//! - `fleet`: `accessgate sync` and gateways following Redis (needs `redis-server`);
//!   `fleet_early`: critical changes reaching gateways while their round is still held.
//! - `client_compat`: real client libraries (azure-core in Python, MSAL.NET's parser).
//! - `policy_props`, `robustness`: property tests of everything that faces the internet.
//! - `graph_double_selftest`: the Microsoft Graph double (`tests/graph_double/`) checks itself.
//! - `graph_e2e`: `[state] source = "graph"` against that double, through the gateway.
//! - `hardening`: issue 14's findings and the identity assertion the upstream verifies.
//! - `import_policies`: `accessgate import-policies` from Entra JSON files and from a
//!   Conditional Access double (`import_policies/ca_double.rs`).

mod support;

// The Graph double lives outside e2e so that benches can include it too.
#[path = "../graph_double/mod.rs"]
mod graph_double;

mod authn_accept;
mod authn_e2e;
mod authn_refusals;
mod authn_rotation;
mod client_compat;
mod decisions_conditions;
mod decisions_grants;
mod decisions_lifecycle;
mod demo;
mod fleet;
mod fleet_early;
mod fleet_graph;
mod fleet_sync;
mod gateway_errors;
mod graph_double_selftest;
mod graph_e2e;
mod hardening;
mod import_policies;
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
mod runtime_workers;
mod transport_hardening;
mod transport_refusals;
