//! The pure policy engine: state model, compiled policies, evaluation, decision. No I/O.
//!
//! - [`state`]: the loaded `state.json` (users, devices, app protection policies, app
//!   registrations), interned and indexed; [`state_load`] parses and validates it;
//!   [`state_batch`] + [`state_overlay`] apply a batch of changed records without a reload.
//! - [`compile`]: `[[policies]]` compiled into an index by resource, with user, app and
//!   group ids numbered once.
//! - [`eval`]: one request against its candidate policies -> [`Evaluation`].
//! - [`controls`]: grant controls and the compliance lifecycle (remediate, then sign out).
//! - [`decision`]: Graph-named per-policy results and the one decision. How a decision
//!   becomes an HTTP refusal is `crate::authorize::rejection`: the engine imports nothing
//!   from `respond`, `http`, `hyper` or `tokio` (tests/e2e/layout.rs checks it).
//!
//! The semantics mirror Entra Conditional Access (DESIGN.md "Semantics"): exclude always
//! wins, every applicable enabled policy must be satisfied, a block wins, report-only
//! policies are recorded but never decide, and not knowing something never loosens.

pub mod compile;
pub mod controls;
pub mod decision;
pub mod eval;
pub mod fasthash;
pub mod import;
pub mod state;
pub mod state_batch;
pub mod state_load;
pub mod state_overlay;
pub mod values;

pub use compile::{CompiledGrant, CompiledPolicy, PolicySet};
pub use decision::{
    Action, ControlResult, Decision, Evaluation, Failure, GraphResult, PolicyResult,
};
pub use eval::{EvalInput, PolicyDetail, evaluate, evaluate_detailed};
pub use state::{
    AppProtectionPolicy, AppRegistration, ComplianceState, Device, PolicyState, RemediationState,
    StateCounts, User,
};
pub use state_batch::ChangeBatch;
pub use state_load::{RawAppPolicy, RawDevice, RawRegistration, RawUser, StateBuilder};
pub use values::Version;

#[cfg(test)]
mod test_support;
