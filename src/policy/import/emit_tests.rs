//! The emitted TOML passes the config's own validation and builds exactly the mapped
//! policies; nothing Graph sends can inject TOML.

use std::path::Path;
use std::time::Duration;

use serde_json::json;

use super::emit::{duration, string, toml};
use super::{Context, Outcome, import, named_locations, resource_map};
use crate::cli::import_policies::with_policies;
use crate::config::DEMO_CONFIG;

const CORP_APP: &str = "5e1f0c2a-7b8d-4c3e-9f10-aa0000000001";

fn cx() -> Context {
    Context {
        resources: resource_map([(CORP_APP, "corp-api")]),
        route_resources: vec!["corp-api".into()],
        has_approved_apps: true,
        locations: named_locations(&[json!({"id": "3c2f3a6e-0e39-4a49-9d36-0ab1f3b1c001", "isTrusted": true,
            "ipRanges": [{"cidrAddress": "10.1.2.3/8"}, {"cidrAddress": "2001:4898:80e8:7:d92a:7695:fda1:9d62/48"}]})])
        .ok(),
    }
}

fn policy(
    name: &str,
    conditions: serde_json::Value,
    grant: serde_json::Value,
    session: serde_json::Value,
) -> serde_json::Value {
    json!({"id": format!("{name}-id"), "displayName": name, "state": "enabledForReportingButNotEnforced",
           "conditions": conditions, "grantControls": grant, "sessionControls": session})
}

#[test]
fn every_mapped_shape_round_trips_through_the_config_parser() {
    let all = json!({"includeApplications": ["All"]});
    let items = [
        policy(
            "Block",
            json!({"applications": all, "users": {"includeUsers": ["All"], "excludeGroups": ["0b0b0b0b-0000-4000-8000-000000000002"]},
            "locations": {"includeLocations": ["All"], "excludeLocations": ["AllTrusted"]}}),
            json!({"builtInControls": ["block"]}),
            json!(null),
        ),
        policy(
            "Grant all",
            json!({"applications": {"includeApplications": [CORP_APP]},
            "users": {"includeUsers": ["a1111111-1111-4111-8111-111111111111"], "includeGroups": ["0a0a0a0a-0000-4000-8000-000000000001"],
                      "excludeUsers": ["b2222222-2222-4222-8222-222222222222"]},
            "platforms": {"includePlatforms": ["iOS", "android"]},
            "locations": {"includeLocations": ["3c2f3a6e-0e39-4a49-9d36-0ab1f3b1c001"]}}),
            json!({"operator": "AND", "builtInControls": ["mfa", "compliantDevice", "approvedApplication", "compliantApplication"]}),
            json!({"signInFrequency": {"isEnabled": true, "type": "days", "value": 30}}),
        ),
        policy(
            "Grant any",
            json!({"applications": all, "users": {"includeGroups": ["0a0a0a0a-0000-4000-8000-000000000001"]},
            "platforms": {"includePlatforms": ["all"], "excludePlatforms": ["iOS"]}}),
            json!({"operator": "OR", "builtInControls": ["compliantDevice", "compliantApplication"]}),
            json!({"signInFrequency": {"isEnabled": true, "frequencyInterval": "everyTime"}}),
        ),
        policy(
            "Grant any",
            json!({"applications": all, "users": {"includeUsers": ["All"]}}),
            json!({"builtInControls": ["mfa"]}),
            json!({"signInFrequency": {"isEnabled": true, "type": "hours", "value": 12}}),
        ),
    ];
    let outcomes = import(&items, &cx());
    let text = toml(&outcomes);
    let config = with_policies(DEMO_CONFIG, &text, Path::new("config/demo.toml"))
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
    let mapped: Vec<String> = outcomes
        .iter()
        .filter_map(|o| match o {
            Outcome::Imported(i) => Some(format!("{:?}", i.policy)),
            _ => None,
        })
        .collect();
    let parsed: Vec<String> = config.policies.iter().map(|p| format!("{p:?}")).collect();
    assert_eq!(mapped.len(), items.len());
    assert_eq!(parsed, mapped, "\n{text}");
    assert!(
        text.contains("# Entra policy Grant any-id: \"Grant any\""),
        "{text}"
    );
    assert!(text.contains("name = \"grant-any-2\""), "{text}");
}

#[test]
fn display_names_cannot_inject_toml() {
    let evil = "x\"\n[[policies]]\nname = \"evil\"\nresources = [\"all\"]\ninclude_users = [\"all\"]\ngrant = { block = true }\n#";
    let mut p = policy(
        evil,
        json!({"applications": {"includeApplications": ["All"]}, "users": {"includeUsers": ["All"]}}),
        json!({"builtInControls": ["mfa"]}),
        json!(null),
    );
    p["id"] = json!("id\n[[policies]]");
    let skipped = policy(
        evil,
        json!({"applications": {"includeApplications": ["None"]}, "users": {"includeUsers": ["All"]}}),
        json!({"builtInControls": ["mfa"]}),
        json!(null),
    );
    let text = toml(&import(&[p, skipped], &cx()));
    let config = with_policies(DEMO_CONFIG, &text, Path::new("config/demo.toml"))
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(config.policies.len(), 1, "{text}");
    assert_eq!(
        config.policies[0].name,
        "x-policies-name-evil-resources-all-include-users-all-grant-b"
    );
    assert!(
        !text
            .lines()
            .any(|l| l.starts_with("[[policies]]") && l != "[[policies]]")
    );
    assert_eq!(text.matches("\n[[policies]]\n").count(), 1, "{text}");
}

#[test]
fn strings_and_durations() {
    assert_eq!(string("a\"b\\c\nd\u{7}"), r#""a\"b\\c\nd\u0007""#);
    assert_eq!(duration(Duration::from_secs(300)), "5m");
    assert_eq!(duration(Duration::from_secs(8 * 3600)), "8h");
    assert_eq!(duration(Duration::from_secs(86_400)), "1d");
    assert_eq!(duration(Duration::from_secs(90)), "90s");
}

#[test]
fn skipped_and_refused_policies_are_comments() {
    let refused = policy(
        "Risky",
        json!({"signInRiskLevels": ["high"], "applications": {"includeApplications": ["All"]},
        "users": {"includeUsers": ["All"]}}),
        json!({"builtInControls": ["block"]}),
        json!(null),
    );
    let skipped = policy(
        "Legacy",
        json!({"clientAppTypes": ["other"], "applications": {"includeApplications": ["All"]},
        "users": {"includeUsers": ["All"]}}),
        json!({"builtInControls": ["block"]}),
        json!(null),
    );
    let text = toml(&import(&[refused, skipped], &cx()));
    assert!(!text.contains("[[policies]]"), "{text}");
    assert!(
        text.contains("# NOT IMPORTED:\n#   - conditions.signInRiskLevels"),
        "{text}"
    );
    assert!(
        text.contains("# skipped: targets only legacy authentication"),
        "{text}"
    );
    assert!(
        with_policies(DEMO_CONFIG, &text, Path::new("config/demo.toml"))
            .is_ok_and(|c| c.policies.is_empty())
    );
}
