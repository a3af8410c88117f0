use std::collections::{BTreeMap, HashMap};

use super::*;
use crate::config::graph::INTUNE_PLAN;

fn w<T: serde::de::DeserializeOwned>(json: &str) -> T {
    serde_json::from_str(json).unwrap()
}

fn table() -> AppTable {
    AppTable::new(&[GraphApp {
        client_id: "0C1307D4-29d6-4389-a11c-5cbe7f65d7fa".into(),
        android_package_ids: vec!["com.microsoft.azure".into()],
        ios_bundle_ids: vec!["com.example.azure".into()],
    }])
}

#[test]
fn licence_needs_an_accepted_plan_enabled_or_in_warning() {
    let plans = vec![INTUNE_PLAN.to_owned()];
    let p = |status: &str, id: &str| -> Vec<wire::AssignedPlan> {
        w(&format!(
            r##"[{{"servicePlanId":"{id}","capabilityStatus":"{status}","service":"SCO"}}]"##
        ))
    };
    assert!(licensed(&p("Enabled", INTUNE_PLAN), &plans));
    assert!(licensed(&p("Warning", &INTUNE_PLAN.to_uppercase()), &plans));
    for s in ["Suspended", "LockedOut", "Deleted", "SomethingNew"] {
        assert!(!licensed(&p(s, INTUNE_PLAN), &plans), "{s}");
    }
    // INTUNE_O365 (basic MDM) is not Intune.
    assert!(!licensed(
        &p("Enabled", "882e1d05-acd1-4ccb-8708-6ee03664b117"),
        &plans
    ));
    assert!(!licensed(&[], &plans));
}

#[test]
fn users_delta_records_upsert_merge_and_remove() {
    let plans = vec![INTUNE_PLAN.to_owned()];
    let mut users = BTreeMap::new();
    let u: wire::GraphUser = w(&format!(
        r##"{{"id":"U-1","accountEnabled":true,"signInSessionsValidFromDateTime":"2026-05-01T10:00:00.1234567Z",
            "assignedPlans":[{{"servicePlanId":"{INTUNE_PLAN}","capabilityStatus":"Enabled"}}]}}"##
    ));
    apply_user(&mut users, &u, &plans).unwrap();
    let rec = &users["u-1"];
    assert!(rec.account_enabled && rec.licensed);
    assert_eq!(
        rec.revoke_sessions_after.as_deref(),
        Some("2026-05-01T10:00:00.1234567Z")
    );
    // A delta record with only some fields keeps the rest.
    apply_user(
        &mut users,
        &w(r##"{"id":"u-1","accountEnabled":false}"##),
        &plans,
    )
    .unwrap();
    assert!(!users["u-1"].account_enabled && users["u-1"].licensed);
    // A user first seen without accountEnabled is disabled (fail closed).
    apply_user(&mut users, &w(r##"{"id":"u-2"}"##), &plans).unwrap();
    assert!(!users["u-2"].account_enabled && !users["u-2"].licensed);
    apply_user(
        &mut users,
        &w(r##"{"id":"u-1","@removed":{"reason":"deleted"}}"##),
        &plans,
    )
    .unwrap();
    assert!(!users.contains_key("u-1"));
    let bad = apply_user(
        &mut users,
        &w(r##"{"id":"u-3","signInSessionsValidFromDateTime":"yesterday"}"##),
        &plans,
    );
    assert!(matches!(bad, Err(GraphError::Malformed(_))));
    // The 0001-01-01 sentinel is "never revoked".
    apply_user(
        &mut users,
        &w(r##"{"id":"u-4","signInSessionsValidFromDateTime":"0001-01-01T00:00:00Z"}"##),
        &plans,
    )
    .unwrap();
    assert_eq!(users["u-4"].revoke_sessions_after, None);
}

#[test]
fn state_users_carry_resolved_groups() {
    let mut users = BTreeMap::new();
    users.insert(
        "u-1".to_owned(),
        GraphUserRec {
            account_enabled: true,
            licensed: true,
            revoke_sessions_after: None,
        },
    );
    let mut groups = HashMap::new();
    groups.insert("u-1".to_owned(), vec!["g-1".to_owned(), "g-2".to_owned()]);
    let s = state_users(&users, &groups);
    assert_eq!(s["u-1"].groups, ["g-1", "g-2"]);
}

#[test]
fn devices_key_on_entra_id_and_read_unknown_states_strictly() {
    let mut st = MapStats::default();
    let d: wire::ManagedDevice = w(
        r##"{"id":"f61d","azureADDeviceId":"E7F59723-3b4c-4783-89bf-9e42d492f4ac","complianceState":"inGracePeriod","operatingSystem":"Windows","osVersion":"10.0.22621.3447","jailBroken":"Unknown","azureADRegistered":null}"##,
    );
    let (id, rec) = device(&d, &mut st).unwrap();
    assert_eq!(id, "e7f59723-3b4c-4783-89bf-9e42d492f4ac");
    assert_eq!(rec.compliance_state, "inGracePeriod");
    assert!(!device_failing(&rec));
    let d: wire::ManagedDevice =
        w(r##"{"azureADDeviceId":"d-2","complianceState":"quarantined"}"##);
    let (_, rec) = device(&d, &mut st).unwrap();
    assert_eq!(rec.compliance_state, "unknown");
    assert!(device_failing(&rec));
    assert_eq!(st.strict_readings, 1);
    for none in [
        r##"{"id":"x"}"##,
        r##"{"azureADDeviceId":""}"##,
        r##"{"azureADDeviceId":"00000000-0000-0000-0000-000000000000"}"##,
    ] {
        assert!(device(&w(none), &mut st).is_none(), "{none}");
    }
    assert_eq!(st.devices_without_entra_id, 3);
}

#[test]
fn two_intune_records_of_one_device_keep_the_failing_one() {
    let mut st = MapStats::default();
    let (_, mut a) = device(
        &w(r##"{"azureADDeviceId":"d","complianceState":"compliant"}"##),
        &mut st,
    )
    .unwrap();
    let (_, b) = device(
        &w(r##"{"azureADDeviceId":"d","complianceState":"noncompliant"}"##),
        &mut st,
    )
    .unwrap();
    merge_device(&mut a, b, &mut st);
    assert_eq!(a.compliance_state, "noncompliant");
    let (_, c) = device(
        &w(r##"{"azureADDeviceId":"d","complianceState":"compliant"}"##),
        &mut st,
    )
    .unwrap();
    merge_device(&mut a, c, &mut st);
    assert_eq!(a.compliance_state, "noncompliant");
}

const POLICY: &str = r##"{"@odata.type":"#microsoft.graph.androidManagedAppProtection","id":"T_1",
  "displayName":"Android APP","periodOfflineBeforeAccessCheck":"PT720M","pinRequired":true,
  "minimumRequiredOsVersion":"12.0","minimumRequiredAppVersion":null,"minimumRequiredPatchVersion":"0000-00-00",
  "apps":[{"id":"com.microsoft.azure.android","version":"-1","mobileAppIdentifier":{"@odata.type":"#microsoft.graph.androidMobileAppIdentifier","packageId":"com.microsoft.azure"}},
          {"id":"com.unknown.android","mobileAppIdentifier":{"@odata.type":"#microsoft.graph.androidMobileAppIdentifier","packageId":"com.unknown"}}],
  "assignments":[{"id":"a_0","target":{"@odata.type":"#microsoft.graph.groupAssignmentTarget","groupId":"G-IN"}},
                 {"id":"a_1","target":{"@odata.type":"#microsoft.graph.exclusionGroupAssignmentTarget","groupId":"g-out"}},
                 {"id":"a_2","target":{"@odata.type":"#microsoft.graph.allLicensedUsersAssignmentTarget"}}]}"##;

#[test]
fn app_policies_map_apps_groups_and_settings() {
    let mut st = MapStats::default();
    let p = app_policy(&w(POLICY), AppPlatform::Android, &table(), &mut st);
    assert_eq!(p.platform, "android");
    assert_eq!(p.apps, ["0c1307d4-29d6-4389-a11c-5cbe7f65d7fa"]);
    assert_eq!(p.include_groups, ["g-in"]);
    assert_eq!(p.exclude_groups, ["g-out"]);
    assert_eq!(
        p.period_offline_before_access_check.as_deref(),
        Some("PT720M")
    );
    assert!(p.pin_required);
    assert_eq!(p.minimum_required_os_version.as_deref(), Some("12.0"));
    assert_eq!(p.minimum_required_app_version, None);
    // The unmapped app is left out and counted; the "all users" target is not guessed.
    assert_eq!(st.unmapped_apps.get("android:com.unknown"), Some(&1));
    assert_eq!(st.other_targets, 1);
}

#[test]
fn unreadable_policy_settings_become_the_strict_reading() {
    let mut st = MapStats::default();
    let p = app_policy(
        &w(
            r##"{"id":"T_2","periodOfflineBeforeAccessCheck":"-PT17S","minimumRequiredAppVersion":"5.x"}"##,
        ),
        AppPlatform::Ios,
        &table(),
        &mut st,
    );
    assert_eq!(
        p.period_offline_before_access_check.as_deref(),
        Some("PT0S")
    );
    assert_eq!(
        p.minimum_required_app_version.as_deref(),
        Some(UNMEETABLE_VERSION)
    );
    assert!(p.apps.is_empty());
    assert_eq!(st.strict_readings, 2);
}

fn reg(json: &str) -> Vec<(String, RawRegistration<'static>)> {
    registrations(&w(json), &table(), &mut MapStats::default())
}

#[test]
fn registrations_map_through_the_app_table() {
    let r = reg(
        r##"{"@odata.type":"#microsoft.graph.androidManagedAppRegistration","id":"r1","userId":"U-1",
        "appIdentifier":{"@odata.type":"#microsoft.graph.androidMobileAppIdentifier","packageId":"com.microsoft.azure"},
        "applicationVersion":"7.1","platformVersion":"14","flaggedReasons":[],"lastSyncDateTime":"2026-11-30T10:00:00.1234567Z"}"##,
    );
    assert_eq!(r.len(), 1);
    let (key, rec) = &r[0];
    assert_eq!(key, "u-1|0c1307d4-29d6-4389-a11c-5cbe7f65d7fa|");
    assert_eq!(rec.platform.as_deref(), Some("android"));
    assert_eq!(rec.device_id, None, "v1.0 has no azureADDeviceId");
    assert_eq!(
        rec.last_sync_date_time.as_deref(),
        Some("2026-11-30T10:00:00.1234567Z")
    );
    // Beta's azureADDeviceId is used when present.
    let r = reg(
        r##"{"userId":"u-1","azureADDeviceId":"D-1","appIdentifier":{"@odata.type":"#microsoft.graph.iosMobileAppIdentifier","bundleId":"com.example.azure"}}"##,
    );
    assert_eq!(r[0].0, "u-1|0c1307d4-29d6-4389-a11c-5cbe7f65d7fa|d-1");
    assert_eq!(r[0].1.platform.as_deref(), Some("ios"));
    // Unmapped apps and user-less registrations are left out.
    let mut st = MapStats::default();
    let out = registrations(
        &w(r##"{"userId":"u-1","appIdentifier":{"bundleId":"com.other"}}"##),
        &table(),
        &mut st,
    );
    assert!(out.is_empty());
    assert_eq!(st.unmapped_apps.get("ios:com.other"), Some(&1));
    assert!(
        registrations(
            &w(r##"{"appIdentifier":{"bundleId":"com.example.azure"}}"##),
            &table(),
            &mut st
        )
        .is_empty()
    );
    assert_eq!(st.registrations_without_user, 1);
}

#[test]
fn unknown_flag_reasons_are_flags() {
    let r = reg(
        r##"{"userId":"u","appIdentifier":{"packageId":"com.microsoft.azure"},"flaggedReasons":["none","somethingNewInBeta"]}"##,
    );
    assert_eq!(r[0].1.flagged_reasons, ["rootedDevice"]);
    let r = reg(
        r##"{"userId":"u","appIdentifier":{"packageId":"com.microsoft.azure"},"flaggedReasons":["none"]}"##,
    );
    assert!(r[0].1.flagged_reasons.is_empty());
}

#[test]
fn ambiguous_device_less_registrations_merge_to_the_weakest() {
    let mut st = MapStats::default();
    let good = r##"{"@odata.type":"#microsoft.graph.androidManagedAppRegistration","userId":"u","appIdentifier":{"packageId":"com.microsoft.azure"},"applicationVersion":"7.2","platformVersion":"14","lastSyncDateTime":"2026-11-30T10:00:00Z"}"##;
    let worse = r##"{"@odata.type":"#microsoft.graph.iosManagedAppRegistration","userId":"u","appIdentifier":{"bundleId":"com.example.azure"},"applicationVersion":"7.0","platformVersion":"17.1","flaggedReasons":["rootedDevice"],"lastSyncDateTime":"2026-11-29T10:00:00Z"}"##;
    let (_, mut a) = registrations(&w(good), &table(), &mut st).remove(0);
    let (_, b) = registrations(&w(worse), &table(), &mut st).remove(0);
    merge_registration(&mut a, b, &mut st);
    assert_eq!(
        a.platform, None,
        "two platforms: every platform's policy applies"
    );
    assert_eq!(a.application_version.as_deref(), Some("7.0"));
    assert_eq!(a.platform_version.as_deref(), Some("14"));
    assert_eq!(a.flagged_reasons, ["rootedDevice"]);
    assert_eq!(
        a.last_sync_date_time.as_deref(),
        Some("2026-11-29T10:00:00Z")
    );
    // A missing value makes the merge missing (it fails any minimum / check-in).
    let (_, c) = registrations(
        &w(r##"{"userId":"u","appIdentifier":{"packageId":"com.microsoft.azure"}}"##),
        &table(),
        &mut st,
    )
    .remove(0);
    merge_registration(&mut a, c, &mut st);
    assert_eq!(a.application_version, None);
    assert_eq!(a.last_sync_date_time, None);
    assert_eq!(st.registrations_merged, 2);
}

#[test]
fn registration_compliance_is_derived_from_flags_and_minimums() {
    let mut st = MapStats::default();
    let mut pol = BTreeMap::new();
    pol.insert(
        "T_1".to_owned(),
        app_policy(&w(POLICY), AppPlatform::Android, &table(), &mut st),
    );
    let mut regs = BTreeMap::new();
    for (k, json) in [
        (
            "ok",
            r##"{"@odata.type":"#microsoft.graph.androidManagedAppRegistration","userId":"u1","appIdentifier":{"packageId":"com.microsoft.azure"},"platformVersion":"14"}"##,
        ),
        (
            "low-os",
            r##"{"@odata.type":"#microsoft.graph.androidManagedAppRegistration","userId":"u2","appIdentifier":{"packageId":"com.microsoft.azure"},"platformVersion":"11.9"}"##,
        ),
        (
            "no-os",
            r##"{"@odata.type":"#microsoft.graph.androidManagedAppRegistration","userId":"u3","appIdentifier":{"packageId":"com.microsoft.azure"}}"##,
        ),
        (
            "flagged",
            r##"{"@odata.type":"#microsoft.graph.androidManagedAppRegistration","userId":"u4","appIdentifier":{"packageId":"com.microsoft.azure"},"platformVersion":"14","flaggedReasons":["rootedDevice"]}"##,
        ),
        // iOS: the Android policy's minimum does not apply.
        (
            "ios",
            r##"{"@odata.type":"#microsoft.graph.iosManagedAppRegistration","userId":"u5","appIdentifier":{"bundleId":"com.example.azure"},"platformVersion":"9"}"##,
        ),
    ] {
        regs.insert(
            k.to_owned(),
            registrations(&w(json), &table(), &mut st).remove(0).1,
        );
    }
    derive_compliance(&mut regs, &pol);
    let state = |k: &str| regs[k].compliance_state.to_string();
    assert_eq!(state("ok"), "compliant");
    assert_eq!(state("low-os"), "noncompliant");
    assert_eq!(state("no-os"), "noncompliant");
    assert_eq!(state("flagged"), "noncompliant");
    assert_eq!(state("ios"), "compliant");
    assert!(registration_failing(&regs["flagged"]) && !registration_failing(&regs["ok"]));
}

#[test]
fn identifiers_without_a_type_are_read_by_their_id_field() {
    let i: wire::AppIdentifier = w(r##"{"packageId":"p"}"##);
    assert_eq!(AppTable::identify(&i), Some((AppPlatform::Android, "p")));
    let i: wire::AppIdentifier =
        w(r##"{"@odata.type":"microsoft.graph.iosMobileAppIdentifier","bundleId":"b"}"##);
    assert_eq!(AppTable::identify(&i), Some((AppPlatform::Ios, "b")));
    let i: wire::AppIdentifier =
        w(r##"{"@odata.type":"#microsoft.graph.windowsAppIdentifier","windowsAppId":"w"}"##);
    assert_eq!(AppTable::identify(&i), None);
}

#[test]
fn registrations_of_different_users_never_share_a_key() {
    // Found while writing the graph_page fuzz target's "every registration keeps its own
    // record" invariant: keys joined by a bare `|` collided, and the second user's
    // registration was merged into the first's (lost, so that user was refused).
    let app = "0c1307d4-29d6-4389-a11c-5cbe7f65d7fa";
    let page: Vec<wire::AppRegistration> = w(&format!(
        r#"[{{"userId":"u|{app}","appIdentifier":{{"bundleId":"com.example.azure"}}}},
            {{"userId":"u","appIdentifier":{{"bundleId":"com.example.azure"}},"azureADDeviceId":"{app}|"}}]"#
    ));
    let mut out = BTreeMap::new();
    super::super::collections::add_registrations(
        &mut out,
        &page,
        &table(),
        &mut MapStats::default(),
        None,
    );
    assert_eq!(out.len(), 2, "{out:?}");
    let users: Vec<&str> = out.values().map(|r| r.user_id.as_ref()).collect();
    assert!(users.contains(&"u") && users.contains(&format!("u|{app}").as_str()));
    // GUID keys (all Graph sends) read as before, so saved ledger keys stay valid.
    assert_eq!(registration_key("a1", app, "d1"), format!("a1|{app}|d1"));
    assert_ne!(
        registration_key("a|b", "c", ""),
        registration_key("a", "b|c", "")
    );
    assert_ne!(
        registration_key("a\\", "b", ""),
        registration_key("a", "\\b", "")
    );
}

#[test]
fn a_policy_page_with_an_empty_id_fails_the_read() {
    let mut st = MapStats::default();
    let mut out = BTreeMap::new();
    let mut p: wire::AppProtection = w(POLICY);
    p.id = String::new();
    let r = crate::state::graph::collections::add_app_policies(
        &mut out,
        "androidManagedAppProtections",
        &[p],
        AppPlatform::Android,
        &table(),
        &mut st,
    );
    assert!(
        matches!(&r, Err(GraphError::Malformed(m)) if m.contains("empty id")),
        "{r:?}"
    );
    assert!(out.is_empty());
}
