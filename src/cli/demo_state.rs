//! The demo's policy state, with its times moved to the moment the demo starts.
//!
//! `config/demo-state.json` holds fixed dates so that the offline tools (`eval`,
//! `test-policies`, the tests) give the same answer on any day. The running demo instead
//! shows what a first-time user can believe: records that went noncompliant (and apps
//! that last checked in) [`AGO`] before the start, inside a [`WINDOW`] remediation window,
//! so the deadline it prints is minutes away, not a century.

use serde_json::Value;

/// How long before the demo's start its noncompliant records went noncompliant.
pub const AGO: i64 = 2 * 60;

/// The remediation window the demo runs with (`config/demo.toml` says 100 years so that
/// the fixed-date state stays inside it for the offline tools).
pub const WINDOW: &str = "15m";

/// The demo state for a demo started at `started` (unix seconds): every non-null
/// `noncompliantSince` and `lastSyncDateTime` in `template` becomes `started - AGO`.
pub fn relative_to(template: &str, started: i64) -> Result<String, String> {
    let mut v: Value =
        serde_json::from_str(template).map_err(|e| format!("embedded demo state: {e}"))?;
    let at = Value::String(crate::respond::rfc3339(started.saturating_sub(AGO)));
    for list in ["devices", "appRegistrations"] {
        let Some(items) = v.get_mut(list).and_then(Value::as_array_mut) else {
            return Err(format!("embedded demo state has no {list} array"));
        };
        for item in items.iter_mut().filter_map(Value::as_object_mut) {
            for key in ["noncompliantSince", "lastSyncDateTime"] {
                if let Some(t) = item.get_mut(key).filter(|t| t.is_string()) {
                    *t = at.clone();
                }
            }
        }
    }
    serde_json::to_string_pretty(&v).map_err(|e| format!("demo state: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = include_str!("../../config/demo-state.json");

    #[test]
    fn times_move_to_the_start_and_nulls_stay() {
        let started = 1_800_000_000;
        let text = relative_to(TEMPLATE, started).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        let want = crate::respond::rfc3339(started - AGO);
        let regs = v["appRegistrations"].as_array().unwrap();
        // rita (pending) and sam (failed) went noncompliant two minutes before the start.
        assert_eq!(regs[1]["noncompliantSince"], want.as_str());
        assert_eq!(regs[2]["noncompliantSince"], want.as_str());
        assert_eq!(regs[0]["noncompliantSince"], Value::Null);
        assert!(regs.iter().all(|r| r["lastSyncDateTime"] == want.as_str()));
        assert_eq!(v["devices"][4]["noncompliantSince"], want.as_str());
        assert!(!text.contains("2026-01-01"), "{text}");
        // Still a state the engine loads.
        crate::policy::PolicyState::from_json(text.as_bytes()).unwrap();
    }

    #[test]
    fn a_template_without_its_lists_is_refused() {
        assert!(relative_to("{}", 0).is_err());
        assert!(relative_to("not json", 0).is_err());
    }
}
