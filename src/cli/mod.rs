//! Subcommands that are more than a call into the library: argument types, file handling
//! and exit codes.

pub mod import_graph;
pub mod import_policies;
