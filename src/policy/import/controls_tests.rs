//! `grantControls` and `sessionControls`: what maps, what is noted, what refuses.

use std::time::Duration;

use serde_json::{Value, json};

use super::Outcome;
use super::test_support::*;
use crate::config::{Grant, GrantControl, GrantOperator};

#[test]
fn grant_controls_map() {
    let grant = |g: Value| imported(with(json!({"grantControls": g}))).0.grant;
    assert_eq!(
        grant(json!({"operator": "OR", "builtInControls": ["block"]})),
        Grant::Block
    );
    assert_eq!(
        grant(
            json!({"operator": "AND", "builtInControls": ["mfa", "compliantDevice", "approvedApplication", "compliantApplication"]})
        ),
        Grant::Controls {
            operator: GrantOperator::All,
            controls: vec![
                GrantControl::Mfa,
                GrantControl::CompliantDevice,
                GrantControl::ApprovedApp,
                GrantControl::AppProtection
            ],
            auth_context: None,
        }
    );
    assert!(matches!(
        grant(
            json!({"operator": "OR", "builtInControls": ["compliantDevice", "compliantApplication"]})
        ),
        Grant::Controls {
            operator: GrantOperator::Any,
            ..
        }
    ));
    // Graph's annotation beside a null authenticationStrength is not a control.
    grant(
        json!({"builtInControls": ["mfa"], "authenticationStrength@odata.context": "https://graph.microsoft.com/v1.0/$metadata#x", "authenticationStrength": null}),
    );
}

#[test]
fn grant_controls_the_gateway_cannot_check_refuse() {
    for (g, needle) in [
        (
            json!({"builtInControls": ["mfa", "domainJoinedDevice"]}),
            "domainJoinedDevice",
        ),
        (
            json!({"operator": "OR", "builtInControls": ["mfa", "domainJoinedDevice"]}),
            "domainJoinedDevice",
        ),
        (
            json!({"builtInControls": ["passwordChange", "mfa"]}),
            "passwordChange",
        ),
        (
            json!({"builtInControls": ["riskRemediation"]}),
            "riskRemediation",
        ),
        (json!({"builtInControls": ["verifiedID"]}), "verifiedID"),
        (
            json!({"builtInControls": ["unknownFutureValue"]}),
            "unknownFutureValue",
        ),
        (
            json!({"builtInControls": [], "customAuthenticationFactors": ["duo"]}),
            "customAuthenticationFactors",
        ),
        (
            json!({"builtInControls": ["mfa"], "termsOfUse": ["ce580154-086a-40fd-91df-8a60abac81a0"]}),
            "termsOfUse",
        ),
        (
            json!({"builtInControls": [], "authenticationStrength": {"id": "00000000-0000-0000-0000-000000000002", "displayName": "Multifactor authentication"}}),
            "authenticationStrength",
        ),
        (
            json!({"operator": "XOR", "builtInControls": ["mfa", "compliantDevice"]}),
            "XOR",
        ),
        (
            json!({"builtInControls": ["block", "mfa"]}),
            "block combined",
        ),
    ] {
        refuses(json!({"grantControls": g}), needle);
    }
    let mut c = cx();
    c.has_approved_apps = false;
    let v = with(json!({"grantControls": {"builtInControls": ["approvedApplication"]}}));
    assert!(
        matches!(run(v, &c), Outcome::Refused { ref reasons, .. } if reasons[0].contains("[approved_apps]"))
    );
}

#[test]
fn no_grant() {
    let mut v = base();
    v["grantControls"] = Value::Null;
    assert!(skipped(v.clone()).contains("requires nothing"));
    v["sessionControls"] =
        json!({"signInFrequency": {"isEnabled": true, "type": "hours", "value": 4}});
    assert!(refused(v.clone())[0].contains("session-only"));
    v["sessionControls"] =
        json!({"cloudAppSecurity": {"isEnabled": true, "cloudAppSecurityType": "monitorOnly"}});
    assert!(refused(v).iter().any(|r| r.contains("cloudAppSecurity")));
}

#[test]
fn sign_in_frequency() {
    let sif = |s: Value| imported(with(json!({"sessionControls": {"signInFrequency": s}})));
    assert_eq!(
        sif(json!({"isEnabled": true, "type": "hours", "value": 4}))
            .0
            .sign_in_frequency,
        Some(Duration::from_secs(4 * 3600))
    );
    assert_eq!(
        sif(
            json!({"isEnabled": true, "type": "days", "value": 7, "frequencyInterval": "timeBased",
        "authenticationType": "primaryAndSecondaryAuthentication"})
        )
        .0
        .sign_in_frequency,
        Some(Duration::from_secs(7 * 86_400))
    );
    assert_eq!(
        sif(json!({"isEnabled": false, "type": "days", "value": 7}))
            .0
            .sign_in_frequency,
        None
    );
    let (p, notes) = sif(
        json!({"isEnabled": true, "type": null, "value": null, "frequencyInterval": "everyTime"}),
    );
    assert_eq!(p.sign_in_frequency, Some(Duration::from_secs(300)));
    assert!(notes.iter().any(|n| n.contains("everyTime")));
    for (s, needle) in [
        (
            json!({"isEnabled": true, "type": "hours", "value": 0}),
            "value",
        ),
        (
            json!({"isEnabled": true, "type": "hours", "value": -3}),
            "value",
        ),
        (
            json!({"isEnabled": true, "type": "weeks", "value": 1}),
            "weeks",
        ),
        (json!({"isEnabled": true, "type": "hours"}), "value"),
        (
            json!({"isEnabled": true, "type": "hours", "value": 1, "authenticationType": "secondaryAuthentication"}),
            "secondaryAuthentication",
        ),
        (
            json!({"isEnabled": true, "frequencyInterval": "sometimes"}),
            "sometimes",
        ),
    ] {
        refuses(json!({"sessionControls": {"signInFrequency": s}}), needle);
    }
}

#[test]
fn other_session_controls_are_noted_or_refused() {
    let (_, notes) = imported(with(json!({"sessionControls": {
        "persistentBrowser": {"isEnabled": true, "mode": "never"},
        "applicationEnforcedRestrictions": {"isEnabled": true},
        "disableResilienceDefaults": true,
        "cloudAppSecurity": null}})));
    assert_eq!(notes.len(), 3, "{notes:?}");
    refuses(
        json!({"sessionControls": {"cloudAppSecurity": {"isEnabled": true, "cloudAppSecurityType": "blockDownloads"}}}),
        "cloudAppSecurity",
    );
    refuses(
        json!({"sessionControls": {"secureSignInSession": {"isEnabled": true}}}),
        "secureSignInSession",
    );
}
