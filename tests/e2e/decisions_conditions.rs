//! End to end through a running gateway: which Conditional Access policies apply to a
//! request — users and groups (exclude wins), `all`, client app, platform, location (with
//! and without a trusted proxy) — and policy modes (`disabled`, `report_only`).
//!
//! Grant controls live in `decisions_grants.rs`; the compliance lifecycle, continuous access
//! evaluation and state freshness in `decisions_lifecycle.rs`. Every refusal is checked for
//! status, problem `reason`/`policy`/`decision_id`, and for nothing reaching the upstream.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use serde_json::{Value, json};
use support::*;

fn user(id: &str, groups: &[&str]) -> Value {
    json!({"id": id, "accountEnabled": true, "licensed": true, "groups": groups})
}

fn device(id: &str, os: &str) -> Value {
    json!({"azureADDeviceId": id, "complianceState": "compliant", "operatingSystem": os,
           "osVersion": "17.4"})
}

fn state(users: Vec<Value>, devices: Vec<Value>) -> Value {
    json!({"users": users, "devices": devices, "appProtectionPolicies": [],
           "appRegistrations": []})
}

#[tokio::test]
async fn block_policy_wins_over_every_other_outcome() {
    // Three enabled policies apply to carol: an MFA policy (she has none: step-up), an
    // approved-app policy (she passes) and a block on her group. Block decides.
    let policies = r#"
[[policies]]
name = "needs-mfa"
resources = ["corp-api"]
include_users = ["all"]
grant = { controls = ["mfa"] }

[[policies]]
name = "needs-approved-app"
resources = ["all"]
include_users = ["all"]
grant = { controls = ["approved_app"] }

[[policies]]
name = "block-contractors"
resources = ["corp-api"]
include_groups = ["g-contractors"]
grant = { block = true }
"#;
    let ca = CaGateway::start(CaSpec::new(
        policies,
        state(
            vec![
                user("u-carol", &["g-contractors"]),
                user("u-dave", &["g-staff"]),
            ],
            vec![],
        ),
    ))
    .await;
    let carol = ca.token("u-carol", |_| {});
    let (parts, v) = ca
        .expect_refusal("/x", Some(&carol), true, &[], 403, "block_policy")
        .await;
    assert_eq!(v["policy"], "block-contractors");
    assert!(v.get("remediation_deadline").is_none(), "{v}");
    assert!(parts.headers.get("www-authenticate").is_none());
    assert!(parts.headers.get("retry-after").is_none());

    // dave is not a contractor: the MFA policy decides (step-up), proving it applied.
    let dave = ca.token("u-dave", |_| {});
    let (parts, v) = ca
        .expect_refusal("/x", Some(&dave), false, &[], 401, "mfa_required")
        .await;
    assert_eq!(v["policy"], "needs-mfa");
    assert_claims_challenge(&parts, accessgate::respond::MFA_CLAIMS);
    // ... and with MFA he is through.
    let dave_mfa = ca.token("u-dave", |o| o.amr = vec!["pwd".into(), "mfa".into()]);
    ca.expect_allow("/x", &dave_mfa, false).await;
    // carol with MFA is still blocked.
    let carol_mfa = ca.token("u-carol", |o| o.amr = vec!["mfa".into()]);
    ca.expect_refusal("/x", Some(&carol_mfa), true, &[], 403, "block_policy")
        .await;
}

#[tokio::test]
async fn exclude_user_and_exclude_group_win_over_include() {
    let policies = r#"
[[policies]]
name = "block-listed-users"
resources = ["corp-api"]
include_users = ["u-erin", "u-frank"]
exclude_users = ["u-erin"]
grant = { block = true }

[[policies]]
name = "block-staff"
resources = ["corp-api"]
include_groups = ["g-staff"]
exclude_groups = ["break-glass"]
grant = { block = true }
"#;
    let ca = CaGateway::start(CaSpec::new(
        policies,
        state(
            vec![
                user("u-erin", &[]),
                user("u-frank", &[]),
                user("u-gina", &["g-staff", "break-glass"]),
                user("u-hank", &["g-staff"]),
            ],
            vec![],
        ),
    ))
    .await;
    // Excluded user, although also included by id.
    ca.expect_allow("/", &ca.token("u-erin", |_| {}), true)
        .await;
    let (_, v) = ca
        .expect_refusal(
            "/",
            Some(&ca.token("u-frank", |_| {})),
            true,
            &[],
            403,
            "block_policy",
        )
        .await;
    assert_eq!(v["policy"], "block-listed-users");
    // Group membership from state: in the included group and in the excluded one.
    ca.expect_allow("/", &ca.token("u-gina", |_| {}), false)
        .await;
    let (_, v) = ca
        .expect_refusal(
            "/",
            Some(&ca.token("u-hank", |_| {})),
            false,
            &[],
            403,
            "block_policy",
        )
        .await;
    assert_eq!(v["policy"], "block-staff");
    // When state knows the user, the token's groups claim cannot talk them into an exclusion.
    let hank_claims_exempt = ca.token("u-hank", |o| o.groups = vec!["break-glass".into()]);
    ca.expect_refusal(
        "/",
        Some(&hank_claims_exempt),
        true,
        &[],
        403,
        "block_policy",
    )
    .await;
    // A user not in state: membership comes from the token's groups claim.
    let ivy_excluded = ca.token("u-ivy", |o| {
        o.groups = vec!["g-staff".into(), "break-glass".into()]
    });
    ca.expect_allow("/", &ivy_excluded, true).await;
    let ivy_included = ca.token("u-ivy", |o| o.groups = vec!["g-staff".into()]);
    ca.expect_refusal("/", Some(&ivy_included), true, &[], 403, "block_policy")
        .await;
    // Groups overage (membership unknown): the include matches, the exclude cannot be
    // proven, so the block applies — unknown never loosens a policy.
    let ivy_overage = ca.token("u-ivy", |o| {
        o.extra.insert(
            "_claim_names".into(),
            json!({"groups": "src1"}),
        );
        o.extra.insert(
            "_claim_sources".into(),
            json!({"src1": {"endpoint": "https://graph.microsoft.com/v1.0/users/x/getMemberObjects"}}),
        );
    });
    ca.expect_refusal("/", Some(&ivy_overage), false, &[], 403, "block_policy")
        .await;
}

#[tokio::test]
async fn include_all_covers_every_user_but_only_on_its_resources() {
    let policies = r#"
[[policies]]
name = "block-everyone"
resources = ["corp-api"]
include_users = ["all"]
grant = { block = true }
"#;
    let mut spec = CaSpec::new(policies, state(vec![user("u-jo", &[])], vec![]));
    spec.routes = vec![("/other", "other-api"), ("/", "corp-api")];
    let ca = CaGateway::start(spec).await;
    for (who, h2) in [("u-jo", true), ("u-not-in-state", false)] {
        let t = ca.token(who, |_| {});
        let (_, v) = ca
            .expect_refusal("/data", Some(&t), h2, &[], 403, "block_policy")
            .await;
        assert_eq!(v["policy"], "block-everyone");
        // The other resource has no policy.
        let r = ca.expect_allow("/other/data", &t, h2).await;
        assert_eq!(r.uri.path(), "/other/data");
    }
}

#[tokio::test]
async fn client_app_condition_limits_a_policy_to_its_apps() {
    let policies = format!(
        r#"
[[policies]]
name = "block-other-app"
resources = ["corp-api"]
include_users = ["all"]
client_apps = ["{CA_OTHER_APP}"]
grant = {{ block = true }}
"#
    );
    let ca = CaGateway::start(CaSpec::new(
        &policies,
        state(vec![user("u-kim", &[])], vec![]),
    ))
    .await;
    // The policy names another app: it does not apply to CA_APP. The token names no
    // device, so the upstream gets no device header — not even one the client sent.
    let spoof = [("x-accessgate-device", "dev-spoofed")];
    let r = ca
        .expect_allow_with("/", &ca.token("u-kim", |_| {}), true, &spoof)
        .await;
    assert_eq!(r.headers["x-accessgate-app"], CA_APP);
    assert_eq!(r.headers["x-accessgate-user"], "u-kim");
    assert!(
        r.headers.get("x-accessgate-device").is_none(),
        "{:?}",
        r.headers
    );
    let other = ca.token("u-kim", |o| o.azp = Some(CA_OTHER_APP.into()));
    let (_, v) = ca
        .expect_refusal("/", Some(&other), false, &[], 403, "block_policy")
        .await;
    assert_eq!(v["policy"], "block-other-app");
}

#[tokio::test]
async fn platform_condition_uses_the_device_platform_from_state() {
    let policies = r#"
[[policies]]
name = "block-android"
resources = ["corp-api"]
include_users = ["all"]
platforms = ["android"]
grant = { block = true }
"#;
    let ca = CaGateway::start(CaSpec::new(
        policies,
        state(
            vec![user("u-lee", &[])],
            vec![device("dev-ios", "iOS"), device("dev-android", "Android")],
        ),
    ))
    .await;
    let ios = ca.token("u-lee", |o| o.deviceid = Some("dev-ios".into()));
    let r = ca.expect_allow("/", &ios, true).await;
    assert_eq!(r.headers["x-accessgate-device"], "dev-ios");
    let android = ca.token("u-lee", |o| o.deviceid = Some("dev-android".into()));
    ca.expect_refusal("/", Some(&android), true, &[], 403, "block_policy")
        .await;
    // Platform unknown (device not in state, or no device): the condition is taken to
    // match, so not knowing never loosens the policy.
    let unknown = ca.token("u-lee", |o| o.deviceid = Some("dev-unlisted".into()));
    ca.expect_refusal("/", Some(&unknown), false, &[], 403, "block_policy")
        .await;
    let none = ca.token("u-lee", |_| {});
    ca.expect_refusal("/", Some(&none), false, &[], 403, "block_policy")
        .await;
}

/// Policies on three resources: include 10/8, include 127/8, exclude 127/8.
const LOCATION_POLICIES: &str = r#"
[[policies]]
name = "block-from-corp-net"
resources = ["corp-api"]
include_users = ["all"]
locations = { include = ["10.0.0.0/8"] }
grant = { block = true }

[[policies]]
name = "block-from-loopback"
resources = ["loop-api"]
include_users = ["all"]
locations = { include = ["127.0.0.0/8"] }
grant = { block = true }

[[policies]]
name = "block-outside-loopback"
resources = ["outside-api"]
include_users = ["all"]
locations = { exclude = ["127.0.0.0/8"] }
grant = { block = true }
"#;

fn location_spec() -> CaSpec {
    let mut spec = CaSpec::new(LOCATION_POLICIES, state(vec![user("u-max", &[])], vec![]));
    spec.routes = vec![
        ("/loop", "loop-api"),
        ("/outside", "outside-api"),
        ("/", "corp-api"),
    ];
    spec
}

#[tokio::test]
async fn location_include_and_exclude_match_the_client_ip() {
    let ca = CaGateway::start(location_spec()).await;
    let t = ca.token("u-max", |_| {});
    // The client is 127.0.0.1.
    ca.expect_allow("/", &t, true).await;
    let (_, v) = ca
        .expect_refusal("/loop", Some(&t), true, &[], 403, "block_policy")
        .await;
    assert_eq!(v["policy"], "block-from-loopback");
    ca.expect_allow("/outside", &t, false).await;
    // Without trusted_proxies, X-Forwarded-For is not believed.
    let xff = [("x-forwarded-for", "10.1.2.3")];
    ca.expect_allow_with("/", &t, false, &xff).await;
    ca.expect_refusal("/loop", Some(&t), false, &xff, 403, "block_policy")
        .await;
    ca.expect_allow_with("/outside", &t, true, &xff).await;
}

#[tokio::test]
async fn x_forwarded_for_from_a_trusted_proxy_moves_the_client_ip() {
    let mut spec = location_spec();
    spec.listen_extra = r#"trusted_proxies = ["127.0.0.0/8"]"#.into();
    let ca = CaGateway::start(spec).await;
    let t = ca.token("u-max", |_| {});
    let xff = [("x-forwarded-for", "10.1.2.3")];
    // Client 10.1.2.3: inside 10/8, outside 127/8.
    let (_, v) = ca
        .expect_refusal("/", Some(&t), true, &xff, 403, "block_policy")
        .await;
    assert_eq!(v["policy"], "block-from-corp-net");
    ca.expect_allow_with("/loop", &t, true, &xff).await;
    let (_, v) = ca
        .expect_refusal("/outside", Some(&t), false, &xff, 403, "block_policy")
        .await;
    assert_eq!(v["policy"], "block-outside-loopback");
    // A client cannot prepend a corporate address: the nearest address not of a trusted
    // proxy (192.0.2.7) is the client, inside neither 10/8 nor 127/8.
    let chain = [("x-forwarded-for", "10.1.2.3, 192.0.2.7")];
    ca.expect_allow_with("/", &t, true, &chain).await;
    ca.expect_refusal("/outside", Some(&t), true, &chain, 403, "block_policy")
        .await;
    // Without the header the trusted proxy itself (127.0.0.1) is the client.
    ca.expect_allow("/", &t, false).await;
    ca.expect_refusal("/loop", Some(&t), false, &[], 403, "block_policy")
        .await;
}

#[tokio::test]
async fn disabled_policy_never_applies() {
    let policies = r#"
[[policies]]
name = "off-block"
mode = "disabled"
resources = ["corp-api"]
include_users = ["all"]
grant = { block = true }
"#;
    let ca = CaGateway::start(CaSpec::new(
        policies,
        state(vec![user("u-ned", &[])], vec![]),
    ))
    .await;
    ca.expect_allow("/", &ca.token("u-ned", |_| {}), true).await;
    let labels = [("policy", "off-block"), ("mode", "disabled")];
    let metric = "accessgate_policy_evaluations_total";
    assert_eq!(
        ca.metric(metric, &[labels[0], labels[1], ("result", "notEnabled")])
            .await,
        1.0
    );
}

#[tokio::test]
async fn report_only_failure_never_changes_the_outcome_and_is_counted() {
    let policies = r#"
[[policies]]
name = "ro-block"
mode = "report_only"
resources = ["corp-api"]
include_users = ["all"]
grant = { block = true }

[[policies]]
name = "ro-mfa"
mode = "report_only"
resources = ["corp-api"]
include_users = ["all"]
grant = { controls = ["mfa"] }

[[policies]]
name = "ro-other-app"
mode = "report_only"
resources = ["corp-api"]
include_users = ["all"]
client_apps = ["9b9a6e2e-5d1c-4c2e-8f57-00000000beef"]
grant = { block = true }
"#;
    let ca = CaGateway::start(CaSpec::new(
        policies,
        state(vec![user("u-ola", &[])], vec![]),
    ))
    .await;
    let t = ca.token("u-ola", |_| {});
    ca.expect_allow("/", &t, true).await;
    ca.expect_allow("/", &t, false).await;
    let metric = "accessgate_policy_evaluations_total";
    let m =
        |p: &'static str, r: &'static str| [("policy", p), ("mode", "report_only"), ("result", r)];
    assert_eq!(
        ca.metric(metric, &m("ro-block", "reportOnlyFailure")).await,
        2.0
    );
    assert_eq!(
        ca.metric(metric, &m("ro-mfa", "reportOnlyFailure")).await,
        2.0
    );
    assert_eq!(
        ca.metric(metric, &m("ro-other-app", "reportOnlyNotApplied"))
            .await,
        2.0
    );
    // With MFA the report-only MFA policy succeeds.
    let mfa = ca.token("u-ola", |o| o.amr = vec!["mfa".into()]);
    ca.expect_allow("/", &mfa, true).await;
    assert_eq!(
        ca.metric(metric, &m("ro-mfa", "reportOnlySuccess")).await,
        1.0
    );
    assert_eq!(
        ca.metric(metric, &m("ro-block", "reportOnlyFailure")).await,
        3.0
    );
}
