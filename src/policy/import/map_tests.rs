//! Who, what and under which conditions: every mapped field and every refusal of
//! `conditions`, one Entra policy at a time.

use serde_json::{Value, json};

use super::test_support::*;
use super::{Outcome, import};
use crate::config::{Grant, GrantControl, GrantOperator, Platform, PolicyMode, Selector};

#[test]
fn base_policy_maps_every_default() {
    let (p, notes) = imported(base());
    assert_eq!(p.name, "base");
    assert_eq!(p.mode, PolicyMode::Enabled);
    assert_eq!(p.resources, Selector::Some(vec!["corp-api".into()]));
    assert_eq!(p.include_users, Selector::All);
    assert!(
        p.platforms.is_empty() && p.locations.include.is_empty() && p.locations.exclude.is_empty()
    );
    assert_eq!(
        p.grant,
        Grant::Controls {
            operator: GrantOperator::Any,
            controls: vec![GrantControl::Mfa],
            auth_context: None
        }
    );
    assert_eq!(p.sign_in_frequency, None);
    assert!(notes.is_empty(), "{notes:?}");
}

#[test]
fn states_map_to_modes_and_unknown_states_refuse() {
    for (state, mode) in [
        ("enabled", PolicyMode::Enabled),
        ("disabled", PolicyMode::Disabled),
        ("enabledForReportingButNotEnforced", PolicyMode::ReportOnly),
    ] {
        assert_eq!(imported(with(json!({"state": state}))).0.mode, mode);
    }
    refuses(json!({"state": "paused"}), "state \"paused\"");
    refuses(json!({"state": null}), "state: missing");
}

#[test]
fn users_and_groups_include_and_exclude() {
    let (p, _) = imported(with(json!({"conditions": {"users": {
        "includeUsers": [USER, "None"], "includeGroups": [GROUP],
        "excludeUsers": ["b2222222-2222-4222-8222-222222222222", "None"],
        "excludeGroups": ["0b0b0b0b-0000-4000-8000-000000000002"]}}})));
    assert_eq!(p.include_users, Selector::Some(vec![USER.into()]));
    assert_eq!(p.include_groups, vec![GROUP.to_owned()]);
    assert_eq!(
        p.exclude_users,
        vec!["b2222222-2222-4222-8222-222222222222".to_owned()]
    );
    assert_eq!(
        p.exclude_groups,
        vec!["0b0b0b0b-0000-4000-8000-000000000002".to_owned()]
    );
    // Groups alone are enough.
    let (p, _) = imported(with(
        json!({"conditions": {"users": {"includeUsers": [], "includeGroups": [GROUP]}}}),
    ));
    assert_eq!(p.include_users, Selector::Some(vec![]));
}

#[test]
fn policies_for_no_one_are_skipped() {
    for users in [
        json!({"includeUsers": ["None"]}),
        json!({"includeUsers": []}),
        json!({"includeUsers": ["All"], "excludeUsers": ["All"]}),
    ] {
        let why = skipped(with(json!({"conditions": {"users": users}})));
        assert!(why.contains("applies to no one"), "{why}");
    }
    let mut v = base();
    v["conditions"]["users"] = Value::Null;
    assert!(skipped(v).contains("no one"));
}

#[test]
fn user_conditions_the_gateway_cannot_see_refuse() {
    refuses(
        json!({"conditions": {"users": {"includeRoles": ["62e90394-69f5-4237-9190-012177145e10"]}}}),
        "includeRoles",
    );
    refuses(
        json!({"conditions": {"users": {"excludeRoles": ["62e90394-69f5-4237-9190-012177145e10"]}}}),
        "excludeRoles",
    );
    refuses(
        json!({"conditions": {"users": {"includeUsers": ["GuestsOrExternalUsers"]}}}),
        "guests",
    );
    refuses(
        json!({"conditions": {"users": {"excludeUsers": ["GuestsOrExternalUsers"]}}}),
        "guests",
    );
    refuses(
        json!({"conditions": {"users": {"excludeGuestsOrExternalUsers": {"guestOrExternalUserTypes": "b2bCollaborationGuest", "externalTenants": {"membershipKind": "all"}}}}}),
        "excludeGuestsOrExternalUsers",
    );
    refuses(
        json!({"conditions": {"users": {"includeUsers": ["AllAgents"]}}}),
        "neither a user id",
    );
    refuses(
        json!({"conditions": {"users": {"includeGroups": ["staff"]}}}),
        "not a group id",
    );
    refuses(
        json!({"conditions": {"users": {"includeAgents": ["x"]}}}),
        "conditions.users.includeAgents",
    );
    // Empty shells, as Graph sends them, say nothing.
    imported(with(
        json!({"conditions": {"users": {"includeRoles": [], "excludeRoles": [],
        "includeGuestsOrExternalUsers": null, "excludeGuestsOrExternalUsers": {"guestOrExternalUserTypes": "none"}}}}),
    ));
}

#[test]
fn an_unknown_include_is_refused_not_skipped() {
    // Were it read as "no one", the policy would vanish with exit 0.
    refuses(
        json!({"conditions": {"users": {"includeUsers": ["AllAgents"]}}}),
        "AllAgents",
    );
    refuses(
        json!({"conditions": {"applications": {"includeApplications": ["AllAgentApps"]}}}),
        "AllAgentApps",
    );
    refuses(
        json!({"conditions": {"platforms": {"includePlatforms": ["visionOS"]}}}),
        "visionOS",
    );
    refuses(
        json!({"conditions": {"clientAppTypes": ["other", "agents"]}}),
        "agents",
    );
    refuses(
        json!({"conditions": {"locations": {"includeLocations": [COUNTRY]}}}),
        "country",
    );
    refuses(
        json!({"grantControls": {"builtInControls": [], "futureControl": ["x"]}}),
        "futureControl",
    );
}

#[test]
fn applications_all_mapped_unmapped_and_excluded() {
    let apps = |a: Value| imported(with(json!({"conditions": {"applications": a}})));
    assert_eq!(
        apps(json!({"includeApplications": ["All"]})).0.resources,
        Selector::All
    );
    // Case-insensitive app ids, both mapped, order kept.
    let (p, notes) = apps(
        json!({"includeApplications": [ADMIN_APP.to_uppercase(), CORP_APP, "00000003-0000-0ff1-ce00-000000000000"]}),
    );
    assert_eq!(
        p.resources,
        Selector::Some(vec!["admin-api".into(), "corp-api".into()])
    );
    assert!(
        notes.iter().any(|n| n.contains("not covered here")),
        "{notes:?}"
    );
    // All minus a mapped app: the other routes' resources, spelled out.
    let (p, notes) =
        apps(json!({"includeApplications": ["All"], "excludeApplications": [ADMIN_APP]}));
    assert_eq!(p.resources, Selector::Some(vec!["corp-api".into()]));
    assert!(
        notes.iter().any(|n| n.contains("route added later")),
        "{notes:?}"
    );
    // All minus an unmapped app: stays All, with a note.
    let (p, notes) = apps(
        json!({"includeApplications": ["All"], "excludeApplications": ["00000003-0000-0ff1-ce00-000000000000"]}),
    );
    assert_eq!(p.resources, Selector::All);
    assert!(
        notes.iter().any(|n| n.contains("--resource 00000003")),
        "{notes:?}"
    );
    // Specific minus mapped.
    let (p, _) = apps(
        json!({"includeApplications": [CORP_APP, ADMIN_APP], "excludeApplications": [ADMIN_APP]}),
    );
    assert_eq!(p.resources, Selector::Some(vec!["corp-api".into()]));
}

#[test]
fn policies_for_no_resource_of_ours_are_skipped() {
    for a in [
        json!({"includeApplications": ["Office365"]}),
        json!({"includeApplications": ["00000003-0000-0ff1-ce00-000000000000"]}),
        json!({"includeApplications": ["None"]}),
        json!({"includeApplications": [CORP_APP], "excludeApplications": [CORP_APP]}),
        json!({"includeApplications": ["All"], "excludeApplications": [CORP_APP, ADMIN_APP]}),
    ] {
        let why = skipped(with(json!({"conditions": {"applications": a.clone()}})));
        assert!(why.contains("resource"), "{a}: {why}");
    }
    // ... even when they also use something unsupported: leaving them out loses nothing.
    skipped(with(
        json!({"conditions": {"signInRiskLevels": ["high"], "applications": {"includeApplications": ["Office365"]}}}),
    ));
    // --resource can map Microsoft's own sets too.
    let mut c = cx();
    c.resources.insert("office365".into(), "corp-api".into());
    assert!(matches!(
        run(
            with(json!({"conditions": {"applications": {"includeApplications": ["Office365"]}}})),
            &c
        ),
        Outcome::Imported(_)
    ));
}

#[test]
fn application_conditions_the_gateway_cannot_see_refuse() {
    refuses(
        json!({"conditions": {"applications": {"includeUserActions": ["urn:user:registersecurityinfo"]}}}),
        "includeUserActions",
    );
    refuses(
        json!({"conditions": {"applications": {"includeAuthenticationContextClassReferences": ["c1"]}}}),
        "includeAuthenticationContextClassReferences",
    );
    refuses(
        json!({"conditions": {"applications": {"applicationFilter": {"mode": "include", "rule": "CustomSecurityAttribute.x -eq \"y\""}}}}),
        "applicationFilter",
    );
}

#[test]
fn other_conditions_refuse() {
    for (patch, needle) in [
        (json!({"signInRiskLevels": ["high"]}), "signInRiskLevels"),
        (json!({"userRiskLevels": ["medium"]}), "userRiskLevels"),
        (
            json!({"servicePrincipalRiskLevels": ["low"]}),
            "servicePrincipalRiskLevels",
        ),
        (
            json!({"insiderRiskLevels": "elevated"}),
            "insiderRiskLevels",
        ),
        (
            json!({"devices": {"deviceFilter": {"mode": "exclude", "rule": "device.trustType -eq \"ServerAD\""}}}),
            "devices",
        ),
        (
            json!({"devices": {"includeDevices": ["All"], "excludeDevices": ["Compliant"]}}),
            "devices",
        ),
        (
            json!({"authenticationFlows": {"transferMethods": "deviceCodeFlow"}}),
            "authenticationFlows",
        ),
        (
            json!({"clientApplications": {"includeServicePrincipals": ["ServicePrincipalsInMyTenant"]}}),
            "clientApplications",
        ),
        (
            json!({"agentIdRiskLevels": "high"}),
            "conditions.agentIdRiskLevels",
        ),
    ] {
        refuses(json!({"conditions": patch}), needle);
    }
    // Unset, as Graph sends them.
    imported(with(
        json!({"conditions": {"signInRiskLevels": [], "insiderRiskLevels": null, "devices": null,
        "authenticationFlows": {"transferMethods": "none"}, "clientApplications": {"includeServicePrincipals": [], "excludeServicePrincipals": []}}}),
    ));
}

#[test]
fn client_app_types() {
    for t in [
        json!(["all"]),
        json!([]),
        json!(["browser", "mobileAppsAndDesktopClients"]),
    ] {
        imported(with(json!({"conditions": {"clientAppTypes": t}})));
    }
    let (_, notes) = imported(with(
        json!({"conditions": {"clientAppTypes": ["browser", "mobileAppsAndDesktopClients", "other"]}}),
    ));
    assert!(notes.iter().any(|n| n.contains("legacy")), "{notes:?}");
    assert!(
        skipped(with(
            json!({"conditions": {"clientAppTypes": ["exchangeActiveSync", "other"]}})
        ))
        .contains("legacy")
    );
    refuses(
        json!({"conditions": {"clientAppTypes": ["browser"]}}),
        "browser",
    );
    refuses(
        json!({"conditions": {"clientAppTypes": ["mobileAppsAndDesktopClients", "exchangeActiveSync"]}}),
        "browser",
    );
}

#[test]
fn platforms_include_minus_exclude() {
    let plat = |p: Value| imported(with(json!({"conditions": {"platforms": p}})));
    assert_eq!(
        plat(json!({"includePlatforms": ["android", "iOS"]}))
            .0
            .platforms,
        vec![Platform::Ios, Platform::Android]
    );
    assert!(
        plat(json!({"includePlatforms": ["all"], "excludePlatforms": []}))
            .0
            .platforms
            .is_empty()
    );
    assert!(
        plat(json!({"includePlatforms": [], "excludePlatforms": []}))
            .0
            .platforms
            .is_empty()
    );
    let (p, notes) = plat(
        json!({"includePlatforms": ["all"], "excludePlatforms": ["iOS", "android", "windowsPhone"]}),
    );
    assert_eq!(
        p.platforms,
        vec![Platform::Windows, Platform::Macos, Platform::Linux]
    );
    assert!(
        notes.iter().any(|n| n.contains("windowsPhone")),
        "{notes:?}"
    );
    assert_eq!(
        plat(json!({"includePlatforms": ["windows", "macOS", "linux", "windowsPhone"]}))
            .0
            .platforms,
        vec![Platform::Windows, Platform::Macos, Platform::Linux]
    );
    // Excludes without includes: Entra's include is All.
    assert_eq!(
        plat(json!({"excludePlatforms": ["linux"]}))
            .0
            .platforms
            .len(),
        4
    );
    refuses(
        json!({"conditions": {"platforms": {"includePlatforms": ["windowsPhone"]}}}),
        "Windows Phone",
    );
    refuses(
        json!({"conditions": {"platforms": {"excludePlatforms": ["unknownFutureValue"]}}}),
        "unknownFutureValue",
    );
    // Nothing left must not become [] (= any platform).
    for p in [
        json!({"includePlatforms": ["iOS"], "excludePlatforms": ["iOS"]}),
        json!({"includePlatforms": ["all"], "excludePlatforms": ["all"]}),
    ] {
        assert!(
            skipped(with(json!({"conditions": {"platforms": p}}))).contains("no device platform")
        );
    }
}

#[test]
fn malformed_policies_are_refused_alone() {
    let out = import(
        &[
            json!({"id": "x", "displayName": "bad", "conditions": {"users": {"includeUsers": "All"}}}),
            base(),
            json!(42),
        ],
        &cx(),
    );
    assert!(matches!(&out[0], Outcome::Refused { entra_id, .. } if entra_id == "x"));
    assert!(matches!(&out[1], Outcome::Imported(_)));
    assert!(matches!(&out[2], Outcome::Refused { .. }));
    refuses(json!({"id": ""}), "no id");
}

#[test]
fn names_are_valid_and_unique() {
    let named = |n: &str| with(json!({"displayName": n}));
    let out = import(
        &[
            named("CA001: Require MFA!"),
            named("CA001: Require MFA?"),
            named("¡Über-Policy 😀!"),
            named(""),
        ],
        &cx(),
    );
    let names: Vec<String> = out
        .iter()
        .filter_map(|o| match o {
            Outcome::Imported(i) => Some(i.policy.name.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        names,
        [
            "ca001-require-mfa",
            "ca001-require-mfa-2",
            "ber-policy",
            "entra-7a1f0001"
        ]
    );
}
