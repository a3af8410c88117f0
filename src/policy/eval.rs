//! Evaluation: one request against the candidate policies of its resource.
//!
//! Per request, the caller's facts are looked up once (user, device, app registration,
//! group membership as a bitset over the policy set's group slots); each candidate policy
//! then costs a few slice and bit checks. The only allocation is the result list.

use std::net::IpAddr;

use crate::authn::Principal;
use crate::config::{ChallengeStyle, GrantControl, Platform, PolicyMode};

use super::compile::{CompiledGrant, CompiledPolicy, NO_SLOT, PolicySet, platform_matches};
use super::controls::{self, Fact, SKIPPED_FAIL_OPEN, app_fact, apply, device_fact};
use super::decision::{
    Action, ControlResult, Decision, Evaluation, Failure, GraphResult, PolicyResult, style_of,
};
use super::state::{AppRegistration, Device, PolicyState, User};
use super::values::fold;

/// What evaluation needs to know about the request.
#[derive(Debug, Clone, Copy)]
pub struct EvalInput<'a> {
    /// The route's resource name.
    pub resource: &'a str,
    pub principal: &'a Principal,
    /// The client IP (TCP peer, or from a trusted proxy's `X-Forwarded-For`).
    pub client_ip: IpAddr,
    /// Unix seconds.
    pub now: i64,
}

/// What What If shows for one policy beyond its result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyDetail {
    pub policy: u32,
    pub controls: Vec<ControlResult>,
    /// `Some((passed, reason))` when the policy has a sign-in frequency and applied.
    pub sign_in_frequency: Option<(bool, &'static str)>,
    /// What this policy alone would ask of the client.
    pub failure: Option<Failure>,
}

/// Evaluate a request. `state = None` means state is unavailable and `fail_open` is set:
/// state-dependent checks (compliant device, app protection, continuous access
/// evaluation) are skipped and the result is flagged `fail_open`. Callers that fail
/// closed never call this without state.
pub fn evaluate(set: &PolicySet, state: Option<&PolicyState>, input: &EvalInput<'_>) -> Evaluation {
    match state {
        Some(s) => set.with_binding(s, |b| run(set, state, Some(&b.to_slot), input, None)),
        None => run(set, None, None, input, None),
    }
}

/// As [`evaluate`], also returning each candidate policy's control results.
pub fn evaluate_detailed(
    set: &PolicySet,
    state: Option<&PolicyState>,
    input: &EvalInput<'_>,
) -> (Evaluation, Vec<PolicyDetail>) {
    let mut details = Vec::new();
    let ev = match state {
        Some(s) => set.with_binding(s, |b| {
            run(set, state, Some(&b.to_slot), input, Some(&mut details))
        }),
        None => run(set, None, None, input, Some(&mut details)),
    };
    (ev, details)
}

/// A bitset over group slots; inline up to 256 slots so a typical request does not allocate.
struct Bits {
    inline: [u64; 4],
    heap: Vec<u64>,
}

impl Bits {
    fn new(slots: usize) -> Self {
        let words = slots.div_ceil(64);
        Self {
            inline: [0; 4],
            heap: if words > 4 {
                vec![0; words]
            } else {
                Vec::new()
            },
        }
    }

    fn words(&mut self) -> &mut [u64] {
        if self.heap.is_empty() {
            &mut self.inline
        } else {
            &mut self.heap
        }
    }

    fn set(&mut self, i: u32) {
        if let Some(w) = self.words().get_mut(i as usize / 64) {
            *w |= 1 << (i % 64);
        }
    }

    fn get(&self, i: u32) -> bool {
        let words: &[u64] = if self.heap.is_empty() {
            &self.inline
        } else {
            &self.heap
        };
        words
            .get(i as usize / 64)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    fn any(&self, slots: &[u32]) -> bool {
        slots.iter().any(|&s| self.get(s))
    }
}

/// Group membership: known (from state, or from a complete token `groups` claim) or not.
enum Membership {
    Known(Bits),
    /// Groups overage and the user not in state: include-groups are taken to match and
    /// exclude-groups not, so not knowing never loosens a policy.
    Unknown,
}

struct Cx<'a> {
    set: &'a PolicySet,
    state: Option<&'a PolicyState>,
    input: &'a EvalInput<'a>,
    user: Option<&'a User>,
    device: Option<&'a Device>,
    registration: Option<&'a AppRegistration>,
    platform: Option<Platform>,
    user_slot: Option<u32>,
    /// `None`: the token names no client app (matches any client-app condition).
    app_slot: Option<Option<u32>>,
    membership: Membership,
    /// The token's client app is in `[approved_apps]` (looked up once per request).
    approved: bool,
    device_fact: Option<Fact>,
    app_fact: Option<Fact>,
}

fn run(
    set: &PolicySet,
    state: Option<&PolicyState>,
    to_slot: Option<&[u32]>,
    input: &EvalInput<'_>,
    mut details: Option<&mut Vec<PolicyDetail>>,
) -> Evaluation {
    let p = input.principal;
    let user_index = state.and_then(|s| s.user_index(&p.user));
    let user = user_index.and_then(|i| state.and_then(|s| s.user_at(i)));
    let device = match (state, p.device.as_deref()) {
        (Some(s), Some(d)) => s.device(d),
        _ => None,
    };
    let registration = match (state, user_index, p.client_app.as_deref()) {
        (Some(s), Some(u), Some(app)) => s.registration(u, app, p.device.as_deref()),
        _ => None,
    };
    let membership = membership(set, user, to_slot, p);
    let mut cx = Cx {
        set,
        state,
        input,
        user,
        device,
        registration,
        platform: device
            .and_then(|d| d.platform)
            .or_else(|| registration.and_then(|r| r.platform)),
        user_slot: set.user_slots.get(fold(&p.user).as_ref()).copied(),
        app_slot: p
            .client_app
            .as_deref()
            .map(|a| set.app_slots.get(fold(a).as_ref()).copied()),
        membership,
        approved: p
            .client_app
            .as_deref()
            .is_some_and(|a| set.is_approved_app(a)),
        device_fact: None,
        app_fact: None,
    };

    let candidates = set.candidates(input.resource);
    let mut results = Vec::with_capacity(candidates.len());
    let mut best: Option<(Failure, u32)> = None;
    for &idx in candidates {
        let Some(policy) = set.policy(idx) else {
            continue;
        };
        let mut controls = details.as_ref().map(|_| Vec::new());
        let (result, reason, failure, sif) = eval_policy(policy, &mut cx, controls.as_mut());
        if policy.mode == PolicyMode::Enabled
            && let Some(f) = &failure
        {
            best = match best {
                Some((b, bi)) if b.action.strength() >= f.action.strength() => Some((b, bi)),
                _ => Some((f.clone(), idx)),
            };
        }
        results.push(PolicyResult {
            policy: idx,
            result,
            reason,
        });
        if let Some(d) = details.as_deref_mut() {
            d.push(PolicyDetail {
                policy: idx,
                controls: controls.unwrap_or_default(),
                sign_in_frequency: sif,
                failure,
            });
        }
    }

    // A block grant wins over everything (no sign-in would help); then continuous access
    // evaluation: a disabled account or revoked sessions end the session whatever the
    // other policies say.
    let decision = match (best, cae(user, p, input.now)) {
        (Some((failure, idx)), _) if failure.reason == "block_policy" => Decision::Deny {
            failure,
            policy: Some(idx),
        },
        (_, Some(f)) => Decision::Deny {
            failure: f,
            policy: None,
        },
        (Some((failure, idx)), None) => Decision::Deny {
            failure,
            policy: Some(idx),
        },
        (None, None) => Decision::Allow,
    };
    Evaluation {
        decision,
        results,
        fail_open: state.is_none(),
    }
}

fn membership(
    set: &PolicySet,
    user: Option<&User>,
    to_slot: Option<&[u32]>,
    p: &Principal,
) -> Membership {
    let slots = set.group_names.len();
    if let (Some(u), Some(to_slot)) = (user, to_slot) {
        let mut bits = Bits::new(slots);
        for &g in u.group_ids() {
            if let Some(&s) = to_slot.get(g as usize)
                && s != NO_SLOT
            {
                bits.set(s);
            }
        }
        return Membership::Known(bits);
    }
    if p.groups_incomplete {
        return Membership::Unknown;
    }
    let mut bits = Bits::new(slots);
    if slots > 0 {
        for g in &p.groups {
            if let Some(&s) = set.group_slots.get(fold(g).as_ref()) {
                bits.set(s);
            }
        }
    }
    Membership::Known(bits)
}

/// Disabled account or sessions revoked after the token was issued.
fn cae(user: Option<&User>, p: &Principal, now: i64) -> Option<Failure> {
    let user = user?;
    if !user.account_enabled {
        let nbf = p.iat.map_or(now, |iat| now.max(iat.saturating_add(1)));
        return Some(Failure {
            action: Action::Reauthenticate { nbf },
            reason: "user_disabled",
        });
    }
    let revoked = user.revoke_sessions_after?;
    match p.iat {
        Some(iat) if iat >= revoked => None,
        Some(_) => Some(Failure {
            action: Action::Reauthenticate { nbf: revoked },
            reason: "session_revoked",
        }),
        // Undated token: cannot prove it is newer, and no token we ask for will be either.
        None => Some(Failure::block("session_revoked")),
    }
}

/// Conditions: resource (already), users, client app, platform, location.
fn applies(p: &CompiledPolicy, cx: &Cx<'_>) -> Result<(), &'static str> {
    let direct = p.all_users
        || cx
            .user_slot
            .is_some_and(|s| p.include_users.binary_search(&s).is_ok());
    let via_group = !p.include_groups.is_empty()
        && match &cx.membership {
            Membership::Unknown => true,
            Membership::Known(b) => b.any(&p.include_groups),
        };
    if !direct && !via_group {
        return Err("user_not_included");
    }
    if cx
        .user_slot
        .is_some_and(|s| p.exclude_users.binary_search(&s).is_ok())
    {
        return Err("user_excluded");
    }
    if let Membership::Known(b) = &cx.membership
        && b.any(&p.exclude_groups)
    {
        return Err("user_excluded");
    }
    // A client app the policies never name has no slot: it matches no app list.
    if let (Some(list), Some(slot)) = (&p.client_apps, cx.app_slot)
        && slot.is_none_or(|s| list.binary_search(&s).is_err())
    {
        return Err("client_app_not_included");
    }
    if !platform_matches(p.platforms, cx.platform) {
        return Err("platform_not_included");
    }
    let ip = cx.input.client_ip.to_canonical();
    if !p.include_locations.is_empty() && !p.include_locations.iter().any(|n| n.contains(&ip)) {
        return Err("location_not_included");
    }
    if p.exclude_locations.iter().any(|n| n.contains(&ip)) {
        return Err("location_excluded");
    }
    Ok(())
}

type PolicyOutcome = (
    GraphResult,
    &'static str,
    Option<Failure>,
    Option<(bool, &'static str)>,
);

fn eval_policy(
    p: &CompiledPolicy,
    cx: &mut Cx<'_>,
    mut detail: Option<&mut Vec<ControlResult>>,
) -> PolicyOutcome {
    let report = match p.mode {
        PolicyMode::Disabled => return (GraphResult::NotEnabled, "policy_disabled", None, None),
        PolicyMode::ReportOnly => true,
        PolicyMode::Enabled => false,
    };
    if let Err(why) = applies(p, cx) {
        let r = if report {
            GraphResult::ReportOnlyNotApplied
        } else {
            GraphResult::NotApplied
        };
        return (r, why, None, None);
    }
    let mut failure = match &p.grant {
        CompiledGrant::Block => Some(Failure::block("block_policy")),
        CompiledGrant::Controls { all, controls, .. } => {
            let mut acc: Option<Failure> = None;
            let mut any_pass = false;
            for &c in controls.iter() {
                let r = control(c, p, cx);
                if let Some(d) = detail.as_deref_mut() {
                    d.push(ControlResult {
                        control: c,
                        passed: r.is_ok(),
                        reason: match &r {
                            Ok(why) => why,
                            Err(f) => f.reason,
                        },
                    });
                }
                match r {
                    Ok(_) => any_pass = true,
                    Err(f) => {
                        acc = Some(match acc {
                            None => f,
                            Some(a) if *all => a.stronger(f),
                            Some(a) => a.weaker(f),
                        })
                    }
                }
            }
            if !*all && any_pass { None } else { acc }
        }
    };
    let mut sif = None;
    if let Some(freq) = p.sign_in_frequency {
        let s = sign_in_frequency(freq, cx);
        sif = Some((
            s.is_none(),
            s.as_ref().map_or("sign_in_fresh", |f| f.reason),
        ));
        if let Some(s) = s {
            failure = Some(match failure {
                None => s,
                Some(f) => f.stronger(s),
            });
        }
    }
    let result = match (&failure, report) {
        (None, false) => GraphResult::Success,
        (Some(_), false) => GraphResult::Failure,
        (None, true) => GraphResult::ReportOnlySuccess,
        (Some(_), true) => GraphResult::ReportOnlyFailure,
    };
    let reason = failure.as_ref().map_or("grant_satisfied", |f| f.reason);
    (result, reason, failure, sif)
}

fn control(c: GrantControl, p: &CompiledPolicy, cx: &mut Cx<'_>) -> Result<&'static str, Failure> {
    let principal = cx.input.principal;
    match c {
        GrantControl::Mfa => controls::mfa(principal, p),
        GrantControl::ApprovedApp => {
            if cx.approved {
                Ok("approved_app")
            } else {
                Err(Failure::block("not_approved_app"))
            }
        }
        GrantControl::CompliantDevice => {
            if cx.state.is_none() {
                return Ok(SKIPPED_FAIL_OPEN);
            }
            let fact = *cx
                .device_fact
                .get_or_insert_with(|| device_fact(principal, cx.device));
            apply(fact, p, principal.iat, cx.input.now)
        }
        GrantControl::AppProtection => {
            let Some(state) = cx.state else {
                return Ok(SKIPPED_FAIL_OPEN);
            };
            let fact = match cx.app_fact {
                Some(f) => f,
                None => {
                    let f = app_fact(
                        principal,
                        state,
                        cx.user,
                        cx.registration,
                        cx.device,
                        cx.input.now,
                    );
                    cx.app_fact = Some(f);
                    f
                }
            };
            apply(fact, p, principal.iat, cx.input.now)
        }
    }
}

/// `session.sign_in_frequency`: `auth_time` (fallback `iat`) older than the frequency.
///
/// The session expired at `S = auth_time + frequency`. Entra-style issuers get the same
/// no-loop rule as the compliance lifecycle: a token issued before `S` gets the CAE
/// challenge with `nbf = S` (always later than its `iat`), so the client fetches a new
/// token; a token issued after `S` that still carries the old `auth_time` was refreshed
/// silently without a sign-in, and another 401 would only loop, so it gets 403 (sign in
/// interactively). RFC 9470 issuers get `max_age`, which makes the provider authenticate
/// the user again.
fn sign_in_frequency(freq: i64, cx: &Cx<'_>) -> Option<Failure> {
    let p = cx.input.principal;
    let now = cx.input.now;
    let authenticated_at = p.authenticated_at();
    if authenticated_at.is_some_and(|at| now.saturating_sub(at) <= freq) {
        return None;
    }
    let action = match style_of(cx.set, p) {
        ChallengeStyle::Rfc9470 => Action::StepUp {
            auth_context: None,
            max_age: Some(u64::try_from(freq).unwrap_or(0)),
        },
        ChallengeStyle::Entra => match (authenticated_at, p.iat) {
            (Some(at), Some(iat)) => {
                let expired_at = at.saturating_add(freq);
                if iat < expired_at {
                    Action::Reauthenticate { nbf: expired_at }
                } else {
                    Action::Block
                }
            }
            _ => Action::Reauthenticate {
                nbf: p.iat.map_or(now, |iat| now.max(iat.saturating_add(1))),
            },
        },
    };
    Some(Failure {
        action,
        reason: "sign_in_frequency",
    })
}

#[cfg(test)]
#[path = "eval_tests.rs"]
mod tests;
