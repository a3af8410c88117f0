//! State parsing and validation: accepted shapes, and every refusal naming its record.

use crate::config::Platform;
use crate::policy::state::{ComplianceState, PolicyState, RemediationState};
use crate::policy::values::Version;

const GOOD: &str = r#"{
  "users": [
    {"id": "U-1", "accountEnabled": true, "licensed": true, "groups": ["G-Mobile", "g-mobile", "g-2"],
     "revokeSessionsAfter": "2026-11-01T00:00:00Z"},
    {"id": "u-2", "accountEnabled": false, "licensed": false}
  ],
  "devices": [
    {"azureADDeviceId": "D-1", "complianceState": "compliant", "operatingSystem": "iOS",
     "osVersion": "17.4", "noncompliantSince": null},
    {"azureADDeviceId": "d-2", "complianceState": "noncompliant", "operatingSystem": "Windows",
     "noncompliantSince": "2026-11-27T09:00:00Z", "remediation": "failed"}
  ],
  "appProtectionPolicies": [
    {"id": "p-1", "displayName": "iOS", "platform": "ios", "apps": ["App-1"],
     "includeGroups": ["g-mobile"], "excludeGroups": [], "periodOfflineBeforeAccessCheck": "PT12H",
     "pinRequired": true, "minimumRequiredOsVersion": "16.0", "minimumRequiredAppVersion": "5.0"}
  ],
  "appRegistrations": [
    {"userId": "u-1", "appId": "app-1", "azureADDeviceId": "d-1", "platform": "ios",
     "applicationVersion": "5.2.0", "platformVersion": "17.4", "flaggedReasons": [],
     "lastSyncDateTime": "2026-11-27T09:00:00Z", "complianceState": "compliant",
     "noncompliantSince": null, "remediation": "pending"},
    {"userId": "u-1", "appId": "app-1", "complianceState": "compliant", "flaggedReasons": ["rootedDevice"]}
  ]
}"#;

fn err(json: &str) -> String {
    match PolicyState::from_json(json.as_bytes()) {
        Ok(_) => panic!("accepted: {json}"),
        Err(e) => e,
    }
}

#[test]
fn loads_and_indexes_the_design_example() {
    let s = PolicyState::from_json(GOOD.as_bytes()).unwrap();
    let c = s.counts();
    assert_eq!(
        (
            c.users,
            c.devices,
            c.app_protection_policies,
            c.app_registrations
        ),
        (2, 2, 1, 2)
    );
    // Ids are case-insensitive; group duplicates collapse.
    let u = s.user("u-1").unwrap();
    assert!(u.account_enabled && u.licensed);
    assert_eq!(u.group_ids().len(), 2);
    assert_eq!(u.revoke_sessions_after, Some(1_793_491_200));
    assert!(!s.user("U-2").unwrap().account_enabled);
    assert!(s.user("nobody").is_none());
    let d = s.device("d-1").unwrap();
    assert_eq!(d.compliance, ComplianceState::Compliant);
    assert_eq!(d.platform, Some(Platform::Ios));
    assert_eq!(d.os_version, Version::parse("17.4"));
    assert_eq!(d.remediation, RemediationState::Pending);
    let d2 = s.device("D-2").unwrap();
    assert_eq!(d2.remediation, RemediationState::Failed);
    assert_eq!(d2.noncompliant_since, Some(1_795_770_000));
    let ui = s.user_index("u-1").unwrap();
    let r = s.registration(ui, "APP-1", Some("d-1")).unwrap();
    assert_eq!(r.last_sync, Some(1_795_770_000));
    assert!(!r.rooted);
    // The device-less registration matches by user and app: without a device, and for a
    // device that has no registration of its own; never another device's registration.
    let r2 = s.registration(ui, "app-1", None).unwrap();
    assert!(r2.rooted);
    assert!(s.registration(ui, "app-1", Some("d-2")).unwrap().rooted);
    assert!(!s.registration(ui, "app-1", Some("d-1")).unwrap().rooted);
    assert!(s.registration(ui, "app-2", Some("d-1")).is_none());
    let p: Vec<_> = s.app_policies_for("app-1").collect();
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].offline_period, 12 * 3600);
    assert!(p[0].covers(u));
    assert_eq!(s.app_policies_for("other").count(), 0);
}

#[test]
fn generations_are_unique() {
    let a = PolicyState::from_json(GOOD.as_bytes()).unwrap();
    let b = PolicyState::from_json(GOOD.as_bytes()).unwrap();
    assert_ne!(a.generation(), b.generation());
    assert_ne!(PolicyState::empty().generation(), a.generation());
}

#[test]
fn empty_document_is_an_empty_state() {
    let s = PolicyState::from_json(b"{}").unwrap();
    assert_eq!(s.counts().users, 0);
}

#[test]
fn unknown_compliance_state_names_the_record() {
    let e = err(r#"{"devices": [
        {"azureADDeviceId": "a", "complianceState": "compliant"},
        {"azureADDeviceId": "b", "complianceState": "compliant"},
        {"azureADDeviceId": "c", "complianceState": "compliant"},
        {"azureADDeviceId": "1234", "complianceState": "bogus"}]}"#);
    assert!(
        e.starts_with(r#"devices[3] (azureADDeviceId 1234): unknown complianceState "bogus""#),
        "{e}"
    );
}

#[test]
fn each_refusal_names_its_record() {
    let cases: &[(&str, &str)] = &[
        (
            r#"{"users": [{"id": "a", "accountEnabled": true, "licensed": true},
                          {"id": "A", "accountEnabled": true, "licensed": true}]}"#,
            "users[1] (id A): duplicate id",
        ),
        (
            r#"{"users": [{"id": "a", "accountEnabled": true, "licensed": true,
                           "revokeSessionsAfter": "last tuesday"}]}"#,
            r#"users[0] (id a): revokeSessionsAfter "last tuesday" is not an RFC 3339 timestamp"#,
        ),
        (
            r#"{"users": [{"id": "a", "accountEnabled": true}]}"#,
            "users[0]: missing field `licensed`",
        ),
        (
            r#"{"users": [{"id": "a", "accountEnabled": true, "licensed": true, "revokeSessionAfter": null}]}"#,
            "users[0]: unknown field `revokeSessionAfter`",
        ),
        (
            r#"{"devices": [{"azureADDeviceId": "d", "complianceState": "compliant"},
                            {"azureADDeviceId": "d", "complianceState": "compliant"}]}"#,
            "devices[1] (azureADDeviceId d): duplicate azureADDeviceId",
        ),
        (
            r#"{"devices": [{"azureADDeviceId": "d", "complianceState": "noncompliant", "remediation": "soon"}]}"#,
            r#"devices[0] (azureADDeviceId d): unknown remediation "soon""#,
        ),
        (
            r#"{"appProtectionPolicies": [{"id": "p", "platform": "ios"}, {"id": "p", "platform": "ios"}]}"#,
            "appProtectionPolicies[1] (id p): duplicate id",
        ),
        (
            r#"{"appProtectionPolicies": [{"id": "p", "platform": "palm"}]}"#,
            r#"appProtectionPolicies[0] (id p): unknown platform "palm""#,
        ),
        (
            r#"{"appProtectionPolicies": [{"id": "p", "platform": "ios", "periodOfflineBeforeAccessCheck": "12h"}]}"#,
            r#"appProtectionPolicies[0] (id p): periodOfflineBeforeAccessCheck: "12h" is not an ISO-8601 duration"#,
        ),
        (
            r#"{"appProtectionPolicies": [{"id": "p", "platform": "ios", "minimumRequiredOsVersion": "sixteen"}]}"#,
            r#"appProtectionPolicies[0] (id p): minimumRequiredOsVersion "sixteen" is not a dotted numeric version"#,
        ),
        (
            r#"{"users": [{"id": "u", "accountEnabled": true, "licensed": true}],
                "appRegistrations": [{"userId": "u", "appId": "a", "complianceState": "compliant"},
                                     {"userId": "ghost", "appId": "a", "complianceState": "compliant"}]}"#,
            "appRegistrations[1] (userId ghost, appId a, azureADDeviceId none): userId is not in users",
        ),
        (
            r#"{"appRegistrations": [{"userId": "u", "appId": "a", "azureADDeviceId": "d", "complianceState": "compliant"},
                                     {"userId": "U", "appId": "A", "azureADDeviceId": "D", "complianceState": "compliant"}],
                "users": [{"id": "u", "accountEnabled": true, "licensed": true}]}"#,
            "appRegistrations[1] (userId U, appId A, azureADDeviceId D): duplicate user x app x device",
        ),
        (
            r#"{"users": [{"id": "u", "accountEnabled": true, "licensed": true}],
                "appRegistrations": [{"userId": "u", "appId": "a", "complianceState": "compliant",
                                      "flaggedReasons": ["jailbroken"]}]}"#,
            r#"appRegistrations[0] (userId u, appId a, azureADDeviceId none): unknown flaggedReasons value "jailbroken""#,
        ),
        (
            r#"{"users": [{"id": "u", "accountEnabled": true, "licensed": true}],
                "appRegistrations": [{"userId": "u", "appId": "a", "complianceState": "fine"}]}"#,
            r#"appRegistrations[0] (userId u, appId a, azureADDeviceId none): unknown complianceState "fine""#,
        ),
        (r#"{"users": [], "users": []}"#, r#"duplicate key "users""#),
        (r#"{"widgets": []}"#, "unknown field `widgets`"),
        (
            r#"{"users": [{"id": "", "accountEnabled": true, "licensed": true}]}"#,
            "users[0] (id ): id is empty",
        ),
        (r#"{"users": "#, "EOF"),
        (r#"[]"#, "invalid type"),
        (r#"{} trailing"#, "trailing characters"),
    ];
    for (json, want) in cases {
        let e = err(json);
        assert!(e.contains(want), "want {want:?} in {e:?}");
    }
}

#[test]
fn registrations_may_precede_their_users() {
    let s = PolicyState::from_json(
        br#"{"appRegistrations": [{"userId": "u", "appId": "a", "complianceState": "compliant"}],
             "users": [{"id": "u", "accountEnabled": true, "licensed": true}]}"#,
    )
    .unwrap();
    assert_eq!(s.counts().app_registrations, 1);
}

#[test]
fn escaped_strings_are_read() {
    let s = PolicyState::from_json(
        br#"{"users": [{"id": "u\u002d1", "accountEnabled": true, "licensed": true}]}"#,
    )
    .unwrap();
    assert!(s.user("u-1").is_some());
}

#[test]
fn unparsable_record_versions_are_kept_as_unknown() {
    let s = PolicyState::from_json(
        br#"{"users": [{"id": "u", "accountEnabled": true, "licensed": true}],
             "appRegistrations": [{"userId": "u", "appId": "a", "complianceState": "compliant",
                                   "applicationVersion": "5.2.0-beta"}]}"#,
    )
    .unwrap();
    let r = s
        .registration(s.user_index("u").unwrap(), "a", None)
        .unwrap();
    assert_eq!(r.app_version, None);
}
