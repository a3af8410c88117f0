//! Grant controls and the compliance lifecycle.
//!
//! State facts (is the device compliant, is the app registration healthy) do not depend on
//! which policy asks, so they are computed once per request ([`Facts`]); only the
//! lifecycle (remediation window, sign-out moment) depends on the policy's `remediation`.

use crate::authn::Principal;

use super::compile::{CompiledGrant, CompiledPolicy};
use super::decision::{Action, Failure};
use super::state::{AppRegistration, ComplianceState, Device, PolicyState, RemediationState, User};
use super::values::Version;

/// What state says about one requirement, before a policy's remediation is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fact {
    Pass(&'static str),
    /// Fails whatever the remediation settings.
    Block(&'static str),
    /// Noncompliant since `since` (unknown = `None`): subject to the lifecycle.
    Noncompliant {
        since: Option<i64>,
        remediation: RemediationState,
        reason: &'static str,
    },
}

/// Seconds a remediating client is told to wait before retrying, at most.
pub const MAX_RETRY_AFTER: i64 = 60;

/// The compliance lifecycle (DESIGN.md): 403 remediate until `T + window` while remediation
/// is enabled and pending; then (or at once when it is disabled or failed) the sign-out
/// moment `S` is fixed, a token issued before `S` gets 401 with `nbf = S` (so `nbf > iat`
/// and a fresh token satisfies it), and a token issued at or after `S` gets 403 block,
/// because signing in again cannot fix the device: no sign-in loop.
pub(crate) fn lifecycle(
    since: Option<i64>,
    state: RemediationState,
    remediation_enabled: bool,
    window: i64,
    iat: Option<i64>,
    now: i64,
    reason: &'static str,
) -> Failure {
    // Without the moment it became noncompliant there is no window and no sign-out
    // moment to name: refuse without inviting a sign-in.
    let Some(t) = since else {
        return Failure::block(reason);
    };
    let pending = remediation_enabled && state == RemediationState::Pending;
    let sign_out = if pending { t.saturating_add(window) } else { t };
    if pending && now < sign_out {
        let retry = (sign_out - now).clamp(1, MAX_RETRY_AFTER) as u64;
        return Failure {
            action: Action::Remediate {
                deadline: sign_out,
                retry_after: retry,
            },
            reason,
        };
    }
    match iat {
        Some(iat) if iat < sign_out => Failure {
            action: Action::Reauthenticate { nbf: sign_out },
            reason,
        },
        // Issued at/after the sign-out moment (or undated): a new sign-in cannot help.
        _ => Failure::block(reason),
    }
}

/// Apply a policy's remediation settings to a fact.
pub(crate) fn apply(
    fact: Fact,
    policy: &CompiledPolicy,
    iat: Option<i64>,
    now: i64,
) -> Result<&'static str, Failure> {
    match fact {
        Fact::Pass(r) => Ok(r),
        Fact::Block(r) => Err(Failure::block(r)),
        Fact::Noncompliant {
            since,
            remediation,
            reason,
        } => Err(lifecycle(
            since,
            remediation,
            policy.remediation_enabled,
            policy.remediation_window,
            iat,
            now,
            reason,
        )),
    }
}

/// `compliant_device`: the token's device is in state and compliant (or in grace).
pub(crate) fn device_fact(principal: &Principal, device: Option<&Device>) -> Fact {
    if principal.device.is_none() {
        return Fact::Block("device_unknown");
    }
    let Some(d) = device else {
        return Fact::Block("device_unknown");
    };
    match d.compliance {
        ComplianceState::Compliant | ComplianceState::InGracePeriod => {
            Fact::Pass("device_compliant")
        }
        ComplianceState::Noncompliant => Fact::Noncompliant {
            since: d.noncompliant_since,
            remediation: d.remediation,
            reason: "device_noncompliant",
        },
        ComplianceState::Unknown => Fact::Block("device_unknown"),
        ComplianceState::Conflict | ComplianceState::Error | ComplianceState::ConfigManager => {
            Fact::Block("device_noncompliant")
        }
    }
}

/// `app_protection` (Graph `compliantApplication`), checked strongest-first so the reason
/// names what no remediation can fix before what one can.
pub(crate) fn app_fact(
    principal: &Principal,
    state: &PolicyState,
    user: Option<&User>,
    registration: Option<&AppRegistration>,
    device: Option<&Device>,
    now: i64,
) -> Fact {
    let Some(user) = user else {
        return Fact::Block("app_protection_not_applied");
    };
    if !user.licensed {
        return Fact::Block("user_unlicensed");
    }
    let Some(app) = principal.client_app.as_deref() else {
        return Fact::Block("app_protection_not_applied");
    };
    let platform = registration
        .and_then(|r| r.platform)
        .or_else(|| device.and_then(|d| d.platform));
    let mut targeted = false;
    let mut min_app = None;
    let mut min_os = None;
    let mut offline = i64::MAX;
    for p in state.app_policies_for(app) {
        // Platform unknown (no registration, device not in state): any platform's policy
        // counts, so the answer is "not registered" rather than "not targeted".
        if platform.is_some_and(|pl| pl != p.platform) || !p.covers(user) {
            continue;
        }
        // Several policies covering the same user and app: the strictest setting holds.
        targeted = true;
        offline = offline.min(p.offline_period);
        if let Some(v) = p.minimum_app_version {
            min_app = Some(min_app.map_or(v, |m: Version| m.max(v)));
        }
        if let Some(v) = p.minimum_os_version {
            min_os = Some(min_os.map_or(v, |m: Version| m.max(v)));
        }
    }
    if !targeted {
        return Fact::Block("app_protection_not_applied");
    }
    let Some(reg) = registration else {
        return Fact::Block("app_not_registered");
    };
    if reg.rooted {
        return Fact::Block("rooted_device");
    }
    if let Some(min) = min_app
        && !reg.app_version.is_some_and(|v| v.at_least(&min))
    {
        return Fact::Block("app_version_too_low");
    }
    let os = reg.os_version.or_else(|| device.and_then(|d| d.os_version));
    if let Some(min) = min_os
        && !os.is_some_and(|v| v.at_least(&min))
    {
        return Fact::Block("os_version_too_low");
    }
    match reg.compliance {
        ComplianceState::Compliant | ComplianceState::InGracePeriod => {}
        ComplianceState::Noncompliant => {
            return Fact::Noncompliant {
                since: reg.noncompliant_since,
                remediation: reg.remediation,
                reason: "app_noncompliant",
            };
        }
        ComplianceState::Unknown
        | ComplianceState::Conflict
        | ComplianceState::Error
        | ComplianceState::ConfigManager => return Fact::Block("app_noncompliant"),
    }
    // Check-in overdue is a noncompliance that began when the offline period ran out:
    // opening the app fixes it, so the same remediation window applies.
    match reg.last_sync {
        None => Fact::Block("app_checkin_required"),
        Some(sync) => {
            let due = sync.saturating_add(offline);
            if now > due {
                Fact::Noncompliant {
                    since: Some(due),
                    remediation: reg.remediation,
                    reason: "app_checkin_required",
                }
            } else {
                Fact::Pass("app_protected")
            }
        }
    }
}

/// `mfa`: with an `auth_context`, the token's `acrs` must hold it (an authentication
/// context is a distinct, usually stronger, requirement); without, `amr` must hold `mfa`.
pub(crate) fn mfa(principal: &Principal, policy: &CompiledPolicy) -> Result<&'static str, Failure> {
    let auth_context = match &policy.grant {
        CompiledGrant::Controls { auth_context, .. } => auth_context.clone(),
        CompiledGrant::Block => None,
    };
    match auth_context {
        Some(c) => {
            if principal.acrs.iter().any(|a| a == &*c) {
                Ok("auth_context_satisfied")
            } else {
                Err(Failure {
                    action: Action::StepUp {
                        auth_context: Some(c),
                        max_age: None,
                    },
                    reason: "auth_context_required",
                })
            }
        }
        None => {
            if principal.amr.iter().any(|a| a == "mfa") {
                Ok("mfa_satisfied")
            } else {
                Err(Failure {
                    action: Action::StepUp {
                        auth_context: None,
                        max_age: None,
                    },
                    reason: "mfa_required",
                })
            }
        }
    }
}

/// The label a control reports when state was unavailable and `fail_open` skipped it.
pub(crate) const SKIPPED_FAIL_OPEN: &str = "state_unavailable_fail_open";

#[cfg(test)]
#[path = "controls_tests.rs"]
mod tests;
