//! Who and what a policy targets: `conditions.users` and `conditions.applications`.
//!
//! User and group lists pass through as ids; Entra's keywords (`All`, `None`) map to
//! accessgate's, and anything else that is not a GUID refuses (read as an id, an unknown
//! keyword would match no one and quietly disable the policy). Applications are Entra app
//! ids; `--resource` says which of them are this gateway's resources.

use super::Context;
use super::entra::{self, List};
use super::map::{Findings, is_guid, items};
use crate::config::Selector;

type Users = (Selector, Vec<String>, Vec<String>, Vec<String>);

pub(crate) fn users(u: Option<&entra::Users>, f: &mut Findings) -> Users {
    let Some(u) = u else {
        f.skip("conditions.users is empty: the policy applies to no one");
        return (
            Selector::Some(Vec::new()),
            Vec::new(),
            Vec::new(),
            Vec::new(),
        );
    };
    for (key, list) in [
        ("includeRoles", &u.include_roles),
        ("excludeRoles", &u.exclude_roles),
    ] {
        if !items(list).is_empty() {
            f.refuse(format!(
                "conditions.users.{key}: directory role membership is not visible to the gateway"
            ));
        }
    }
    for (key, v) in [
        (
            "includeGuestsOrExternalUsers",
            &u.include_guests_or_external_users,
        ),
        (
            "excludeGuestsOrExternalUsers",
            &u.exclude_guests_or_external_users,
        ),
    ] {
        if v.as_ref().is_some_and(entra::meaningful) {
            f.refuse(format!(
                "conditions.users.{key}: the gateway cannot tell guests and external users from members"
            ));
        }
    }
    f.unknown("conditions.users", &u.other);

    let before = f.refused();
    let mut all = false;
    let mut include = Vec::new();
    for v in items(&u.include_users) {
        match v.as_str() {
            "All" => all = true,
            "None" => {}
            _ => user_id(v, "includeUsers", &mut include, f),
        }
    }
    let mut exclude = Vec::new();
    for v in items(&u.exclude_users) {
        match v.as_str() {
            "All" => f.skip("conditions.users.excludeUsers is All: the policy applies to no one"),
            "None" => {}
            _ => user_id(v, "excludeUsers", &mut exclude, f),
        }
    }
    let include_groups = group_ids(&u.include_groups, "includeGroups", f);
    let exclude_groups = group_ids(&u.exclude_groups, "excludeGroups", f);
    if !all && include.is_empty() && include_groups.is_empty() && f.refused() == before {
        f.skip("conditions.users includes no user or group (None): the policy applies to no one");
    }
    let include_users = if all {
        Selector::All
    } else {
        Selector::Some(include)
    };
    (include_users, include_groups, exclude, exclude_groups)
}

fn user_id(v: &str, key: &str, out: &mut Vec<String>, f: &mut Findings) {
    if v == "GuestsOrExternalUsers" {
        f.refuse(format!(
            "conditions.users.{key} GuestsOrExternalUsers: the gateway cannot tell guests and external users from members"
        ));
    } else if is_guid(v) {
        if !out.contains(&v.to_owned()) {
            out.push(v.to_owned());
        }
    } else {
        f.refuse(format!(
            "conditions.users.{key} {v:?}: neither a user id nor All / None"
        ));
    }
}

fn group_ids(list: &List, key: &str, f: &mut Findings) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for v in items(list) {
        if !is_guid(v) {
            f.refuse(format!("conditions.users.{key} {v:?}: not a group id"));
        } else if !out.contains(v) {
            out.push(v.clone());
        }
    }
    out
}

/// Microsoft's own application sets: never one of the gateway's resources unless mapped.
const MICROSOFT_SETS: [&str; 2] = ["Office365", "MicrosoftAdminPortals"];

pub(crate) fn applications(
    a: Option<&entra::Applications>,
    cx: &Context,
    f: &mut Findings,
) -> Selector {
    let none = Selector::Some(Vec::new());
    let Some(a) = a else {
        f.skip("conditions.applications is empty: the policy targets no resource");
        return none;
    };
    if !items(&a.include_user_actions).is_empty() {
        f.refuse(format!(
            "conditions.applications.includeUserActions {:?}: user actions (registering security info or devices) never pass through the gateway",
            items(&a.include_user_actions)
        ));
    }
    if !items(&a.include_authentication_context_class_references).is_empty() {
        f.refuse(format!(
            "conditions.applications.includeAuthenticationContextClassReferences {:?}: a policy that applies when an app asks for an authentication context cannot be evaluated by the gateway (use grant auth_context in a hand-written policy)",
            items(&a.include_authentication_context_class_references)
        ));
    }
    if a.application_filter.as_ref().is_some_and(entra::meaningful) {
        f.refuse("conditions.applications.applicationFilter: custom security attributes of applications are not visible to the gateway");
    }
    f.unknown("conditions.applications", &a.other);

    let mapped = |v: &str| cx.resources.get(&v.to_ascii_lowercase()).cloned();
    let before = f.refused();
    let mut all = false;
    let mut include: Vec<String> = Vec::new();
    let mut unmapped: Vec<&str> = Vec::new();
    for v in items(&a.include_applications) {
        if let Some(r) = mapped(v) {
            if !include.contains(&r) {
                include.push(r);
            }
        } else if v == "All" {
            all = true;
        } else if v == "None" {
        } else if is_guid(v) || MICROSOFT_SETS.contains(&v.as_str()) {
            unmapped.push(v);
        } else {
            f.refuse(format!(
                "conditions.applications.includeApplications {v:?}: neither an application id nor All / None / Office365 / MicrosoftAdminPortals"
            ));
        }
    }
    let mut exclude: Vec<String> = Vec::new();
    for v in items(&a.exclude_applications) {
        if let Some(r) = mapped(v) {
            if !exclude.contains(&r) {
                exclude.push(r);
            }
        } else if all && v != "None" {
            // Include All: an unmapped excluded app is, as far as the gateway knows, not
            // one of its resources, so the exclusion changes nothing here. If it is one of
            // ours after all, the policy covers it: stricter, never weaker.
            f.note(format!(
                "excludeApplications {v:?} is not mapped with --resource: taken as not one of this gateway's resources, so the policy covers all of them (if it is one, map it: --resource {v}=RESOURCE)"
            ));
        }
    }
    if !all && include.is_empty() {
        if f.refused() > before {
            return none;
        }
        f.skip(if unmapped.is_empty() {
            "conditions.applications includes no application: the policy targets no resource".to_owned()
        } else {
            format!(
                "targets only applications not mapped with --resource ({}): no resource of this gateway (map one with --resource APP_ID=RESOURCE if it is)",
                unmapped.join(", ")
            )
        });
        return none;
    }
    if !unmapped.is_empty() {
        f.note(format!(
            "includeApplications {} not mapped with --resource: not covered here",
            unmapped.join(", ")
        ));
    }
    if all && exclude.is_empty() {
        return Selector::All;
    }
    let base: Vec<String> = if all {
        f.note("Entra's \"All\" applications minus the excluded ones, spelled out: a route added later is not covered until you import again");
        let mut v: Vec<String> = Vec::new();
        for r in &cx.route_resources {
            if !v.contains(r) {
                v.push(r.clone());
            }
        }
        v
    } else {
        include
    };
    let kept: Vec<String> = base.into_iter().filter(|r| !exclude.contains(r)).collect();
    if kept.is_empty() {
        f.skip("every resource it includes is excluded: the policy targets no resource");
    }
    Selector::Some(kept)
}
