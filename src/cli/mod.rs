//! The command line's own code: everything `main.rs` dispatches to that is not the gateway
//! itself. Nothing in the request pipeline imports from here; the dependency points the
//! other way (cli -> gateway -> stages).
//!
//! - [`commands`]: each subcommand's entry point (exit codes, messages).
//! - [`check`]: `accessgate check`.
//! - [`eval`] and [`whatif`]: `accessgate eval` and `accessgate test-policies` (What If).
//! - [`demo`], [`demo_scenarios`] and [`demo_state`]: `accessgate demo`, its echo upstream
//!   and its state with times relative to its start.
//! - [`devcerts`]: `accessgate dev-certs` (DEV ONLY material).
//! - [`import_policies`] and [`import_graph`]: `accessgate import-policies` (Entra
//!   Conditional Access policies as `[[policies]]`).
//! - [`runtime`]: the tokio runtime sized from the config.
//! - [`sync`]: `accessgate sync`, the state connector publishing to a file or Redis.

pub mod check;
pub mod commands;
pub mod demo;
pub mod demo_scenarios;
pub mod demo_state;
pub mod devcerts;
pub mod eval;
pub mod import_graph;
pub mod import_policies;
pub mod runtime;
pub mod sync;
pub mod whatif;
