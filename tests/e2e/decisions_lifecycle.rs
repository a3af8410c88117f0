//! End to end through a running gateway: the compliance lifecycle of DESIGN.md (remediate
//! inside the window, then sign out tokens issued before the sign-out moment and block
//! newer ones — never a sign-in loop), continuous access evaluation (revoked sessions,
//! disabled accounts, a state change reaching a live token), and policy state freshness
//! (503 past `max_staleness`, `fail_open`, a bad state file never replacing the good one).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::time::{Duration, SystemTime};

use accessgate::authn::dev::DevTokenOptions;
use accessgate::policy::PolicyState;
use serde_json::{Value, json};
use support::*;

const WINDOW: i64 = 3600;

fn user(id: &str) -> Value {
    json!({"id": id, "accountEnabled": true, "licensed": true, "groups": ["g-mam"]})
}

fn device(id: &str, compliance: &str, since: Option<i64>, remediation: &str) -> Value {
    json!({"azureADDeviceId": id, "complianceState": compliance, "operatingSystem": "iOS",
           "osVersion": "17.4", "noncompliantSince": since.map(ts),
           "remediation": remediation})
}

/// `compliant_device` on `corp-api` (window 1h), the same with remediation switched off on
/// `strict-api`, `app_protection` (window 1h) on `mam-api`, and `approved_app` on `app-api`.
fn lifecycle_policies() -> String {
    r#"
[[policies]]
name = "device-1h"
resources = ["corp-api"]
include_users = ["all"]
grant = { controls = ["compliant_device"] }
remediation = { enabled = true, window = "1h" }

[[policies]]
name = "device-strict"
resources = ["strict-api"]
include_users = ["all"]
grant = { controls = ["compliant_device"] }
remediation = { enabled = false }

[[policies]]
name = "mam-1h"
resources = ["mam-api"]
include_users = ["all"]
grant = { controls = ["app_protection"] }
remediation = { enabled = true, window = "1h" }

[[policies]]
name = "approved-only"
resources = ["app-api"]
include_users = ["all"]
grant = { controls = ["approved_app"] }
"#
    .to_owned()
}

fn lifecycle_spec(state: Value) -> CaSpec {
    let mut spec = CaSpec::new(&lifecycle_policies(), state);
    spec.routes = vec![
        ("/strict", "strict-api"),
        ("/mam", "mam-api"),
        ("/app", "app-api"),
        ("/", "corp-api"),
    ];
    spec
}

/// A token for `user` on `device`, issued at `iat`, CAE-capable or not.
fn opts(device: &str, iat: i64, cp1: bool) -> impl FnOnce(&mut DevTokenOptions) {
    let device = device.to_owned();
    move |o| {
        o.deviceid = Some(device);
        o.iat = Some(iat);
        if cp1 {
            o.xms_cc = vec!["cp1".into()];
        }
    }
}

fn app_state(reg_since: i64, remediation: &str) -> Value {
    json!({
        "users": [user("u-app")],
        "devices": [device("dev-app", "compliant", None, "pending")],
        "appProtectionPolicies": [{"id": "mam", "platform": "ios", "apps": [CA_APP],
            "includeGroups": ["g-mam"], "periodOfflineBeforeAccessCheck": "PT12H"}],
        "appRegistrations": [{"userId": "u-app", "appId": CA_APP, "azureADDeviceId": "dev-app",
            "platform": "ios", "applicationVersion": "5.2.0", "platformVersion": "17.4",
            "lastSyncDateTime": ts(unix_now() - 60), "complianceState": "noncompliant",
            "noncompliantSince": ts(reg_since), "remediation": remediation}],
    })
}

#[tokio::test]
async fn inside_the_remediation_window_the_client_is_asked_to_remediate() {
    let since = unix_now() - 600;
    let st = json!({"users": [user("u-rita")],
                    "devices": [device("dev-rita", "noncompliant", Some(since), "pending")]});
    let ca = CaGateway::start(lifecycle_spec(st)).await;
    // Even a token from long before: inside the window nobody is signed out.
    for (iat, h2) in [(unix_now() - 7200, true), (unix_now(), false)] {
        let t = ca.token("u-rita", opts("dev-rita", iat, true));
        let (parts, v) = ca
            .expect_refusal("/", Some(&t), h2, &[], 403, "device_noncompliant")
            .await;
        assert_eq!(v["policy"], "device-1h");
        let deadline = v["remediation_deadline"].as_str().unwrap();
        assert_eq!(parse_ts(deadline), since + WINDOW, "{deadline}");
        assert_eq!(deadline, ts(since + WINDOW));
        // The deadline is 50 minutes away: retry within a minute.
        assert_eq!(parts.headers["retry-after"], "60");
        assert!(parts.headers.get("www-authenticate").is_none());
    }

    // An app registration that became noncompliant: same lifecycle, reason app_noncompliant.
    let since = unix_now() - 300;
    let ca = CaGateway::start(lifecycle_spec(app_state(since, "pending"))).await;
    let t = ca.token("u-app", opts("dev-app", unix_now() - 7200, true));
    let (parts, v) = ca
        .expect_refusal("/mam", Some(&t), true, &[], 403, "app_noncompliant")
        .await;
    assert_eq!(v["policy"], "mam-1h");
    assert_eq!(v["remediation_deadline"], ts(since + WINDOW));
    assert_eq!(parts.headers["retry-after"], "60");
}

#[tokio::test]
async fn after_the_window_old_tokens_are_signed_out_and_new_ones_blocked() {
    let since = unix_now() - 2 * WINDOW;
    let sign_out = since + WINDOW;
    let st = json!({"users": [user("u-sam")],
                    "devices": [device("dev-sam", "noncompliant", Some(since), "pending")]});
    let ca = CaGateway::start(lifecycle_spec(st)).await;
    let iat = unix_now() - 3 * WINDOW;

    // CAE-capable client: the claims challenge naming the sign-out moment.
    let t = ca.token("u-sam", opts("dev-sam", iat, true));
    let (parts, v) = ca
        .expect_refusal("/", Some(&t), true, &[], 401, "device_noncompliant")
        .await;
    assert_eq!(v["policy"], "device-1h");
    assert!(v.get("remediation_deadline").is_none(), "{v}");
    assert_claims_challenge(&parts, &nbf_claims(sign_out));
    assert!(sign_out > iat, "a fresh token must be able to satisfy nbf");

    // Other clients: invalid_token, no claims.
    let t = ca.token("u-sam", opts("dev-sam", iat, false));
    let (parts, _) = ca
        .expect_refusal("/", Some(&t), false, &[], 401, "device_noncompliant")
        .await;
    assert_invalid_token_challenge(&parts);

    // A token issued after the sign-out moment (the client did sign in again) while the
    // device is still noncompliant: 403 block, not another 401 — no sign-in loop.
    for (iat, h2) in [(sign_out, true), (unix_now(), false)] {
        let t = ca.token("u-sam", opts("dev-sam", iat, true));
        let (parts, v) = ca
            .expect_refusal("/", Some(&t), h2, &[], 403, "device_noncompliant")
            .await;
        assert!(parts.headers.get("www-authenticate").is_none());
        assert!(v.get("remediation_deadline").is_none(), "{v}");
    }

    // The same for an app registration.
    let since = unix_now() - 2 * WINDOW;
    let ca = CaGateway::start(lifecycle_spec(app_state(since, "pending"))).await;
    let t = ca.token("u-app", opts("dev-app", since, true));
    let (parts, _) = ca
        .expect_refusal("/mam", Some(&t), true, &[], 401, "app_noncompliant")
        .await;
    assert_claims_challenge(&parts, &nbf_claims(since + WINDOW));
    let t = ca.token("u-app", opts("dev-app", unix_now(), true));
    ca.expect_refusal("/mam", Some(&t), false, &[], 403, "app_noncompliant")
        .await;
}

#[tokio::test]
async fn failed_or_disabled_remediation_signs_out_at_noncompliant_since() {
    let since = unix_now() - 600;
    let st = json!({"users": [user("u-tom")], "devices": [
        device("dev-failed", "noncompliant", Some(since), "failed"),
        device("dev-disabled", "noncompliant", Some(since), "disabled"),
        device("dev-pending", "noncompliant", Some(since), "pending"),
    ]});
    let ca = CaGateway::start(lifecycle_spec(st)).await;
    let old = since - 600;
    // Remediation failed / disabled in state, or switched off by the policy: no window.
    for (path, dev, h2) in [
        ("/", "dev-failed", true),
        ("/", "dev-disabled", false),
        ("/strict", "dev-pending", true),
    ] {
        let t = ca.token("u-tom", opts(dev, old, true));
        let (parts, v) = ca
            .expect_refusal(path, Some(&t), h2, &[], 401, "device_noncompliant")
            .await;
        assert_claims_challenge(&parts, &nbf_claims(since));
        assert!(v.get("remediation_deadline").is_none(), "{dev}: {v}");
        let fresh = ca.token("u-tom", opts(dev, unix_now(), true));
        let (parts, _) = ca
            .expect_refusal(path, Some(&fresh), !h2, &[], 403, "device_noncompliant")
            .await;
        assert!(parts.headers.get("www-authenticate").is_none(), "{dev}");
    }
    // Control: the pending device under the windowed policy is still remediating.
    let t = ca.token("u-tom", opts("dev-pending", old, true));
    let (_, v) = ca
        .expect_refusal("/", Some(&t), true, &[], 403, "device_noncompliant")
        .await;
    assert_eq!(v["remediation_deadline"], ts(since + WINDOW));

    // A failed remediation of an app registration.
    let ca = CaGateway::start(lifecycle_spec(app_state(since, "failed"))).await;
    let t = ca.token("u-app", opts("dev-app", old, true));
    let (parts, _) = ca
        .expect_refusal("/mam", Some(&t), false, &[], 401, "app_noncompliant")
        .await;
    assert_claims_challenge(&parts, &nbf_claims(since));
}

#[tokio::test]
async fn revoked_sessions_and_disabled_accounts_reauthenticate_at_once() {
    let revoked = unix_now() - 600;
    let st = json!({"users": [
        {"id": "u-rev", "accountEnabled": true, "licensed": true, "revokeSessionsAfter": ts(revoked)},
        {"id": "u-off", "accountEnabled": false, "licensed": true},
    ], "devices": [device("dev-ok", "compliant", None, "pending")]});
    let ca = CaGateway::start(lifecycle_spec(st)).await;
    let before = revoked - 3000;
    let t = ca.token("u-rev", opts("dev-ok", before, true));
    let (parts, v) = ca
        .expect_refusal("/", Some(&t), true, &[], 401, "session_revoked")
        .await;
    assert!(v.get("policy").is_none(), "{v}");
    assert_claims_challenge(&parts, &nbf_claims(revoked));
    let t = ca.token("u-rev", opts("dev-ok", before, false));
    let (parts, _) = ca
        .expect_refusal("/", Some(&t), false, &[], 401, "session_revoked")
        .await;
    assert_invalid_token_challenge(&parts);
    // Issued at or after the revocation: fine.
    for (iat, h2) in [(revoked, true), (unix_now(), false)] {
        ca.expect_allow("/", &ca.token("u-rev", opts("dev-ok", iat, true)), h2)
            .await;
    }

    // A disabled account: reauthenticate, whatever the token's age.
    for iat in [unix_now() - 3600, unix_now()] {
        let t = ca.token("u-off", opts("dev-ok", iat, true));
        let (parts, v) = ca
            .expect_refusal("/", Some(&t), true, &[], 401, "user_disabled")
            .await;
        assert!(v.get("policy").is_none(), "{v}");
        let c = challenge_of(&parts);
        let claims: Value = serde_json::from_str(&decode_claims(c.get("claims").unwrap())).unwrap();
        let nbf: i64 = claims["access_token"]["nbf"]["value"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(nbf > iat, "nbf {nbf} must be later than iat {iat}");
        assert_claims_challenge(&parts, &nbf_claims(nbf));
    }
}

/// Send `token` until the response status is `want` (bounded); returns the last response.
async fn until_status(
    ca: &CaGateway,
    path: &str,
    token: &str,
    want: u16,
) -> (http::response::Parts, bytes::Bytes) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (parts, body) = ca.call(path, Some(token), true, &[]).await;
        if parts.status.as_u16() == want || tokio::time::Instant::now() >= deadline {
            return (parts, body);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_state_change_reaches_a_live_token_within_one_refresh() {
    let st = |revoke: Option<i64>| {
        json!({"users": [{"id": "u-cae", "accountEnabled": true, "licensed": true,
                          "revokeSessionsAfter": revoke.map(ts)}],
               "devices": [device("dev-cae", "compliant", None, "pending")]})
    };
    let mut spec = lifecycle_spec(st(None));
    spec.state_extra = "refresh = \"200ms\"\nmax_staleness = \"1h\"".into();
    let ca = CaGateway::start(spec).await;
    let iat = unix_now() - 60;
    let token = ca.token("u-cae", opts("dev-cae", iat, true));
    ca.expect_allow("/", &token, true).await;

    // The user's sessions are revoked in the state source: the SAME token is refused at
    // the next refresh, with no new token and no expiry in between.
    let revoked = unix_now();
    ca.write_state(&st(Some(revoked)));
    let (parts, body) = until_status(&ca, "/", &token, 401).await;
    let v = assert_problem(&parts, &body, 401);
    assert_eq!(v["reason"], "session_revoked");
    assert_claims_challenge(&parts, &nbf_claims(revoked));
    assert!(revoked > iat);
    ca.expect_refusal("/", Some(&token), false, &[], 401, "session_revoked")
        .await;

    // A state published in-process reaches it at once: disabled, then re-enabled.
    let publish = |v: Value| {
        let s = PolicyState::from_json(&serde_json::to_vec(&v).unwrap()).unwrap();
        ca.gw.gw().state().publish(s, SystemTime::now());
    };
    let mut disabled = st(None);
    disabled["users"][0]["accountEnabled"] = json!(false);
    publish(disabled);
    ca.expect_refusal("/", Some(&token), true, &[], 401, "user_disabled")
        .await;
    publish(st(None));
    ca.expect_allow("/", &token, false).await;
}

fn staleness_state() -> Value {
    json!({"users": [user("u-ok"),
                     {"id": "u-rev", "accountEnabled": true, "licensed": true,
                      "revokeSessionsAfter": ts(unix_now() - 60)}],
           "devices": [device("dev-ok", "compliant", None, "pending"),
                       device("dev-bad", "noncompliant", None, "pending")]})
}

#[tokio::test]
async fn stale_state_fails_closed_with_503() {
    let mut spec = lifecycle_spec(staleness_state());
    spec.state_extra = "refresh = \"100ms\"\nmax_staleness = \"1s\"".into();
    let ca = CaGateway::start(spec).await;
    let t = ca.token("u-ok", opts("dev-ok", unix_now(), true));
    ca.expect_allow("/", &t, true).await;

    // The source breaks: every refresh fails, the state ages past max_staleness.
    ca.write_state_bytes(b"{ this is not state");
    let (parts, body) = until_status(&ca, "/", &t, 503).await;
    let v = assert_problem(&parts, &body, 503);
    assert_eq!(v["reason"], "state_stale");
    assert!(v.get("policy").is_none(), "{v}");
    // Retry-After = the refresh interval, at least one second.
    assert_eq!(parts.headers["retry-after"], "1");
    assert!(parts.headers.get("www-authenticate").is_none());
    let (parts, _) = ca
        .expect_refusal("/", Some(&t), false, &[], 503, "state_stale")
        .await;
    assert_eq!(parts.headers["retry-after"], "1");
    let (status, _) = admin_get(ca.gw.admin.unwrap(), "/readyz").await;
    assert_eq!(status, 503, "readyz must report stale state");

    // The source recovers: requests are decided again.
    ca.write_state(&staleness_state());
    let (parts, _) = until_status(&ca, "/", &t, 200).await;
    assert_eq!(parts.status, 200);
}

#[tokio::test]
async fn fail_open_lets_requests_through_without_state_checks_and_counts_them() {
    let mut spec = lifecycle_spec(staleness_state());
    spec.state_extra = "refresh = \"100ms\"\nmax_staleness = \"1s\"\nfail_open = true".into();
    let ca = CaGateway::start(spec).await;
    let t = ca.token("u-ok", opts("dev-bad", unix_now(), true));
    ca.expect_refusal("/", Some(&t), true, &[], 403, "device_noncompliant")
        .await;
    assert_eq!(
        ca.metric("accessgate_state_fail_open_total", &[]).await,
        0.0
    );

    ca.write_state_bytes(b"\x00\x01garbage");
    let (parts, body) = until_status(&ca, "/", &t, 200).await;
    assert_eq!(parts.status, 200, "{}", String::from_utf8_lossy(&body));
    ca.expect_allow("/", &t, false).await;
    assert!(ca.metric("accessgate_state_fail_open_total", &[]).await >= 2.0);
    // Controls that need no state still apply.
    ca.expect_allow("/app", &t, true).await;
    let other = ca.token("u-ok", |o| {
        o.deviceid = Some("dev-bad".into());
        o.azp = Some(CA_OTHER_APP.into());
    });
    ca.expect_refusal("/app", Some(&other), false, &[], 403, "not_approved_app")
        .await;
}

#[tokio::test]
async fn a_bad_state_file_never_replaces_the_last_good_one() {
    let mut spec = lifecycle_spec(staleness_state());
    spec.state_extra = "refresh = \"100ms\"\nmax_staleness = \"1h\"".into();
    let ca = CaGateway::start(spec).await;
    let ok = ca.token("u-ok", opts("dev-ok", unix_now(), true));
    let rev = ca.token("u-rev", opts("dev-ok", unix_now() - 3600, true));
    let bad = ca.token("u-ok", opts("dev-bad", unix_now(), true));
    let check = || async {
        ca.expect_allow("/", &ok, true).await;
        ca.expect_refusal("/", Some(&rev), false, &[], 401, "session_revoked")
            .await;
        ca.expect_refusal("/", Some(&bad), true, &[], 403, "device_noncompliant")
            .await;
    };
    check().await;
    let errors = "accessgate_state_refresh_total";
    let mut seen = ca.metric(errors, &[("outcome", "error")]).await;

    // A file that parses but does not validate, one that does not parse, and none at all.
    let mut invalid = staleness_state();
    invalid["devices"][1]["complianceState"] = json!("bogus");
    let path = ca.gw.certs.path("state.json");
    let breakages: [Box<dyn Fn()>; 3] = [
        Box::new(|| ca.write_state(&invalid)),
        Box::new(|| ca.write_state_bytes(b"[1, 2, ")),
        Box::new(|| std::fs::remove_file(&path).unwrap()),
    ];
    for (i, breakage) in breakages.iter().enumerate() {
        breakage();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        let mut now = seen;
        while now < seen + 2.0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
            now = ca.metric(errors, &[("outcome", "error")]).await;
        }
        assert!(
            now >= seen + 2.0,
            "breakage {i}: refreshes did not fail ({now})"
        );
        seen = now;
        check().await;
    }
}
