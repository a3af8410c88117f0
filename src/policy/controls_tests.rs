//! Grant controls, the compliance lifecycle, continuous access evaluation, sign-in
//! frequency, fail-open and the mapping to responses.

use std::sync::Arc;
use std::time::Duration;

use crate::config::{ChallengeStyle, Grant, GrantControl, GrantOperator, PolicyConfig};
use crate::policy::{
    Action, Decision, EvalInput, Evaluation, Failure, GraphResult, PolicySet, evaluate,
    evaluate_detailed,
};
use crate::respond::{Denial, Rejection};

use crate::policy::test_support::*;

#[test]
fn mfa_and_auth_context() {
    let p = pol("mfa", &[GrantControl::Mfa]);
    let mut ok = who("alice");
    ok.amr = vec!["mfa".into()];
    assert!(run(std::slice::from_ref(&p), &ok).decision.is_allow());
    assert_eq!(
        denied(&run(&[p], &who("alice"))),
        (
            Action::StepUp {
                auth_context: None,
                max_age: None
            },
            "mfa_required",
            Some(0)
        )
    );
    let ctx = PolicyConfig {
        grant: Grant::Controls {
            operator: GrantOperator::All,
            controls: vec![GrantControl::Mfa],
            auth_context: Some("c1".into()),
        },
        ..pol("ctx", &[])
    };
    // amr mfa is not enough for an authentication context.
    assert_eq!(
        denied(&run(std::slice::from_ref(&ctx), &ok)),
        (
            Action::StepUp {
                auth_context: Some(Arc::from("c1")),
                max_age: None
            },
            "auth_context_required",
            Some(0)
        )
    );
    ok.acrs = vec!["c1".into()];
    assert!(run(&[ctx], &ok).decision.is_allow());
}

#[test]
fn approved_app() {
    let p = pol("p", &[GrantControl::ApprovedApp]);
    assert!(
        run(std::slice::from_ref(&p), &who("alice"))
            .decision
            .is_allow()
    );
    let mut x = who("alice");
    x.client_app = Some("MOBILE-APP".into());
    assert!(
        run(std::slice::from_ref(&p), &x).decision.is_allow(),
        "app ids are case-insensitive"
    );
    x.client_app = Some("other".into());
    assert_eq!(
        denied(&run(std::slice::from_ref(&p), &x)),
        (Action::Block, "not_approved_app", Some(0))
    );
    x.client_app = None;
    assert_eq!(denied(&run(&[p], &x)).1, "not_approved_app");
}

#[test]
fn compliant_device_states() {
    let p = [pol("p", &[GrantControl::CompliantDevice])];
    assert!(run(&p, &on("alice", "dev-ok")).decision.is_allow());
    assert!(run(&p, &on("alice", "dev-grace")).decision.is_allow());
    for (dev, reason) in [
        ("dev-unknown", "device_unknown"),
        ("dev-conflict", "device_noncompliant"),
        ("dev-error", "device_noncompliant"),
        ("dev-cm", "device_noncompliant"),
        ("not-in-state", "device_unknown"),
        ("dev-nosince", "device_noncompliant"),
    ] {
        assert_eq!(
            denied(&run(&p, &on("alice", dev))),
            (Action::Block, reason, Some(0)),
            "{dev}"
        );
    }
    assert_eq!(
        denied(&run(&p, &who("alice"))).1,
        "device_unknown",
        "no device claim"
    );
}

#[test]
fn lifecycle_remediate_then_sign_out_then_block() {
    let p = [pol("p", &[GrantControl::CompliantDevice])];
    let st = state();
    let t = NOW - 5 * 60; // dev-bad noncompliant since
    let sign_out = t + WINDOW;
    // Inside the window: remediate until T + window; Retry-After capped at 60.
    let ev = run_at(&p, Some(&st), &on("alice", "dev-bad"), "192.0.2.1", NOW);
    assert_eq!(
        denied(&ev),
        (
            Action::Remediate {
                deadline: sign_out,
                retry_after: 60
            },
            "device_noncompliant",
            Some(0)
        )
    );
    let ev = run_at(
        &p,
        Some(&st),
        &on("alice", "dev-bad"),
        "192.0.2.1",
        sign_out - 7,
    );
    assert_eq!(
        denied(&ev).0,
        Action::Remediate {
            deadline: sign_out,
            retry_after: 7
        }
    );
    // At the deadline, a token issued before it is signed out with nbf = the moment.
    let ev = run_at(
        &p,
        Some(&st),
        &on("alice", "dev-bad"),
        "192.0.2.1",
        sign_out,
    );
    assert_eq!(denied(&ev).0, Action::Reauthenticate { nbf: sign_out });
    // The fresh token (iat = nbf) is not asked to sign in again: 403, no loop.
    let mut fresh = on("alice", "dev-bad");
    fresh.iat = Some(sign_out);
    let ev = run_at(&p, Some(&st), &fresh, "192.0.2.1", sign_out + 5);
    assert_eq!(denied(&ev), (Action::Block, "device_noncompliant", Some(0)));
    // An undated token cannot be sent round the loop either.
    fresh.iat = None;
    assert_eq!(
        denied(&run_at(&p, Some(&st), &fresh, "192.0.2.1", sign_out + 5)).0,
        Action::Block
    );
}

#[test]
fn lifecycle_without_remediation_signs_out_at_t() {
    let t = NOW - 5 * 60;
    let mut off = pol("p", &[GrantControl::CompliantDevice]);
    off.remediation.enabled = false;
    let mut early = on("alice", "dev-bad");
    early.iat = Some(t - 1);
    assert_eq!(
        denied(&run(std::slice::from_ref(&off), &early)).0,
        Action::Reauthenticate { nbf: t }
    );
    let mut late = on("alice", "dev-bad");
    late.iat = Some(t);
    assert_eq!(denied(&run(&[off], &late)).0, Action::Block);
    // The record's remediation failed / disabled: same, whatever the policy says.
    let p = pol("p", &[GrantControl::CompliantDevice]);
    for dev in ["dev-failed", "dev-disabled"] {
        let mut early = on("alice", dev);
        early.iat = Some(t - 100);
        assert_eq!(
            denied(&run(std::slice::from_ref(&p), &early)).0,
            Action::Reauthenticate { nbf: t },
            "{dev}"
        );
        let mut late = on("alice", dev);
        late.iat = Some(t + 1);
        assert_eq!(
            denied(&run(std::slice::from_ref(&p), &late)).0,
            Action::Block,
            "{dev}"
        );
    }
    // Past the window: nbf is T + window.
    let mut old = on("alice", "dev-old");
    old.iat = Some(NOW - 2 * HOUR);
    assert_eq!(
        denied(&run(&[p], &old)).0,
        Action::Reauthenticate {
            nbf: NOW - HOUR + WINDOW
        }
    );
}

#[test]
fn app_protection_rules() {
    let p = [pol("mam", &[GrantControl::AppProtection])];
    assert!(run(&p, &on("alice", "dev-ok")).decision.is_allow());
    for (user, dev, reason) in [
        ("bob", "dev-bob", "user_unlicensed"),
        ("stranger", "dev-ok", "app_protection_not_applied"),
        ("nomam", "dev-nomam", "app_protection_not_applied"),
        ("plain", "dev-ok", "app_protection_not_applied"),
        ("alice", "dev-other", "app_not_registered"),
        ("carol", "dev-carol", "rooted_device"),
        ("frank", "dev-frank", "app_version_too_low"),
        ("gina", "dev-gina", "os_version_too_low"),
    ] {
        assert_eq!(
            denied(&run(&p, &on(user, dev))),
            (Action::Block, reason, Some(0)),
            "{user}"
        );
    }
    // App not targeted by any app protection policy.
    let mut x = on("alice", "dev-ok");
    x.client_app = Some("cli".into());
    assert_eq!(denied(&run(&p, &x)).1, "app_protection_not_applied");
    // Registration noncompliant since NOW-60: remediate.
    let (a, r, _) = denied(&run(&p, &on("hank", "dev-hank")));
    assert_eq!(
        (a, r),
        (
            Action::Remediate {
                deadline: NOW - 60 + WINDOW,
                retry_after: 60
            },
            "app_noncompliant"
        )
    );
}

#[test]
fn app_checkin_overdue_is_remediated_then_signed_out() {
    let p = [pol("mam", &[GrantControl::AppProtection])];
    let st = state();
    // ivan last synced 13h ago, policy allows 12h: overdue since NOW - 1h.
    let due = NOW - HOUR;
    let ev = run_at(&p, Some(&st), &on("ivan", "dev-ivan"), "192.0.2.1", NOW);
    let (a, r, _) = denied(&ev);
    assert_eq!(r, "app_checkin_required");
    // The window (15m) after `due` is over: the token (iat NOW-600 > due+window) is blocked.
    assert_eq!(a, Action::Block);
    let ev = run_at(
        &p,
        Some(&st),
        &on("ivan", "dev-ivan"),
        "192.0.2.1",
        due + 60,
    );
    assert_eq!(
        denied(&ev).0,
        Action::Remediate {
            deadline: due + WINDOW,
            retry_after: 60
        }
    );
    let mut old = on("ivan", "dev-ivan");
    old.iat = Some(due - 10);
    assert_eq!(
        denied(&run(&p, &old)).0,
        Action::Reauthenticate { nbf: due + WINDOW }
    );
}

#[test]
fn continuous_access_evaluation_comes_first() {
    let ev = run(&[pol("p", &[GrantControl::ApprovedApp])], &who("dave"));
    assert_eq!(
        denied(&ev),
        (Action::Reauthenticate { nbf: NOW }, "user_disabled", None)
    );
    let revoked = NOW - HOUR;
    let mut e = who("erin");
    e.iat = Some(revoked - 1);
    let ev = run(&[pol("p", &[GrantControl::ApprovedApp])], &e);
    assert_eq!(
        denied(&ev),
        (
            Action::Reauthenticate { nbf: revoked },
            "session_revoked",
            None
        )
    );
    assert_eq!(
        result(&ev, 0).0,
        GraphResult::Success,
        "policies are still recorded"
    );
    // A block grant wins over everything, continuous access evaluation included: no
    // sign-in would help, so the client is not asked for one.
    let ev = run(&[block("b")], &e);
    assert_eq!(denied(&ev), (Action::Block, "block_policy", Some(0)));
    e.iat = Some(revoked);
    assert!(
        run(&[], &e).decision.is_allow(),
        "a token issued at the revocation is fine"
    );
    e.iat = None;
    assert_eq!(denied(&run(&[], &e)).0, Action::Block);
}

#[test]
fn sign_in_frequency() {
    let mut p = pol("sif", &[GrantControl::ApprovedApp]);
    p.sign_in_frequency = Some(Duration::from_secs(8 * HOUR as u64));
    // The session expired at auth_time + 8h = NOW - 1h. A token issued before that is
    // challenged with nbf = that moment, which is later than its iat.
    let mut x = who("alice");
    x.auth_time = Some(NOW - 9 * HOUR);
    x.iat = Some(NOW - 9 * HOUR + 10);
    assert_eq!(
        denied(&run(std::slice::from_ref(&p), &x)),
        (
            Action::Reauthenticate { nbf: NOW - HOUR },
            "sign_in_frequency",
            Some(0)
        )
    );
    // No auth_time: iat counts. A token issued after the challenge satisfies it.
    let mut y = who("alice");
    y.iat = Some(NOW - 9 * HOUR);
    assert_eq!(
        denied(&run(std::slice::from_ref(&p), &y)).0,
        Action::Reauthenticate { nbf: NOW - HOUR }
    );
    y.iat = Some(NOW);
    assert!(run(std::slice::from_ref(&p), &y).decision.is_allow());
    // A token issued after the session expired that still carries the old auth_time was
    // refreshed without a sign-in: another 401 would loop, so it is blocked.
    let mut z = who("alice");
    z.auth_time = Some(NOW - 9 * HOUR);
    z.iat = Some(NOW - 100);
    assert_eq!(
        denied(&run(std::slice::from_ref(&p), &z)),
        (Action::Block, "sign_in_frequency", Some(0))
    );
    // RFC 9470 issuers are asked for max_age instead.
    let set = PolicySet::from_parts(
        &[p],
        &["mobile-app".into()],
        &[issuer(ChallengeStyle::Rfc9470)],
    )
    .unwrap();
    let ev = evaluate(
        &set,
        Some(&state()),
        &EvalInput {
            resource: "r",
            principal: &x,
            client_ip: ip("192.0.2.1"),
            now: NOW,
        },
    );
    assert_eq!(
        denied(&ev).0,
        Action::StepUp {
            auth_context: None,
            max_age: Some(8 * HOUR as u64)
        }
    );
}

#[test]
fn fail_open_skips_only_state_checks() {
    let p = [pol(
        "dev",
        &[GrantControl::CompliantDevice, GrantControl::AppProtection],
    )];
    let ev = run_at(&p, None, &on("dave", "dev-bad"), "192.0.2.1", NOW);
    assert!(ev.decision.is_allow());
    assert!(ev.fail_open);
    let ev = run_at(
        &[pol("mfa", &[GrantControl::Mfa])],
        None,
        &who("alice"),
        "192.0.2.1",
        NOW,
    );
    assert_eq!(denied(&ev).1, "mfa_required");
    let ev = run_at(&[block("b")], None, &who("alice"), "192.0.2.1", NOW);
    assert_eq!(denied(&ev).1, "block_policy");
}

#[test]
fn rejections_carry_issuer_challenge_and_policy_name() {
    let set = PolicySet::from_parts(
        &[
            pol("needs-dev", &[GrantControl::CompliantDevice]),
            pol("needs-mfa", &[GrantControl::Mfa]),
        ],
        &[],
        &[issuer(ChallengeStyle::Entra)],
    )
    .unwrap();
    let st = state();
    let mut p = on("alice", "dev-old");
    p.amr = vec!["mfa".into()];
    p.iat = Some(NOW - 2 * HOUR);
    let ev = evaluate(
        &set,
        Some(&st),
        &EvalInput {
            resource: "r",
            principal: &p,
            client_ip: ip("192.0.2.1"),
            now: NOW,
        },
    );
    let Some(Rejection::Denied {
        denial,
        reason,
        policy,
    }) = crate::authorize::rejection(&ev, &set, &p)
    else {
        panic!("{ev:?}")
    };
    assert_eq!(reason, "device_noncompliant");
    assert_eq!(policy.as_deref(), Some("needs-dev"));
    assert_eq!(
        denial,
        Denial::Reauthenticate {
            nbf: NOW - HOUR + WINDOW,
            cae_capable: true,
            authorization_uri: Some(Arc::from("https://idp.example/authorize")),
        }
    );
    let q = who("alice");
    let (ev, details) = evaluate_detailed(
        &set,
        Some(&st),
        &EvalInput {
            resource: "r",
            principal: &q,
            client_ip: ip("192.0.2.1"),
            now: NOW,
        },
    );
    // Both fail; block (device_unknown) is stronger than step-up.
    assert_eq!(
        crate::authorize::rejection(&ev, &set, &q).map(|r| r.reason()),
        Some("device_unknown")
    );
    assert_eq!(details.len(), 2);
    assert_eq!(details[0].controls[0].reason, "device_unknown");
    assert!(!details[0].controls[0].passed);
    assert_eq!(
        details[1].failure.as_ref().map(|f| f.reason),
        Some("mfa_required")
    );
    let mfa_only = PolicySet::from_parts(
        &[pol("m", &[GrantControl::Mfa])],
        &[],
        &[issuer(ChallengeStyle::Rfc9470)],
    )
    .unwrap();
    let ev = evaluate(
        &mfa_only,
        Some(&st),
        &EvalInput {
            resource: "r",
            principal: &q,
            client_ip: ip("192.0.2.1"),
            now: NOW,
        },
    );
    let Some(Rejection::Denied {
        denial: Denial::StepUp(s),
        reason,
        ..
    }) = crate::authorize::rejection(&ev, &mfa_only, &q)
    else {
        panic!("{ev:?}")
    };
    assert_eq!(
        (s.style, s.auth_context, reason),
        (ChallengeStyle::Rfc9470, None, "mfa_required")
    );
    assert_eq!(
        s.authorization_uri.as_deref(),
        Some("https://idp.example/authorize")
    );
    let allowed = Evaluation {
        decision: Decision::Allow,
        results: vec![],
        fail_open: false,
    };
    assert!(crate::authorize::rejection(&allowed, &set, &q).is_none());
    let _ = Failure::block("x");
}
