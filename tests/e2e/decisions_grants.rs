//! End to end through a running gateway: grant controls (`mfa` with and without an
//! authentication context, `compliant_device`, `approved_app`, `app_protection` and each of
//! its reasons), operators `any` / `all`, `sign_in_frequency`, and what an allowed request
//! carries to the upstream. That every challenge parses as clients parse it is checked in
//! `client_compat.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use serde_json::{Value, json};
use support::*;

fn user(id: &str, groups: &[&str]) -> Value {
    json!({"id": id, "accountEnabled": true, "licensed": true, "groups": groups})
}

fn ios_device(id: &str, compliance: &str) -> Value {
    json!({"azureADDeviceId": id, "complianceState": compliance, "operatingSystem": "iOS",
           "osVersion": "17.4"})
}

/// A healthy app registration of [`CA_APP`] for `user` on `device`, synced `synced_ago`
/// seconds ago.
fn registration(user: &str, device: &str, synced_ago: i64) -> Value {
    json!({"userId": user, "appId": CA_APP, "azureADDeviceId": device, "platform": "ios",
           "applicationVersion": "5.2.0", "platformVersion": "17.4", "flaggedReasons": [],
           "lastSyncDateTime": ts(unix_now() - synced_ago), "complianceState": "compliant"})
}

fn app_policy() -> Value {
    json!({"id": "mam-ios", "displayName": "iOS app protection", "platform": "ios",
           "apps": [CA_APP], "includeGroups": ["g-mam"], "excludeGroups": ["g-mam-exempt"],
           "periodOfflineBeforeAccessCheck": "PT12H", "pinRequired": true,
           "minimumRequiredOsVersion": "16.0", "minimumRequiredAppVersion": "5.0.0"})
}

fn policy(name: &str, resource: &str, grant: &str) -> String {
    format!(
        "\n[[policies]]\nname = \"{name}\"\nresources = [\"{resource}\"]\ninclude_users = [\"all\"]\ngrant = {grant}\n"
    )
}

#[tokio::test]
async fn compliant_user_is_allowed_and_the_upstream_learns_who_called() {
    let policies = policy(
        "require-managed",
        "corp-api",
        r#"{ operator = "all", controls = ["approved_app", "app_protection", "compliant_device"] }"#,
    );
    let st = json!({
        "users": [user("u-alice", &["g-mam"])],
        "devices": [ios_device("dev-alice", "compliant")],
        "appProtectionPolicies": [app_policy()],
        "appRegistrations": [registration("u-alice", "dev-alice", 3600)],
    });
    let ca = CaGateway::start(CaSpec::new(&policies, st)).await;
    let t = ca.token("u-alice", |o| o.deviceid = Some("dev-alice".into()));
    let mut ids = Vec::new();
    for h2 in [false, true] {
        // Client-sent identity headers never reach the upstream.
        let spoof = [
            ("x-accessgate-user", "u-mallory"),
            ("x-accessgate-decision-id", "0"),
        ];
        let r = ca.expect_allow_with("/api/items?x=1", &t, h2, &spoof).await;
        assert_eq!(r.uri.path(), "/api/items");
        assert_eq!(r.headers["x-accessgate-user"], "u-alice");
        assert_eq!(r.headers["x-accessgate-app"], CA_APP);
        assert_eq!(r.headers["x-accessgate-device"], "dev-alice");
        assert_eq!(r.headers.get_all("x-accessgate-user").iter().count(), 1);
        let id = r.headers["x-accessgate-decision-id"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            "{id}"
        );
        ids.push(id);
    }
    assert_ne!(ids[0], ids[1], "decision ids are per request");
    let metric = "accessgate_policy_evaluations_total";
    let labels = [
        ("policy", "require-managed"),
        ("mode", "enabled"),
        ("result", "success"),
    ];
    assert_eq!(ca.metric(metric, &labels).await, 2.0);
}

#[tokio::test]
async fn mfa_grant_steps_up_with_an_acrs_claims_challenge() {
    let policies = policy("needs-mfa", "corp-api", r#"{ controls = ["mfa"] }"#);
    let st = json!({"users": [user("u-bo", &[])]});
    let ca = CaGateway::start(CaSpec::new(&policies, st)).await;
    // No `mfa` in amr. The challenge goes to CAE and non-CAE clients alike.
    for cp1 in [true, false] {
        let t = ca.token("u-bo", |o| {
            if cp1 {
                o.xms_cc = vec!["cp1".into()];
            }
        });
        let (parts, v) = ca
            .expect_refusal("/", Some(&t), cp1, &[], 401, "mfa_required")
            .await;
        assert_eq!(v["policy"], "needs-mfa");
        // Plain MFA (no auth context) asks for amr "mfa".
        assert_claims_challenge(&parts, accessgate::respond::MFA_CLAIMS);
    }
    let mfa = ca.token("u-bo", |o| o.amr = vec!["pwd".into(), "mfa".into()]);
    ca.expect_allow("/", &mfa, true).await;
}

#[tokio::test]
async fn auth_context_grant_asks_for_that_context() {
    let policies = policy(
        "needs-c1",
        "corp-api",
        r#"{ controls = ["mfa"], auth_context = "c1" }"#,
    );
    let st = json!({"users": [user("u-cy", &[])]});
    let ca = CaGateway::start(CaSpec::new(&policies, st)).await;
    // MFA alone does not satisfy an authentication context.
    let t = ca.token("u-cy", |o| o.amr = vec!["mfa".into()]);
    let (parts, v) = ca
        .expect_refusal("/", Some(&t), false, &[], 401, "auth_context_required")
        .await;
    assert_eq!(v["policy"], "needs-c1");
    assert_claims_challenge(
        &parts,
        r#"{"access_token":{"acrs":{"essential":true,"value":"c1"}}}"#,
    );
    let other_ctx = ca.token("u-cy", |o| o.acrs = vec!["c2".into()]);
    ca.expect_refusal(
        "/",
        Some(&other_ctx),
        true,
        &[],
        401,
        "auth_context_required",
    )
    .await;
    let c1 = ca.token("u-cy", |o| o.acrs = vec!["c2".into(), "c1".into()]);
    ca.expect_allow("/", &c1, true).await;
}

#[tokio::test]
async fn rfc9470_issuer_gets_insufficient_user_authentication() {
    let mut policies = policy(
        "needs-c1",
        "ctx-api",
        r#"{ controls = ["mfa"], auth_context = "c1" }"#,
    );
    policies.push_str(&policy(
        "fresh-sign-in",
        "corp-api",
        r#"{ controls = ["approved_app"] }"#,
    ));
    policies.push_str("session = { sign_in_frequency = \"1h\" }\n");
    let mut spec = CaSpec::new(&policies, json!({"users": [user("u-dee", &[])]}));
    spec.routes = vec![("/ctx", "ctx-api"), ("/", "corp-api")];
    let ca = CaGateway::start(spec).await;
    let mint = |f: &dyn Fn(&mut accessgate::authn::dev::DevTokenOptions)| {
        ca.token("u-dee", |o| {
            o.issuer = RFC9470_ISSUER.into();
            f(o)
        })
    };

    let t = mint(&|_| {});
    let (parts, v) = ca
        .expect_refusal("/ctx", Some(&t), true, &[], 401, "auth_context_required")
        .await;
    assert_eq!(v["policy"], "needs-c1");
    let c = challenge_of(&parts);
    assert_eq!(
        c.names(),
        ["realm", "error", "error_description", "acr_values"]
    );
    assert_eq!(c.get("error"), Some("insufficient_user_authentication"));
    assert_eq!(c.get("acr_values"), Some("c1"));
    ca.expect_allow("/ctx", &mint(&|o| o.acrs = vec!["c1".into()]), false)
        .await;

    // Sign-in frequency: RFC 9470 `max_age` (seconds), asking only for a fresh sign-in.
    let old = mint(&|o| o.auth_time = Some(unix_now() - 7200));
    let (parts, v) = ca
        .expect_refusal("/", Some(&old), false, &[], 401, "sign_in_frequency")
        .await;
    assert_eq!(v["policy"], "fresh-sign-in");
    let c = challenge_of(&parts);
    assert_eq!(
        c.names(),
        ["realm", "error", "error_description", "max_age"]
    );
    assert_eq!(c.get("error"), Some("insufficient_user_authentication"));
    assert_eq!(c.get("max_age"), Some("3600"));
    ca.expect_allow("/", &mint(&|o| o.auth_time = Some(unix_now() - 600)), true)
        .await;
}

#[tokio::test]
async fn compliant_device_grant() {
    let policies = policy(
        "needs-device",
        "corp-api",
        r#"{ controls = ["compliant_device"] }"#,
    );
    let st = json!({
        "users": [user("u-eve", &[])],
        "devices": [
            ios_device("dev-ok", "compliant"),
            ios_device("dev-grace", "inGracePeriod"),
            ios_device("dev-bad", "noncompliant"),
            ios_device("dev-unknown", "unknown"),
            ios_device("dev-conflict", "conflict"),
        ],
    });
    let ca = CaGateway::start(CaSpec::new(&policies, st)).await;
    let with = |d: &str| ca.token("u-eve", |o| o.deviceid = Some(d.into()));
    ca.expect_allow("/", &with("dev-ok"), true).await;
    ca.expect_allow("/", &with("dev-grace"), false).await;
    // Noncompliant with no `noncompliantSince`: no window to offer, so a plain block.
    for (dev, reason) in [
        ("dev-bad", "device_noncompliant"),
        ("dev-conflict", "device_noncompliant"),
        ("dev-unknown", "device_unknown"),
        ("dev-not-in-state", "device_unknown"),
    ] {
        let (_, v) = ca
            .expect_refusal("/", Some(&with(dev)), true, &[], 403, reason)
            .await;
        assert_eq!(v["policy"], "needs-device", "{dev}");
    }
    // No device claim at all.
    let none = ca.token("u-eve", |_| {});
    ca.expect_refusal("/", Some(&none), false, &[], 403, "device_unknown")
        .await;
}

#[tokio::test]
async fn approved_app_grant() {
    let policies = policy(
        "needs-approved",
        "corp-api",
        r#"{ controls = ["approved_app"] }"#,
    );
    let ca = CaGateway::start(CaSpec::new(
        &policies,
        json!({"users": [user("u-fay", &[])]}),
    ))
    .await;
    ca.expect_allow("/", &ca.token("u-fay", |_| {}), false)
        .await;
    let other = ca.token("u-fay", |o| o.azp = Some(CA_OTHER_APP.into()));
    let (_, v) = ca
        .expect_refusal("/", Some(&other), true, &[], 403, "not_approved_app")
        .await;
    assert_eq!(v["policy"], "needs-approved");
}

#[tokio::test]
async fn app_protection_grant_reasons() {
    let policies = policy(
        "needs-mam",
        "corp-api",
        r#"{ controls = ["app_protection"] }"#,
    );
    let users = [
        "u-ok",
        "u-unlicensed",
        "u-untargeted",
        "u-exempt",
        "u-unregistered",
        "u-rooted",
        "u-oldapp",
        "u-oldos",
        "u-stale",
        "u-gone",
    ];
    let mut user_recs: Vec<Value> = users
        .iter()
        .map(|u| match *u {
            "u-untargeted" => user(u, &["g-other"]),
            "u-exempt" => user(u, &["g-mam", "g-mam-exempt"]),
            _ => user(u, &["g-mam"]),
        })
        .collect();
    user_recs[1]["licensed"] = json!(false);
    let devices: Vec<Value> = users
        .iter()
        .map(|u| ios_device(&format!("dev-{u}"), "compliant"))
        .collect();
    // The check-in of u-stale ran out two minutes ago (inside the default 15m
    // remediation window); u-gone's three days ago.
    let stale_sync = unix_now() - 12 * 3600 - 120;
    let mut regs = Vec::new();
    for u in users {
        let d = format!("dev-{u}");
        let mut r = registration(u, &d, 3600);
        match u {
            "u-unregistered" => continue,
            "u-rooted" => r["flaggedReasons"] = json!(["rootedDevice"]),
            "u-oldapp" => r["applicationVersion"] = json!("4.9.1"),
            "u-oldos" => r["platformVersion"] = json!("15.7"),
            "u-stale" => r["lastSyncDateTime"] = json!(ts(stale_sync)),
            "u-gone" => r["lastSyncDateTime"] = json!(ts(unix_now() - 3 * 86400)),
            _ => {}
        }
        regs.push(r);
    }
    let st = json!({"users": user_recs, "devices": devices,
                    "appProtectionPolicies": [app_policy()], "appRegistrations": regs});
    let ca = CaGateway::start(CaSpec::new(&policies, st)).await;
    let tok = |u: &str| ca.token(u, |o| o.deviceid = Some(format!("dev-{u}")));

    ca.expect_allow("/", &tok("u-ok"), true).await;
    for (u, reason) in [
        ("u-unlicensed", "user_unlicensed"),
        ("u-untargeted", "app_protection_not_applied"),
        ("u-exempt", "app_protection_not_applied"),
        ("u-unregistered", "app_not_registered"),
        ("u-rooted", "rooted_device"),
        ("u-oldapp", "app_version_too_low"),
        ("u-oldos", "os_version_too_low"),
        ("u-gone", "app_checkin_required"),
        ("u-not-in-state", "app_protection_not_applied"),
    ] {
        let (parts, v) = ca
            .expect_refusal(
                "/",
                Some(&tok(u)),
                u.len().is_multiple_of(2),
                &[],
                403,
                reason,
            )
            .await;
        assert_eq!(v["policy"], "needs-mam", "{u}");
        assert!(v.get("remediation_deadline").is_none(), "{u}: {v}");
        assert!(parts.headers.get("retry-after").is_none(), "{u}");
    }
    // An app no app protection policy names.
    let other = ca.token("u-ok", |o| {
        o.deviceid = Some("dev-u-ok".into());
        o.azp = Some(CA_OTHER_APP.into());
    });
    ca.expect_refusal(
        "/",
        Some(&other),
        true,
        &[],
        403,
        "app_protection_not_applied",
    )
    .await;
    // Overdue check-in inside the remediation window: remediate until the window closes.
    let (parts, v) = ca
        .expect_refusal(
            "/",
            Some(&tok("u-stale")),
            false,
            &[],
            403,
            "app_checkin_required",
        )
        .await;
    let deadline = stale_sync + 12 * 3600 + 15 * 60;
    assert_eq!(v["remediation_deadline"], ts(deadline), "{v}");
    assert_eq!(
        parse_ts(v["remediation_deadline"].as_str().unwrap()),
        deadline
    );
    assert_eq!(parts.headers["retry-after"], "60");
}

#[tokio::test]
async fn operator_any_needs_one_control_and_all_needs_every_one() {
    let controls = r#"controls = ["approved_app", "compliant_device"] }"#;
    let mut policies = policy(
        "any-of",
        "any-api",
        &format!("{{ operator = \"any\", {controls}"),
    );
    policies.push_str(&policy(
        "all-of",
        "corp-api",
        &format!("{{ operator = \"all\", {controls}"),
    ));
    let st =
        json!({"users": [user("u-gil", &[])], "devices": [ios_device("dev-gil", "compliant")]});
    let mut spec = CaSpec::new(&policies, st);
    spec.routes = vec![("/any", "any-api"), ("/", "corp-api")];
    let ca = CaGateway::start(spec).await;
    let tok = |app: &str, dev: Option<&str>| {
        ca.token("u-gil", |o| {
            o.azp = Some(app.into());
            o.deviceid = dev.map(str::to_owned);
        })
    };
    let both = tok(CA_APP, Some("dev-gil"));
    ca.expect_allow("/any", &both, true).await;
    ca.expect_allow("/", &both, true).await;

    let device_only = tok(CA_OTHER_APP, Some("dev-gil"));
    ca.expect_allow("/any", &device_only, false).await;
    let (_, v) = ca
        .expect_refusal("/", Some(&device_only), false, &[], 403, "not_approved_app")
        .await;
    assert_eq!(v["policy"], "all-of");

    let app_only = tok(CA_APP, None);
    ca.expect_allow("/any", &app_only, true).await;
    ca.expect_refusal("/", Some(&app_only), true, &[], 403, "device_unknown")
        .await;

    let neither = tok(CA_OTHER_APP, None);
    let (_, v) = ca
        .expect_refusal("/any", Some(&neither), false, &[], 403, "not_approved_app")
        .await;
    assert_eq!(v["policy"], "any-of");
}

#[tokio::test]
async fn sign_in_frequency_forces_reauthentication() {
    let mut policies = policy(
        "daily-sign-in",
        "corp-api",
        r#"{ controls = ["approved_app"] }"#,
    );
    policies.push_str("session = { sign_in_frequency = \"1h\" }\n");
    let ca = CaGateway::start(CaSpec::new(
        &policies,
        json!({"users": [user("u-hal", &[])]}),
    ))
    .await;
    // Signed in 2h ago, token issued then: the 1h session expired 1h ago.
    let auth_time = unix_now() - 7200;
    let iat = auth_time + 10;
    let old = |cp1: bool| {
        ca.token("u-hal", |o| {
            o.iat = Some(iat);
            o.auth_time = Some(auth_time);
            if cp1 {
                o.xms_cc = vec!["cp1".into()];
            }
        })
    };
    let (parts, v) = ca
        .expect_refusal("/", Some(&old(true)), true, &[], 401, "sign_in_frequency")
        .await;
    assert_eq!(v["policy"], "daily-sign-in");
    let c = challenge_of(&parts);
    let claims: Value = serde_json::from_str(&decode_claims(c.get("claims").unwrap())).unwrap();
    let nbf: i64 = claims["access_token"]["nbf"]["value"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    // The sign-out moment is when the session expired: later than the token.
    assert_eq!(nbf, auth_time + 3600);
    assert!(nbf > iat, "nbf {nbf}, iat {iat}");
    assert_claims_challenge(&parts, &nbf_claims(nbf));

    let (parts, _) = ca
        .expect_refusal("/", Some(&old(false)), false, &[], 401, "sign_in_frequency")
        .await;
    assert_invalid_token_challenge(&parts);

    // A token refreshed after the session expired without a new sign-in (old auth_time,
    // recent iat) would loop on another 401: it is blocked instead.
    let refreshed = ca.token("u-hal", |o| {
        o.iat = Some(unix_now() - 60);
        o.auth_time = Some(auth_time);
        o.xms_cc = vec!["cp1".into()];
    });
    ca.expect_refusal("/", Some(&refreshed), true, &[], 403, "sign_in_frequency")
        .await;

    let recent = ca.token("u-hal", |o| o.auth_time = Some(unix_now() - 600));
    ca.expect_allow("/", &recent, false).await;
}
