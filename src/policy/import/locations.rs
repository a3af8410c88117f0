//! Named locations and `conditions.locations` -> client IP CIDRs.
//!
//! Only IP named locations can be evaluated: the gateway knows the client IP, not its
//! country (that needs a GeoIP database, and the GPS lookup of the Authenticator app is
//! never visible to it). Ranges are masked to their network: Graph's own examples carry
//! host bits (`2001:4898:80e8:7:d92a:7695:fda1:9d62/48`), which strict parsers refuse.

use std::collections::BTreeMap;

use ipnet::IpNet;
use serde_json::Value;

use super::Context;
use super::entra;
use super::map::Findings;
use crate::config::Locations;

/// The id Graph uses for the legacy "MFA trusted IPs" of the per-user MFA service
/// settings. Those ranges are not a named location and Graph's namedLocations does not
/// list them, so they can never be resolved here.
pub const LEGACY_MFA_TRUSTED_IPS: &str = "00000000-0000-0000-0000-000000000000";

/// One named location, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub display_name: String,
    pub kind: LocationKind,
}

/// What a named location is, as far as the gateway can use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocationKind {
    Ip {
        trusted: bool,
        cidrs: Vec<IpNet>,
    },
    Country,
    /// Unknown type or a range that is not a CIDR: policies naming it are refused.
    Invalid(String),
}

/// Named locations from Graph pages, by lower-case id. A location without an id, or an id
/// seen twice, is an error: a policy could otherwise resolve to the wrong ranges.
pub fn named_locations(items: &[Value]) -> Result<BTreeMap<String, Location>, String> {
    let mut out = BTreeMap::new();
    for (i, raw) in items.iter().enumerate() {
        let l: entra::NamedLocation = serde_json::from_value(raw.clone())
            .map_err(|e| format!("value[{i}] is not a namedLocation: {e}"))?;
        let id =
            l.id.as_deref()
                .filter(|s| !s.is_empty())
                .ok_or_else(|| format!("value[{i}] has no id"))?
                .to_ascii_lowercase();
        let location = Location {
            display_name: l.display_name.clone().unwrap_or_default(),
            kind: kind(&l),
        };
        if out.insert(id.clone(), location).is_some() {
            return Err(format!("value[{i}]: named location {id} appears twice"));
        }
    }
    Ok(out)
}

fn kind(l: &entra::NamedLocation) -> LocationKind {
    let t = l.odata_type.as_deref().unwrap_or_default();
    let ip = t.ends_with("ipNamedLocation") || (t.is_empty() && l.ip_ranges.is_some());
    let country =
        t.ends_with("countryNamedLocation") || (t.is_empty() && l.countries_and_regions.is_some());
    if country && !ip {
        return LocationKind::Country;
    }
    if !ip {
        return LocationKind::Invalid(if t.is_empty() {
            "neither an IP nor a country named location".to_owned()
        } else {
            format!("unknown named location type {t:?}")
        });
    }
    let mut cidrs: Vec<IpNet> = Vec::new();
    for (i, r) in l
        .ip_ranges
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let text = r.cidr_address.as_deref().unwrap_or_default().trim();
        match cidr(text) {
            Some(n) if !cidrs.contains(&n) => cidrs.push(n),
            Some(_) => {}
            None => return LocationKind::Invalid(format!("ipRanges[{i}] {text:?} is not a CIDR")),
        }
    }
    LocationKind::Ip {
        trusted: l.is_trusted == Some(true),
        cidrs,
    }
}

/// Lenient CIDR: host bits masked off; a bare address is a host range.
pub(crate) fn cidr(text: &str) -> Option<IpNet> {
    if let Ok(n) = text.parse::<IpNet>() {
        return Some(n.trunc());
    }
    text.parse::<std::net::IpAddr>().ok().map(IpNet::from)
}

/// `conditions.locations`.
pub(crate) fn locations(l: &entra::Locations, cx: &Context, f: &mut Findings) -> Locations {
    f.unknown("conditions.locations", &l.other);
    let include = l.include_locations.as_deref().unwrap_or_default();
    let exclude = l.exclude_locations.as_deref().unwrap_or_default();
    let mut out = Locations::default();

    // An empty include (Entra requires one; older exports may lack it) is taken as All:
    // applying more widely is the stricter reading.
    if !include.is_empty() && !include.iter().any(|v| v == "All") {
        let before = f.refused();
        for v in include {
            if v == "AllTrusted" {
                f.refuse("conditions.locations.includeLocations AllTrusted: Entra counts the legacy MFA trusted IPs as trusted too, and Graph does not list them, so the gateway would apply the policy in fewer places");
            } else if v == LEGACY_MFA_TRUSTED_IPS {
                f.refuse("conditions.locations.includeLocations 00000000-0000-0000-0000-000000000000: the legacy MFA trusted IPs are not listed by Graph");
            } else if let Some(cidrs) = resolve(v, "includeLocations", cx, f) {
                extend(&mut out.include, cidrs);
            }
        }
        if out.include.is_empty() && f.refused() == before {
            f.skip("conditions.locations includes only named locations without IP ranges: the policy applies to no client IP");
        }
    }
    for v in exclude {
        if v == "All" {
            f.skip("conditions.locations excludes All: the policy applies nowhere");
        } else if v == "AllTrusted" {
            let Some(all) = &cx.locations else {
                f.refuse("conditions.locations.excludeLocations AllTrusted: pass --named-locations (GET /identity/conditionalAccess/namedLocations) to resolve it");
                continue;
            };
            for l in all.values() {
                if let LocationKind::Ip {
                    trusted: true,
                    cidrs,
                } = &l.kind
                {
                    extend(&mut out.exclude, cidrs);
                }
            }
            f.note("excludeLocations AllTrusted: the trusted IP named locations are excluded; the legacy MFA trusted IPs (not in Graph) are not, so requests from them stay covered (stricter than Entra)");
        } else if v == LEGACY_MFA_TRUSTED_IPS {
            f.note("excludeLocations 00000000-0000-0000-0000-000000000000 (legacy MFA trusted IPs) is not in Graph: requests from those IPs stay covered (stricter than Entra)");
        } else if let Some(cidrs) = resolve(v, "excludeLocations", cx, f) {
            extend(&mut out.exclude, cidrs);
        }
    }
    out
}

fn extend(into: &mut Vec<IpNet>, cidrs: &[IpNet]) {
    for n in cidrs {
        if !into.contains(n) {
            into.push(*n);
        }
    }
}

fn resolve<'a>(id: &str, key: &str, cx: &'a Context, f: &mut Findings) -> Option<&'a [IpNet]> {
    let key = format!("conditions.locations.{key} {id}");
    let Some(all) = &cx.locations else {
        f.refuse(format!(
            "{key}: pass --named-locations (GET /identity/conditionalAccess/namedLocations) to resolve it"
        ));
        return None;
    };
    let Some(l) = all.get(&id.to_ascii_lowercase()) else {
        f.refuse(format!("{key}: not among the named locations given"));
        return None;
    };
    match &l.kind {
        LocationKind::Ip { cidrs, .. } => Some(cidrs),
        LocationKind::Country => {
            f.refuse(format!(
                "{key} ({:?}): a country named location; the gateway knows the client IP, not its country",
                l.display_name
            ));
            None
        }
        LocationKind::Invalid(why) => {
            f.refuse(format!("{key} ({:?}): {why}", l.display_name));
            None
        }
    }
}
