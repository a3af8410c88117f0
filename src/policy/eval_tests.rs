//! Applicability (users, groups, apps, platforms, locations), modes and how policies combine.

use crate::config::{
    Grant, GrantControl, GrantOperator, Locations, Platform, PolicyConfig, PolicyMode, Selector,
};
use crate::policy::{Action, Decision, EvalInput, GraphResult, PolicySet, PolicyState, evaluate};

use crate::policy::test_support::*;

#[test]
fn all_users_and_satisfied_grant_allow() {
    let ev = run(
        &[pol("p", &[GrantControl::CompliantDevice])],
        &on("alice", "dev-ok"),
    );
    assert_eq!(ev.decision, Decision::Allow);
    assert_eq!(result(&ev, 0), (GraphResult::Success, "grant_satisfied"));
    assert!(!ev.fail_open);
}

#[test]
fn explicit_users_and_exclusions() {
    let mut p = pol("p", &[GrantControl::Mfa]);
    p.include_users = Selector::Some(vec!["Alice".into()]);
    assert_eq!(
        result(&run(std::slice::from_ref(&p), &who("alice")), 0).0,
        GraphResult::Failure
    );
    assert_eq!(
        result(&run(std::slice::from_ref(&p), &who("bob")), 0),
        (GraphResult::NotApplied, "user_not_included")
    );
    p.exclude_users = vec!["alice".into()];
    let ev = run(&[p], &who("alice"));
    assert_eq!(result(&ev, 0), (GraphResult::NotApplied, "user_excluded"));
    assert!(ev.decision.is_allow());
}

#[test]
fn exclude_group_wins_over_include_group() {
    let mut p = pol("p", &[GrantControl::Mfa]);
    p.include_users = Selector::Some(vec![]);
    p.include_groups = vec!["mobile".into()];
    assert_eq!(
        result(&run(std::slice::from_ref(&p), &who("alice")), 0).0,
        GraphResult::Failure
    );
    assert_eq!(
        result(&run(std::slice::from_ref(&p), &who("plain")), 0).1,
        "user_not_included"
    );
    p.exclude_groups = vec!["break-glass".into()];
    let ev = run(&[p], &who("carol"));
    assert_eq!(result(&ev, 0), (GraphResult::NotApplied, "user_excluded"));
    assert!(ev.decision.is_allow());
}

#[test]
fn state_membership_is_authoritative_over_token_groups() {
    let mut p = pol("p", &[GrantControl::Mfa]);
    p.exclude_groups = vec!["break-glass".into()];
    // alice is in state without break-glass: the token's claim does not exclude her.
    let mut a = who("alice");
    a.groups = vec!["break-glass".into()];
    assert_eq!(
        result(&run(std::slice::from_ref(&p), &a), 0).0,
        GraphResult::Failure
    );
    // Not in state: the (complete) token groups count.
    let mut x = who("stranger");
    x.groups = vec!["BREAK-GLASS".into()];
    assert_eq!(result(&run(&[p], &x), 0).1, "user_excluded");
}

#[test]
fn unknown_membership_never_loosens() {
    let mut inc = pol("inc", &[GrantControl::Mfa]);
    inc.include_users = Selector::Some(vec![]);
    inc.include_groups = vec!["mobile".into()];
    let mut exc = pol("exc", &[GrantControl::Mfa]);
    exc.exclude_groups = vec!["break-glass".into()];
    let mut x = who("stranger");
    x.groups = vec!["break-glass".into()];
    x.groups_incomplete = true;
    let ev = run(&[inc, exc], &x);
    assert_eq!(
        result(&ev, 0).0,
        GraphResult::Failure,
        "include-group taken to match"
    );
    assert_eq!(
        result(&ev, 1).0,
        GraphResult::Failure,
        "exclude-group taken not to match"
    );
}

#[test]
fn client_app_condition() {
    let mut p = pol("p", &[GrantControl::Mfa]);
    p.client_apps = vec!["mobile-app".into()];
    assert_eq!(
        result(&run(std::slice::from_ref(&p), &who("alice")), 0).0,
        GraphResult::Failure
    );
    let mut other = who("alice");
    other.client_app = Some("cli".into());
    assert_eq!(
        result(&run(std::slice::from_ref(&p), &other), 0).1,
        "client_app_not_included"
    );
    // A token naming no client app cannot slip past an app condition.
    other.client_app = None;
    assert_eq!(result(&run(&[p], &other), 0).0, GraphResult::Failure);
}

#[test]
fn platform_condition() {
    let mut p = pol("p", &[GrantControl::Mfa]);
    p.platforms = vec![Platform::Ios, Platform::Android];
    assert_eq!(
        result(&run(std::slice::from_ref(&p), &on("alice", "dev-ok")), 0).0,
        GraphResult::Failure
    );
    assert_eq!(
        result(&run(std::slice::from_ref(&p), &on("alice", "dev-win")), 0).1,
        "platform_not_included"
    );
    // Platform unknown (no device): the condition matches; unknown never loosens.
    assert_eq!(result(&run(&[p], &who("plain")), 0).0, GraphResult::Failure);
}

#[test]
fn location_include_exclude_v4_v6() {
    let mut p = pol("p", &[GrantControl::Mfa]);
    p.locations = Locations {
        include: vec![
            "10.0.0.0/8".parse().unwrap(),
            "2001:db8::/32".parse().unwrap(),
        ],
        exclude: vec![
            "10.1.0.0/16".parse().unwrap(),
            "2001:db8:1::/48".parse().unwrap(),
        ],
    };
    let st = state();
    let at =
        |a: &str| run_at(std::slice::from_ref(&p), Some(&st), &who("alice"), a, NOW).results[0];
    assert_eq!(at("10.2.3.4").result, GraphResult::Failure);
    assert_eq!(
        at("::ffff:10.2.3.4").result,
        GraphResult::Failure,
        "IPv4-mapped IPv6"
    );
    assert_eq!(at("2001:db8:2::1").result, GraphResult::Failure);
    assert_eq!(at("192.0.2.1").reason, "location_not_included");
    assert_eq!(at("10.1.2.3").reason, "location_excluded");
    assert_eq!(at("::ffff:10.1.2.3").reason, "location_excluded");
    assert_eq!(at("2001:db8:1::5").reason, "location_excluded");
}

#[test]
fn modes() {
    let mut d = block("off");
    d.mode = PolicyMode::Disabled;
    let mut r = block("watch");
    r.mode = PolicyMode::ReportOnly;
    let mut rn = block("watch-other");
    rn.mode = PolicyMode::ReportOnly;
    rn.include_users = Selector::Some(vec!["someone".into()]);
    let mut rs = pol("watch-ok", &[GrantControl::ApprovedApp]);
    rs.mode = PolicyMode::ReportOnly;
    let ev = run(&[d, r, rn, rs], &who("alice"));
    assert!(ev.decision.is_allow());
    assert_eq!(result(&ev, 0), (GraphResult::NotEnabled, "policy_disabled"));
    assert_eq!(
        result(&ev, 1),
        (GraphResult::ReportOnlyFailure, "block_policy")
    );
    assert_eq!(
        result(&ev, 2),
        (GraphResult::ReportOnlyNotApplied, "user_not_included")
    );
    assert_eq!(
        result(&ev, 3),
        (GraphResult::ReportOnlySuccess, "grant_satisfied")
    );
}

#[test]
fn block_wins_and_strongest_failure_names_its_policy() {
    let ev = run(
        &[
            pol("needs-mfa", &[GrantControl::Mfa]),
            block("no"),
            pol("needs-dev", &[GrantControl::CompliantDevice]),
        ],
        &on("alice", "dev-bad"),
    );
    assert_eq!(denied(&ev), (Action::Block, "block_policy", Some(1)));
    // Without the block: reauthenticate? No: dev-bad is in its window, so remediate (1)
    // loses to step-up (2).
    let ev = run(
        &[
            pol("needs-dev", &[GrantControl::CompliantDevice]),
            pol("needs-mfa", &[GrantControl::Mfa]),
        ],
        &on("alice", "dev-bad"),
    );
    let (a, reason, p) = denied(&ev);
    assert!(matches!(a, Action::StepUp { .. }));
    assert_eq!((reason, p), ("mfa_required", Some(1)));
    // Equal strength: the first in config order.
    let ev = run(&[block("first"), block("second")], &who("alice"));
    assert_eq!(denied(&ev).2, Some(0));
}

#[test]
fn operator_all_and_any() {
    let any = PolicyConfig {
        grant: Grant::Controls {
            operator: GrantOperator::Any,
            controls: vec![GrantControl::Mfa, GrantControl::CompliantDevice],
            auth_context: None,
        },
        ..pol("any", &[])
    };
    assert!(
        run(std::slice::from_ref(&any), &on("alice", "dev-ok"))
            .decision
            .is_allow()
    );
    // Both fail: the weaker (step-up) is the easiest way to comply.
    let (a, r, _) = denied(&run(&[any], &on("alice", "dev-unknown")));
    assert!(matches!(a, Action::StepUp { .. }));
    assert_eq!(r, "mfa_required");
    let all = pol("all", &[GrantControl::Mfa, GrantControl::CompliantDevice]);
    let mut mfa = on("alice", "dev-ok");
    mfa.amr = vec!["pwd".into(), "mfa".into()];
    assert!(run(std::slice::from_ref(&all), &mfa).decision.is_allow());
    let (a, r, _) = denied(&run(&[all], &on("alice", "dev-unknown")));
    assert_eq!((a, r), (Action::Block, "device_unknown"));
}

#[test]
fn only_policies_for_the_resource_are_evaluated() {
    let mut other = block("other");
    other.resources = Selector::Some(vec!["other-api".into()]);
    let mut mine = pol("mine", &[GrantControl::ApprovedApp]);
    mine.resources = Selector::Some(vec!["corp-api".into()]);
    let ev = run(
        &[other, mine, pol("everywhere", &[GrantControl::ApprovedApp])],
        &who("alice"),
    );
    assert!(ev.decision.is_allow());
    let idx: Vec<u32> = ev.results.iter().map(|r| r.policy).collect();
    assert_eq!(idx, vec![1, 2]);
}

#[test]
fn duplicate_policy_names_are_refused() {
    assert!(PolicySet::from_parts(&[block("x"), block("x")], &[], &[]).is_err());
}

#[test]
fn group_binding_follows_state_changes() {
    let mut p = pol("p", &[GrantControl::Mfa]);
    p.exclude_groups = vec!["break-glass".into()];
    let set = PolicySet::from_parts(&[p], &[], &[]).unwrap();
    let a = state();
    let b = PolicyState::from_json(
        br#"{"users": [{"id": "carol", "accountEnabled": true, "licensed": true, "groups": ["x", "y"]}]}"#,
    )
    .unwrap();
    let input = |pr| EvalInput {
        resource: "r",
        principal: pr,
        client_ip: ip("192.0.2.1"),
        now: NOW,
    };
    let carol = who("carol");
    for _ in 0..2 {
        assert_eq!(
            evaluate(&set, Some(&a), &input(&carol)).results[0].reason,
            "user_excluded"
        );
        assert_eq!(
            evaluate(&set, Some(&b), &input(&carol)).results[0].result,
            GraphResult::Failure
        );
    }
}
