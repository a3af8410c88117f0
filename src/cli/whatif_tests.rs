//! What If and policy tests against the shipped demo config, state and cases.

use std::path::Path;

use serde_json::json;

use super::{eval_report, principal_from_claims, run_policy_tests};
use crate::config::{Config, DEMO_CONFIG, parse_str};
use crate::policy::PolicyState;

const DEMO_STATE: &str = include_str!("../../config/demo-state.json");
const DEMO_CASES: &str = include_str!("../../config/policy-tests.toml");
const ISS: &str = "https://login.accessgate.dev/demo-tenant/v2.0";
const APP: &str = "0c1307d4-29d6-4389-a11c-5cbe7f65d7fa";
/// 2026-06-01T12:00:00Z
const AT: i64 = 1_780_315_200;

fn demo() -> (Config, PolicyState) {
    let c = parse_str(
        DEMO_CONFIG,
        Path::new("/tmp/accessgate-whatif/config/demo.toml"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    (c, PolicyState::from_json(DEMO_STATE.as_bytes()).unwrap())
}

#[test]
fn shipped_policy_tests_pass() {
    let (c, s) = demo();
    let r = run_policy_tests(&c, &s, DEMO_CASES).unwrap();
    assert!(r.passed(), "{r}");
    assert_eq!(r.cases.len(), 10);
}

#[test]
fn a_wrong_expectation_fails_and_says_why() {
    let (c, s) = demo();
    let cases = format!(
        r#"[[case]]
name = "uma expected to pass"
resource = "corp-api"
claims = {{ iss = "{ISS}", oid = "44444444-4444-4444-8444-444444444444", azp = "{APP}", deviceid = "d4444444-4444-4444-8444-444444444444" }}
at = "2026-06-01T12:00:00Z"
expect = "allow"

[[case]]
name = "right decision, wrong reason"
resource = "corp-api"
claims = {{ iss = "{ISS}", oid = "44444444-4444-4444-8444-444444444444", azp = "{APP}", deviceid = "d4444444-4444-4444-8444-444444444444" }}
at = "2026-06-01T12:00:00Z"
expect = "block"
expect_reason = "rooted_device"
"#
    );
    let r = run_policy_tests(&c, &s, &cases).unwrap();
    assert!(!r.passed());
    assert_eq!(r.failures(), 2);
    let text = r.to_string();
    assert!(
        text.contains("FAIL  uma expected to pass: expected allow, got block (user_unlicensed)"),
        "{text}"
    );
    assert!(
        text.contains("decided by policy \"require-app-protection\""),
        "{text}"
    );
    assert!(text.ends_with("2 cases, 0 passed, 2 failed\n"), "{text}");
}

#[test]
fn unrunnable_case_files_are_errors() {
    let (c, s) = demo();
    for (cases, want) in [
        ("", "no [[case]]"),
        ("[[case]]\nname = \"x\"\n", "missing field"),
        (
            "[[case]]\nname = \"x\"\nresource = \"r\"\nclaims = { oid = \"u\" }\nexpect = \"maybe\"\n",
            "case[0] (x): expect \"maybe\" is not one of",
        ),
        (
            "[[case]]\nname = \"x\"\nresource = \"r\"\nclaims = { oid = \"u\" }\nexpect = \"allow\"\nat = \"noon\"\n",
            "case[0] (x): at \"noon\" is not RFC 3339",
        ),
        (
            "[[case]]\nname = \"x\"\nresource = \"r\"\nclaims = { oid = \"u\" }\nexpect = \"allow\"\nip = \"home\"\n",
            "is not an IP address",
        ),
        (
            "[[case]]\nname = \"x\"\nresource = \"r\"\nclaims = { aud = \"u\" }\nexpect = \"allow\"\n",
            "the gateway would refuse this token: issuer not trusted",
        ),
        (
            "[[case]]\nname = \"x\"\nresource = \"r\"\nclaims = { iss = \"https://login.accessgate.dev/demo-tenant/v2.0\", aud = \"u\" }\nexpect = \"allow\"\n",
            "the gateway would refuse this token: malformed or missing claims",
        ),
        (
            "[[case]]\nname = \"x\"\nresource = \"r\"\nclaims = {}\nexpect = \"allow\"\nwhen = 1\n",
            "unknown field",
        ),
    ] {
        let e = run_policy_tests(&c, &s, cases).unwrap_err();
        assert!(e.contains(want), "want {want:?} in {e:?}");
    }
}

#[test]
fn eval_report_shows_decision_challenge_and_every_policy() {
    let (c, s) = demo();
    let claims = json!({"iss": ISS, "oid": "33333333-3333-4333-8333-333333333333", "azp": APP,
        "deviceid": "d3333333-3333-4333-8333-333333333333", "xms_cc": ["cp1"], "iat": 1_767_225_000, "exp": AT + 600});
    let p = principal_from_claims(&c, &claims).unwrap();
    let r = eval_report(&c, &s, "corp-api", &p, "127.0.0.1".parse().unwrap(), AT).unwrap();
    assert_eq!(
        (r.decision, r.reason, r.status),
        ("reauthenticate", "app_noncompliant", 401)
    );
    assert_eq!(r.policy.as_deref(), Some("require-app-protection"));
    let www = r.www_authenticate.clone().unwrap();
    assert!(www.contains("error=\"insufficient_claims\""), "{www}");
    let text = r.to_string();
    assert!(text.starts_with("decision: reauthenticate (HTTP 401), reason app_noncompliant, policy \"require-app-protection\"\n"), "{text}");
    assert!(
        text.contains("  require-app-protection [enabled]: failure - applied (app_noncompliant)\n"),
        "{text}"
    );
    assert!(
        text.contains("      approved_app: satisfied (approved_app)\n"),
        "{text}"
    );
    assert!(
        text.contains("      app_protection: failed (app_noncompliant)\n"),
        "{text}"
    );
    assert!(text.contains("report-only-block-outside-corp-network [report_only]: reportOnlyFailure - applied (block_policy)"), "{text}");
    let j = r.to_json();
    assert_eq!(j["decision"], "reauthenticate");
    assert_eq!(j["at"], "2026-06-01T12:00:00Z");
    assert_eq!(j["policies"][0]["controls"][1]["control"], "app_protection");
    assert_eq!(j["policies"][0]["controls"][1]["passed"], false);
    assert_eq!(j["policies"][1]["result"], "reportOnlyFailure");

    // Another resource: no demo policy targets it.
    let r = eval_report(&c, &s, "elsewhere", &p, "127.0.0.1".parse().unwrap(), AT).unwrap();
    assert_eq!(r.decision, "allow");
    assert!(
        r.policies
            .iter()
            .all(|l| !l.applied && l.reason == "resource_not_included")
    );
}

#[test]
fn claims_become_a_principal_like_authenticate_makes() {
    let (c, _) = demo();
    let p = principal_from_claims(
        &c,
        &json!({"iss": ISS, "sub": "s-1", "appid": "v1-app", "groups": ["g1"], "hasgroups": true,
                "amr": ["pwd", "mfa"], "acrs": ["c1"], "xms_cc": "cp1", "scp": "read  write",
                "iat": 10, "auth_time": 5, "exp": 20, "tid": "ABC"}),
    )
    .unwrap();
    assert_eq!(p.user, "s-1");
    assert_eq!(p.client_app.as_deref(), Some("v1-app"));
    assert!(p.groups_incomplete);
    assert!(p.cae_capable);
    assert_eq!(p.acrs, vec!["c1"]);
    assert_eq!(p.scopes, vec!["read", "write"]);
    assert_eq!((p.iat, p.auth_time, p.exp), (Some(10), Some(5), 20));
    assert_eq!(p.tenant.as_deref(), Some("abc"));
    assert!(principal_from_claims(&c, &json!([])).is_err());
    // Read by authenticate's own code: what the gateway refuses is refused here.
    for bad in [
        json!({"iss": ISS, "sub": "s-1", "exp": 20, "acrs": "c1"}),
        json!({"iss": ISS, "sub": "s-1"}),
        json!({"iss": "https://unknown.example/", "sub": "s-1", "exp": 20}),
    ] {
        let e = principal_from_claims(&c, &bad).expect_err("refused");
        assert!(e.contains("the gateway would refuse"), "{e}");
    }
}
