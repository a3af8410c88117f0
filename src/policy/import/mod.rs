//! Entra Conditional Access policies -> `[[policies]]` (`accessgate import-policies`).
//!
//! Pure: bytes and facts in, text and reasons out; the CLI (`src/cli/import_policies.rs`)
//! reads the files or Graph and writes the result.
//!
//! - [`entra`]: Graph's `conditionalAccessPolicy` and `namedLocation` JSON, tolerant of
//!   values and properties Graph adds later.
//! - [`map`]: one Entra policy -> one accessgate policy, or the reasons it cannot be one;
//!   it hands `users` / `applications` to `targets`, `locations` to `locations`, and
//!   `grantControls` / `sessionControls` to `controls`.
//! - [`emit`]: the TOML text, with the Entra id and name above each policy.
//!
//! The rule that shapes every decision here: an imported policy is never weaker than
//! Entra's. What accessgate cannot evaluate leaves the policy out with its reason
//! ([`Outcome::Refused`]); what provably cannot reach the gateway (a policy for no
//! resource of ours, for no one, for legacy authentication only) is left out with a
//! notice ([`Outcome::Skipped`]). docs/policies.md holds the whole mapping table.

use std::collections::BTreeMap;

use crate::config::PolicyConfig;

mod controls;
pub mod emit;
pub mod entra;
mod locations;
pub mod map;
mod targets;

pub use locations::{Location, LocationKind, named_locations};
pub use map::{import, resource_map};

/// What the mapping needs to know beside the Entra objects.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// `--resource APP_ID=RESOURCE`: Entra application ids (lower-case) -> resource names.
    pub resources: BTreeMap<String, String>,
    /// The config's routes' resources, in order (to spell out Entra's "All" minus excluded
    /// applications).
    pub route_resources: Vec<String>,
    /// The config's `[approved_apps]` is not empty (`approvedApplication` needs it).
    pub has_approved_apps: bool,
    /// Named locations by id (lower-case); `None` when none were given.
    pub locations: Option<BTreeMap<String, Location>>,
}

/// One Entra policy, mapped.
#[derive(Debug, Clone)]
pub struct Imported {
    pub entra_id: String,
    pub display_name: String,
    /// The policy, as `check` would build it from the emitted TOML.
    pub policy: PolicyConfig,
    /// What a reviewer should know (dropped exclusions that make it stricter, ...).
    pub notes: Vec<String>,
}

/// What became of one Entra policy.
#[derive(Debug, Clone)]
pub enum Outcome {
    Imported(Box<Imported>),
    /// Provably reaches no request the gateway serves; leaving it out loses nothing.
    Skipped {
        entra_id: String,
        display_name: String,
        reason: String,
    },
    /// Uses something accessgate cannot evaluate: leaving it out (or importing the rest)
    /// would enforce less than Entra does.
    Refused {
        entra_id: String,
        display_name: String,
        reasons: Vec<String>,
    },
}

impl Outcome {
    /// `"<id>" ("<displayName>")`, for messages.
    pub fn label(&self) -> String {
        let (id, name) = match self {
            Outcome::Imported(i) => (&i.entra_id, &i.display_name),
            Outcome::Skipped {
                entra_id,
                display_name,
                ..
            }
            | Outcome::Refused {
                entra_id,
                display_name,
                ..
            } => (entra_id, display_name),
        };
        format!("{name:?} ({id})")
    }
}

#[cfg(test)]
mod controls_tests;
#[cfg(test)]
mod locations_tests;
#[cfg(test)]
mod map_tests;
#[cfg(test)]
mod test_support;

#[cfg(test)]
#[path = "emit_tests.rs"]
mod emit_tests;
