//! What evaluation produces: per-policy results with Graph's names, and one decision.

use std::sync::Arc;

use crate::authn::Principal;
use crate::config::{ChallengeStyle, GrantControl};

use super::compile::PolicySet;

/// Graph's `appliedConditionalAccessPolicy.result`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GraphResult {
    Success,
    Failure,
    NotApplied,
    NotEnabled,
    ReportOnlySuccess,
    ReportOnlyFailure,
    ReportOnlyNotApplied,
}

impl GraphResult {
    pub const ALL: [GraphResult; 7] = [
        Self::Success,
        Self::Failure,
        Self::NotApplied,
        Self::NotEnabled,
        Self::ReportOnlySuccess,
        Self::ReportOnlyFailure,
        Self::ReportOnlyNotApplied,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
            Self::NotApplied => "notApplied",
            Self::NotEnabled => "notEnabled",
            Self::ReportOnlySuccess => "reportOnlySuccess",
            Self::ReportOnlyFailure => "reportOnlyFailure",
            Self::ReportOnlyNotApplied => "reportOnlyNotApplied",
        }
    }

    /// The policy's conditions matched (whatever the grant said).
    pub fn applied(self) -> bool {
        matches!(
            self,
            Self::Success | Self::Failure | Self::ReportOnlySuccess | Self::ReportOnlyFailure
        )
    }
}

/// What a failed check asks of the client. Ordered by strength: when several enabled
/// policies fail, the strongest one decides (block > reauthenticate > step-up > remediate),
/// the first in config order breaking a tie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// 403 until `deadline` (unix seconds).
    Remediate { deadline: i64, retry_after: u64 },
    /// 401 asking for MFA or an authentication context (`max_age` for sign-in frequency).
    StepUp {
        auth_context: Option<Arc<str>>,
        max_age: Option<u64>,
    },
    /// 401 sign-out: a token issued at or after `nbf` is needed.
    Reauthenticate { nbf: i64 },
    /// 403.
    Block,
}

impl Action {
    pub fn strength(&self) -> u8 {
        match self {
            Action::Remediate { .. } => 1,
            Action::StepUp { .. } => 2,
            Action::Reauthenticate { .. } => 3,
            Action::Block => 4,
        }
    }
}

/// A failed check: what to ask for, and the closed-set reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub action: Action,
    pub reason: &'static str,
}

impl Failure {
    pub(crate) fn block(reason: &'static str) -> Self {
        Self {
            action: Action::Block,
            reason,
        }
    }

    /// Keep the stronger of two failures; `self` wins a tie (it came first).
    pub(crate) fn stronger(self, other: Failure) -> Failure {
        if other.action.strength() > self.action.strength() {
            other
        } else {
            self
        }
    }

    /// Keep the weaker of two failures (operator `any`: the easiest way to comply).
    pub(crate) fn weaker(self, other: Failure) -> Failure {
        if other.action.strength() < self.action.strength() {
            other
        } else {
            self
        }
    }
}

/// The decision for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny {
        failure: Failure,
        /// Index of the policy that decided; `None` for continuous access evaluation
        /// (disabled account, revoked sessions), which no policy owns.
        policy: Option<u32>,
    },
}

impl Decision {
    /// The reason label (`"allow"` when allowed).
    pub fn reason(&self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Deny { failure, .. } => failure.reason,
        }
    }

    pub fn is_allow(&self) -> bool {
        matches!(self, Decision::Allow)
    }
}

/// One policy's result for a request. Small and `Copy`: names are read from the
/// [`PolicySet`] by index, so recording a result never allocates or touches a refcount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyResult {
    pub policy: u32,
    pub result: GraphResult,
    /// The first reason that decided it (`user_excluded`, `device_noncompliant`,
    /// `grant_satisfied`, `policy_disabled`, ...).
    pub reason: &'static str,
}

/// One grant control's outcome (What If detail).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlResult {
    pub control: GrantControl,
    pub passed: bool,
    pub reason: &'static str,
}

/// Everything evaluation found for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    pub decision: Decision,
    /// Every candidate policy (those targeting the resource), in config order.
    pub results: Vec<PolicyResult>,
    /// True when state was unavailable and `fail_open` let state-dependent checks pass.
    pub fail_open: bool,
}

/// The challenge style of the token's issuer (for sign-in frequency handling).
pub(crate) fn style_of(set: &PolicySet, principal: &Principal) -> ChallengeStyle {
    set.issuer(principal.issuer_index).style
}
