//! Shared fixtures for the engine's unit tests: a policy builder and a state with one
//! user per situation.

use std::net::IpAddr;
use std::time::Duration;

use serde_json::json;

use crate::authn::Principal;
use crate::config::{
    ChallengeStyle, ClaimNames, Grant, GrantControl, GrantOperator, IssuerConfig, KeySource,
    Locations, PolicyConfig, PolicyMode, Remediation, Selector,
};
use crate::policy::{
    Action, Decision, EvalInput, Evaluation, GraphResult, PolicySet, PolicyState, evaluate,
};
use crate::respond::rfc3339;

pub(super) const NOW: i64 = 1_800_000_000;
pub(super) const HOUR: i64 = 3600;
/// Window used by `pol()`'s default remediation.
pub(super) const WINDOW: i64 = 15 * 60;

pub(super) fn pol(name: &str, controls: &[GrantControl]) -> PolicyConfig {
    PolicyConfig {
        name: name.into(),
        mode: PolicyMode::Enabled,
        resources: Selector::All,
        include_users: Selector::All,
        include_groups: vec![],
        exclude_users: vec![],
        exclude_groups: vec![],
        client_apps: vec![],
        platforms: vec![],
        locations: Locations::default(),
        grant: Grant::Controls {
            operator: GrantOperator::All,
            controls: controls.to_vec(),
            auth_context: None,
        },
        sign_in_frequency: None,
        remediation: Remediation {
            enabled: true,
            window: Duration::from_secs(WINDOW as u64),
        },
    }
}

pub(super) fn block(name: &str) -> PolicyConfig {
    PolicyConfig {
        grant: Grant::Block,
        ..pol(name, &[])
    }
}

pub(super) fn ts(t: i64) -> String {
    rfc3339(t)
}

/// A state with one user per situation the tests need.
pub(super) fn state() -> PolicyState {
    let user = |id: &str, licensed: bool, groups: &[&str]| json!({"id": id, "accountEnabled": true, "licensed": licensed, "groups": groups});
    let dev = |id: &str, c: &str, os: &str| json!({"azureADDeviceId": id, "complianceState": c, "operatingSystem": os, "osVersion": "17.4"});
    let reg = |user: &str, dev: &str| {
        json!({"userId": user, "appId": "mobile-app", "azureADDeviceId": dev, "platform": "ios",
               "applicationVersion": "5.2.0", "platformVersion": "17.4",
               "lastSyncDateTime": ts(NOW - HOUR), "complianceState": "compliant"})
    };
    let mut regs = vec![reg("alice", "dev-ok")];
    let mut r = reg("carol", "dev-carol");
    r["flaggedReasons"] = json!(["rootedDevice"]);
    regs.push(r);
    let mut r = reg("frank", "dev-frank");
    r["applicationVersion"] = json!("4.9");
    regs.push(r);
    let mut r = reg("gina", "dev-gina");
    r["platformVersion"] = json!("15.1");
    regs.push(r);
    let mut r = reg("hank", "dev-hank");
    r["complianceState"] = json!("noncompliant");
    r["noncompliantSince"] = json!(ts(NOW - 60));
    regs.push(r);
    let mut r = reg("ivan", "dev-ivan");
    r["lastSyncDateTime"] = json!(ts(NOW - 13 * HOUR));
    regs.push(r);
    regs.push(reg("bob", "dev-bob"));
    regs.push(reg("nomam", "dev-nomam"));
    let doc = json!({
        "users": [
            user("alice", true, &["mobile"]),
            user("bob", false, &["mobile"]),
            user("carol", true, &["mobile", "break-glass"]),
            {"id": "dave", "accountEnabled": false, "licensed": true},
            {"id": "erin", "accountEnabled": true, "licensed": true, "revokeSessionsAfter": ts(NOW - HOUR)},
            user("frank", true, &["mobile"]),
            user("gina", true, &["mobile"]),
            user("hank", true, &["mobile"]),
            user("ivan", true, &["mobile"]),
            user("nomam", true, &["mobile", "no-mam"]),
            user("plain", true, &[]),
        ],
        "devices": [
            dev("dev-ok", "compliant", "iOS"),
            dev("dev-grace", "inGracePeriod", "iOS"),
            dev("dev-win", "compliant", "Windows"),
            {"azureADDeviceId": "dev-bad", "complianceState": "noncompliant", "operatingSystem": "iOS",
             "noncompliantSince": ts(NOW - 5 * 60)},
            {"azureADDeviceId": "dev-old", "complianceState": "noncompliant", "operatingSystem": "iOS",
             "noncompliantSince": ts(NOW - HOUR)},
            {"azureADDeviceId": "dev-failed", "complianceState": "noncompliant", "operatingSystem": "iOS",
             "noncompliantSince": ts(NOW - 5 * 60), "remediation": "failed"},
            {"azureADDeviceId": "dev-disabled", "complianceState": "noncompliant", "operatingSystem": "iOS",
             "noncompliantSince": ts(NOW - 5 * 60), "remediation": "disabled"},
            {"azureADDeviceId": "dev-nosince", "complianceState": "noncompliant", "operatingSystem": "iOS"},
            dev("dev-unknown", "unknown", "iOS"),
            dev("dev-conflict", "conflict", "iOS"),
            dev("dev-error", "error", "iOS"),
            dev("dev-cm", "configManager", "iOS"),
        ],
        "appProtectionPolicies": [
            {"id": "mam-ios", "platform": "ios", "apps": ["mobile-app"], "includeGroups": ["mobile"],
             "excludeGroups": ["no-mam"], "periodOfflineBeforeAccessCheck": "PT12H",
             "minimumRequiredOsVersion": "16.0", "minimumRequiredAppVersion": "5.0"}
        ],
        "appRegistrations": regs,
    });
    PolicyState::from_json(&serde_json::to_vec(&doc).unwrap()).unwrap()
}

pub(super) fn who(user: &str) -> Principal {
    Principal {
        user: user.into(),
        client_app: Some("mobile-app".into()),
        iat: Some(NOW - 600),
        exp: NOW + 3000,
        cae_capable: true,
        ..Principal::default()
    }
}

pub(super) fn on(user: &str, device: &str) -> Principal {
    Principal {
        device: Some(device.into()),
        ..who(user)
    }
}

pub(super) fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub(super) fn run_at(
    policies: &[PolicyConfig],
    st: Option<&PolicyState>,
    p: &Principal,
    addr: &str,
    now: i64,
) -> Evaluation {
    let set = PolicySet::from_parts(policies, &["mobile-app".to_owned()], &[]).unwrap();
    evaluate(
        &set,
        st,
        &EvalInput {
            resource: "corp-api",
            principal: p,
            client_ip: ip(addr),
            now,
        },
    )
}

pub(super) fn run(policies: &[PolicyConfig], p: &Principal) -> Evaluation {
    run_at(policies, Some(&state()), p, "192.0.2.1", NOW)
}

pub(super) fn denied(ev: &Evaluation) -> (Action, &'static str, Option<u32>) {
    match &ev.decision {
        Decision::Deny { failure, policy } => (failure.action.clone(), failure.reason, *policy),
        Decision::Allow => panic!("allowed: {ev:?}"),
    }
}

pub(super) fn result(ev: &Evaluation, i: usize) -> (GraphResult, &'static str) {
    (ev.results[i].result, ev.results[i].reason)
}

pub(super) fn issuer(style: ChallengeStyle) -> IssuerConfig {
    IssuerConfig {
        issuer: "https://idp.example".into(),
        multi_tenant: false,
        tenants: vec![],
        audiences: vec!["api".into()],
        keys: KeySource::Discovery,
        jwks_ca: None,
        algorithms: vec![crate::config::JwsAlgorithm::RS256],
        authorization_uri: Some("https://idp.example/authorize".into()),
        claims: ClaimNames::default(),
        challenge: style,
    }
}
