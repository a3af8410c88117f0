//! The fleet's records as a gateway reads them from Redis. The first input byte picks:
//! - a change batch (`kind=batch` entries' `batch` field): decoded, applied to a small
//!   base state;
//! - a state document as the publisher's next round: diffed against the base into batch
//!   documents (the encoder), each decoded and applied in order;
//! - the `P:head` hash (`k=v` lines) and stream entry ids.
//!
//! Invariants: decoding is deterministic; applying a batch fails exactly when it names
//! a registration of a user that is not there, and otherwise every record it changes
//! reads back as the batch says while every other record reads as before; applying it
//! twice changes nothing more; compaction changes no lookup; what the publisher encodes
//! decodes and applies, and the result reads exactly like the document loaded whole;
//! a head that parses is one a follower can read (format, sizes, digest, ids).

#![no_main]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::OnceLock;

use accessgate::fuzzing::{self, BatchView};
use accessgate::policy::{AppRegistration, ChangeBatch, Device, PolicyState, User};
use accessgate::state::publish::diff::{Records, diff};
use accessgate::state::redis::{CHUNK_BYTES, FORMAT, Head, entry_id};
use libfuzzer_sys::fuzz_target;

/// The base every batch applies to: a little of everything, cross-referenced.
const BASE: &str = r#"{"users":[
{"id":"u1","accountEnabled":true,"licensed":true,"groups":["g1"]},
{"id":"u2","accountEnabled":false,"licensed":true,"groups":["g1","g2"],"revokeSessionsAfter":"2026-01-01T00:00:00Z"}],
"devices":[
{"azureADDeviceId":"d1","complianceState":"compliant","operatingSystem":"iOS","osVersion":"17.4"},
{"azureADDeviceId":"d2","complianceState":"noncompliant","noncompliantSince":"2026-01-01T00:00:00Z","remediation":"pending"}],
"appProtectionPolicies":[
{"id":"p1","displayName":"P","platform":"ios","apps":["a1"],"includeGroups":["g1"],"excludeGroups":["g2"],"minimumRequiredAppVersion":"5.0"}],
"appRegistrations":[
{"userId":"u1","appId":"a1","azureADDeviceId":"d1","platform":"ios","complianceState":"compliant"},
{"userId":"u1","appId":"a1","complianceState":"compliant"},
{"userId":"u2","appId":"a2","complianceState":"noncompliant","flaggedReasons":["rootedDevice"]}]}"#;

struct Fixed {
    state: PolicyState,
    records: Records,
    names: Names,
}

fn fixed() -> &'static Fixed {
    static F: OnceLock<Fixed> = OnceLock::new();
    F.get_or_init(|| Fixed {
        state: PolicyState::from_json(BASE.as_bytes()).expect("the base loads"),
        records: Records::index(BASE.as_bytes().to_vec().into()).expect("the base indexes"),
        names: Names::of_doc(BASE.as_bytes()),
    })
}

fn fold(s: &str) -> String {
    s.to_ascii_lowercase()
}

/// Every name a comparison looks up.
#[derive(Default, Clone)]
struct Names {
    users: BTreeSet<String>,
    devices: BTreeSet<String>,
    groups: BTreeSet<String>,
    apps: BTreeSet<String>,
    regs: BTreeSet<(String, String, Option<String>)>,
}

impl Names {
    fn of_doc(doc: &[u8]) -> Names {
        let mut n = Names::default();
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(doc) else {
            return n;
        };
        let list = |k: &str| {
            v.get(k)
                .and_then(|x| x.as_array())
                .cloned()
                .unwrap_or_default()
        };
        let s = |r: &serde_json::Value, k: &str| r.get(k).and_then(|x| x.as_str()).map(fold);
        let strs = |r: &serde_json::Value, k: &str| -> Vec<String> {
            r.get(k)
                .and_then(|x| x.as_array())
                .map(|a| a.iter().filter_map(|x| x.as_str()).map(fold).collect())
                .unwrap_or_default()
        };
        for u in list("users") {
            n.users.extend(s(&u, "id"));
            n.groups.extend(strs(&u, "groups"));
        }
        for d in list("devices") {
            n.devices.extend(s(&d, "azureADDeviceId"));
        }
        for p in list("appProtectionPolicies") {
            n.apps.extend(strs(&p, "apps"));
            n.groups.extend(strs(&p, "includeGroups"));
            n.groups.extend(strs(&p, "excludeGroups"));
        }
        for r in list("appRegistrations") {
            if let (Some(u), Some(a)) = (s(&r, "userId"), s(&r, "appId")) {
                let d = s(&r, "azureADDeviceId").filter(|d| !d.is_empty());
                n.apps.insert(a.clone());
                n.devices.extend(d.clone());
                n.regs.insert((u, a, d));
            }
        }
        n
    }

    fn of_batch(b: &BatchView) -> Names {
        let mut n = Names::default();
        for (id, u) in &b.users {
            n.users.insert(id.clone());
            if let Some(u) = u {
                n.groups.extend(u.groups.iter().cloned());
            }
        }
        n.devices.extend(b.devices.iter().map(|(id, _)| id.clone()));
        for (_, p) in &b.app_policies {
            if let Some(p) = p {
                n.apps.extend(p.apps.iter().cloned());
                n.groups.extend(p.include_groups.iter().cloned());
                n.groups.extend(p.exclude_groups.iter().cloned());
            }
        }
        for (k, _) in &b.registrations {
            n.apps.insert(k.app.clone());
            n.devices.extend(k.device.clone());
            n.regs
                .insert((k.user.clone(), k.app.clone(), k.device.clone()));
        }
        n
    }

    fn union(mut self, o: &Names) -> Names {
        self.users.extend(o.users.iter().cloned());
        self.devices.extend(o.devices.iter().cloned());
        self.groups.extend(o.groups.iter().cloned());
        self.apps.extend(o.apps.iter().cloned());
        self.regs.extend(o.regs.iter().cloned());
        self
    }
}

/// A user as names (interned indexes differ between states).
#[derive(Debug, PartialEq, Eq)]
struct UserSeen {
    account_enabled: bool,
    licensed: bool,
    revoke_sessions_after: Option<i64>,
    groups: BTreeSet<String>,
}

fn groups_of(s: &PolicyState, ids: &[u32], names: &Names) -> BTreeSet<String> {
    names
        .groups
        .iter()
        .filter(|g| s.group_index(g).is_some_and(|i| ids.contains(&i)))
        .cloned()
        .collect()
}

fn user_seen(s: &PolicyState, u: &User, names: &Names) -> UserSeen {
    UserSeen {
        account_enabled: u.account_enabled,
        licensed: u.licensed,
        revoke_sessions_after: u.revoke_sessions_after,
        groups: groups_of(s, u.group_ids(), names),
    }
}

/// One policy as an app's lookup sees it, groups as names.
type PolicySeen = (
    String,
    String,
    String,
    i64,
    bool,
    String,
    String,
    BTreeSet<String>,
    BTreeSet<String>,
);

fn policies_seen(s: &PolicyState, app: &str, names: &Names) -> Vec<PolicySeen> {
    let mut v: Vec<PolicySeen> = s
        .app_policies_for(app)
        .map(|p| {
            let (inc, exc) = fuzzing::policy_groups(p);
            (
                p.id.to_string(),
                p.display_name.to_string(),
                format!("{:?}", p.platform),
                p.offline_period,
                p.pin_required,
                format!("{:?}", p.minimum_app_version),
                format!("{:?}", p.minimum_os_version),
                groups_of(s, inc, names),
                groups_of(s, exc, names),
            )
        })
        .collect();
    v.sort();
    v
}

/// Everything a request could read about `names`.
#[derive(Debug, PartialEq, Eq)]
struct View {
    users: BTreeMap<String, Option<UserSeen>>,
    devices: BTreeMap<String, Option<Device>>,
    regs: BTreeMap<(String, String, Option<String>), Option<AppRegistration>>,
    policies: BTreeMap<String, Vec<PolicySeen>>,
}

fn view(s: &PolicyState, names: &Names) -> View {
    View {
        users: names
            .users
            .iter()
            .map(|id| (id.clone(), s.user(id).map(|u| user_seen(s, u, names))))
            .collect(),
        devices: names
            .devices
            .iter()
            .map(|id| (id.clone(), s.device(id).copied()))
            .collect(),
        regs: names
            .regs
            .iter()
            .map(|k| {
                let r = s
                    .user_index(&k.0)
                    .and_then(|u| s.registration(u, &k.1, k.2.as_deref()).copied());
                (k.clone(), r)
            })
            .collect(),
        policies: names
            .apps
            .iter()
            .map(|a| (a.clone(), policies_seen(s, a, names)))
            .collect(),
    }
}

fn decode(doc: &[u8]) -> Option<(ChangeBatch, BatchView)> {
    let first = ChangeBatch::from_json(doc);
    let again = ChangeBatch::from_json(doc);
    match (first, again) {
        (Ok(a), Ok(b)) => {
            let v = fuzzing::batch_view(&a);
            assert_eq!(v, fuzzing::batch_view(&b), "same batch, different decoding");
            Some((a, v))
        }
        (Err(a), Err(b)) => {
            assert_eq!(a, b);
            assert!(!a.trim().is_empty(), "empty error");
            None
        }
        _ => panic!("same batch, different outcome"),
    }
}

fn batch(doc: &[u8]) {
    let f = fixed();
    let Some((b, v)) = decode(doc) else {
        return;
    };
    let base = &f.state;
    // Users present once the batch's users are applied: a registration must name one.
    let present = |u: &str| match v.users.iter().find(|(id, _)| id == u) {
        Some((_, d)) => d.is_some(),
        None => base.user_index(u).is_some(),
    };
    let orphan = v
        .registrations
        .iter()
        .any(|(k, r)| r.is_some() && !present(&k.user));
    let after = match base.apply(&b) {
        Ok(s) => s,
        Err(e) => {
            assert!(orphan, "apply refused a batch it should take: {e}");
            return;
        }
    };
    assert!(!orphan, "a registration of a missing user was applied");
    let names = f.names.clone().union(&Names::of_batch(&v));

    for (id, u) in &v.users {
        let got = after.user(id).map(|x| user_seen(&after, x, &names));
        let want = u.as_ref().map(|u| UserSeen {
            account_enabled: u.account_enabled,
            licensed: u.licensed,
            revoke_sessions_after: u.revoke_sessions_after,
            groups: u.groups.iter().cloned().collect(),
        });
        assert_eq!(got, want, "user {id}");
    }
    for (id, d) in &v.devices {
        assert_eq!(after.device(id), d.as_ref(), "device {id}");
    }
    for (k, r) in &v.registrations {
        let Some(u) = after.user_index(&k.user) else {
            assert!(r.is_none(), "an upsert of a missing user's registration");
            continue;
        };
        let got = after.registration(u, &k.app, k.device.as_deref());
        match (r, &k.device) {
            (Some(r), _) => assert_eq!(got, Some(r), "registration {k:?}"),
            (None, None) => assert_eq!(got, None, "registration {k:?} removed"),
            // The device's own record is gone: only the device-less one may answer.
            (None, Some(_)) => assert_eq!(got, after.registration(u, &k.app, None)),
        }
    }
    for (id, p) in &v.app_policies {
        let apps: Vec<&String> = match p {
            Some(p) => p.apps.iter().collect(),
            None => names.apps.iter().collect(),
        };
        for a in apps {
            let with_id: Vec<PolicySeen> = policies_seen(&after, a, &names)
                .into_iter()
                .filter(|s| s.0 == *id)
                .collect();
            match p {
                Some(p) => {
                    assert_eq!(with_id.len(), 1, "policy {id} for app {a}");
                    let s = &with_id[0];
                    let q = &p.policy;
                    assert_eq!(
                        (&s.1, s.3, s.4),
                        (
                            &q.display_name.to_string(),
                            q.offline_period,
                            q.pin_required
                        )
                    );
                    assert_eq!(s.7, p.include_groups.iter().cloned().collect());
                    assert_eq!(s.8, p.exclude_groups.iter().cloned().collect());
                }
                None => assert!(
                    with_id.is_empty(),
                    "removed policy {id} still applies to {a}"
                ),
            }
        }
    }
    // Records the batch does not name read as before.
    let before = view(base, &names);
    let now = view(&after, &names);
    for (id, u) in &before.users {
        if !v.users.iter().any(|(x, _)| x == id) {
            assert_eq!(
                now.users.get(id),
                Some(u),
                "user {id} not in the batch changed"
            );
        }
    }
    for (id, d) in &before.devices {
        if !v.devices.iter().any(|(x, _)| x == id) {
            assert_eq!(
                now.devices.get(id),
                Some(d),
                "device {id} not in the batch changed"
            );
        }
    }
    let again = after.apply(&b).expect("a batch that applied applies again");
    assert_eq!(
        view(&again, &names),
        now,
        "applying a batch twice changed more"
    );
    assert_eq!(
        view(&after.compacted(), &names),
        now,
        "compaction changed a lookup"
    );
}

/// The publisher's encoder: the base -> `doc` as batches, applied in order, reads as `doc`.
fn encoded(doc: &[u8]) {
    let f = fixed();
    let Ok(whole) = PolicyState::from_json(doc) else {
        return;
    };
    let new = match Records::index(doc.to_vec().into()) {
        Ok(r) => r,
        Err(e) => panic!("a document that loads does not index: {e}"),
    };
    let mut s = f.state.compacted();
    for (i, b) in diff(&f.records, &new).iter().enumerate() {
        let batch = match ChangeBatch::from_json(b) {
            Ok(x) => x,
            Err(e) => panic!("batch {i} the publisher wrote does not decode: {e}"),
        };
        s = match s.apply(&batch) {
            Ok(x) => x,
            Err(e) => panic!("batch {i} the publisher wrote does not apply: {e}"),
        };
    }
    let names = f.names.clone().union(&Names::of_doc(doc));
    assert_eq!(
        view(&s, &names),
        view(&whole, &names),
        "the batches do not read as the document"
    );
    assert_eq!(s.counts().users, whole.counts().users);
    assert_eq!(s.counts().devices, whole.counts().devices);
    assert_eq!(
        s.counts().app_registrations,
        whole.counts().app_registrations
    );
    assert_eq!(
        s.counts().app_protection_policies,
        whole.counts().app_protection_policies
    );
}

fn head(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut fields: HashMap<String, String> = HashMap::new();
    for line in text.split('\n') {
        if let Some((k, v)) = line.split_once('=') {
            fields.insert(k.to_owned(), v.to_owned());
        }
    }
    for v in fields.values() {
        if let Some((a, b)) = entry_id(v) {
            assert_eq!(entry_id(&format!("{a}-{b}")), Some((a, b)));
        }
    }
    let parsed = Head::parse(&fields);
    assert_eq!(parsed, Head::parse(&fields));
    let h = match parsed {
        Ok(h) => h,
        Err(e) => {
            assert!(!e.trim().is_empty());
            return;
        }
    };
    assert_eq!(fields.get("format").map(String::as_str), Some(FORMAT));
    assert!(!h.snapshot.is_empty() && h.snapshot.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert!(h.bytes <= accessgate::state::MAX_STATE_BYTES);
    assert_eq!(h.chunks, h.bytes.div_ceil(CHUNK_BYTES).max(1));
    assert!(h.sha256.len() == 64 && h.sha256.bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(entry_id(&h.version).is_some() && entry_id(&h.last).is_some());
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 4 {
        0 | 1 => batch(rest),
        2 => encoded(rest),
        _ => head(rest),
    }
});
