//! Shared fixtures of the import tests: a context with two mapped apps and four named
//! locations, and a base policy that imports, patched per test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};

use super::{Context, Outcome, import, named_locations, resource_map};
use crate::config::PolicyConfig;

pub const CORP_APP: &str = "5e1f0c2a-7b8d-4c3e-9f10-aa0000000001";
pub const ADMIN_APP: &str = "5e1f0c2a-7b8d-4c3e-9f10-aa0000000002";
pub const USER: &str = "a1111111-1111-4111-8111-111111111111";
pub const GROUP: &str = "0a0a0a0a-0000-4000-8000-000000000001";
pub const TRUSTED: &str = "3c2f3a6e-0e39-4a49-9d36-0ab1f3b1c002";
pub const OFFICE: &str = "3c2f3a6e-0e39-4a49-9d36-0ab1f3b1c001";
pub const COUNTRY: &str = "1b7f0916-7677-40d8-97a1-d606f4ed8fcf";
pub const BROKEN: &str = "3c2f3a6e-0e39-4a49-9d36-0ab1f3b1c009";

pub fn cx() -> Context {
    let locations = named_locations(&[
        json!({"@odata.type": "#microsoft.graph.ipNamedLocation", "id": TRUSTED, "isTrusted": true,
               "ipRanges": [{"cidrAddress": "10.1.2.3/8"}, {"cidrAddress": "2001:db8:1234:5:6::1/48"}]}),
        json!({"@odata.type": "#microsoft.graph.ipNamedLocation", "id": OFFICE, "isTrusted": false,
               "ipRanges": [{"cidrAddress": "203.0.113.0/24"}]}),
        json!({"@odata.type": "#microsoft.graph.countryNamedLocation", "id": COUNTRY,
               "countriesAndRegions": ["US"]}),
        json!({"@odata.type": "#microsoft.graph.ipNamedLocation", "id": BROKEN,
               "ipRanges": [{"cidrAddress": "not-a-range"}]}),
    ])
    .ok();
    Context {
        resources: resource_map([(CORP_APP, "corp-api"), (ADMIN_APP, "admin-api")]),
        route_resources: vec!["admin-api".into(), "corp-api".into()],
        has_approved_apps: true,
        locations,
    }
}

/// A policy that imports: all users, the corp-api app, MFA.
pub fn base() -> Value {
    json!({
        "id": "7a1f0001-0000-4000-8000-000000000001",
        "displayName": "Base",
        "state": "enabled",
        "conditions": {
            "applications": {"includeApplications": [CORP_APP]},
            "users": {"includeUsers": ["All"]},
            "clientAppTypes": ["all"]
        },
        "grantControls": {"operator": "OR", "builtInControls": ["mfa"]},
        "sessionControls": null
    })
}

/// `base()` with `patch` merged in (objects merge, everything else replaces).
pub fn with(patch: Value) -> Value {
    fn merge(a: &mut Value, b: Value) {
        match (a, b) {
            (Value::Object(a), Value::Object(b)) => {
                for (k, v) in b {
                    merge(a.entry(k).or_insert(Value::Null), v);
                }
            }
            (a, b) => *a = b,
        }
    }
    let mut v = base();
    merge(&mut v, patch);
    v
}

pub fn run(v: Value, cx: &Context) -> Outcome {
    import(&[v], cx).remove(0)
}

pub fn imported(v: Value) -> (PolicyConfig, Vec<String>) {
    match run(v, &cx()) {
        Outcome::Imported(i) => (i.policy, i.notes),
        other => panic!("expected an import, got {other:?}"),
    }
}

pub fn refused(v: Value) -> Vec<String> {
    match run(v, &cx()) {
        Outcome::Refused { reasons, .. } => reasons,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

pub fn skipped(v: Value) -> String {
    match run(v, &cx()) {
        Outcome::Skipped { reason, .. } => reason,
        other => panic!("expected a skip, got {other:?}"),
    }
}

pub fn refuses(patch: Value, needle: &str) {
    let reasons = refused(with(patch.clone()));
    assert!(
        reasons.iter().any(|r| r.contains(needle)),
        "{patch}: no reason mentions {needle:?}: {reasons:?}"
    );
}
