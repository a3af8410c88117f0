//! Property tests of the policy engine's four safety rules (DESIGN.md "Semantics"):
//! exclude always wins, a block always wins, report-only never changes the outcome, and
//! unknown group membership never loosens a policy.

use std::net::IpAddr;
use std::time::Duration;

use accessgate::authn::Principal;
use accessgate::config::{
    Grant, GrantControl, GrantOperator, Locations, PolicyConfig, PolicyMode, Remediation, Selector,
};
use accessgate::policy::{
    Action, Decision, EvalInput, Evaluation, GraphResult, PolicySet, PolicyState, evaluate,
};
use proptest::prelude::*;

const USERS: [&str; 4] = ["u0", "u1", "u2", "u3"];
const GROUPS: [&str; 4] = ["g0", "g1", "g2", "g3"];
const APP: &str = "approved-app";
const NOW: i64 = 1_800_000_000;

fn subset(all: &'static [&'static str]) -> impl Strategy<Value = Vec<String>> {
    proptest::sample::subsequence(all.to_vec(), 0..=all.len())
        .prop_map(|v| v.into_iter().map(str::to_owned).collect())
}

fn grant() -> impl Strategy<Value = Grant> {
    prop_oneof![
        1 => Just(Grant::Block),
        4 => (
            any::<bool>(),
            proptest::sample::subsequence(
                vec![GrantControl::Mfa, GrantControl::ApprovedApp, GrantControl::CompliantDevice],
                1..=3
            )
        )
            .prop_map(|(all, controls)| Grant::Controls {
                operator: if all { GrantOperator::All } else { GrantOperator::Any },
                controls,
                auth_context: None,
            }),
    ]
}

fn mode() -> impl Strategy<Value = PolicyMode> {
    prop_oneof![
        3 => Just(PolicyMode::Enabled),
        1 => Just(PolicyMode::ReportOnly),
        1 => Just(PolicyMode::Disabled),
    ]
}

fn policy() -> impl Strategy<Value = PolicyConfig> {
    (
        mode(),
        prop_oneof![Just(Selector::All), subset(&USERS).prop_map(Selector::Some)],
        subset(&GROUPS),
        subset(&USERS),
        subset(&GROUPS),
        grant(),
    )
        .prop_map(
            |(mode, include_users, include_groups, exclude_users, exclude_groups, grant)| {
                PolicyConfig {
                    name: String::new(),
                    mode,
                    resources: Selector::All,
                    include_users,
                    include_groups,
                    exclude_users,
                    exclude_groups,
                    client_apps: vec![],
                    platforms: vec![],
                    locations: Locations::default(),
                    grant,
                    sign_in_frequency: None,
                    remediation: Remediation {
                        enabled: true,
                        window: Duration::from_secs(900),
                    },
                }
            },
        )
}

fn policies() -> impl Strategy<Value = Vec<PolicyConfig>> {
    proptest::collection::vec(policy(), 0..6).prop_map(|mut v| {
        for (i, p) in v.iter_mut().enumerate() {
            p.name = format!("p{i}");
        }
        v
    })
}

fn principal() -> impl Strategy<Value = Principal> {
    (
        proptest::sample::select(USERS.to_vec()),
        subset(&GROUPS),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(user, groups, mfa, approved)| Principal {
            user: user.into(),
            groups,
            amr: if mfa { vec!["mfa".into()] } else { vec![] },
            client_app: Some(if approved { APP.into() } else { "other".into() }),
            iat: Some(NOW - 60),
            exp: NOW + 3600,
            ..Principal::default()
        })
}

fn eval(policies: &[PolicyConfig], p: &Principal) -> Evaluation {
    let set =
        PolicySet::from_parts(policies, &[APP.to_owned()], &[]).unwrap_or_else(|e| panic!("{e}"));
    // Users are not in state: membership comes from the token (or is unknown on overage).
    let state = PolicyState::empty();
    evaluate(
        &set,
        Some(&state),
        &EvalInput {
            resource: "api",
            principal: p,
            client_ip: IpAddr::from([192, 0, 2, 1]),
            now: NOW,
        },
    )
}

fn strength(d: &Decision) -> u8 {
    match d {
        Decision::Allow => 0,
        Decision::Deny { failure, .. } => failure.action.strength(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn exclude_always_wins(ps in policies(), p in principal()) {
        let ev = eval(&ps, &p);
        for r in &ev.results {
            let cfg = &ps[r.policy as usize];
            let excluded = cfg.exclude_users.contains(&p.user)
                || cfg.exclude_groups.iter().any(|g| p.groups.contains(g));
            if excluded && cfg.mode != PolicyMode::Disabled {
                prop_assert!(!r.result.applied(), "{} applied to an excluded user: {:?}", cfg.name, r);
            }
        }
    }

    #[test]
    fn a_block_always_wins(ps in policies(), p in principal(), at in 0usize..6) {
        let mut ps = ps;
        let mut b = policy_block();
        b.name = "the-block".into();
        let at = at.min(ps.len());
        ps.insert(at, b);
        let ev = eval(&ps, &p);
        match &ev.decision {
            Decision::Deny { failure, .. } => prop_assert_eq!(&failure.action, &Action::Block),
            Decision::Allow => prop_assert!(false, "allowed despite an applicable block"),
        }
    }

    #[test]
    fn report_only_never_changes_the_outcome(ps in policies(), extra in policies(), p in principal()) {
        let base = eval(&ps, &p);
        let mut with = ps.clone();
        for (i, mut e) in extra.into_iter().enumerate() {
            e.mode = PolicyMode::ReportOnly;
            e.name = format!("report-{i}");
            with.push(e);
        }
        let ev = eval(&with, &p);
        prop_assert_eq!(&ev.decision, &base.decision);
        for r in &ev.results[base.results.len()..] {
            prop_assert!(matches!(
                r.result,
                GraphResult::ReportOnlySuccess | GraphResult::ReportOnlyFailure | GraphResult::ReportOnlyNotApplied
            ));
        }
    }

    #[test]
    fn unknown_membership_never_loosens(ps in policies(), p in principal()) {
        let known = eval(&ps, &p);
        let mut unknown = p.clone();
        unknown.groups_incomplete = true;
        unknown.groups.clear();
        let u = eval(&ps, &unknown);
        prop_assert!(strength(&u.decision) >= strength(&known.decision),
            "known {:?} vs unknown {:?}", known.decision, u.decision);
        // Every policy that applied with known groups still applies when they are unknown.
        for (k, x) in known.results.iter().zip(&u.results) {
            if k.result.applied() {
                prop_assert!(x.result.applied(), "{:?} vs {:?}", k, x);
            }
        }
    }
}

fn policy_block() -> PolicyConfig {
    PolicyConfig {
        name: String::new(),
        mode: PolicyMode::Enabled,
        resources: Selector::All,
        include_users: Selector::All,
        include_groups: vec![],
        exclude_users: vec![],
        exclude_groups: vec![],
        client_apps: vec![],
        platforms: vec![],
        locations: Locations::default(),
        grant: Grant::Block,
        sign_in_frequency: None,
        remediation: Remediation::default(),
    }
}
