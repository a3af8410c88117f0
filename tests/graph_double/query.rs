//! Reading a request: the route, the query options Graph honours (`$select`, `$top`,
//! `$expand`, `$filter` on groups/delta, `Prefer: odata.maxpagesize`) and the cursor
//! behind a `$skiptoken` / `$deltatoken`.

use std::collections::HashMap;

use http::HeaderMap;
use serde_json::json;

use super::faults::Collection;
use super::pages::Cursor;
use super::render::{self, Select};
use super::serve::State;

pub fn graph_error(status: u16, code: &str, message: &str) -> (u16, String) {
    let body = json!({"error": {"code": code, "message": message,
        "innerError": {"date": "2026-12-01T09:00:00", "request-id": "00000000-0000-0000-0000-000000000004"}}});
    (status, body.to_string())
}

/// `(version is beta, collection, resource id in the path, OData cast segment, sub-collection)`
pub fn route(path: &str) -> Option<(bool, Collection, Option<String>, Option<String>)> {
    let path = path.trim_end_matches('/');
    let (beta, rest) = if let Some(r) = path.strip_prefix("/v1.0/") {
        (false, r)
    } else if let Some(r) = path.strip_prefix("/beta/") {
        (true, r)
    } else {
        return None;
    };
    let seg: Vec<&str> = rest.split('/').collect();
    let decoded = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let r = match seg.as_slice() {
        ["users"] => (Collection::Users, None, None),
        ["users", "delta"] | ["users", "delta()"] => (Collection::UsersDelta, None, None),
        ["users", u, "transitiveMemberOf"] => {
            (Collection::UserTransitiveMemberOf, Some(decoded(u)), None)
        }
        ["users", u, "transitiveMemberOf", cast] => (
            Collection::UserTransitiveMemberOf,
            Some(decoded(u)),
            Some(cast.to_string()),
        ),
        ["groups", "delta"] | ["groups", "delta()"] => (Collection::GroupsDelta, None, None),
        ["groups", g, "members"] => (Collection::GroupMembers, Some(decoded(g)), None),
        ["groups", g, "members", cast] => (
            Collection::GroupMembers,
            Some(decoded(g)),
            Some(cast.to_string()),
        ),
        ["groups", g, "transitiveMembers"] => {
            (Collection::GroupTransitiveMembers, Some(decoded(g)), None)
        }
        ["groups", g, "transitiveMembers", cast] => (
            Collection::GroupTransitiveMembers,
            Some(decoded(g)),
            Some(cast.to_string()),
        ),
        ["deviceManagement", "managedDevices"] => (Collection::ManagedDevices, None, None),
        ["deviceAppManagement", "iosManagedAppProtections"] => {
            (Collection::IosManagedAppProtections, None, None)
        }
        ["deviceAppManagement", "androidManagedAppProtections"] => {
            (Collection::AndroidManagedAppProtections, None, None)
        }
        ["deviceAppManagement", "managedAppRegistrations"] => {
            (Collection::ManagedAppRegistrations, None, None)
        }
        _ => return None,
    };
    Some((beta, r.0, r.1, r.2))
}

pub fn query_params(query: Option<&str>) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let dec = |s: &str| {
            let s = s.replace('+', " ");
            percent_encoding::percent_decode_str(&s)
                .decode_utf8_lossy()
                .into_owned()
        };
        // Graph accepts `$select` and `select` alike, case-insensitively.
        let k = dec(k).to_ascii_lowercase();
        let k = k.strip_prefix('$').map(str::to_string).unwrap_or(k);
        out.insert(k, dec(v));
    }
    out
}

/// `$expand=apps,assignments($select=id,target)` -> (apps, assignments).
fn parse_expand(raw: Option<&String>) -> (bool, bool) {
    let Some(raw) = raw else {
        return (false, false);
    };
    let mut depth = 0;
    let mut names = vec![String::new()];
    for ch in raw.chars() {
        match ch {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => names.push(String::new()),
            c if depth == 0 => names.last_mut().map(|n| n.push(c)).unwrap_or(()),
            _ => {}
        }
    }
    let has = |x: &str| names.iter().any(|n| n.trim().eq_ignore_ascii_case(x));
    (has("apps"), has("assignments"))
}

/// `id eq 'a' or id eq 'b'` -> ids (the only filter groups/delta supports).
fn parse_id_filter(raw: &str) -> Option<Vec<String>> {
    raw.split(" or ")
        .map(|term| {
            let term = term.trim();
            let v = term.strip_prefix("id eq '")?.strip_suffix('\'')?;
            Some(v.to_string())
        })
        .collect()
}

fn prefer_max_page(headers: &HeaderMap) -> Option<usize> {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|p| {
            p.trim()
                .strip_prefix("odata.maxpagesize=")?
                .trim()
                .parse()
                .ok()
        })
}

/// Builds the cursor for a request: from its token, or from its query for a first page.
pub fn cursor_for(
    st: &State,
    c: Collection,
    beta: bool,
    resource: Option<String>,
    q: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Result<Cursor, (u16, String)> {
    let token = q.get("skiptoken").or_else(|| q.get("deltatoken"));
    if let Some(tok) = token {
        let delta = matches!(c, Collection::UsersDelta | Collection::GroupsDelta);
        if delta && tok == "latest" && q.contains_key("deltatoken") {
            let mut cur = first_cursor(st, c, beta, resource, q, headers)?;
            cur.since = st.tenant.version;
            cur.offset = usize::MAX;
            return Ok(cur);
        }
        let Some(mut cur) = Cursor::decode(tok) else {
            return Err(graph_error(
                400,
                "BadRequest",
                "The skip token / delta token is invalid.",
            ));
        };
        if cur.c != c.name() || cur.r != resource || cur.beta != beta {
            return Err(graph_error(
                400,
                "BadRequest",
                "The token does not belong to this request.",
            ));
        }
        if delta && cur.epoch != st.delta_epoch {
            return Err(graph_error(
                410,
                "syncStateNotFound",
                "The delta token has expired. Start a full resync.",
            ));
        }
        if cur.delta_link {
            // A new round from the deltaLink: changes after `since`, up to now.
            cur.upto = st.tenant.version;
            cur.delta_link = false;
        }
        return Ok(cur);
    }
    first_cursor(st, c, beta, resource, q, headers)
}

fn first_cursor(
    st: &State,
    c: Collection,
    beta: bool,
    resource: Option<String>,
    q: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Result<Cursor, (u16, String)> {
    let cfg = &st.config;
    let select = Select::parse(q.get("select").map(String::as_str));
    let known: &[&str] = match c {
        Collection::Users | Collection::UsersDelta => render::USER_FIELDS,
        Collection::GroupsDelta => render::GROUP_FIELDS,
        Collection::GroupMembers
        | Collection::GroupTransitiveMembers
        | Collection::UserTransitiveMemberOf => render::MEMBER_FIELDS,
        Collection::ManagedDevices => render::DEVICE_FIELDS,
        Collection::IosManagedAppProtections | Collection::AndroidManagedAppProtections => {
            render::POLICY_FIELDS
        }
        Collection::ManagedAppRegistrations if beta => render::REGISTRATION_FIELDS_BETA,
        Collection::ManagedAppRegistrations => render::REGISTRATION_FIELDS_V1,
        Collection::Token | Collection::Unknown => &[],
    };
    if let Some(f) = select.unknown(known) {
        return Err(graph_error(
            400,
            "BadRequest",
            &format!("Could not find a property named '{f}' on type 'microsoft.graph.entity'."),
        ));
    }
    let top = match q.get("top") {
        None => None,
        Some(t) => match t.parse::<usize>() {
            Ok(n) if n >= 1 => Some(n),
            _ => {
                return Err(graph_error(
                    400,
                    "BadRequest",
                    &format!("Invalid page size specified: '{t}'."),
                ));
            }
        },
    };
    let intune = matches!(
        c,
        Collection::ManagedDevices
            | Collection::IosManagedAppProtections
            | Collection::AndroidManagedAppProtections
            | Collection::ManagedAppRegistrations
    );
    let delta = matches!(c, Collection::UsersDelta | Collection::GroupsDelta);
    let size = if intune {
        top.unwrap_or(cfg.intune_page_size)
            .min(cfg.intune_page_size)
    } else {
        if top.is_some_and(|n| n > 999) {
            return Err(graph_error(
                400,
                "Request_UnsupportedQuery",
                &format!(
                    "Invalid page size specified: '{}'. Must be between 1 and 999 inclusive.",
                    top.unwrap_or(0)
                ),
            ));
        }
        if delta && top.is_some() {
            return Err(graph_error(
                400,
                "Request_UnsupportedQuery",
                "$top is not supported with delta queries.",
            ));
        }
        let default = match c {
            Collection::Users | Collection::UsersDelta | Collection::GroupsDelta => {
                cfg.directory_page_size
            }
            _ => cfg.members_page_size,
        };
        top.or_else(|| prefer_max_page(headers))
            .unwrap_or(default)
            .min(999)
    };
    let ids = match (c, q.get("filter")) {
        (Collection::GroupsDelta, Some(f)) => match parse_id_filter(f) {
            Some(ids) if ids.len() <= 50 => Some(ids),
            Some(_) => {
                return Err(graph_error(
                    400,
                    "Request_UnsupportedQuery",
                    "The filter exceeds the limit of 50 filtered objects.",
                ));
            }
            None => {
                return Err(graph_error(
                    400,
                    "Request_UnsupportedQuery",
                    "Unsupported query: groups/delta filters only on id eq.",
                ));
            }
        },
        (Collection::UsersDelta, Some(_)) => {
            return Err(graph_error(
                400,
                "Request_UnsupportedQuery",
                "Unsupported query.",
            ));
        }
        // Intune silently ignores filters it does not support and returns everything
        // (research section 4): the double ignores them all.
        _ => None,
    };
    Ok(Cursor {
        c: c.name().to_string(),
        r: resource,
        offset: 0,
        page: 0,
        size: size.max(1),
        select: select.0,
        expand: parse_expand(q.get("expand")),
        beta,
        since: 0,
        upto: st.tenant.version,
        epoch: st.delta_epoch,
        ids,
        delta_link: false,
    })
}
