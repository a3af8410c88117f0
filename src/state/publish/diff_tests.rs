//! Round diffs: applying the batches to the old state gives the new one; critical first.

use bytes::Bytes;
use serde_json::{Value, json};

use super::{BATCH_RECORDS, Records, diff};
use crate::policy::{ChangeBatch, PolicyState};

fn doc(users: Vec<Value>, devices: Vec<Value>, regs: Vec<Value>) -> Bytes {
    Bytes::from(
        serde_json::to_vec(&json!({"users": users, "devices": devices,
            "appProtectionPolicies": [], "appRegistrations": regs}))
        .unwrap(),
    )
}

fn user(id: &str, enabled: bool) -> Value {
    json!({"id": id, "accountEnabled": enabled, "licensed": true, "groups": ["g"]})
}

fn device(id: &str, c: &str) -> Value {
    json!({"azureADDeviceId": id, "complianceState": c, "operatingSystem": "iOS"})
}

fn reg(u: &str, d: &str, c: &str) -> Value {
    json!({"userId": u, "appId": "app", "azureADDeviceId": d, "complianceState": c})
}

fn apply_all(old: &Bytes, batches: &[Vec<u8>]) -> PolicyState {
    let mut s = PolicyState::from_json(old).unwrap();
    for b in batches {
        let b = ChangeBatch::from_json(b)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(b)));
        s = s.apply(&b).unwrap();
    }
    s
}

#[test]
fn no_change_no_batch() {
    let d = doc(
        vec![user("u1", true)],
        vec![device("d1", "compliant")],
        vec![],
    );
    let a = Records::index(d.clone()).unwrap();
    let b = Records::index(d).unwrap();
    assert!(diff(&a, &b).is_empty());
}

#[test]
fn batches_take_the_old_state_to_the_new_one() {
    let old = doc(
        vec![user("u1", true), user("u2", true), user("gone", true)],
        vec![device("d1", "compliant"), device("d2", "compliant")],
        vec![reg("u1", "d1", "compliant"), reg("gone", "d2", "compliant")],
    );
    let new = doc(
        vec![user("u1", true), user("u2", false), user("new", true)],
        vec![
            device("d1", "noncompliant"),
            device("d2", "compliant"),
            device("d3", "compliant"),
        ],
        vec![
            reg("u1", "d1", "compliant"),
            reg("new", "d3", "noncompliant"),
        ],
    );
    let batches = diff(
        &Records::index(old.clone()).unwrap(),
        &Records::index(new.clone()).unwrap(),
    );
    assert!(batches.len() >= 2, "critical and the rest: {batches:?}");
    let got = apply_all(&old, &batches);
    let want = PolicyState::from_json(&new).unwrap();
    assert_eq!(got.counts().users, want.counts().users);
    assert_eq!(
        got.counts().app_registrations,
        want.counts().app_registrations
    );
    assert!(!got.user("u2").unwrap().account_enabled);
    assert!(got.user("gone").is_none() && got.user("new").is_some());
    assert_eq!(got.device("d1"), want.device("d1"));
    assert_eq!(got.device("d3"), want.device("d3"));
    let n = got.user_index("new").unwrap();
    assert!(got.registration(n, "app", Some("d3")).is_some());
    // The first batch holds what takes access away, and nothing that merely adds.
    let first: Value = serde_json::from_slice(&batches[0]).unwrap();
    let first_text = first.to_string();
    assert!(
        first_text.contains("\"u2\"") && first_text.contains("\"d1\""),
        "{first_text}"
    );
    assert!(
        first["removed"]["users"]
            .as_array()
            .unwrap()
            .contains(&json!("gone"))
    );
    assert!(!first_text.contains("\"d3\""), "{first_text}");
}

#[test]
fn large_diffs_are_split() {
    let n = BATCH_RECORDS * 2 + 5;
    let old = doc(vec![], vec![], vec![]);
    let devices: Vec<Value> = (0..n)
        .map(|i| device(&format!("d{i}"), "compliant"))
        .collect();
    let new = doc(vec![], devices, vec![]);
    let batches = diff(
        &Records::index(old.clone()).unwrap(),
        &Records::index(new).unwrap(),
    );
    assert_eq!(batches.len(), 3);
    assert_eq!(apply_all(&old, &batches).counts().devices, n);
}
