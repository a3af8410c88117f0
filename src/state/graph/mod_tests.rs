//! Whole rounds against a small scripted Graph: what is built, what a failed round leaves,
//! what `cache_dir` keeps. (End to end through the gateway, with the Graph double:
//! tests/graph_e2e.rs.)

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::test_server::{self, Req, Resp, Server};
use super::token::tests::{cfg, secret_file};
use super::*;
use crate::config::GraphApp;

const U1: &str = "11111111-0000-0000-0000-000000000001";
const U2: &str = "11111111-0000-0000-0000-000000000002";
const G_POLICY: &str = "22222222-0000-0000-0000-000000000001";
const G_APP: &str = "22222222-0000-0000-0000-000000000002";
const AZURE: &str = "0c1307d4-29d6-4389-a11c-5cbe7f65d7fa";
const INTUNE: &str = "c1ec4a95-1f05-45b3-a911-aa3fa01094f5";

/// Mutable bits of the fake tenant.
#[derive(Default)]
struct Tenant {
    device_state: Mutex<String>,
    fail_devices: AtomicBool,
    expire_delta: AtomicBool,
    delta_rounds: AtomicUsize,
}

fn handler(t: Arc<Tenant>) -> impl Fn(&Req) -> Resp + Send + Sync + 'static {
    move |r: &Req| {
        let base = format!(
            "http://{}",
            r.headers.get("host").unwrap().to_str().unwrap()
        );
        let path = r.uri.split('?').next().unwrap_or("");
        if path.ends_with("/oauth2/v2.0/token") {
            return Resp::json(
                200,
                r#"{"token_type":"Bearer","expires_in":3599,"access_token":"t"}"#,
            );
        }
        match path {
            "/v1.0/users/delta" if r.uri.contains("deltatoken") => {
                if t.expire_delta.swap(false, Ordering::SeqCst) {
                    return Resp::json(410, r#"{"error":{"code":"syncStateNotFound"}}"#);
                }
                t.delta_rounds.fetch_add(1, Ordering::SeqCst);
                // U2 revoked their sessions.
                Resp::json(
                    200,
                    format!(
                        r#"{{"value":[{{"id":"{U2}","signInSessionsValidFromDateTime":"2026-11-30T12:00:00Z"}}],"@odata.deltaLink":"{base}/v1.0/users/delta?$deltatoken=2"}}"#
                    ),
                )
            }
            "/v1.0/users/delta" if r.uri.contains("skiptoken") => Resp::json(
                200,
                format!(
                    r#"{{"value":[{{"id":"{U2}","accountEnabled":true,"assignedPlans":[]}}],"@odata.deltaLink":"{base}/v1.0/users/delta?$deltatoken=1"}}"#
                ),
            ),
            "/v1.0/users/delta" => Resp::json(
                200,
                format!(
                    r#"{{"value":[{{"id":"{U1}","accountEnabled":true,"assignedPlans":[{{"servicePlanId":"{INTUNE}","capabilityStatus":"Enabled"}}]}}],"@odata.nextLink":"{base}/v1.0/users/delta?$skiptoken=a"}}"#
                ),
            ),
            p if p.starts_with("/v1.0/groups/") => {
                let g = p.split('/').nth(3).unwrap_or("");
                let members = if g == G_POLICY {
                    format!(
                        r##"[{{"@odata.type":"#microsoft.graph.user","id":"{U1}"}},{{"@odata.type":"#microsoft.graph.group","id":"nested"}}]"##
                    )
                } else if g == G_APP {
                    format!(
                        r##"[{{"@odata.type":"#microsoft.graph.user","id":"{U1}"}},{{"@odata.type":"#microsoft.graph.user","id":"{U2}"}}]"##
                    )
                } else {
                    return Resp::json(404, r#"{"error":{"code":"Request_ResourceNotFound"}}"#);
                };
                Resp::json(200, format!(r#"{{"value":{members}}}"#))
            }
            "/v1.0/deviceManagement/managedDevices" => {
                if t.fail_devices.load(Ordering::SeqCst) {
                    return Resp::json(500, "{}");
                }
                let s = t.device_state.lock().unwrap().clone();
                Resp::json(
                    200,
                    format!(
                        r##"{{"value":[{{"@odata.type":"#microsoft.graph.managedDevice","id":"m1","azureADDeviceId":"dddddddd-0000-0000-0000-000000000001","complianceState":"{s}","operatingSystem":"Android","osVersion":"14"}}]}}"##
                    ),
                )
            }
            "/v1.0/deviceAppManagement/androidManagedAppProtections" => Resp::json(
                200,
                format!(
                    r##"{{"value":[{{"id":"T_a","displayName":"A","apps":[{{"mobileAppIdentifier":{{"@odata.type":"#microsoft.graph.androidMobileAppIdentifier","packageId":"com.microsoft.azure"}}}}],"assignments":[{{"target":{{"@odata.type":"#microsoft.graph.groupAssignmentTarget","groupId":"{G_APP}"}}}}]}}]}}"##
                ),
            ),
            "/v1.0/deviceAppManagement/iosManagedAppProtections" => {
                Resp::json(200, r#"{"value":[]}"#)
            }
            "/v1.0/deviceAppManagement/managedAppRegistrations" => Resp::json(
                200,
                format!(
                    r##"{{"value":[
                  {{"@odata.type":"#microsoft.graph.androidManagedAppRegistration","userId":"{U1}","appIdentifier":{{"packageId":"com.microsoft.azure"}},"applicationVersion":"7","platformVersion":"14","lastSyncDateTime":"2026-11-30T10:00:00Z"}},
                  {{"@odata.type":"#microsoft.graph.androidManagedAppRegistration","userId":"{U1}","appIdentifier":{{"packageId":"com.microsoft.azure"}},"applicationVersion":"7","platformVersion":"14","flaggedReasons":["rootedDevice"],"lastSyncDateTime":"2026-11-30T10:00:00Z"}},
                  {{"@odata.type":"#microsoft.graph.androidManagedAppRegistration","userId":"deleted-user","appIdentifier":{{"packageId":"com.microsoft.azure"}}}},
                  {{"@odata.type":"#microsoft.graph.iosManagedAppRegistration","userId":"{U2}","appIdentifier":{{"bundleId":"com.other"}}}}]}}"##
                ),
            ),
            _ => Resp::json(404, "{}"),
        }
    }
}

struct Fixture {
    srv: Server,
    tenant: Arc<Tenant>,
    dir: tempfile::TempDir,
    cfg: GraphConfig,
}

async fn fixture() -> Fixture {
    let tenant = Arc::new(Tenant::default());
    *tenant.device_state.lock().unwrap() = "compliant".into();
    let srv = test_server::start(Arc::new(handler(tenant.clone()))).await;
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(&srv.url(), secret_file(dir.path(), "s"));
    c.graph_url = srv.url();
    c.groups = vec![
        G_POLICY.into(),
        "22222222-0000-0000-0000-00000000dead".into(),
    ];
    c.apps = vec![GraphApp {
        client_id: AZURE.into(),
        android_package_ids: vec!["com.microsoft.azure".into()],
        ios_bundle_ids: vec![],
    }];
    Fixture {
        srv,
        tenant,
        dir,
        cfg: c,
    }
}

fn source(f: &Fixture) -> GraphSource {
    GraphSource::new(
        &f.cfg,
        Some(&f.dir.path().join("cache")),
        Some(Metrics::new()),
        pager::tests::fast(),
    )
    .unwrap()
}

async fn state(s: &GraphSource, loaded: bool) -> Result<(PolicyState, SystemTime), GraphError> {
    s.fetch(loaded)
        .await
        .map(|Fetch::State { state, at }| (state, at))
}

#[tokio::test]
async fn a_round_maps_every_collection() {
    let f = fixture().await;
    let s = source(&f);
    let (st, _) = state(&s, false).await.unwrap();
    let u1 = st.user(U1).unwrap();
    assert!(u1.account_enabled && u1.licensed);
    let u2 = st.user(U2).unwrap();
    assert!(u2.account_enabled && !u2.licensed, "no Intune plan");
    // Groups: the policy group and the APP assignment group, users only.
    let gp = st.group_index(G_POLICY).unwrap();
    assert!(u1.group_ids().contains(&gp) && !u2.group_ids().contains(&gp));
    assert_eq!(
        st.device("dddddddd-0000-0000-0000-000000000001")
            .unwrap()
            .compliance,
        crate::policy::ComplianceState::Compliant
    );
    let p: Vec<_> = st.app_policies_for(AZURE).collect();
    assert_eq!(p.len(), 1);
    assert!(p[0].covers(u1) && p[0].covers(u2));
    // Two device-less registrations of U1 for the app: merged, and the flagged one wins,
    // for a token with or without a device id.
    let ui = st.user_index(U1).unwrap();
    assert!(st.registration(ui, AZURE, None).unwrap().rooted);
    assert!(
        st.registration(ui, AZURE, Some("dddddddd-0000-0000-0000-000000000001"))
            .unwrap()
            .rooted
    );
    // The deleted user's and the unmapped app's registrations are left out.
    assert_eq!(st.counts().app_registrations, 1);
    let last = s.last().await.unwrap();
    assert_eq!(last.registrations.len(), 1);
    assert!(
        last.registrations
            .values()
            .next()
            .unwrap()
            .noncompliant_since
            .is_some()
    );
    // One request per page: 2 users pages, 2 groups (one 404), devices, 2 protections, registrations.
    assert_eq!(f.srv.count("/v1.0/users/delta"), 2);
    assert_eq!(f.srv.count("/v1.0/groups/"), 3);
    assert_eq!(f.srv.count("/v1.0/deviceManagement/managedDevices"), 1);
}

#[tokio::test]
async fn delta_rounds_apply_changes_and_expired_tokens_resync() {
    let f = fixture().await;
    let s = source(&f);
    state(&s, false).await.unwrap();
    let (st, _) = state(&s, true).await.unwrap();
    assert_eq!(f.tenant.delta_rounds.load(Ordering::SeqCst), 1);
    assert_eq!(
        st.user(U2).unwrap().revoke_sessions_after,
        Some(1_796_040_000)
    );
    assert!(st.user(U1).is_some(), "delta round keeps unchanged users");
    f.tenant.expire_delta.store(true, Ordering::SeqCst);
    let full_before = f
        .srv
        .requests()
        .iter()
        .filter(|r| r.uri.contains("$select=id,accountEnabled"))
        .count();
    let (st, _) = state(&s, true).await.unwrap();
    let full_after = f
        .srv
        .requests()
        .iter()
        .filter(|r| r.uri.contains("$select=id,accountEnabled"))
        .count();
    assert_eq!(full_after, full_before + 1, "410 gave a full resync");
    assert!(st.user(U1).is_some() && st.user(U2).is_some());
}

#[tokio::test]
async fn a_failed_round_publishes_nothing_and_keeps_the_delta_link() {
    let f = fixture().await;
    let s = source(&f);
    state(&s, false).await.unwrap();
    f.tenant.fail_devices.store(true, Ordering::SeqCst);
    let e = state(&s, true).await.unwrap_err();
    assert!(matches!(e, GraphError::Request(_)), "{e:?}");
    // The users delta read in the failed round was not committed: the next round reads
    // the same changes again from the same deltaLink.
    f.tenant.fail_devices.store(false, Ordering::SeqCst);
    let (st, _) = state(&s, true).await.unwrap();
    assert_eq!(
        st.user(U2).unwrap().revoke_sessions_after,
        Some(1_796_040_000)
    );
    let links: Vec<String> = f
        .srv
        .requests()
        .iter()
        .filter(|r| r.uri.contains("deltatoken"))
        .map(|r| r.uri.clone())
        .collect();
    assert_eq!(links.len(), 2);
    assert_eq!(links[0], links[1]);
}

#[tokio::test]
async fn noncompliant_since_survives_restarts_and_clears_when_compliant() {
    let f = fixture().await;
    *f.tenant.device_state.lock().unwrap() = "noncompliant".into();
    let dev = "dddddddd-0000-0000-0000-000000000001";
    let first = {
        let s = source(&f);
        let (st, _) = state(&s, false).await.unwrap();
        st.device(dev).unwrap().noncompliant_since.unwrap()
    };
    // A restart: the cached snapshot is served first, at its true age, with the moment.
    let s = source(&f);
    let (cached, at) = state(&s, false).await.unwrap();
    assert_eq!(cached.device(dev).unwrap().noncompliant_since, Some(first));
    assert!(at <= SystemTime::now());
    assert!(s.wants_sync_now().await);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // The next real round keeps the first-seen moment (not "now").
    let (st, _) = state(&s, true).await.unwrap();
    assert_eq!(st.device(dev).unwrap().noncompliant_since, Some(first));
    assert!(!s.wants_sync_now().await);
    // Compliant again: cleared, and a later failure starts a new window.
    *f.tenant.device_state.lock().unwrap() = "compliant".into();
    let (st, _) = state(&s, true).await.unwrap();
    assert_eq!(st.device(dev).unwrap().noncompliant_since, None);
    *f.tenant.device_state.lock().unwrap() = "error".into();
    let (st, _) = state(&s, true).await.unwrap();
    assert!(st.device(dev).unwrap().noncompliant_since.unwrap() > first);
}

#[tokio::test]
async fn a_refused_credential_is_an_error_never_a_state() {
    let srv = test_server::start(Arc::new(|_r: &Req| {
        Resp::json(400, r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided."}"#)
    }))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(&srv.url(), secret_file(dir.path(), "s"));
    c.graph_url = srv.url();
    let m = Metrics::new();
    let s = GraphSource::new(&c, Some(dir.path()), Some(m.clone()), pager::tests::fast()).unwrap();
    let e = state(&s, false).await.unwrap_err();
    assert!(
        matches!(&e, GraphError::Refused(msg) if msg.contains("AADSTS7000215")),
        "{e:?}"
    );
    assert_eq!(
        m.graph_requests_total
            .with_label_values(&["token", "400"])
            .get(),
        1
    );
    assert_eq!(srv.count("/v1.0"), 0, "no Graph call without a token");
}

#[test]
fn check_reads_the_credential_files() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg("http://127.0.0.1:9", secret_file(dir.path(), "s"));
    assert!(check_credential(&c).is_ok());
    let (cert, _, _) = super::token::tests::cert_files(dir.path());
    assert!(check_credential(&cfg("http://127.0.0.1:9", cert)).is_ok());
    let junk = dir.path().join("junk");
    std::fs::write(
        &junk,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let bad = crate::config::GraphCredential::Certificate {
        cert: dir.path().join("graph.crt"),
        key: junk,
    };
    let e = check_credential(&cfg("http://127.0.0.1:9", bad)).unwrap_err();
    assert!(e.contains("junk"), "{e}");
}

#[tokio::test]
async fn consecutive_rounds_diff_record_by_record() {
    let f = fixture().await;
    let s = source(&f);
    state(&s, false).await.unwrap();
    let before = s.last().await.unwrap();
    *f.tenant.device_state.lock().unwrap() = "noncompliant".into();
    state(&s, true).await.unwrap();
    let after = s.last().await.unwrap();
    let c = after.changes_since(&before);
    // The device turned noncompliant; U2's revoked sessions came through delta.
    assert_eq!(c.devices.len(), 1, "{c:?}");
    assert!(
        matches!(c.devices[0], diff::Change::Upsert(id, d) if id == "dddddddd-0000-0000-0000-000000000001" && d.noncompliant_since.is_some())
    );
    assert_eq!(c.users.len(), 1);
    assert!(c.app_policies.is_empty() && c.registrations.is_empty());
}

/// Collects what a round hands over page by page.
#[derive(Default)]
struct Pages(Mutex<Vec<Page>>);

impl PageHook for Pages {
    fn page(&self, page: Page) {
        self.0.lock().unwrap().push(page);
    }
}

#[tokio::test]
async fn each_page_is_handed_over_as_the_rounds_end_will_have_it() {
    let f = fixture().await;
    *f.tenant.device_state.lock().unwrap() = "noncompliant".into();
    let s = source(&f);
    let pages = Pages::default();
    s.fetch_with(false, Some(&pages)).await.unwrap();
    let last = s.last().await.unwrap();
    let got = std::mem::take(&mut *pages.0.lock().unwrap());
    let (mut users, mut devices, mut regs) = (Vec::new(), Vec::new(), Vec::new());
    for p in got {
        match p {
            Page::Users(v) => users.extend(v),
            Page::Devices(v) => devices.extend(v),
            Page::Registrations(v) => regs.extend(v),
        }
    }
    // Users as read, before their groups are known.
    assert_eq!(users.len(), 2);
    for u in &users {
        let fin = &last.users[u.id.as_ref()];
        assert!(u.groups.is_empty());
        assert_eq!(
            (u.account_enabled, u.licensed, &u.revoke_sessions_after),
            (
                fin.account_enabled,
                fin.licensed,
                &fin.revoke_sessions_after
            )
        );
    }
    // Devices and registrations exactly as the round's end has them (the noncompliant-
    // since moment included), the deleted user's registration left out.
    assert_eq!(devices.len(), 1);
    assert!(devices[0].noncompliant_since.is_some());
    assert_eq!(&devices[0], last.devices.values().next().unwrap());
    assert_eq!(regs.len(), 1);
    assert_eq!(&regs[0], last.registrations.values().next().unwrap());

    // A round that fails on devices has already handed its users over (that is the
    // point: they do not wait for the round), and no device.
    f.tenant.fail_devices.store(true, Ordering::SeqCst);
    let pages = Pages::default();
    assert!(s.fetch_with(true, Some(&pages)).await.is_err());
    let got = pages.0.lock().unwrap();
    assert!(
        got.iter()
            .any(|p| matches!(p, Page::Users(v) if !v.is_empty()))
    );
    assert!(!got.iter().any(|p| matches!(p, Page::Devices(_))));
}
