//! Graph records -> the records of `state.json` (the engine's file model), exactly as
//! DESIGN.md "Policy state from Microsoft Graph" maps them. Pure functions: no I/O.
//!
//! Whatever Graph says that the engine cannot take as is becomes the stricter reading:
//! an unknown `complianceState` is `unknown` (not compliant), an unknown flag reason is a
//! flag, an unreadable minimum version is one nothing meets, an unreadable offline period
//! is zero. Several registrations of one user and app without a device id become one that
//! passes only if each of them does, because the engine matches such a registration by
//! user and app alone.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use super::GraphError;
use super::wire;
use crate::config::GraphApp;
use crate::config::duration::parse_iso8601;
use crate::policy::values::parse_rfc3339;
use crate::policy::{RawAppPolicy, RawDevice, RawRegistration, RawUser, Version};

pub type S = Cow<'static, str>;

/// A minimum version nothing meets (an unreadable minimum, fail closed).
const UNMEETABLE_VERSION: &str = "4294967295";

/// A user as far as Graph's user object says (groups are resolved separately).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphUserRec {
    pub account_enabled: bool,
    pub licensed: bool,
    /// RFC 3339, as Graph gave it.
    pub revoke_sessions_after: Option<String>,
}

/// What the mapping left out or changed, for the round's log line.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MapStats {
    /// Bundle / package ids with no `[[graph.apps]]` entry, and how often each was seen.
    pub unmapped_apps: BTreeMap<String, usize>,
    pub devices_without_entra_id: usize,
    pub devices_merged: usize,
    pub registrations_without_user: usize,
    pub registrations_merged: usize,
    /// Assignment targets other than (exclusion) group targets: not expressible, ignored.
    pub other_targets: usize,
    /// Values Graph sent that the engine does not know, read the strict way.
    pub strict_readings: usize,
}

/// Bundle / package id -> client ids (`[[graph.apps]]`; many-to-many).
#[derive(Debug, Default)]
pub struct AppTable {
    ios: HashMap<String, Vec<String>>,
    android: HashMap<String, Vec<String>>,
}

/// The platform an identifier names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppPlatform {
    Ios,
    Android,
}

impl AppPlatform {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ios => "ios",
            Self::Android => "android",
        }
    }
}

impl AppTable {
    pub fn new(apps: &[GraphApp]) -> Self {
        let mut t = Self::default();
        for a in apps {
            for (ids, map) in [
                (&a.ios_bundle_ids, &mut t.ios),
                (&a.android_package_ids, &mut t.android),
            ] {
                for id in ids {
                    let v = map.entry(id.to_ascii_lowercase()).or_default();
                    let c = a.client_id.to_ascii_lowercase();
                    if !v.contains(&c) {
                        v.push(c);
                    }
                }
            }
        }
        t
    }

    /// The identifier's platform and id (`bundleId` / `packageId`), by its `@odata.type`
    /// or, when that is missing, by which id it carries.
    pub fn identify(ident: &wire::AppIdentifier) -> Option<(AppPlatform, &str)> {
        let ty = ident
            .odata_type
            .as_deref()
            .unwrap_or("")
            .to_ascii_lowercase();
        match (&ident.bundle_id, &ident.package_id) {
            (Some(b), _) if !ty.contains("android") => Some((AppPlatform::Ios, b)),
            (_, Some(p)) if !ty.contains("ios") => Some((AppPlatform::Android, p)),
            _ => None,
        }
    }

    /// Client ids for an identifier; empty when unmapped (counted in `stats`).
    pub fn client_ids(
        &self,
        ident: &wire::AppIdentifier,
        stats: &mut MapStats,
    ) -> (Option<AppPlatform>, &[String]) {
        let Some((platform, id)) = Self::identify(ident) else {
            *stats
                .unmapped_apps
                .entry("(no bundleId / packageId)".into())
                .or_default() += 1;
            return (None, &[]);
        };
        let map = match platform {
            AppPlatform::Ios => &self.ios,
            AppPlatform::Android => &self.android,
        };
        match map.get(&id.to_ascii_lowercase()) {
            Some(v) => (Some(platform), v),
            None => {
                let key = format!("{}:{id}", platform.as_str());
                *stats.unmapped_apps.entry(key).or_default() += 1;
                (Some(platform), &[])
            }
        }
    }
}

/// A Graph timestamp for state: `None` when absent, empty, or the `0001-01-01` sentinel;
/// `Err` (naming the value) when present but not RFC 3339.
pub fn timestamp(v: Option<&str>) -> Result<Option<String>, String> {
    match v.map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) if s.starts_with("0001-01-01") => Ok(None),
        Some(s) => match parse_rfc3339(s) {
            Some(_) => Ok(Some(s.to_owned())),
            None => Err(format!("{s:?} is not RFC 3339")),
        },
    }
}

/// Unix seconds as RFC 3339 (UTC).
pub fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".into())
}

/// `licensed` = an `assignedPlans` entry whose `servicePlanId` is accepted and whose
/// `capabilityStatus` is `Enabled` or `Warning` (grace period, still usable).
pub fn licensed(plans: &[wire::AssignedPlan], accepted: &[String]) -> bool {
    plans.iter().any(|p| {
        p.service_plan_id
            .as_deref()
            .is_some_and(|id| accepted.iter().any(|a| a.eq_ignore_ascii_case(id)))
            && matches!(p.capability_status.as_deref(), Some("Enabled" | "Warning"))
    })
}

/// Apply one `users/delta` record. A record without a field keeps what was known (delta
/// rounds may send only what changed); a new user without `accountEnabled` is disabled.
pub fn apply_user(
    users: &mut BTreeMap<String, GraphUserRec>,
    u: &wire::GraphUser,
    accepted_plans: &[String],
) -> Result<(), GraphError> {
    let id = u.id.to_ascii_lowercase();
    if id.is_empty() {
        return Err(GraphError::Malformed(
            "users: a record has an empty id".into(),
        ));
    }
    if u.removed.is_some() {
        users.remove(&id);
        return Ok(());
    }
    let revoke = match &u.sign_in_sessions_valid_from_date_time {
        Some(s) => Some(timestamp(Some(s)).map_err(|e| {
            GraphError::Malformed(format!("users: {id}: signInSessionsValidFromDateTime {e}"))
        })?),
        None => None,
    };
    let rec = users.entry(id).or_insert(GraphUserRec {
        account_enabled: false,
        licensed: false,
        revoke_sessions_after: None,
    });
    if let Some(e) = u.account_enabled {
        rec.account_enabled = e;
    }
    if let Some(p) = &u.assigned_plans {
        rec.licensed = licensed(p, accepted_plans);
    }
    if let Some(r) = revoke {
        rec.revoke_sessions_after = r;
    }
    Ok(())
}

/// Users with the resolved groups, in state form.
pub fn state_users(
    users: &BTreeMap<String, GraphUserRec>,
    groups: &HashMap<String, Vec<String>>,
) -> BTreeMap<String, RawUser<'static>> {
    users
        .iter()
        .map(|(id, u)| {
            let g = groups
                .get(id)
                .map(|v| v.iter().map(|g| Cow::Owned(g.clone())).collect())
                .unwrap_or_default();
            (
                id.clone(),
                RawUser {
                    id: Cow::Owned(id.clone()),
                    account_enabled: u.account_enabled,
                    licensed: u.licensed,
                    groups: g,
                    revoke_sessions_after: u.revoke_sessions_after.clone().map(Cow::Owned),
                },
            )
        })
        .collect()
}

const COMPLIANCE: [&str; 7] = [
    "unknown",
    "compliant",
    "noncompliant",
    "conflict",
    "error",
    "inGracePeriod",
    "configManager",
];

fn is_compliant(state: &str) -> bool {
    matches!(state, "compliant" | "inGracePeriod")
}

/// A managed device keyed by its Entra device id (the token's `deviceid`). Devices Intune
/// knows but Entra does not (no or all-zero `azureADDeviceId`) cannot match a token.
pub fn device(
    d: &wire::ManagedDevice,
    stats: &mut MapStats,
) -> Option<(String, RawDevice<'static>)> {
    let id = d
        .azure_ad_device_id
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty() && s.bytes().any(|b| b != b'0' && b != b'-'))
        .map(str::to_ascii_lowercase);
    let Some(id) = id else {
        stats.devices_without_entra_id += 1;
        return None;
    };
    let state: &'static str = match d
        .compliance_state
        .as_deref()
        .and_then(|s| COMPLIANCE.iter().find(|c| **c == s))
    {
        Some(s) => s,
        None => {
            stats.strict_readings += 1;
            "unknown"
        }
    };
    Some((
        id.clone(),
        RawDevice {
            device_id: Cow::Owned(id),
            compliance_state: Cow::Borrowed(state),
            operating_system: d.operating_system.clone().map(Cow::Owned),
            os_version: d.os_version.clone().map(Cow::Owned),
            noncompliant_since: None,
            remediation: None,
        },
    ))
}

/// Two Intune records of one Entra device (re-enrolment): the failing one stands.
pub fn merge_device(
    into: &mut RawDevice<'static>,
    other: RawDevice<'static>,
    stats: &mut MapStats,
) {
    stats.devices_merged += 1;
    if is_compliant(&into.compliance_state) && !is_compliant(&other.compliance_state) {
        *into = other;
    }
}

fn min_version(v: Option<&str>, stats: &mut MapStats) -> Option<S> {
    match v.map(str::trim) {
        None | Some("") => None,
        Some(s) if Version::parse(s).is_some() => Some(Cow::Owned(s.to_owned())),
        Some(_) => {
            stats.strict_readings += 1;
            Some(Cow::Borrowed(UNMEETABLE_VERSION))
        }
    }
}

/// An app protection policy. Apps map through the table (unmapped ones left out);
/// group targets include, exclusion group targets exclude; other targets are ignored
/// (the engine cannot express "all users": leaving them out makes the policy narrower,
/// and a user no policy targets is refused `app_protection`, never let through).
pub fn app_policy(
    p: &wire::AppProtection,
    platform: AppPlatform,
    table: &AppTable,
    stats: &mut MapStats,
) -> RawAppPolicy<'static> {
    let mut apps: Vec<S> = Vec::new();
    for a in p.apps.iter().flatten() {
        if let Some(ident) = &a.mobile_app_identifier {
            for c in table.client_ids(ident, stats).1 {
                if !apps.iter().any(|x| x == c) {
                    apps.push(Cow::Owned(c.clone()));
                }
            }
        }
    }
    let (mut include, mut exclude): (Vec<S>, Vec<S>) = (Vec::new(), Vec::new());
    for t in p
        .assignments
        .iter()
        .flatten()
        .filter_map(|a| a.target.as_ref())
    {
        let ty = t.odata_type.as_deref().unwrap_or("");
        let gid = t.group_id.as_deref().map(str::to_ascii_lowercase);
        match (ty, gid) {
            ("#microsoft.graph.exclusionGroupAssignmentTarget", Some(g)) => {
                exclude.push(Cow::Owned(g))
            }
            ("#microsoft.graph.groupAssignmentTarget", Some(g)) => include.push(Cow::Owned(g)),
            _ => stats.other_targets += 1,
        }
    }
    let offline = p.period_offline_before_access_check.as_deref().map(|s| {
        if parse_iso8601(s).is_ok() {
            Cow::Owned(s.to_owned())
        } else {
            stats.strict_readings += 1;
            Cow::Borrowed("PT0S")
        }
    });
    RawAppPolicy {
        id: Cow::Owned(p.id.clone()),
        display_name: p.display_name.clone().map(Cow::Owned),
        platform: Cow::Borrowed(platform.as_str()),
        apps,
        include_groups: include,
        exclude_groups: exclude,
        period_offline_before_access_check: offline,
        pin_required: p.pin_required.unwrap_or(false),
        minimum_required_os_version: min_version(p.minimum_required_os_version.as_deref(), stats),
        minimum_required_app_version: min_version(p.minimum_required_app_version.as_deref(), stats),
    }
}

/// The key of a registration in state: user x app x device ("" = no device id), joined
/// by `|`. A `|` or `\` inside a part is escaped, so two registrations never share a key
/// (unescaped, user `u|c` on app `c` and user `u` on app `c` with device `c|` would be
/// merged into one and the second user's registration lost); ids Graph sends (GUIDs) have
/// neither, so their keys, also those saved in the ledger, are unchanged.
pub fn registration_key(user: &str, app: &str, device: &str) -> String {
    let mut k = String::with_capacity(user.len() + app.len() + device.len() + 2);
    for (i, part) in [user, app, device].into_iter().enumerate() {
        if i > 0 {
            k.push('|');
        }
        for c in part.chars() {
            if matches!(c, '|' | '\\') {
                k.push('\\');
            }
            k.push(c);
        }
    }
    k
}

/// One Graph registration -> one state registration per client id it maps to, keyed
/// by [`registration_key`]. Compliance is derived later ([`derive_compliance`]).
pub fn registrations(
    r: &wire::AppRegistration,
    table: &AppTable,
    stats: &mut MapStats,
) -> Vec<(String, RawRegistration<'static>)> {
    let Some(user) = r
        .user_id
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty())
    else {
        stats.registrations_without_user += 1;
        return Vec::new();
    };
    let Some(ident) = &r.app_identifier else {
        *stats
            .unmapped_apps
            .entry("(no appIdentifier)".into())
            .or_default() += 1;
        return Vec::new();
    };
    let (ident_platform, clients) = table.client_ids(ident, stats);
    if clients.is_empty() {
        return Vec::new();
    }
    let ty = r.odata_type.as_deref().unwrap_or("").to_ascii_lowercase();
    let platform = if ty.contains("iosmanagedappregistration") {
        Some(AppPlatform::Ios)
    } else if ty.contains("androidmanagedappregistration") {
        Some(AppPlatform::Android)
    } else {
        ident_platform
    };
    let device = r
        .azure_ad_device_id
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty() && s.bytes().any(|b| b != b'0' && b != b'-'))
        .map(str::to_ascii_lowercase);
    let mut flags: Vec<S> = Vec::new();
    for f in r.flagged_reasons.iter().flatten() {
        match f.as_str() {
            "none" => {}
            "rootedDevice" | "androidBootloaderUnlocked" | "androidFactoryRomModified" => {
                flags.push(Cow::Owned(f.clone()));
            }
            _ => {
                // A flag this engine does not know is still a flag.
                stats.strict_readings += 1;
                flags.push(Cow::Borrowed("rootedDevice"));
            }
        }
    }
    let last_sync = timestamp(r.last_sync_date_time.as_deref()).unwrap_or_else(|_| {
        stats.strict_readings += 1;
        None
    });
    let user = user.to_ascii_lowercase();
    clients
        .iter()
        .map(|c| {
            let key = registration_key(&user, c, device.as_deref().unwrap_or(""));
            (
                key,
                RawRegistration {
                    user_id: Cow::Owned(user.clone()),
                    app_id: Cow::Owned(c.clone()),
                    device_id: device.clone().map(Cow::Owned),
                    platform: platform.map(|p| Cow::Borrowed(p.as_str())),
                    application_version: r.application_version.clone().map(Cow::Owned),
                    platform_version: r.platform_version.clone().map(Cow::Owned),
                    flagged_reasons: flags.clone(),
                    last_sync_date_time: last_sync.clone().map(Cow::Owned),
                    compliance_state: Cow::Borrowed("compliant"),
                    noncompliant_since: None,
                    remediation: None,
                },
            )
        })
        .collect()
}

/// The lower of two versions; an unreadable or missing one is lowest (fails any minimum).
fn lower(a: &Option<S>, b: &Option<S>) -> Option<S> {
    match (
        a.as_deref().and_then(Version::parse),
        b.as_deref().and_then(Version::parse),
    ) {
        (Some(x), Some(y)) => {
            if x <= y {
                a.clone()
            } else {
                b.clone()
            }
        }
        _ => None,
    }
}

/// Two registrations of one user x app x device key: one that passes only if both do.
pub fn merge_registration(
    into: &mut RawRegistration<'static>,
    other: RawRegistration<'static>,
    stats: &mut MapStats,
) {
    stats.registrations_merged += 1;
    if into.platform != other.platform {
        // Unknown platform: every platform's policy applies (strictest).
        into.platform = None;
    }
    into.application_version = lower(&into.application_version, &other.application_version);
    into.platform_version = lower(&into.platform_version, &other.platform_version);
    for f in other.flagged_reasons {
        if !into.flagged_reasons.contains(&f) {
            into.flagged_reasons.push(f);
        }
    }
    into.last_sync_date_time = match (&into.last_sync_date_time, &other.last_sync_date_time) {
        (Some(a), Some(b)) => {
            if parse_rfc3339(a) <= parse_rfc3339(b) {
                Some(a.clone())
            } else {
                Some(b.clone())
            }
        }
        _ => None,
    };
}

/// The highest (app, OS) minimum versions of the policies targeting one app on one platform.
type Minimums = (Option<Version>, Option<Version>);

/// Graph has no registration compliance: a registration is noncompliant when it is
/// flagged, or its app or OS version is below the minimum of a policy that targets its
/// app on its platform (any platform when unknown). Check-in overdue is left to the engine
/// (it depends on the time of the request).
pub fn derive_compliance(
    regs: &mut BTreeMap<String, RawRegistration<'static>>,
    policies: &BTreeMap<String, RawAppPolicy<'static>>,
) {
    // (app, platform) -> (max min app version, max min os version)
    let mut mins: HashMap<(&str, &str), Minimums> = HashMap::new();
    for p in policies.values() {
        let app_min = p
            .minimum_required_app_version
            .as_deref()
            .and_then(Version::parse);
        let os_min = p
            .minimum_required_os_version
            .as_deref()
            .and_then(Version::parse);
        for a in &p.apps {
            let e = mins.entry((a.as_ref(), p.platform.as_ref())).or_default();
            e.0 = e.0.max(app_min);
            e.1 = e.1.max(os_min);
        }
    }
    for r in regs.values_mut() {
        let mut below = false;
        for ((app, platform), (app_min, os_min)) in &mins {
            if *app != r.app_id.as_ref() || r.platform.as_deref().is_some_and(|p| p != *platform) {
                continue;
            }
            let too_low = |min: &Option<Version>, v: &Option<S>| {
                min.is_some_and(|m| {
                    !v.as_deref()
                        .and_then(Version::parse)
                        .is_some_and(|v| v.at_least(&m))
                })
            };
            below |=
                too_low(app_min, &r.application_version) || too_low(os_min, &r.platform_version);
        }
        let failing = below || !r.flagged_reasons.is_empty();
        r.compliance_state = Cow::Borrowed(if failing { "noncompliant" } else { "compliant" });
    }
}

/// Is a state device failing (for the noncompliant-since ledger)?
pub fn device_failing(d: &RawDevice<'_>) -> bool {
    !is_compliant(&d.compliance_state)
}

/// Is a state registration failing?
pub fn registration_failing(r: &RawRegistration<'_>) -> bool {
    !is_compliant(&r.compliance_state)
}

#[cfg(test)]
#[path = "map_tests.rs"]
mod tests;
