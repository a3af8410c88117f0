//! The command line's own code: everything `main.rs` dispatches to that is not the gateway
//! itself. Nothing in the request pipeline imports from here; the dependency points the
//! other way (cli -> gateway -> stages).
//!
//! - [`check`]: `accessgate check`.
//! - [`eval`] and [`whatif`]: `accessgate eval` and `accessgate test-policies` (What If).
//! - [`demo`] and [`demo_scenarios`]: `accessgate demo` and its echo upstream.
//! - [`devcerts`]: `accessgate dev-certs` (DEV ONLY material).
//! - [`import_policies`] and [`import_graph`]: `accessgate import-policies` (Entra
//!   Conditional Access policies as `[[policies]]`).
//! - [`runtime`]: the tokio runtime sized from the config.

pub mod check;
pub mod demo;
pub mod demo_scenarios;
pub mod devcerts;
pub mod eval;
pub mod import_graph;
pub mod import_policies;
pub mod runtime;
pub mod whatif;
