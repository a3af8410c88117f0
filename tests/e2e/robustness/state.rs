//! (2) `state.json`: arbitrary bytes, byte-mangled demo state, and structural mutations of
//! it (fields deleted or retyped, enum values changed, records duplicated, arrays removed).
//! `PolicyState::from_json` returns Ok or an error that names what is wrong; never panics.

use accessgate::policy::PolicyState;
use proptest::prelude::*;
use proptest::sample::{Index, select};
use serde_json::Value;

use super::{Tally, json_value, manifest_path, run};

const ARRAYS: [&str; 4] = [
    "users",
    "devices",
    "appProtectionPolicies",
    "appRegistrations",
];

fn demo_state() -> Value {
    serde_json::from_slice(&std::fs::read(manifest_path("config/demo-state.json")).unwrap())
        .unwrap()
}

#[derive(Debug, Clone)]
enum StateMut {
    DeleteField(usize, Index, Index),
    SetField(usize, Index, Index, Value),
    AddField(usize, Index, String, Value),
    DuplicateRecord(usize, Index),
    DeleteArray(usize),
    SetArray(usize, Value),
}

fn state_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        2 => json_value(),
        2 => select(vec![
            "compliant", "noncompliant", "inGracePeriod", "unknown", "conflict", "error",
            "configManager", "Compliant", "COMPLIANT", "", "pending", "failed", "disabled", "ios",
            "android", "iOS", "windows", "PT12H", "P1D", "PTxH", "P", "2026-11-27T09:00:00Z",
            "2026-13-45T99:00:00Z", "17.4", "1.2.3.4.5.6", "99999999999999999999.1", "-1",
            "rootedDevice", "true",
        ]).prop_map(Value::from),
        1 => any::<f64>().prop_map(Value::from),
    ]
}

fn state_mut() -> impl Strategy<Value = StateMut> {
    let arr = 0..ARRAYS.len();
    prop_oneof![
        3 => (arr.clone(), any::<Index>(), any::<Index>()).prop_map(|(a, r, f)| StateMut::DeleteField(a, r, f)),
        5 => (arr.clone(), any::<Index>(), any::<Index>(), state_value()).prop_map(|(a, r, f, v)| StateMut::SetField(a, r, f, v)),
        1 => (arr.clone(), any::<Index>(), "[a-zA-Z]{1,8}", json_value()).prop_map(|(a, r, k, v)| StateMut::AddField(a, r, k, v)),
        1 => (arr.clone(), any::<Index>()).prop_map(|(a, r)| StateMut::DuplicateRecord(a, r)),
        1 => arr.clone().prop_map(StateMut::DeleteArray),
        1 => (arr, json_value()).prop_map(|(a, v)| StateMut::SetArray(a, v)),
    ]
}

/// Apply `m`; returns the names it touched (for checking that an error names something).
fn apply_state(doc: &mut Value, m: &StateMut) -> Vec<String> {
    let mut touched = Vec::new();
    let pick = |doc: &Value, a: usize, r: &Index| -> Option<usize> {
        let arr = doc[ARRAYS[a]].as_array()?;
        (!arr.is_empty()).then(|| r.index(arr.len()))
    };
    match m {
        StateMut::DeleteField(a, r, f) | StateMut::SetField(a, r, f, _) => {
            let Some(at) = pick(doc, *a, r) else {
                return touched;
            };
            let Some(obj) = doc[ARRAYS[*a]][at].as_object_mut() else {
                return touched;
            };
            if obj.is_empty() {
                return touched;
            }
            let key = obj.keys().nth(f.index(obj.len())).cloned().unwrap();
            touched.push(key.clone());
            match m {
                StateMut::SetField(.., v) => obj[&key] = v.clone(),
                _ => {
                    obj.remove(&key);
                }
            }
        }
        StateMut::AddField(a, r, k, v) => {
            let Some(at) = pick(doc, *a, r) else {
                return touched;
            };
            if let Some(obj) = doc[ARRAYS[*a]][at].as_object_mut() {
                obj.insert(k.clone(), v.clone());
                touched.push(k.clone());
            }
        }
        StateMut::DuplicateRecord(a, r) => {
            let Some(at) = pick(doc, *a, r) else {
                return touched;
            };
            let arr = doc[ARRAYS[*a]].as_array_mut().unwrap();
            let copy = arr[at].clone();
            arr.push(copy);
        }
        StateMut::DeleteArray(a) => {
            doc.as_object_mut().unwrap().remove(ARRAYS[*a]);
        }
        StateMut::SetArray(a, v) => doc[ARRAYS[*a]] = v.clone(),
    }
    touched
}

#[test]
fn mutated_state_parses_or_names_the_problem() {
    let base = demo_state();
    assert!(PolicyState::from_json(&serde_json::to_vec(&base).unwrap()).is_ok());
    let tally = Tally::default();
    run(400, prop::collection::vec(state_mut(), 1..4), |muts| {
        let mut doc = base.clone();
        let mut touched: Vec<String> = Vec::new();
        for m in &muts {
            touched.extend(apply_state(&mut doc, m));
        }
        let bytes = serde_json::to_vec(&doc).unwrap();
        let parsed = PolicyState::from_json(&bytes);
        tally.count(&parsed);
        if let Err(e) = parsed {
            prop_assert!(!e.trim().is_empty());
            let names = ARRAYS.iter().any(|a| e.contains(a))
                || touched.iter().any(|t| e.contains(t.as_str()))
                || e.contains("line ");
            prop_assert!(names, "error names nothing: {e:?}");
        }
        Ok(())
    });
    tally.assert_both("mutated state");
}

#[test]
fn arbitrary_and_mangled_state_bytes_never_panic() {
    let text = std::fs::read(manifest_path("config/demo-state.json")).unwrap();
    let whole = text.clone();
    let input = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..512),
        "[\\[\\]{}\",:0-9a-zA-Z \\n-]{0,200}".prop_map(String::into_bytes),
        prop::collection::vec((any::<Index>(), any::<u8>(), 0..3u8), 1..8).prop_map(move |edits| {
            let mut t = text.clone();
            for (i, b, op) in edits {
                let at = i.index(t.len().max(1)).min(t.len());
                match op {
                    0 if at < t.len() => t[at] = b,
                    1 => t.insert(at, b),
                    _ if at < t.len() => {
                        t.remove(at);
                    }
                    _ => {}
                }
            }
            t
        }),
        // Truncated anywhere (a half-written file).
        any::<Index>().prop_map(move |i| whole[..i.index(whole.len())].to_vec()),
    ];
    run(400, input, |bytes| {
        if let Err(e) = PolicyState::from_json(&bytes) {
            let located = e.contains(" line ") || ARRAYS.iter().any(|a| e.contains(a));
            prop_assert!(located, "error names nothing: {e:?}");
        }
        Ok(())
    });
}
