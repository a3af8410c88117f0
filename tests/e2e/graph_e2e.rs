//! `[state] source = "graph"` end to end: a gateway syncing from the Graph double
//! (`tests/graph_double/`) decides from what it read, follows changes within one refresh,
//! survives throttling, keeps its last good state through a failed round, refuses to serve
//! on a refused credential, and keeps a remediation deadline across a restart.
//!
//! The tenant mirrors the people of the demo state (config/demo-state.json) as far as Graph
//! can say it: Alice is fine, Bob's app is flagged (rooted: blocked, as no remediation
//! fixes that), Carol's app is below the
//! minimum version, Dave holds no Intune licence, Erin is excluded through a nested group.
//! (The demo's "remediation failed" has no Graph field: Graph-sourced records always get
//! the policy's window.) Refreshes are driven by the test (`refresh = "1h"`), so "within
//! one refresh" is exactly one `StateStore::refresh`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::Duration;

use accessgate::authn::dev::DevTokenOptions;
use accessgate::state::RefreshOutcome;

use crate::graph_double::*;
use crate::support::*;

const ALICE: &str = "11111111-1111-4111-8111-111111111111";
const BOB: &str = "22222222-2222-4222-8222-222222222222";
const CAROL: &str = "33333333-3333-4333-8333-333333333333";
const DAVE: &str = "44444444-4444-4444-8444-444444444444";
const ERIN: &str = "55555555-5555-4555-8555-555555555555";
const PEOPLE: [&str; 5] = [ALICE, BOB, CAROL, DAVE, ERIN];
const G_MOBILE: &str = "aaaaaaaa-0000-4000-8000-000000000001";
const G_BREAK_GLASS: &str = "aaaaaaaa-0000-4000-8000-000000000002";
const G_ON_CALL: &str = "aaaaaaaa-0000-4000-8000-000000000003";
const IOS_BUNDLE: &str = "com.example.azure-ios";
const WINDOW: i64 = 3600;

fn device_of(user: &str) -> String {
    format!("d{}", &user[1..])
}

fn registration_of(user: &str) -> String {
    format!("e{}", &user[1..])
}

fn tenant() -> Tenant {
    let mut t = Tenant::default();
    for u in PEOPLE {
        let user = User::new(u);
        t.users.push(if u == DAVE { user } else { user.licensed() });
        t.devices.push(Device::new(&device_of(u), u));
        let mut r = Registration::new(&registration_of(u), u, AppRef::ios(IOS_BUNDLE));
        r.last_sync_date_time = ts(unix_now() - 60).into();
        if u == BOB {
            r.flagged_reasons = vec!["rootedDevice".into()];
        }
        if u == CAROL {
            r.application_version = "4.0".into();
        }
        t.registrations.push(r);
    }
    // Erin's device is noncompliant, but she is on call: in break-glass through a nested group.
    t.devices[4].compliance_state = "noncompliant".into();
    t.groups.push(Group::new(
        G_MOBILE,
        PEOPLE.iter().map(|u| Member::User(Guid::of(u))).collect(),
    ));
    t.groups.push(Group::new(
        G_BREAK_GLASS,
        vec![Member::Group(G_ON_CALL.into())],
    ));
    t.groups
        .push(Group::new(G_ON_CALL, vec![Member::User(Guid::of(ERIN))]));
    let mut p = Policy::new(
        "T_ios-managed-apps",
        Platform::Ios,
        vec![AppRef::ios(IOS_BUNDLE)],
        vec![Target::Include(G_MOBILE.into())],
    );
    p.minimum_required_app_version = Some("5.0".into());
    p.period_offline_before_access_check = "P30D".into();
    t.policies.push(p);
    t
}

fn policies() -> String {
    format!(
        r#"
[[policies]]
name = "require-app-protection"
resources = ["corp-api"]
include_users = ["all"]
exclude_groups = ["{G_BREAK_GLASS}"]
grant = {{ operator = "all", controls = ["approved_app", "app_protection"] }}
remediation = {{ enabled = true, window = "1h" }}

[[policies]]
name = "require-compliant-device"
resources = ["dev-api"]
include_users = ["all"]
exclude_groups = ["{G_BREAK_GLASS}"]
grant = {{ controls = ["compliant_device"] }}
remediation = {{ enabled = true, window = "1h" }}
"#
    )
}

/// The gateway config: [`ca_config`] with its file source swapped for Graph.
fn config(double: &GraphDouble, certs: &Certs, cache: &Path) -> String {
    let cfg = DoubleConfig::default();
    let secret = certs.path("graph-secret");
    std::fs::write(&secret, cfg.client_secret.clone().unwrap()).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let mut spec = CaSpec::new(&policies(), serde_json::json!({}));
    spec.routes = vec![("/dev", "dev-api"), ("/", "corp-api")];
    let file_state = "[state]\nsource = \"file\"\npath = \"{certs}/state.json\"\n";
    let base = ca_config(&spec);
    assert!(base.contains(file_state), "ca_config changed its [state]");
    let graph_state = format!(
        "[state]\nsource = \"graph\"\nrefresh = \"1h\"\nmax_staleness = \"2h\"\ncache_dir = \"{}\"\n",
        cache.display()
    );
    format!(
        "{}\n[graph]\ntenant_id = \"{}\"\nclient_id = \"{}\"\nclient_secret_file = \"{}\"\nlogin_url = \"{url}\"\ngraph_url = \"{url}\"\n\n[[graph.apps]]\nclient_id = \"{CA_APP}\"\nios_bundle_ids = [\"{IOS_BUNDLE}\"]\n",
        base.replace(file_state, &graph_state),
        cfg.tenant_id,
        cfg.client_id,
        secret.display(),
        url = double.url(),
    )
}

async fn start(double: &GraphDouble, cache: &Path) -> CaGateway {
    let certs = Certs::new();
    let toml = config(double, &certs, cache);
    CaGateway::start_config(certs, &toml).await
}

/// A CAE-capable token for `user` on their device, issued `age` seconds ago.
fn token(ca: &CaGateway, user: &str, age: i64) -> String {
    let device = device_of(user);
    ca.token(user, move |o: &mut DevTokenOptions| {
        o.deviceid = Some(device);
        o.iat = Some(unix_now() - age);
        o.xms_cc = vec!["cp1".into()];
    })
}

async fn refresh(ca: &CaGateway) -> RefreshOutcome {
    ca.gw.gw().state().refresh().await
}

#[tokio::test]
async fn decisions_follow_the_synced_tenant() {
    let double = GraphDouble::start(tenant(), DoubleConfig::default()).await;
    let cache = tempfile::tempdir().unwrap();
    let ca = start(&double, cache.path()).await;
    let (status, body) = admin_get(ca.gw.admin.unwrap(), "/readyz").await;
    assert_eq!(status, 200, "{body}");

    ca.expect_allow("/", &token(&ca, ALICE, 60), true).await;
    // Bob's app is flagged: no remediation fixes a rooted device (the engine's order).
    let (_, v) = ca
        .expect_refusal(
            "/",
            Some(&token(&ca, BOB, 60)),
            false,
            &[],
            403,
            "rooted_device",
        )
        .await;
    assert!(v.get("remediation_deadline").is_none(), "{v}");
    ca.expect_refusal(
        "/",
        Some(&token(&ca, CAROL, 60)),
        true,
        &[],
        403,
        "app_version_too_low",
    )
    .await;
    ca.expect_refusal(
        "/",
        Some(&token(&ca, DAVE, 60)),
        true,
        &[],
        403,
        "user_unlicensed",
    )
    .await;
    // Erin: excluded through break-glass > on-call (nested), though her device fails.
    ca.expect_allow("/", &token(&ca, ERIN, 60), true).await;
    ca.expect_allow("/dev", &token(&ca, ERIN, 60), false).await;
    ca.expect_allow("/dev", &token(&ca, ALICE, 60), false).await;

    assert_eq!(
        ca.metric("accessgate_state_records", &[("kind", "users")])
            .await,
        5.0
    );
    assert_eq!(
        ca.metric("accessgate_state_records", &[("kind", "app_registrations")])
            .await,
        5.0
    );
    assert!(
        ca.metric(
            "accessgate_graph_requests_total",
            &[("collection", "managedDevices"), ("status", "200")]
        )
        .await
            >= 1.0
    );
    // Every collection was read once, one request per page.
    let c = double.handle().counters();
    for col in [
        Collection::UsersDelta,
        Collection::ManagedDevices,
        Collection::ManagedAppRegistrations,
    ] {
        assert_eq!(c.requests(col), c.pages(col), "{col:?}");
        assert!(c.pages(col) >= 1, "{col:?}");
    }
}

#[tokio::test]
async fn a_device_turning_noncompliant_gives_remediate_within_one_refresh() {
    let double = GraphDouble::start(tenant(), DoubleConfig::default()).await;
    let cache = tempfile::tempdir().unwrap();
    let ca = start(&double, cache.path()).await;
    ca.expect_allow("/dev", &token(&ca, ALICE, 60), true).await;
    double
        .handle()
        .set_device_compliance(&device_of(ALICE), "noncompliant");
    assert_eq!(refresh(&ca).await, RefreshOutcome::Updated);
    let (parts, v) = ca
        .expect_refusal(
            "/dev",
            Some(&token(&ca, ALICE, 60)),
            true,
            &[],
            403,
            "device_noncompliant",
        )
        .await;
    let deadline = parse_ts(v["remediation_deadline"].as_str().unwrap());
    assert!((deadline - (unix_now() + WINDOW)).abs() <= 120, "{v}");
    assert!(parts.headers.get("www-authenticate").is_none());
    // Compliant again: allowed on the next refresh.
    double
        .handle()
        .set_device_compliance(&device_of(ALICE), "compliant");
    assert_eq!(refresh(&ca).await, RefreshOutcome::Updated);
    ca.expect_allow("/dev", &token(&ca, ALICE, 60), false).await;
}

#[tokio::test]
async fn revoked_sessions_get_the_claims_challenge() {
    let double = GraphDouble::start(tenant(), DoubleConfig::default()).await;
    let cache = tempfile::tempdir().unwrap();
    let ca = start(&double, cache.path()).await;
    ca.expect_allow("/", &token(&ca, ALICE, 600), true).await;
    let revoked = unix_now() - 60;
    double
        .handle()
        .set_sign_in_sessions_valid_from(ALICE, &ts(revoked));
    assert_eq!(refresh(&ca).await, RefreshOutcome::Updated);
    let (parts, _) = ca
        .expect_refusal(
            "/",
            Some(&token(&ca, ALICE, 600)),
            true,
            &[],
            401,
            "session_revoked",
        )
        .await;
    assert_claims_challenge(&parts, &nbf_claims(revoked));
    // A token issued after the revocation passes.
    ca.expect_allow("/", &token(&ca, ALICE, 30), false).await;
    // Learned through users/delta with the deltaLink of the first round.
    assert!(
        double
            .handle()
            .requests()
            .iter()
            .any(|r| r.uri.contains("/users/delta") && r.uri.contains("deltatoken"))
    );
}

#[tokio::test]
async fn throttling_is_survived() {
    let double = GraphDouble::start(tenant(), DoubleConfig::default()).await;
    let cache = tempfile::tempdir().unwrap();
    let ca = start(&double, cache.path()).await;
    let h = double.handle();
    h.inject(Fault::throttle(Collection::ManagedDevices, 2, Some(1)));
    h.inject(Fault::throttle(
        Collection::ManagedAppRegistrations,
        1,
        None,
    ));
    h.inject(Fault::unavailable(Collection::UsersDelta, 1));
    h.set_device_compliance(&device_of(ALICE), "noncompliant");
    assert_eq!(refresh(&ca).await, RefreshOutcome::Updated);
    assert_eq!(h.pending_faults(), 0);
    let c = h.counters();
    assert_eq!(c.requests_with(Collection::ManagedDevices, 429), 2);
    assert_eq!(c.requests_with(Collection::UsersDelta, 503), 1);
    ca.expect_refusal(
        "/dev",
        Some(&token(&ca, ALICE, 60)),
        true,
        &[],
        403,
        "device_noncompliant",
    )
    .await;
    assert!(
        ca.metric(
            "accessgate_graph_requests_total",
            &[("collection", "managedDevices"), ("status", "429")]
        )
        .await
            >= 2.0
    );
}

#[tokio::test]
async fn a_failed_round_keeps_only_its_critical_changes() {
    let double = GraphDouble::start(tenant(), DoubleConfig::default()).await;
    let cache = tempfile::tempdir().unwrap();
    let ca = start(&double, cache.path()).await;
    let h = double.handle();
    let compliant = |u: &str| {
        ca.gw
            .gw()
            .state()
            .current()
            .unwrap()
            .state
            .device(&device_of(u))
            .unwrap()
            .compliance
            .is_compliant()
    };
    assert!(compliant(ALICE) && !compliant(ERIN));
    // Alice's device fails and Erin's is compliant again, but the registrations read
    // breaks midway. Alice's failing device was applied as its page was read and stays
    // (it is true in Graph); nothing else of the broken round is used.
    h.set_device_compliance(&device_of(ALICE), "noncompliant");
    h.set_device_compliance(&device_of(ERIN), "compliant");
    h.inject(Fault::garbage_page(Collection::ManagedAppRegistrations, 0));
    let RefreshOutcome::Error(e) = refresh(&ca).await else {
        panic!("a broken round was published")
    };
    assert!(e.contains("managedAppRegistrations"), "{e}");
    assert!(
        !compliant(ALICE),
        "the critical change read before the failure was dropped"
    );
    assert!(
        !compliant(ERIN),
        "a loosening change of a broken round was applied"
    );
    ca.expect_refusal(
        "/dev",
        Some(&token(&ca, ALICE, 60)),
        false,
        &[],
        403,
        "device_noncompliant",
    )
    .await;
    let (status, _) = admin_get(ca.gw.admin.unwrap(), "/readyz").await;
    assert_eq!(status, 200, "still within max_staleness");
    // The next good round brings the rest.
    assert_eq!(refresh(&ca).await, RefreshOutcome::Updated);
    assert!(!compliant(ALICE) && compliant(ERIN));
}

#[tokio::test]
async fn a_refused_credential_never_lets_a_request_through() {
    let double = GraphDouble::start(tenant(), DoubleConfig::default()).await;
    double.handle().refuse_credentials(true);
    let cache = tempfile::tempdir().unwrap();
    let ca = start(&double, cache.path()).await;
    let (status, body) = admin_get(ca.gw.admin.unwrap(), "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("refused") || body.contains("invalid_client"),
        "{body}"
    );
    for u in PEOPLE {
        let (parts, _) = ca.call("/", Some(&token(&ca, u, 60)), true, &[]).await;
        assert_eq!(parts.status, 503, "{u}");
    }
    assert_eq!(ca.up.count(), 0);
    assert!(
        ca.metric(
            "accessgate_graph_requests_total",
            &[("collection", "token"), ("status", "400")]
        )
        .await
            >= 1.0
    );
    let c = double.handle().counters();
    assert_eq!(
        c.requests(Collection::ManagedDevices),
        0,
        "no Graph call without a token"
    );
    // Accepted again: the next refresh serves.
    double.handle().refuse_credentials(false);
    assert_eq!(refresh(&ca).await, RefreshOutcome::Updated);
    ca.expect_allow("/", &token(&ca, ALICE, 60), true).await;
}

#[tokio::test]
async fn the_remediation_deadline_survives_a_restart() {
    let double = GraphDouble::start(tenant(), DoubleConfig::default()).await;
    double
        .handle()
        .set_device_compliance(&device_of(ALICE), "noncompliant");
    let cache = tempfile::tempdir().unwrap();
    let first = {
        let mut ca = start(&double, cache.path()).await;
        let (_, v) = ca
            .expect_refusal(
                "/dev",
                Some(&token(&ca, ALICE, 60)),
                true,
                &[],
                403,
                "device_noncompliant",
            )
            .await;
        ca.gw.shutdown().await;
        v["remediation_deadline"].as_str().unwrap().to_owned()
    };
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // Graph is unreachable after the restart: the cached snapshot serves, deadline kept.
    double
        .handle()
        .inject(Fault::status(Collection::Token, 503, 1000));
    let ca = start(&double, cache.path()).await;
    let (_, v) = ca
        .expect_refusal(
            "/dev",
            Some(&token(&ca, ALICE, 60)),
            true,
            &[],
            403,
            "device_noncompliant",
        )
        .await;
    assert_eq!(v["remediation_deadline"], first.as_str());
    // Graph back: a real round keeps the first-seen moment too.
    double.handle().clear_faults();
    assert_eq!(refresh(&ca).await, RefreshOutcome::Updated);
    let (_, v) = ca
        .expect_refusal(
            "/dev",
            Some(&token(&ca, ALICE, 60)),
            false,
            &[],
            403,
            "device_noncompliant",
        )
        .await;
    assert_eq!(v["remediation_deadline"], first.as_str());
}

#[tokio::test]
async fn a_reload_naming_a_new_group_waits_for_a_restart() {
    let double = GraphDouble::start(tenant(), DoubleConfig::default()).await;
    let cache = tempfile::tempdir().unwrap();
    let ca = start(&double, cache.path()).await;
    let text = std::fs::read_to_string(&ca.gw.config_path).unwrap();
    let parse = |t: &str| accessgate::config::parse_str(t, &ca.gw.config_path).unwrap();
    // A policy edit that names no new group reloads.
    let edited = text.replace(
        "name = \"require-compliant-device\"",
        "name = \"require-compliant-device-v2\"",
    );
    ca.gw.gw().apply_config(parse(&edited)).unwrap();
    // One that names a group the connector has not resolved is refused.
    let new_group = text.replace(
        &format!("exclude_groups = [\"{G_BREAK_GLASS}\"]\ngrant = {{ controls"),
        &format!("exclude_groups = [\"{G_BREAK_GLASS}\", \"{G_ON_CALL}\"]\ngrant = {{ controls"),
    );
    assert_ne!(new_group, text);
    let e = ca.gw.gw().apply_config(parse(&new_group)).unwrap_err();
    assert!(e.contains("restart"), "{e}");
}
