//! Every mapped field and every refusal, one Entra policy at a time.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use super::{Context, Location, LocationKind, Outcome, import, named_locations, resource_map};
use crate::config::{
    Grant, GrantControl, GrantOperator, Platform, PolicyConfig, PolicyMode, Selector,
};

const CORP_APP: &str = "5e1f0c2a-7b8d-4c3e-9f10-aa0000000001";
const ADMIN_APP: &str = "5e1f0c2a-7b8d-4c3e-9f10-aa0000000002";
const USER: &str = "a1111111-1111-4111-8111-111111111111";
const GROUP: &str = "0a0a0a0a-0000-4000-8000-000000000001";
const TRUSTED: &str = "3c2f3a6e-0e39-4a49-9d36-0ab1f3b1c002";
const OFFICE: &str = "3c2f3a6e-0e39-4a49-9d36-0ab1f3b1c001";
const COUNTRY: &str = "1b7f0916-7677-40d8-97a1-d606f4ed8fcf";
const BROKEN: &str = "3c2f3a6e-0e39-4a49-9d36-0ab1f3b1c009";

fn cx() -> Context {
    let locations = named_locations(&[
        json!({"@odata.type": "#microsoft.graph.ipNamedLocation", "id": TRUSTED, "isTrusted": true,
               "ipRanges": [{"cidrAddress": "10.1.2.3/8"}, {"cidrAddress": "2001:db8:1234:5:6::1/48"}]}),
        json!({"@odata.type": "#microsoft.graph.ipNamedLocation", "id": OFFICE, "isTrusted": false,
               "ipRanges": [{"cidrAddress": "203.0.113.0/24"}]}),
        json!({"@odata.type": "#microsoft.graph.countryNamedLocation", "id": COUNTRY,
               "countriesAndRegions": ["US"]}),
        json!({"@odata.type": "#microsoft.graph.ipNamedLocation", "id": BROKEN,
               "ipRanges": [{"cidrAddress": "not-a-range"}]}),
    ])
    .ok();
    Context {
        resources: resource_map([(CORP_APP, "corp-api"), (ADMIN_APP, "admin-api")]),
        route_resources: vec!["admin-api".into(), "corp-api".into()],
        has_approved_apps: true,
        locations,
    }
}

/// A policy that imports: all users, the corp-api app, MFA.
fn base() -> Value {
    json!({
        "id": "7a1f0001-0000-4000-8000-000000000001",
        "displayName": "Base",
        "state": "enabled",
        "conditions": {
            "applications": {"includeApplications": [CORP_APP]},
            "users": {"includeUsers": ["All"]},
            "clientAppTypes": ["all"]
        },
        "grantControls": {"operator": "OR", "builtInControls": ["mfa"]},
        "sessionControls": null
    })
}

/// `base()` with `patch` merged in (objects merge, everything else replaces).
fn with(patch: Value) -> Value {
    fn merge(a: &mut Value, b: Value) {
        match (a, b) {
            (Value::Object(a), Value::Object(b)) => {
                for (k, v) in b {
                    merge(a.entry(k).or_insert(Value::Null), v);
                }
            }
            (a, b) => *a = b,
        }
    }
    let mut v = base();
    merge(&mut v, patch);
    v
}

fn run(v: Value, cx: &Context) -> Outcome {
    import(&[v], cx).remove(0)
}

fn imported(v: Value) -> (PolicyConfig, Vec<String>) {
    match run(v, &cx()) {
        Outcome::Imported(i) => (i.policy, i.notes),
        other => panic!("expected an import, got {other:?}"),
    }
}

fn refused(v: Value) -> Vec<String> {
    match run(v, &cx()) {
        Outcome::Refused { reasons, .. } => reasons,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn skipped(v: Value) -> String {
    match run(v, &cx()) {
        Outcome::Skipped { reason, .. } => reason,
        other => panic!("expected a skip, got {other:?}"),
    }
}

fn refuses(patch: Value, needle: &str) {
    let reasons = refused(with(patch.clone()));
    assert!(
        reasons.iter().any(|r| r.contains(needle)),
        "{patch}: no reason mentions {needle:?}: {reasons:?}"
    );
}

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

fn nets(v: &[ipnet::IpNet]) -> Vec<String> {
    v.iter().map(ToString::to_string).collect()
}

#[test]
fn locations_ip_named_locations_as_masked_cidrs() {
    let loc = |l: Value| imported(with(json!({"conditions": {"locations": l}})));
    let (p, _) = loc(json!({"includeLocations": ["All"], "excludeLocations": [OFFICE]}));
    assert!(p.locations.include.is_empty());
    assert_eq!(nets(&p.locations.exclude), ["203.0.113.0/24"]);
    let (p, _) = loc(json!({"includeLocations": [TRUSTED.to_uppercase()]}));
    assert_eq!(
        nets(&p.locations.include),
        ["10.0.0.0/8", "2001:db8:1234::/48"]
    );
    let (p, notes) = loc(
        json!({"includeLocations": ["All"], "excludeLocations": ["AllTrusted", "00000000-0000-0000-0000-000000000000"]}),
    );
    assert_eq!(
        nets(&p.locations.exclude),
        ["10.0.0.0/8", "2001:db8:1234::/48"]
    );
    assert_eq!(notes.len(), 2, "{notes:?}");
    // Empty include = All (broader, the stricter reading).
    assert_eq!(
        nets(
            &loc(json!({"includeLocations": [], "excludeLocations": [OFFICE]}))
                .0
                .locations
                .exclude
        ),
        ["203.0.113.0/24"]
    );
}

#[test]
fn locations_the_gateway_cannot_resolve_refuse() {
    for (l, needle) in [
        (json!({"includeLocations": ["AllTrusted"]}), "AllTrusted"),
        (
            json!({"includeLocations": ["00000000-0000-0000-0000-000000000000"]}),
            "legacy MFA trusted IPs",
        ),
        (json!({"includeLocations": [COUNTRY]}), "country"),
        (
            json!({"includeLocations": ["All"], "excludeLocations": [COUNTRY]}),
            "country",
        ),
        (json!({"includeLocations": [BROKEN]}), "not-a-range"),
        (
            json!({"includeLocations": ["d2136c9c-b049-47ae-b9cf-316e04ef7198"]}),
            "not among the named locations",
        ),
        (
            json!({"includeLocations": ["All"], "excludeLocations": ["d2136c9c-b049-47ae-b9cf-316e04ef7198"]}),
            "not among",
        ),
    ] {
        refuses(json!({"conditions": {"locations": l}}), needle);
    }
    // Without --named-locations nothing can be resolved.
    let mut c = cx();
    c.locations = None;
    for l in [
        json!({"includeLocations": [OFFICE]}),
        json!({"includeLocations": ["All"], "excludeLocations": ["AllTrusted"]}),
    ] {
        let v = with(json!({"conditions": {"locations": l}}));
        assert!(
            matches!(run(v, &c), Outcome::Refused { ref reasons, .. } if reasons[0].contains("--named-locations"))
        );
    }
}

#[test]
fn locations_that_leave_no_ip_are_skipped() {
    let mut c = cx();
    let mut l: BTreeMap<String, Location> = c.locations.take().unwrap_or_default();
    l.insert(
        "3c2f3a6e-0e39-4a49-9d36-0ab1f3b1c00e".into(),
        Location {
            display_name: "empty".into(),
            kind: LocationKind::Ip {
                trusted: false,
                cidrs: vec![],
            },
        },
    );
    c.locations = Some(l);
    let v = with(
        json!({"conditions": {"locations": {"includeLocations": ["3c2f3a6e-0e39-4a49-9d36-0ab1f3b1c00e"]}}}),
    );
    assert!(matches!(run(v, &c), Outcome::Skipped { .. }));
    assert!(skipped(with(json!({"conditions": {"locations": {"includeLocations": ["All"], "excludeLocations": ["All"]}}}))).contains("nowhere"));
}

#[test]
fn named_locations_parse_leniently_and_refuse_ambiguity() {
    let l = cx().locations.unwrap_or_default();
    assert_eq!(
        l[TRUSTED].kind,
        LocationKind::Ip {
            trusted: true,
            cidrs: vec![
                "10.0.0.0/8".parse().unwrap_or_else(|_| unreachable!()),
                "2001:db8:1234::/48"
                    .parse()
                    .unwrap_or_else(|_| unreachable!())
            ],
        }
    );
    assert_eq!(l[COUNTRY].kind, LocationKind::Country);
    assert!(matches!(l[BROKEN].kind, LocationKind::Invalid(_)));
    let dup = json!({"id": OFFICE, "ipRanges": []});
    assert!(named_locations(&[dup.clone(), dup]).is_err_and(|e| e.contains("twice")));
    assert!(
        named_locations(&[json!({"displayName": "no id"})]).is_err_and(|e| e.contains("no id"))
    );
    assert!(named_locations(&[json!({"id": OFFICE, "ipRanges": "x"})]).is_err());
    let odd = named_locations(&[
        json!({"@odata.type": "#microsoft.graph.compliantNetworkNamedLocation", "id": OFFICE}),
    ]);
    assert!(matches!(
        odd.as_ref().map(|m| &m[OFFICE].kind),
        Ok(LocationKind::Invalid(_))
    ));
}

#[test]
fn grant_controls_map() {
    let grant = |g: Value| imported(with(json!({"grantControls": g}))).0.grant;
    assert_eq!(
        grant(json!({"operator": "OR", "builtInControls": ["block"]})),
        Grant::Block
    );
    assert_eq!(
        grant(
            json!({"operator": "AND", "builtInControls": ["mfa", "compliantDevice", "approvedApplication", "compliantApplication"]})
        ),
        Grant::Controls {
            operator: GrantOperator::All,
            controls: vec![
                GrantControl::Mfa,
                GrantControl::CompliantDevice,
                GrantControl::ApprovedApp,
                GrantControl::AppProtection
            ],
            auth_context: None,
        }
    );
    assert!(matches!(
        grant(
            json!({"operator": "OR", "builtInControls": ["compliantDevice", "compliantApplication"]})
        ),
        Grant::Controls {
            operator: GrantOperator::Any,
            ..
        }
    ));
    // Graph's annotation beside a null authenticationStrength is not a control.
    grant(
        json!({"builtInControls": ["mfa"], "authenticationStrength@odata.context": "https://graph.microsoft.com/v1.0/$metadata#x", "authenticationStrength": null}),
    );
}

#[test]
fn grant_controls_the_gateway_cannot_check_refuse() {
    for (g, needle) in [
        (
            json!({"builtInControls": ["mfa", "domainJoinedDevice"]}),
            "domainJoinedDevice",
        ),
        (
            json!({"operator": "OR", "builtInControls": ["mfa", "domainJoinedDevice"]}),
            "domainJoinedDevice",
        ),
        (
            json!({"builtInControls": ["passwordChange", "mfa"]}),
            "passwordChange",
        ),
        (
            json!({"builtInControls": ["riskRemediation"]}),
            "riskRemediation",
        ),
        (json!({"builtInControls": ["verifiedID"]}), "verifiedID"),
        (
            json!({"builtInControls": ["unknownFutureValue"]}),
            "unknownFutureValue",
        ),
        (
            json!({"builtInControls": [], "customAuthenticationFactors": ["duo"]}),
            "customAuthenticationFactors",
        ),
        (
            json!({"builtInControls": ["mfa"], "termsOfUse": ["ce580154-086a-40fd-91df-8a60abac81a0"]}),
            "termsOfUse",
        ),
        (
            json!({"builtInControls": [], "authenticationStrength": {"id": "00000000-0000-0000-0000-000000000002", "displayName": "Multifactor authentication"}}),
            "authenticationStrength",
        ),
        (
            json!({"operator": "XOR", "builtInControls": ["mfa", "compliantDevice"]}),
            "XOR",
        ),
        (
            json!({"builtInControls": ["block", "mfa"]}),
            "block combined",
        ),
    ] {
        refuses(json!({"grantControls": g}), needle);
    }
    let mut c = cx();
    c.has_approved_apps = false;
    let v = with(json!({"grantControls": {"builtInControls": ["approvedApplication"]}}));
    assert!(
        matches!(run(v, &c), Outcome::Refused { ref reasons, .. } if reasons[0].contains("[approved_apps]"))
    );
}

#[test]
fn no_grant() {
    let mut v = base();
    v["grantControls"] = Value::Null;
    assert!(skipped(v.clone()).contains("requires nothing"));
    v["sessionControls"] =
        json!({"signInFrequency": {"isEnabled": true, "type": "hours", "value": 4}});
    assert!(refused(v.clone())[0].contains("session-only"));
    v["sessionControls"] =
        json!({"cloudAppSecurity": {"isEnabled": true, "cloudAppSecurityType": "monitorOnly"}});
    assert!(refused(v).iter().any(|r| r.contains("cloudAppSecurity")));
}

#[test]
fn sign_in_frequency() {
    let sif = |s: Value| imported(with(json!({"sessionControls": {"signInFrequency": s}})));
    assert_eq!(
        sif(json!({"isEnabled": true, "type": "hours", "value": 4}))
            .0
            .sign_in_frequency,
        Some(Duration::from_secs(4 * 3600))
    );
    assert_eq!(
        sif(
            json!({"isEnabled": true, "type": "days", "value": 7, "frequencyInterval": "timeBased",
        "authenticationType": "primaryAndSecondaryAuthentication"})
        )
        .0
        .sign_in_frequency,
        Some(Duration::from_secs(7 * 86_400))
    );
    assert_eq!(
        sif(json!({"isEnabled": false, "type": "days", "value": 7}))
            .0
            .sign_in_frequency,
        None
    );
    let (p, notes) = sif(
        json!({"isEnabled": true, "type": null, "value": null, "frequencyInterval": "everyTime"}),
    );
    assert_eq!(p.sign_in_frequency, Some(Duration::from_secs(300)));
    assert!(notes.iter().any(|n| n.contains("everyTime")));
    for (s, needle) in [
        (
            json!({"isEnabled": true, "type": "hours", "value": 0}),
            "value",
        ),
        (
            json!({"isEnabled": true, "type": "hours", "value": -3}),
            "value",
        ),
        (
            json!({"isEnabled": true, "type": "weeks", "value": 1}),
            "weeks",
        ),
        (json!({"isEnabled": true, "type": "hours"}), "value"),
        (
            json!({"isEnabled": true, "type": "hours", "value": 1, "authenticationType": "secondaryAuthentication"}),
            "secondaryAuthentication",
        ),
        (
            json!({"isEnabled": true, "frequencyInterval": "sometimes"}),
            "sometimes",
        ),
    ] {
        refuses(json!({"sessionControls": {"signInFrequency": s}}), needle);
    }
}

#[test]
fn other_session_controls_are_noted_or_refused() {
    let (_, notes) = imported(with(json!({"sessionControls": {
        "persistentBrowser": {"isEnabled": true, "mode": "never"},
        "applicationEnforcedRestrictions": {"isEnabled": true},
        "disableResilienceDefaults": true,
        "cloudAppSecurity": null}})));
    assert_eq!(notes.len(), 3, "{notes:?}");
    refuses(
        json!({"sessionControls": {"cloudAppSecurity": {"isEnabled": true, "cloudAppSecurityType": "blockDownloads"}}}),
        "cloudAppSecurity",
    );
    refuses(
        json!({"sessionControls": {"secureSignInSession": {"isEnabled": true}}}),
        "secureSignInSession",
    );
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
