//! Incremental application: a batch gives the same answers as loading the final document,
//! shares the base, refuses bad batches without changing anything.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::config::{GrantControl, PolicyConfig};
use crate::policy::state::PolicyState;
use crate::policy::state_batch::ChangeBatch;
use crate::policy::test_support::{NOW, on, pol, run_at, state, who};

fn batch(v: Value) -> ChangeBatch {
    ChangeBatch::from_json(&serde_json::to_vec(&v).unwrap()).unwrap()
}

fn batch_err(v: Value) -> String {
    match ChangeBatch::from_json(&serde_json::to_vec(&v).unwrap()) {
        Ok(b) => panic!("accepted: {b:?}"),
        Err(e) => e,
    }
}

fn policies() -> Vec<PolicyConfig> {
    let mut app = pol("app", &[GrantControl::AppProtection]);
    app.include_groups = vec!["g0".into(), "g5".into()];
    app.include_users = crate::config::Selector::Some(vec![]);
    app.exclude_groups = vec!["g1".into(), "g6".into()];
    let mut dev = pol("device", &[GrantControl::CompliantDevice]);
    dev.include_groups = vec!["g2".into(), "g6".into()];
    dev.include_users = crate::config::Selector::Some(vec![]);
    let any = pol("any-user", &[GrantControl::AppProtection]);
    let mut block = pol("blocked-groups", &[]);
    block.grant = crate::config::Grant::Block;
    block.include_users = crate::config::Selector::Some(vec![]);
    block.include_groups = vec!["g3".into(), "g6".into()];
    vec![app, dev, any, block]
}

#[test]
fn a_batch_shares_the_base_and_leaves_the_old_state_alone() {
    let old = state();
    let new = old
        .apply(&batch(json!({
            "devices": [{"azureADDeviceId": "dev-ok", "complianceState": "noncompliant",
                         "operatingSystem": "iOS", "noncompliantSince": "2027-01-15T07:00:00Z"}]
        })))
        .unwrap();
    assert!(Arc::ptr_eq(&old.base, &new.base));
    assert_ne!(old.generation(), new.generation());
    assert!(old.device("dev-ok").unwrap().compliance.is_compliant());
    assert!(!new.device("DEV-OK").unwrap().compliance.is_compliant());
    assert_eq!(new.overlay_records(), 1);
    // A compliant-device policy now refuses alice on that device; it did before not.
    let p = [pol("dev", &[GrantControl::CompliantDevice])];
    let before = run_at(&p, Some(&old), &on("alice", "dev-ok"), "192.0.2.1", NOW);
    let after = run_at(&p, Some(&new), &on("alice", "dev-ok"), "192.0.2.1", NOW);
    assert!(before.decision.is_allow());
    assert!(!after.decision.is_allow());
}

#[test]
fn a_changed_user_may_name_a_group_the_base_never_saw() {
    let old = state();
    assert_eq!(old.group_index("brand-new"), None);
    let mut p = pol("blocked-group", &[]);
    p.grant = crate::config::Grant::Block;
    p.include_users = crate::config::Selector::Some(vec![]);
    p.include_groups = vec!["brand-new".into()];
    let p = [p];
    assert!(
        run_at(&p, Some(&old), &who("plain"), "192.0.2.1", NOW)
            .decision
            .is_allow()
    );
    let new = old
        .apply(&batch(
            json!({"users": [{"id": "plain", "accountEnabled": true,
            "licensed": true, "groups": ["Brand-New"]}]}),
        ))
        .unwrap();
    let g = new.group_index("brand-new").unwrap();
    assert_eq!(g as usize, old.group_count());
    assert_eq!(new.user("plain").unwrap().group_ids(), &[g]);
    assert!(
        !run_at(&p, Some(&new), &who("plain"), "192.0.2.1", NOW)
            .decision
            .is_allow()
    );
}

#[test]
fn removals_hide_base_records_and_unknown_removals_are_harmless() {
    let old = state();
    let new = old
        .apply(&batch(json!({"removed": {
            "users": ["carol", "no-such-user"],
            "devices": ["dev-ok"],
            "appProtectionPolicies": ["mam-ios"],
            "appRegistrations": [{"userId": "alice", "appId": "mobile-app", "azureADDeviceId": "dev-ok"},
                                 {"userId": "nobody", "appId": "x"}]
        }})))
        .unwrap();
    assert!(new.user("carol").is_none() && new.user_index("carol").is_none());
    assert!(new.device("dev-ok").is_none());
    assert_eq!(new.app_policies_for("mobile-app").count(), 0);
    let alice = new.user_index("alice").unwrap();
    assert!(
        new.registration(alice, "mobile-app", Some("dev-ok"))
            .is_none()
    );
    let (o, n) = (old.counts(), new.counts());
    assert_eq!(
        (
            n.users,
            n.devices,
            n.app_protection_policies,
            n.app_registrations
        ),
        (o.users - 1, o.devices - 1, 0, o.app_registrations - 1)
    );
    // Upserting again brings them back.
    let back = new
        .apply(&batch(
            json!({"users": [{"id": "carol", "accountEnabled": true, "licensed": true}]}),
        ))
        .unwrap();
    assert!(back.user("carol").is_some());
}

#[test]
fn a_bad_batch_is_refused_with_the_record_named() {
    let e = batch_err(json!({"devices": [{"azureADDeviceId": "d", "complianceState": "bogus"}]}));
    assert!(
        e.contains("devices[0] (azureADDeviceId d)") && e.contains("bogus"),
        "{e}"
    );
    let e = batch_err(
        json!({"users": [{"id": "u", "accountEnabled": true, "licensed": true,
        "revokeSessionAfter": "2026-01-01T00:00:00Z"}]}),
    );
    assert!(e.contains("unknown field"), "{e}");
    let e = batch_err(
        json!({"users": [{"id": "u", "accountEnabled": true, "licensed": true}],
        "removed": {"users": ["U"]}}),
    );
    assert!(e.contains("appears twice"), "{e}");
    let e = batch_err(json!({"bogus": []}));
    assert!(e.contains("unknown field"), "{e}");
    let e = batch_err(json!({"users": [{"id": "", "accountEnabled": true, "licensed": true}]}));
    assert!(e.contains("id is empty"), "{e}");
    let many: Vec<String> = (0..=super::super::state_batch::MAX_BATCH_RECORDS)
        .map(|i| format!("d{i}"))
        .collect();
    let e = batch_err(json!({"removed": {"devices": many}}));
    assert!(e.contains("at most"), "{e}");
    assert!(ChangeBatch::from_json(b"{\"users\": [").is_err());
}

#[test]
fn a_registration_for_a_user_not_in_state_is_refused_and_changes_nothing() {
    let old = state();
    let before = old.counts();
    let e = old
        .apply(&batch(
            json!({"appRegistrations": [{"userId": "ghost", "appId": "mobile-app",
            "complianceState": "compliant"}]}),
        ))
        .unwrap_err();
    assert!(e.contains("userId is not in users"), "{e}");
    // A user removed in the same batch does not count either.
    let e = old
        .apply(&batch(
            json!({"appRegistrations": [{"userId": "alice", "appId": "other-app",
            "complianceState": "compliant"}], "removed": {"users": ["alice"]}}),
        ))
        .unwrap_err();
    assert!(e.contains("userId is not in users"), "{e}");
    assert_eq!(old.counts(), before);
}

#[test]
fn compaction_keeps_every_answer_and_empties_the_overlay() {
    let old = state();
    let new = old
        .apply(&batch(json!({
            "users": [{"id": "zed", "accountEnabled": true, "licensed": true, "groups": ["g9"]}],
            "devices": [{"azureADDeviceId": "dev-zed", "complianceState": "compliant", "operatingSystem": "Android"}],
            "appRegistrations": [{"userId": "zed", "appId": "new-app", "azureADDeviceId": "dev-zed",
                                  "complianceState": "compliant"}],
            "removed": {"devices": ["dev-bad"]}
        })))
        .unwrap();
    let c = new.compacted();
    assert_eq!(c.overlay_records(), 0);
    assert!(!Arc::ptr_eq(&c.base, &new.base));
    assert_eq!(c.counts(), new.counts());
    let zed = c.user_index("zed").unwrap();
    assert_eq!(
        c.registration(zed, "new-app", Some("dev-zed")),
        new.registration(new.user_index("zed").unwrap(), "new-app", Some("dev-zed"))
    );
    assert!(c.registration(zed, "new-app", Some("dev-zed")).is_some());
    assert!(c.device("dev-bad").is_none());
    assert_eq!(c.group_index("g9"), new.group_index("g9"));
}

/// A tiny deterministic generator: the property test draws one seed and builds documents
/// from it (ids come from small pools so batches hit existing records).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, pct: u64) -> bool {
        self.next() % 100 < pct
    }
    fn pick<'a>(&mut self, v: &[&'a str]) -> &'a str {
        v[self.below(v.len())]
    }
    fn subset(&mut self, v: &[&str]) -> Vec<String> {
        v.iter()
            .filter(|_| self.chance(35))
            .map(|s| s.to_string())
            .collect()
    }
}

const USERS: [&str; 6] = ["u0", "u1", "u2", "u3", "u4", "U5"];
const DEVICES: [&str; 5] = ["d0", "d1", "d2", "d3", "D4"];
const APPS: [&str; 3] = ["a0", "a1", "a2"];
const GROUPS: [&str; 7] = ["g0", "g1", "g2", "g3", "g4", "g5", "g6"];
const POLICIES: [&str; 3] = ["p0", "p1", "p2"];

fn ts(r: &mut Rng) -> Value {
    if r.chance(40) {
        Value::Null
    } else {
        json!(crate::respond::rfc3339(NOW - 3600 * r.below(30) as i64))
    }
}

fn user(r: &mut Rng, id: &str) -> Value {
    json!({"id": id, "accountEnabled": r.chance(80), "licensed": r.chance(80),
           "groups": r.subset(&GROUPS), "revokeSessionsAfter": ts(r)})
}

fn device(r: &mut Rng, id: &str) -> Value {
    let c = r.pick(&["compliant", "noncompliant", "inGracePeriod", "unknown"]);
    json!({"azureADDeviceId": id, "complianceState": c,
           "operatingSystem": r.pick(&["iOS", "Android", "Windows"]),
           "osVersion": r.pick(&["15.1", "17.4"]), "noncompliantSince": ts(r),
           "remediation": r.pick(&["pending", "failed"])})
}

fn policy(r: &mut Rng, id: &str) -> Value {
    json!({"id": id, "platform": r.pick(&["ios", "android"]), "apps": r.subset(&APPS),
           "includeGroups": r.subset(&GROUPS), "excludeGroups": r.subset(&GROUPS),
           "minimumRequiredOsVersion": r.pick(&["16.0", ""]),
           "minimumRequiredAppVersion": r.pick(&["5.0", ""])})
}

fn registration(r: &mut Rng, (u, a, d): &(String, String, String)) -> Value {
    let device = if d.is_empty() { Value::Null } else { json!(d) };
    json!({"userId": u, "appId": a, "azureADDeviceId": device, "platform": r.pick(&["ios", "android"]),
           "applicationVersion": r.pick(&["4.9", "5.2"]), "platformVersion": r.pick(&["15.1", "17.4"]),
           "flaggedReasons": if r.chance(15) { json!(["rootedDevice"]) } else { json!([]) },
           "lastSyncDateTime": ts(r), "complianceState": r.pick(&["compliant", "noncompliant"]),
           "noncompliantSince": ts(r)})
}

type RegId = (String, String, String);

#[derive(Default, Clone)]
struct Model {
    users: BTreeMap<String, Value>,
    devices: BTreeMap<String, Value>,
    policies: BTreeMap<String, Value>,
    regs: BTreeMap<RegId, Value>,
}

impl Model {
    fn doc(&self) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "users": self.users.values().collect::<Vec<_>>(),
            "devices": self.devices.values().collect::<Vec<_>>(),
            "appProtectionPolicies": self.policies.values().collect::<Vec<_>>(),
            "appRegistrations": self.regs.values().collect::<Vec<_>>(),
        }))
        .unwrap()
    }
}

fn all_regs() -> Vec<RegId> {
    let mut v = vec![];
    for u in USERS {
        for a in APPS {
            for d in DEVICES.iter().chain(&[""]) {
                v.push((u.to_lowercase(), a.to_string(), d.to_string()));
            }
        }
    }
    v
}

fn base_model(r: &mut Rng) -> Model {
    let mut m = Model::default();
    for u in USERS {
        if r.chance(70) {
            m.users.insert(u.to_lowercase(), user(r, u));
        }
    }
    for d in DEVICES {
        if r.chance(70) {
            m.devices.insert(d.to_lowercase(), device(r, d));
        }
    }
    for p in POLICIES {
        if r.chance(60) {
            m.policies.insert(p.into(), policy(r, p));
        }
    }
    for k in all_regs() {
        if m.users.contains_key(&k.0) && r.chance(20) {
            let v = registration(r, &k);
            m.regs.insert(k, v);
        }
    }
    m
}

/// Mutate `m` at random; returns the batch document that takes the old `m` to the new one.
fn mutate(r: &mut Rng, m: &mut Model) -> Value {
    fn step<K: Ord + Clone>(
        r: &mut Rng,
        map: &mut BTreeMap<K, Value>,
        key: K,
        make: impl FnOnce(&mut Rng) -> Value,
        ops: &mut BTreeMap<K, Option<Value>>,
    ) {
        if map.contains_key(&key) && r.chance(35) {
            map.remove(&key);
            ops.insert(key, None);
        } else {
            let v = make(r);
            map.insert(key.clone(), v.clone());
            ops.insert(key, Some(v));
        }
    }
    let (mut uo, mut dopt, mut po, mut ro) = (
        BTreeMap::new(),
        BTreeMap::new(),
        BTreeMap::new(),
        BTreeMap::new(),
    );
    let regs = all_regs();
    for _ in 0..1 + r.below(8) {
        match r.below(4) {
            0 => {
                let u = r.pick(&USERS);
                step(r, &mut m.users, u.to_lowercase(), |r| user(r, u), &mut uo);
            }
            1 => {
                let d = r.pick(&DEVICES);
                step(
                    r,
                    &mut m.devices,
                    d.to_lowercase(),
                    |r| device(r, d),
                    &mut dopt,
                );
            }
            2 => {
                let p = r.pick(&POLICIES);
                step(r, &mut m.policies, p.to_string(), |r| policy(r, p), &mut po);
            }
            _ => {
                let k = regs[r.below(regs.len())].clone();
                if m.users.contains_key(&k.0) {
                    step(r, &mut m.regs, k.clone(), |r| registration(r, &k), &mut ro);
                }
            }
        }
    }
    // A removed user takes its registrations along (the final document must load).
    let orphans: Vec<RegId> = m
        .regs
        .keys()
        .filter(|k| !m.users.contains_key(&k.0))
        .cloned()
        .collect();
    for k in orphans {
        m.regs.remove(&k);
        ro.insert(k, None);
    }
    fn ups<K>(o: &BTreeMap<K, Option<Value>>) -> Vec<Value> {
        o.values().flatten().cloned().collect()
    }
    let gone = |o: &BTreeMap<String, Option<Value>>| {
        o.iter()
            .filter(|(_, v)| v.is_none())
            .map(|(k, _)| k.clone())
            .collect::<Vec<_>>()
    };
    let gone_regs: Vec<Value> = ro
        .iter()
        .filter(|(_, v)| v.is_none())
        .map(|((u, a, d), _)| {
            json!({"userId": u, "appId": a, "azureADDeviceId": if d.is_empty() { Value::Null } else { json!(d) }})
        })
        .collect();
    json!({"users": ups(&uo), "devices": ups(&dopt), "appProtectionPolicies": ups(&po),
           "appRegistrations": ups(&ro),
           "removed": {"users": gone(&uo), "devices": gone(&dopt),
                       "appProtectionPolicies": gone(&po), "appRegistrations": gone_regs}})
}

/// Every lookup and every decision the engine can make over the id pools.
fn same_answers(a: &PolicyState, b: &PolicyState) -> Result<(), String> {
    let (ca, cb) = (a.counts(), b.counts());
    let strip = |c: crate::policy::StateCounts| {
        (
            c.users,
            c.devices,
            c.app_protection_policies,
            c.app_registrations,
        )
    };
    if strip(ca) != strip(cb) {
        return Err(format!("counts {ca:?} != {cb:?}"));
    }
    let member = |s: &PolicyState, u: &str| -> Vec<bool> {
        GROUPS
            .iter()
            .map(|g| {
                let user = s.user(u);
                s.group_index(g)
                    .is_some_and(|i| user.is_some_and(|u| u.group_ids().binary_search(&i).is_ok()))
            })
            .collect()
    };
    let policies = policies();
    for u in USERS.iter().chain(&["nobody"]) {
        let fields = |s: &PolicyState| {
            s.user(u)
                .map(|x| (x.account_enabled, x.licensed, x.revoke_sessions_after))
        };
        if fields(a) != fields(b) || member(a, u) != member(b, u) {
            return Err(format!("user {u} differs"));
        }
        for app in APPS {
            let pols = |s: &PolicyState| {
                let mut v: Vec<String> = s
                    .app_policies_for(app)
                    .map(|p| {
                        format!(
                            "{}{:?}{:?}{:?}",
                            p.id, p.platform, p.minimum_os_version, p.minimum_app_version
                        )
                    })
                    .collect();
                v.sort();
                v
            };
            if pols(a) != pols(b) {
                return Err(format!("app policies for {app} differ"));
            }
            for d in DEVICES.iter().map(|d| Some(*d)).chain([None]) {
                let reg = |s: &PolicyState| {
                    s.user_index(u)
                        .and_then(|i| s.registration(i, app, d).copied())
                };
                if reg(a) != reg(b) {
                    return Err(format!("registration {u} {app} {d:?} differs"));
                }
                let mut p = who(u);
                p.client_app = Some(app.into());
                p.device = d.map(Into::into);
                let ea = run_at(&policies, Some(a), &p, "192.0.2.1", NOW);
                let eb = run_at(&policies, Some(b), &p, "192.0.2.1", NOW);
                if ea != eb {
                    return Err(format!("decision for {u} {app} {d:?}: {ea:?} != {eb:?}"));
                }
            }
        }
    }
    for d in DEVICES {
        if a.device(d) != b.device(d) {
            return Err(format!("device {d} differs"));
        }
    }
    Ok(())
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]
    #[test]
    fn applying_batches_equals_loading_the_final_document(seed in 1u64..u64::MAX) {
        let mut r = Rng(seed);
        let mut m = base_model(&mut r);
        let mut incremental = PolicyState::from_json(&m.doc()).unwrap();
        for round in 0..3 {
            let b = mutate(&mut r, &mut m);
            let b = ChangeBatch::from_json(&serde_json::to_vec(&b).unwrap()).unwrap();
            incremental = incremental.apply(&b).unwrap();
            if round == 1 {
                incremental = incremental.compacted();
            }
            let scratch = PolicyState::from_json(&m.doc()).unwrap();
            if let Err(e) = same_answers(&incremental, &scratch) {
                proptest::prop_assert!(false, "round {}: {}", round, e);
            }
        }
    }
}
