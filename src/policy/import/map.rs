//! One Entra policy -> one `[[policies]]` entry, or the reasons it cannot be one.
//!
//! Every condition narrows where a policy applies, so dropping an *include* condition the
//! gateway cannot evaluate makes the policy apply more widely, and dropping an *exclude*
//! one makes it apply to people or requests Entra spares. Either way the result is a
//! different policy; with a block grant, a dropped exclusion can lock out a break-glass
//! account. So the rule is: refuse whatever cannot be evaluated, include or exclude, and
//! accept a difference only where it is stricter *and* the excluded thing provably never
//! reaches the gateway or cannot be known at all (each such case leaves a note in the
//! output). docs/policies.md, "Importing Entra policies", is the table of every case.

use std::collections::BTreeMap;

use serde_json::Value;

use super::entra::{self, List, unknown_keys};
use super::{Context, Imported, Outcome};
use crate::config::{Platform, PolicyConfig, PolicyMode, Remediation};

use super::{controls, locations, targets};

/// Collects, for one policy, why it cannot be imported, why it needs not be, and what a
/// reviewer should read.
#[derive(Debug, Default)]
pub(crate) struct Findings {
    refusals: Vec<String>,
    skip: Option<String>,
    notes: Vec<String>,
}

impl Findings {
    pub(crate) fn refuse(&mut self, reason: impl Into<String>) {
        self.refusals.push(reason.into());
    }

    /// The first reason wins: it is the one a reader needs.
    pub(crate) fn skip(&mut self, reason: impl Into<String>) {
        if self.skip.is_none() {
            self.skip = Some(reason.into());
        }
    }

    /// How many refusals so far: a skip is only provable when the values it rests on were
    /// all understood, so callers compare this before and after reading them.
    pub(crate) fn refused(&self) -> usize {
        self.refusals.len()
    }

    pub(crate) fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    /// Unknown properties of an object: a property Graph added later is a condition or a
    /// control accessgate knows nothing about.
    pub(crate) fn unknown(&mut self, what: &str, other: &entra::Other) {
        for k in unknown_keys(other) {
            self.refuse(format!("{what}.{k}: not known to accessgate"));
        }
    }
}

/// Map every policy of a Graph page (or several), in order, with names made unique.
pub fn import(items: &[Value], cx: &Context) -> Vec<Outcome> {
    let mut out: Vec<Outcome> = items
        .iter()
        .enumerate()
        .map(|(i, v)| one(i, v, cx))
        .collect();
    let mut taken: Vec<String> = Vec::new();
    for o in &mut out {
        if let Outcome::Imported(p) = o {
            let name = unique(&base_name(&p.display_name, &p.entra_id), &taken);
            taken.push(name.clone());
            p.policy.name = name;
        }
    }
    out
}

fn one(index: usize, raw: &Value, cx: &Context) -> Outcome {
    let text = |key: &str| raw.get(key).and_then(Value::as_str).unwrap_or_default();
    let (raw_id, raw_name) = (text("id").to_owned(), text("displayName").to_owned());
    let p: entra::Policy = match serde_json::from_value(raw.clone()) {
        Ok(p) => p,
        Err(e) => {
            return Outcome::Refused {
                entra_id: raw_id,
                display_name: raw_name,
                reasons: vec![format!(
                    "value[{index}] is not a conditionalAccessPolicy: {e}"
                )],
            };
        }
    };
    let mut f = Findings::default();
    let entra_id =
        p.id.clone()
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| {
                f.refuse(format!("value[{index}] has no id"));
                String::new()
            });
    let display_name = p.display_name.clone().unwrap_or_default();
    let policy = policy(&p, cx, &mut f);
    if let Some(reason) = f.skip {
        // A policy that reaches no request the gateway serves is left out even when it
        // also uses something unsupported: leaving it out loses nothing.
        return Outcome::Skipped {
            entra_id,
            display_name,
            reason,
        };
    }
    if !f.refusals.is_empty() {
        return Outcome::Refused {
            entra_id,
            display_name,
            reasons: f.refusals,
        };
    }
    Outcome::Imported(Box::new(Imported {
        entra_id,
        display_name,
        policy,
        notes: f.notes,
    }))
}

fn policy(p: &entra::Policy, cx: &Context, f: &mut Findings) -> PolicyConfig {
    let mode = match p.state.as_deref() {
        Some("enabled") => PolicyMode::Enabled,
        Some("disabled") => PolicyMode::Disabled,
        Some("enabledForReportingButNotEnforced") => PolicyMode::ReportOnly,
        Some(other) => {
            f.refuse(format!("state {other:?}: not a known policy state"));
            PolicyMode::Disabled
        }
        None => {
            f.refuse("state: missing");
            PolicyMode::Disabled
        }
    };
    let empty = entra::Conditions::default();
    let c = p.conditions.as_ref().unwrap_or(&empty);
    unsupported_conditions(c, f);
    let (include_users, include_groups, exclude_users, exclude_groups) =
        targets::users(c.users.as_ref(), f);
    let resources = targets::applications(c.applications.as_ref(), cx, f);
    client_app_types(&c.client_app_types, f);
    let platforms = platforms(c.platforms.as_ref(), f);
    let locations = c
        .locations
        .as_ref()
        .map(|l| locations::locations(l, cx, f))
        .unwrap_or_default();
    let before = f.refused();
    let sign_in_frequency = controls::session(p.session_controls.as_ref(), f);
    // A session control that was refused still demands something of the caller.
    let session_demands = sign_in_frequency.is_some() || f.refused() > before;
    let grant = controls::grant(p.grant_controls.as_ref(), cx, session_demands, f);
    PolicyConfig {
        name: String::new(),
        mode,
        resources,
        include_users,
        include_groups,
        exclude_users,
        exclude_groups,
        client_apps: Vec::new(),
        platforms,
        locations,
        grant,
        sign_in_frequency,
        remediation: Remediation::default(),
    }
}

/// Conditions accessgate has no facts for: any value that says something refuses.
fn unsupported_conditions(c: &entra::Conditions, f: &mut Findings) {
    for (key, list) in [
        ("signInRiskLevels", &c.sign_in_risk_levels),
        ("userRiskLevels", &c.user_risk_levels),
        (
            "servicePrincipalRiskLevels",
            &c.service_principal_risk_levels,
        ),
    ] {
        if let Some(l) = list.as_ref().filter(|l| !l.is_empty()) {
            f.refuse(format!(
                "conditions.{key} {l:?}: Entra ID Protection risk is not visible to the gateway"
            ));
        }
    }
    let raw: [(&str, &Option<Value>, &str); 4] = [
        (
            "insiderRiskLevels",
            &c.insider_risk_levels,
            "insider risk (Purview) is not visible to the gateway",
        ),
        (
            "devices",
            &c.devices,
            "device filters and device states need device attributes the gateway does not have",
        ),
        (
            "authenticationFlows",
            &c.authentication_flows,
            "how the token was obtained (device code, transfer) is not visible in it",
        ),
        (
            "clientApplications",
            &c.client_applications,
            "workload-identity policies select service principals by object id, which the gateway does not know (it sees the client app id)",
        ),
    ];
    for (key, value, why) in raw {
        if value.as_ref().is_some_and(entra::meaningful) {
            f.refuse(format!("conditions.{key}: {why}"));
        }
    }
    f.unknown("conditions", &c.other);
}

/// 8-4-4-4-12 hex digits.
pub(crate) fn is_guid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

pub(crate) fn items(list: &List) -> &[String] {
    list.as_deref().unwrap_or_default()
}

/// `clientAppTypes`. Every request the gateway accepts carries an OAuth bearer token, so
/// it only ever sees "modern authentication" clients; legacy protocols (Exchange
/// ActiveSync, IMAP/POP/SMTP basic auth: `exchangeActiveSync`, `easSupported`, `other`)
/// never reach it. Whether the token was obtained in a browser or by a native app is not
/// in the token, so `browser` and `mobileAppsAndDesktopClients` can only be honoured
/// together (= every modern client).
fn client_app_types(list: &List, f: &mut Findings) {
    let v = items(list);
    if v.is_empty() || v.iter().any(|t| t == "all") {
        return;
    }
    let before = f.refused();
    let mut browser = false;
    let mut apps = false;
    let mut legacy = Vec::new();
    for t in v {
        match t.as_str() {
            "browser" => browser = true,
            "mobileAppsAndDesktopClients" => apps = true,
            "exchangeActiveSync" | "easSupported" | "other" => legacy.push(t.as_str()),
            _ => f.refuse(format!(
                "conditions.clientAppTypes {t:?}: not a known client app type"
            )),
        }
    }
    match (browser, apps) {
        (true, true) => {
            if !legacy.is_empty() {
                f.note(format!(
                    "clientAppTypes {} (legacy authentication) never reach the gateway, which accepts bearer tokens only",
                    legacy.join(", ")
                ));
            }
        }
        (false, false) if f.refused() > before => {}
        (false, false) => f.skip(format!(
            "targets only legacy authentication clients (clientAppTypes {}), which the gateway never accepts: every request needs a bearer token",
            legacy.join(", ")
        )),
        (true, false) | (false, true) => f.refuse(format!(
            "conditions.clientAppTypes {v:?}: a bearer token does not say whether it was obtained in a browser or by a mobile or desktop app, so the gateway can apply only both or neither"
        )),
    }
}

const ALL_PLATFORMS: [Platform; 5] = [
    Platform::Ios,
    Platform::Android,
    Platform::Windows,
    Platform::Macos,
    Platform::Linux,
];

/// Graph's platform names; `windowsPhone` is its own case (see [`platforms`]).
fn platform(name: &str) -> Option<Platform> {
    match name {
        "android" => Some(Platform::Android),
        "iOS" => Some(Platform::Ios),
        "windows" => Some(Platform::Windows),
        "macOS" => Some(Platform::Macos),
        "linux" => Some(Platform::Linux),
        _ => None,
    }
}

/// Entra include minus exclude, as the explicit list accessgate takes (it has no
/// exclude list; an empty list means any platform, so a condition that leaves no
/// platform must skip the policy, not produce `[]`).
fn platforms(p: Option<&entra::Platforms>, f: &mut Findings) -> Vec<Platform> {
    let Some(p) = p else {
        return Vec::new();
    };
    f.unknown("conditions.platforms", &p.other);
    let include = items(&p.include_platforms);
    let exclude = items(&p.exclude_platforms);
    if include.is_empty() && exclude.is_empty() {
        return Vec::new();
    }
    let before = f.refused();
    let mut set: Vec<Platform> = Vec::new();
    let mut include_all = include.is_empty();
    for v in include {
        match (v.as_str(), platform(v)) {
            ("all", _) => include_all = true,
            (_, Some(x)) => set.push(x),
            ("windowsPhone", None) => {
                if !include.iter().any(|i| i == "windows" || i == "all") {
                    f.refuse("conditions.platforms.includePlatforms windowsPhone: the gateway cannot tell Windows Phone from Windows");
                }
            }
            _ => f.refuse(format!(
                "conditions.platforms.includePlatforms {v:?}: not a known platform"
            )),
        }
    }
    if include_all {
        set = ALL_PLATFORMS.to_vec();
    }
    let mut excluded_any = false;
    for v in exclude {
        match (v.as_str(), platform(v)) {
            ("all", _) => {
                set.clear();
                excluded_any = true;
            }
            (_, Some(x)) => {
                set.retain(|s| *s != x);
                excluded_any = true;
            }
            ("windowsPhone", None) => f.note(
                "excludePlatforms windowsPhone: the gateway sees Windows Phone devices as windows, so they stay covered (stricter than Entra; the platform is retired)",
            ),
            _ => f.refuse(format!(
                "conditions.platforms.excludePlatforms {v:?}: not a known platform"
            )),
        }
    }
    if set.is_empty() && f.refused() == before {
        f.skip("conditions.platforms leaves no device platform: the policy applies to no device");
        return Vec::new();
    }
    if include_all && !excluded_any {
        return Vec::new();
    }
    ALL_PLATFORMS
        .into_iter()
        .filter(|x| set.contains(x))
        .collect()
}

/// `name` from `displayName`: lower-case ASCII letters and digits, other runs as `-`.
fn base_name(display_name: &str, id: &str) -> String {
    let mut s = String::with_capacity(display_name.len());
    for c in display_name.chars() {
        if c.is_ascii_alphanumeric() {
            s.push(c.to_ascii_lowercase());
        } else if !s.ends_with('-') && !s.is_empty() {
            s.push('-');
        }
    }
    let mut s: String = s.trim_end_matches('-').chars().take(60).collect();
    while s.ends_with('-') {
        s.pop();
    }
    if s.is_empty() {
        let short: String = id
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(8)
            .collect();
        s = format!("entra-{}", if short.is_empty() { "policy" } else { &short });
    }
    s
}

fn unique(base: &str, taken: &[String]) -> String {
    if !taken.iter().any(|t| t == base) {
        return base.to_owned();
    }
    (2..=taken.len() + 2)
        .map(|n| format!("{base}-{n}"))
        .find(|c| !taken.contains(c))
        .unwrap_or_else(|| base.to_owned())
}

/// For tests and the CLI: `--resource` pairs as a map with lower-case app ids.
pub fn resource_map<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> BTreeMap<String, String> {
    pairs
        .into_iter()
        .map(|(a, r)| (a.to_ascii_lowercase(), r.to_owned()))
        .collect()
}
