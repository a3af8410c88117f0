//! `[graph]` (with `[state] source = "graph"`): credentials, clouds and hosts, licence
//! plans, the groups to resolve and the app id table.
//!
//! Group ids must be Entra object ids here: with Graph as the source, a user's groups come
//! only from what the connector resolves, so a policy naming a group by anything else
//! would never match its members and would silently stop applying.

use toml::Spanned;

use super::ctx::Ctx;
use super::net;
use crate::config::file::{FileConfig, Str, StrList};
use crate::config::graph::{GraphAppFile, GraphFile, INTUNE_PLAN};
use crate::config::{
    GraphApp, GraphCloud, GraphConfig, GraphCredential, PolicyConfig, StateConfig, StateSource,
};

/// A stand-in until [`apply`] runs; never handed out (a config with errors is refused).
pub(crate) fn placeholder() -> GraphConfig {
    let (login, graph) = GraphCloud::Global.hosts();
    GraphConfig {
        tenant_id: String::new(),
        client_id: String::new(),
        credential: GraphCredential::SecretFile(Default::default()),
        cloud: GraphCloud::Global,
        login_url: login.into(),
        graph_url: graph.into(),
        licensed_service_plans: vec![INTUNE_PLAN.into()],
        groups: Vec::new(),
        apps: Vec::new(),
        warnings: Vec::new(),
    }
}

/// `8-4-4-4-12` hex digits (Entra object and application ids).
pub(crate) fn is_guid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Validate `[graph]` into the state source, or refuse a `[graph]` nothing reads.
pub(crate) fn apply(
    ctx: &mut Ctx<'_>,
    file: &FileConfig,
    state: &mut StateConfig,
    policies: &[PolicyConfig],
) {
    let table = file.graph.as_ref();
    let StateSource::Graph(slot) = &mut state.source else {
        if let Some(t) = table {
            ctx.error(t, "graph", "only read with [state] source = \"graph\"");
        }
        return;
    };
    let Some(table) = table else {
        ctx.error_nowhere(
            "graph",
            "missing [graph] section (required with [state] source = \"graph\")",
        );
        return;
    };
    let mut g = section(ctx, table);
    // Every group a policy names must be resolvable (see the module comment).
    for (i, p) in file.policies.iter().enumerate() {
        let p = p.get_ref();
        for (list, key) in [
            (&p.include_groups, "include_groups"),
            (&p.exclude_groups, "exclude_groups"),
        ] {
            guid_items(ctx, list.as_ref(), &format!("policies[{i}].{key}"), "group");
        }
    }
    for p in policies {
        for id in p.include_groups.iter().chain(&p.exclude_groups) {
            push_unique(&mut g.groups, &id.to_ascii_lowercase());
        }
    }
    **slot = g;
}

fn push_unique(v: &mut Vec<String>, s: &str) {
    if !v.iter().any(|x| x == s) {
        v.push(s.to_owned());
    }
}

fn guid_items(ctx: &mut Ctx<'_>, list: Option<&StrList>, key: &str, what: &str) {
    let Some(list) = list else { return };
    for (j, item) in list.get_ref().iter().enumerate() {
        if !is_guid(item.get_ref()) {
            ctx.error(
                item,
                &format!("{key}[{j}]"),
                format!(
                    "{:?}: with source = \"graph\" a {what} is named by its Entra object id (a GUID)",
                    item.get_ref()
                ),
            );
        }
    }
}

fn guid(ctx: &mut Ctx<'_>, table: &Spanned<impl Sized>, v: Option<&Str>, key: &str) -> String {
    let Some(v) = ctx.required(table, v, key) else {
        return String::new();
    };
    if !is_guid(v.get_ref()) {
        ctx.error(v, key, format!("{:?} is not a GUID", v.get_ref()));
    }
    v.get_ref().to_ascii_lowercase()
}

fn section(ctx: &mut Ctx<'_>, table: &Spanned<GraphFile>) -> GraphConfig {
    let f = table.get_ref();
    let mut out = placeholder();
    if let Some(v) = ctx.required(table, f.tenant_id.as_ref(), "graph.tenant_id") {
        let t = v.get_ref();
        let domain_like = !t.is_empty()
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
        if ["common", "organizations", "consumers"].contains(&t.to_ascii_lowercase().as_str()) {
            ctx.error(
                v,
                "graph.tenant_id",
                format!("{t:?}: app-only tokens need the tenant's own id or domain"),
            );
        } else if !domain_like {
            ctx.error(
                v,
                "graph.tenant_id",
                format!("{t:?} is not a tenant id (GUID) or domain name"),
            );
        }
        out.tenant_id = t.to_ascii_lowercase();
    }
    out.client_id = guid(ctx, table, f.client_id.as_ref(), "graph.client_id");
    credential(ctx, table, &mut out);
    out.cloud = ctx.keyword(
        f.cloud.as_ref(),
        "graph.cloud",
        &[
            ("global", GraphCloud::Global),
            ("usgov", GraphCloud::UsGov),
            ("usgov-dod", GraphCloud::UsGovDod),
            ("china", GraphCloud::China),
        ],
        GraphCloud::Global,
    );
    let (login, graph) = out.cloud.hosts();
    out.login_url = host(ctx, f.login_url.as_ref(), "graph.login_url", login);
    out.graph_url = host(ctx, f.graph_url.as_ref(), "graph.graph_url", graph);
    if let Some(list) = &f.licensed_service_plans {
        guid_items(
            ctx,
            Some(list),
            "graph.licensed_service_plans",
            "service plan",
        );
        let plans = ctx.text_list(Some(list), "graph.licensed_service_plans");
        if plans.is_empty() {
            ctx.error(
                list,
                "graph.licensed_service_plans",
                "must not be empty: no user would be licensed",
            );
        }
        out.licensed_service_plans = plans.iter().map(|p| p.to_ascii_lowercase()).collect();
    }
    guid_items(ctx, f.groups.as_ref(), "graph.groups", "group");
    out.groups = ctx
        .text_list(f.groups.as_ref(), "graph.groups")
        .iter()
        .map(|g| g.to_ascii_lowercase())
        .collect();
    for (i, app) in f.apps.iter().enumerate() {
        if let Some(a) = graph_app(ctx, app, i) {
            out.apps.push(a);
        }
    }
    out
}

fn graph_app(ctx: &mut Ctx<'_>, t: &Spanned<GraphAppFile>, i: usize) -> Option<GraphApp> {
    let f = t.get_ref();
    let key = |k: &str| format!("graph.apps[{i}].{k}");
    let client_id = guid(ctx, t, f.client_id.as_ref(), &key("client_id"));
    let android_package_ids =
        ctx.text_list(f.android_package_ids.as_ref(), &key("android_package_ids"));
    let ios_bundle_ids = ctx.text_list(f.ios_bundle_ids.as_ref(), &key("ios_bundle_ids"));
    if android_package_ids.is_empty() && ios_bundle_ids.is_empty() {
        ctx.error(
            t,
            &format!("graph.apps[{i}]"),
            "maps no app: give android_package_ids and/or ios_bundle_ids",
        );
        return None;
    }
    Some(GraphApp {
        client_id,
        android_package_ids,
        ios_bundle_ids,
    })
}

/// Exactly one credential; the files must exist. A secret readable by every local user is
/// allowed (containers often mount secrets 0644) but worth a warning.
fn credential(ctx: &mut Ctx<'_>, table: &Spanned<GraphFile>, out: &mut GraphConfig) {
    let f = table.get_ref();
    match (&f.client_secret_file, &f.client_certificate, &f.client_key) {
        (Some(s), None, None) => {
            let Some(path) = ctx.path(s, "graph.client_secret_file") else {
                return;
            };
            match std::fs::metadata(&path) {
                Ok(m) if !m.is_file() => ctx.error(
                    s,
                    "graph.client_secret_file",
                    format!("{} is not a file", path.display()),
                ),
                Ok(m) if m.len() == 0 => ctx.error(
                    s,
                    "graph.client_secret_file",
                    format!("{} is empty", path.display()),
                ),
                Ok(m) => {
                    if world_readable(&m) {
                        out.warnings.push(format!(
                            "graph.client_secret_file: {} is readable by every local user (chmod 600 it)",
                            path.display()
                        ));
                    }
                }
                Err(e) => ctx.error(
                    s,
                    "graph.client_secret_file",
                    format!("{}: {e}", path.display()),
                ),
            }
            out.credential = GraphCredential::SecretFile(path);
        }
        (None, Some(c), Some(k)) => {
            let cert = ctx.path(c, "graph.client_certificate");
            let key = ctx.path(k, "graph.client_key");
            for (v, p, name) in [
                (c, &cert, "graph.client_certificate"),
                (k, &key, "graph.client_key"),
            ] {
                if let Some(p) = p
                    && let Err(e) = std::fs::metadata(p)
                {
                    ctx.error(v, name, format!("{}: {e}", p.display()));
                }
            }
            if let (Some(cert), Some(key)) = (cert, key) {
                out.credential = GraphCredential::Certificate { cert, key };
            }
        }
        (None, Some(c), None) => ctx.error(
            c,
            "graph.client_key",
            "missing (required with client_certificate)",
        ),
        (None, None, Some(k)) => ctx.error(
            k,
            "graph.client_certificate",
            "missing (required with client_key)",
        ),
        (None, None, None) => ctx.error(
            table,
            "graph",
            "no credential: set client_secret_file, or client_certificate and client_key",
        ),
        (Some(s), _, _) => ctx.error(
            s,
            "graph.client_secret_file",
            "give either client_secret_file or client_certificate + client_key, not both",
        ),
    }
}

#[cfg(unix)]
fn world_readable(m: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    m.permissions().mode() & 0o004 != 0
}

#[cfg(not(unix))]
fn world_readable(_: &std::fs::Metadata) -> bool {
    false
}

/// A login / Graph host: the cloud's unless overridden (https, or http to loopback), no
/// trailing slash, no query.
fn host(ctx: &mut Ctx<'_>, v: Option<&Str>, key: &str, default: &str) -> String {
    let Some(v) = v else {
        return default.to_owned();
    };
    let s = v.get_ref();
    if let Err(e) = net::fetch_url(s) {
        ctx.error(v, key, e);
    } else if s.contains('?') || s.contains('#') {
        ctx.error(v, key, format!("{s:?}: no query or fragment allowed"));
    }
    s.trim_end_matches('/').to_owned()
}

#[cfg(test)]
#[path = "graph_tests.rs"]
mod tests;
