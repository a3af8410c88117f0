//! One Microsoft Graph page, as the connector reads it: the envelope (`value`,
//! `@odata.nextLink`, `@odata.deltaLink`) with both links checked against the configured
//! host, then the page's records mapped by the collection's own step. The first input
//! byte picks the collection, the rest is the page body.
//!
//! Invariants: decoding and mapping are deterministic; the links of a page
//! that decodes are the ones in the document; a link that is followed or kept is on the
//! configured origin (checked here independently: `https`, host `graph.microsoft.com`, no
//! port, no userinfo) and a `nextLink` never points at the page itself; what a page maps
//! to always loads into a policy state (a strange Graph value is read strictly, it never
//! fails a round); per collection: removed users are gone and others present, devices are
//! keyed by a real Entra id and fail when any of their records fails, a policy id twice
//! fails the read, every mappable registration has its own record.

#![no_main]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use accessgate::config::GraphApp;
use accessgate::fuzzing::{self, GraphStep};
use accessgate::policy::{RawUser, StateBuilder};
use accessgate::state::graph::map::{self, AppPlatform, AppTable, GraphUserRec, MapStats};
use accessgate::state::graph::wire;
use accessgate::state::graph::{GraphError, Mapped};
use libfuzzer_sys::fuzz_target;

const GRAPH: &str = "https://graph.microsoft.com";
const PLANS: &[&str] = &["c1ec4a95-1f05-45b3-a911-aa3fa01094f5"];

struct Fixed {
    origin: String,
    table: AppTable,
    clients: Vec<String>,
    plans: Vec<String>,
    users: BTreeMap<String, GraphUserRec>,
}

fn fixed() -> &'static Fixed {
    static F: OnceLock<Fixed> = OnceLock::new();
    F.get_or_init(|| {
        let apps = vec![
            GraphApp {
                client_id: "0C1307D4-29D6-4389-A11C-5CBE7F65D7FA".into(),
                android_package_ids: vec!["com.microsoft.office.outlook".into()],
                ios_bundle_ids: vec!["com.microsoft.Office.Outlook".into()],
            },
            GraphApp {
                client_id: "1fec8e78-bce4-4aaf-ab1b-5451cc387264".into(),
                android_package_ids: vec!["com.microsoft.teams".into()],
                ios_bundle_ids: vec!["com.microsoft.skype.teams".into()],
            },
        ];
        let mut users = BTreeMap::new();
        for (id, enabled) in [
            ("11111111-1111-4111-8111-111111111111", true),
            ("22222222-2222-4222-8222-222222222222", false),
        ] {
            users.insert(
                id.to_owned(),
                GraphUserRec {
                    account_enabled: enabled,
                    licensed: true,
                    revoke_sessions_after: None,
                },
            );
        }
        Fixed {
            origin: fuzzing::graph_origin(GRAPH).expect("origin of a plain URL"),
            table: AppTable::new(&apps),
            clients: apps
                .iter()
                .map(|a| a.client_id.to_ascii_lowercase())
                .collect(),
            plans: PLANS.iter().map(|p| (*p).to_owned()).collect(),
            users,
        }
    })
}

/// The independent reading of "on the configured host".
fn on_graph(link: &str) -> bool {
    let Ok(uri) = link.parse::<http::Uri>() else {
        return false;
    };
    let Some(auth) = uri.authority() else {
        return false;
    };
    uri.scheme_str()
        .is_some_and(|s| s.eq_ignore_ascii_case("https"))
        && auth.as_str().eq_ignore_ascii_case("graph.microsoft.com")
        && !auth.as_str().contains('@')
        && auth.port().is_none()
}

/// The link `step` says the document holds under `k`.
fn expected(step: &GraphStep, k: &str) -> Option<String> {
    match (step, k) {
        (GraphStep::Next(n), "@odata.nextLink") => Some(n.clone()),
        (GraphStep::Delta(d), "@odata.deltaLink") => Some(d.clone()),
        _ => None,
    }
}

fn check_links(url: &str, body: &[u8], step: &GraphStep) {
    // serde_json skips ignored fields without checking their UTF-8 or escapes, so a page
    // can decode that `Value` refuses; its links are then not compared.
    let doc: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let link = |k: &str| match &doc {
        Some(d) => d.get(k).and_then(|v| v.as_str()).map(str::to_owned),
        None => expected(step, k),
    };
    match step {
        GraphStep::Next(n) => {
            assert_ne!(n, url, "nextLink to the page itself");
            assert!(on_graph(n), "nextLink {n:?} off the Graph host");
            assert_eq!(link("@odata.nextLink").as_ref(), Some(n));
        }
        GraphStep::Delta(d) => {
            assert!(on_graph(d), "deltaLink {d:?} off the Graph host");
            assert_eq!(link("@odata.nextLink"), None);
            assert_eq!(link("@odata.deltaLink").as_ref(), Some(d));
        }
        GraphStep::Done => {
            assert_eq!(link("@odata.nextLink"), None);
            assert_eq!(link("@odata.deltaLink"), None);
        }
    }
}

fn decode<T: serde::de::DeserializeOwned>(label: &str, url: &str, body: &[u8]) -> Option<Vec<T>> {
    let f = fixed();
    let first = fuzzing::graph_page::<T>(label, url, &f.origin, body);
    let again = fuzzing::graph_page::<T>(label, url, &f.origin, body);
    match (first, again) {
        (Ok((records, step)), Ok((_, step2))) => {
            assert_eq!(step, step2, "same page, different links");
            check_links(url, body, &step);
            Some(records)
        }
        (Err(a), Err(b)) => {
            assert_eq!(a, b, "same page, different errors");
            assert!(matches!(a, GraphError::Malformed(_)), "{a:?}");
            None
        }
        _ => panic!("same page, different outcome"),
    }
}

/// The mapped records load into a state (users for every registration's user).
fn loads(m: &Mapped) {
    let mut users = m.users.clone();
    for r in m.registrations.values() {
        users
            .entry(r.user_id.to_string())
            .or_insert_with(|| RawUser {
                id: r.user_id.clone(),
                account_enabled: true,
                licensed: true,
                groups: Vec::new(),
                revoke_sessions_after: None,
            });
    }
    let mut b = StateBuilder::new();
    let r = users
        .values()
        .try_for_each(|r| b.user(r))
        .and_then(|()| m.devices.values().try_for_each(|r| b.device(r)))
        .and_then(|()| m.app_policies.values().try_for_each(|r| b.app_policy(r)))
        .and_then(|()| m.registrations.values().try_for_each(|r| b.registration(r)))
        .and_then(|()| b.finish());
    if let Err(e) = r {
        panic!("mapped records do not load: {e}");
    }
}

fn users(body: &[u8]) {
    let f = fixed();
    let url = format!("{GRAPH}/v1.0/users/delta?$select=id");
    let Some(page) = decode::<wire::GraphUser>("users", &url, body) else {
        return;
    };
    let mut a = f.users.clone();
    let mut b = f.users.clone();
    let ra = fuzzing::graph_apply_users(&mut a, &page, &f.plans);
    let rb = fuzzing::graph_apply_users(&mut b, &page, &f.plans);
    assert_eq!(ra, rb);
    if ra.is_err() {
        return;
    }
    assert_eq!(a, b, "users mapping is not deterministic");
    let mut last: BTreeMap<String, bool> = BTreeMap::new();
    for u in &page {
        last.insert(u.id.to_ascii_lowercase(), u.removed.is_some());
    }
    for (id, removed) in &last {
        assert_eq!(a.contains_key(id), !removed, "user {id:?}");
    }
    for (id, rec) in &a {
        assert!(!id.is_empty() && !id.bytes().any(|c| c.is_ascii_uppercase()));
        if !last.contains_key(id) {
            assert_eq!(f.users.get(id), Some(rec), "a user not on the page changed");
        }
    }
    let m = Mapped {
        users: map::state_users(&a, &Default::default()),
        ..Mapped::default()
    };
    loads(&m);
}

fn groups(body: &[u8]) {
    let url = format!("{GRAPH}/v1.0/groups/g1/transitiveMembers?$select=id&$top=999");
    let Some(page) = decode::<wire::DirectoryObject>("groups", &url, body) else {
        return;
    };
    let users = page
        .iter()
        .filter(|o| o.odata_type.as_deref() == Some("#microsoft.graph.user"))
        .count();
    let members = fuzzing::graph_user_members(page);
    assert_eq!(members.len(), users, "only (and every) user member");
    assert!(
        members
            .iter()
            .all(|m| !m.bytes().any(|c| c.is_ascii_uppercase()))
    );
}

fn entra_id(s: Option<&str>) -> Option<String> {
    s.map(str::trim)
        .filter(|s| !s.is_empty() && s.bytes().any(|b| b != b'0' && b != b'-'))
        .map(str::to_ascii_lowercase)
}

fn devices(body: &[u8]) {
    let url = format!("{GRAPH}/v1.0/deviceManagement/managedDevices?$select=id");
    let Some(page) = decode::<wire::ManagedDevice>("managedDevices", &url, body) else {
        return;
    };
    let (mut a, mut b) = (BTreeMap::new(), BTreeMap::new());
    let (mut sa, mut sb) = (MapStats::default(), MapStats::default());
    fuzzing::graph_add_devices(&mut a, &page, &mut sa);
    fuzzing::graph_add_devices(&mut b, &page, &mut sb);
    assert_eq!((&a, &sa), (&b, &sb), "device mapping is not deterministic");
    // Entra id -> every record of it compliant?
    let mut all_ok: BTreeMap<String, bool> = BTreeMap::new();
    for d in &page {
        if let Some(id) = entra_id(d.azure_ad_device_id.as_deref()) {
            let ok = matches!(
                d.compliance_state.as_deref(),
                Some("compliant" | "inGracePeriod")
            );
            *all_ok.entry(id).or_insert(true) &= ok;
        }
    }
    assert_eq!(a.len(), all_ok.len(), "one record per Entra device id");
    for (id, ok) in &all_ok {
        let d = a.get(id).expect("every device with an Entra id is kept");
        assert_eq!(d.device_id, *id);
        let compliant = matches!(d.compliance_state.as_ref(), "compliant" | "inGracePeriod");
        assert_eq!(compliant, *ok, "device {id}: a failing record must stand");
    }
    loads(&Mapped {
        devices: a,
        ..Mapped::default()
    });
}

fn policies(body: &[u8], platform: AppPlatform) {
    let f = fixed();
    let label = match platform {
        AppPlatform::Ios => "iosManagedAppProtections",
        AppPlatform::Android => "androidManagedAppProtections",
    };
    let url = format!("{GRAPH}/v1.0/deviceAppManagement/{label}?$expand=apps,assignments");
    let Some(page) = decode::<wire::AppProtection>(label, &url, body) else {
        return;
    };
    let (mut a, mut b) = (BTreeMap::new(), BTreeMap::new());
    let (mut sa, mut sb) = (MapStats::default(), MapStats::default());
    let ra = fuzzing::graph_add_app_policies(&mut a, label, &page, platform, &f.table, &mut sa);
    let rb = fuzzing::graph_add_app_policies(&mut b, label, &page, platform, &f.table, &mut sb);
    assert_eq!(ra, rb);
    let mut ids: Vec<&str> = page.iter().map(|p| p.id.as_str()).collect();
    ids.sort_unstable();
    let twice = ids.windows(2).any(|w| w[0] == w[1]) || ids.first() == Some(&"");
    assert_eq!(
        ra.is_err(),
        twice,
        "a policy id twice or an empty id, and only that, fails the read"
    );
    if twice {
        return;
    }
    assert_eq!((&a, &sa), (&b, &sb), "policy mapping is not deterministic");
    assert_eq!(a.len(), page.len());
    for p in a.values() {
        assert_eq!(p.platform.as_ref(), platform.as_str());
        assert!(p.apps.iter().all(|c| f.clients.iter().any(|k| k == c)));
        for g in p.include_groups.iter().chain(&p.exclude_groups) {
            assert!(!g.bytes().any(|c| c.is_ascii_uppercase()));
        }
    }
    loads(&Mapped {
        app_policies: a,
        ..Mapped::default()
    });
}

fn registrations(body: &[u8]) {
    let f = fixed();
    let url = format!("{GRAPH}/v1.0/deviceAppManagement/managedAppRegistrations?$select=id");
    let Some(page) = decode::<wire::AppRegistration>("managedAppRegistrations", &url, body) else {
        return;
    };
    let (mut a, mut b) = (BTreeMap::new(), BTreeMap::new());
    let (mut sa, mut sb) = (MapStats::default(), MapStats::default());
    fuzzing::graph_add_registrations(&mut a, &page, &f.table, &mut sa);
    fuzzing::graph_add_registrations(&mut b, &page, &f.table, &mut sb);
    assert_eq!(
        (&a, &sa),
        (&b, &sb),
        "registration mapping is not deterministic"
    );
    for r in &page {
        let mut st = MapStats::default();
        for (_, own) in map::registrations(r, &f.table, &mut st) {
            let found = a.values().any(|m| {
                m.user_id == own.user_id && m.app_id == own.app_id && m.device_id == own.device_id
            });
            assert!(found, "registration {own:?} lost (merged into another's)");
        }
    }
    for r in a.values() {
        assert!(f.clients.iter().any(|c| *c == r.app_id));
        assert!(r.flagged_reasons.iter().all(|x| matches!(
            x.as_ref(),
            "rootedDevice" | "androidBootloaderUnlocked" | "androidFactoryRomModified"
        )));
    }
    let mut m = Mapped {
        registrations: a,
        ..Mapped::default()
    };
    map::derive_compliance(&mut m.registrations, &BTreeMap::new());
    for r in m.registrations.values() {
        let failing = !r.flagged_reasons.is_empty();
        assert_eq!(map::registration_failing(r), failing);
    }
    loads(&m);
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    match which % 6 {
        0 => users(body),
        1 => groups(body),
        2 => devices(body),
        3 => policies(body, AppPlatform::Ios),
        4 => policies(body, AppPlatform::Android),
        _ => registrations(body),
    }
});
