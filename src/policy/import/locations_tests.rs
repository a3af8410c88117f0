//! Named locations and `conditions.locations`: masked CIDRs, trusted locations, refusals.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::test_support::*;
use super::{Location, LocationKind, Outcome, named_locations};

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
