//! `[[policies]]`: Conditional Access policies, checked against the routes' resources and
//! `[approved_apps]` so that a policy can never silently protect nothing.

use toml::Spanned;

use super::ctx::{Ctx, Zero};
use super::net;
use crate::config::file::{GrantFile, PolicyFile, StrList};
use crate::config::{
    Grant, GrantControl, GrantOperator, Locations, Platform, PolicyConfig, PolicyMode, Remediation,
    Selector,
};

/// What the policies may refer to.
pub(crate) struct Known<'a> {
    /// Every route's `resource`.
    pub resources: &'a [&'a str],
    /// Whether `[approved_apps] ids` names at least one app.
    pub has_approved_apps: bool,
}

const CONTROLS: [GrantControl; 4] = [
    GrantControl::Mfa,
    GrantControl::CompliantDevice,
    GrantControl::ApprovedApp,
    GrantControl::AppProtection,
];

pub(crate) fn policies(
    ctx: &mut Ctx<'_>,
    file: &[Spanned<PolicyFile>],
    known: &Known<'_>,
) -> Vec<PolicyConfig> {
    let mut out: Vec<PolicyConfig> = Vec::with_capacity(file.len());
    for (i, table) in file.iter().enumerate() {
        let key = format!("policies[{i}]");
        let policy = policy(ctx, table, &key, known);
        if !policy.name.is_empty()
            && let Some(j) = out.iter().position(|o| o.name == policy.name)
            && let Some(v) = &table.get_ref().name
        {
            ctx.error(
                v,
                &format!("{key}.name"),
                format!("{:?} is already policies[{j}]", policy.name),
            );
        }
        out.push(policy);
    }
    out
}

fn policy(
    ctx: &mut Ctx<'_>,
    table: &Spanned<PolicyFile>,
    key: &str,
    known: &Known<'_>,
) -> PolicyConfig {
    let f = table.get_ref();
    let k = |name: &str| format!("{key}.{name}");

    let name = ctx
        .required(table, f.name.as_ref(), &k("name"))
        .and_then(|v| ctx.text(v, &k("name")))
        .unwrap_or_default();
    let mode = ctx.keyword(
        f.mode.as_ref(),
        &k("mode"),
        &[
            ("enabled", PolicyMode::Enabled),
            ("report_only", PolicyMode::ReportOnly),
            ("disabled", PolicyMode::Disabled),
        ],
        PolicyMode::Enabled,
    );

    let resources = match ctx.required(table, f.resources.as_ref(), &k("resources")) {
        Some(list) => {
            let selector = selector(ctx, list, &k("resources"));
            if list.get_ref().is_empty() {
                ctx.error(
                    list,
                    &k("resources"),
                    "must name at least one resource, or [\"all\"]",
                );
            }
            if let Selector::Some(names) = &selector {
                for (i, item) in list.get_ref().iter().enumerate() {
                    if names.contains(item.get_ref())
                        && !known.resources.contains(&item.get_ref().as_str())
                    {
                        let mut valid: Vec<String> =
                            known.resources.iter().map(|r| format!("{r:?}")).collect();
                        valid.dedup();
                        ctx.error(
                            item,
                            &format!("{key}.resources[{i}]"),
                            format!(
                                "no route has resource {:?} (routes' resources: {}; or \"all\")",
                                item.get_ref(),
                                valid.join(", ")
                            ),
                        );
                    }
                }
            }
            selector
        }
        None => Selector::Some(Vec::new()),
    };

    let include_users = match &f.include_users {
        Some(list) => selector(ctx, list, &k("include_users")),
        None => Selector::Some(Vec::new()),
    };
    let include_groups = ctx.text_list(f.include_groups.as_ref(), &k("include_groups"));
    if include_users == Selector::Some(Vec::new()) && include_groups.is_empty() {
        ctx.error(
            table,
            key,
            "applies to no one: set include_users (ids or [\"all\"]) and/or include_groups",
        );
    }
    let exclude_users = no_all(ctx, f.exclude_users.as_ref(), &k("exclude_users"));
    let exclude_groups = ctx.text_list(f.exclude_groups.as_ref(), &k("exclude_groups"));
    let client_apps = ctx.text_list(f.client_apps.as_ref(), &k("client_apps"));

    let mut platforms = Vec::new();
    if let Some(list) = &f.platforms {
        for (i, item) in list.get_ref().iter().enumerate() {
            match Platform::parse(item.get_ref()) {
                Some(p) if !platforms.contains(&p) => platforms.push(p),
                Some(_) => {}
                None => ctx.error(
                    item,
                    &format!("{key}.platforms[{i}]"),
                    format!(
                        "unknown platform {:?} (valid: ios, android, windows, macos, linux)",
                        item.get_ref()
                    ),
                ),
            }
        }
    }

    let mut locations = Locations::default();
    if let Some(l) = &f.locations {
        let l = l.get_ref();
        locations.include = cidrs(ctx, l.include.as_ref(), &k("locations.include"));
        locations.exclude = cidrs(ctx, l.exclude.as_ref(), &k("locations.exclude"));
    }

    let grant = match ctx.required(table, f.grant.as_ref(), &k("grant")) {
        Some(g) => grant(ctx, g, &k("grant"), known),
        None => Grant::Block,
    };

    let sign_in_frequency = f.session.as_ref().and_then(|s| {
        s.get_ref().sign_in_frequency.as_ref().map(|v| {
            ctx.duration(
                Some(v),
                &k("session.sign_in_frequency"),
                std::time::Duration::from_secs(3600),
                Zero::Refused,
            )
        })
    });

    let mut remediation = Remediation::default();
    if let Some(r) = &f.remediation {
        let r = r.get_ref();
        if let Some(v) = &r.enabled {
            remediation.enabled = *v.get_ref();
        }
        remediation.window = ctx.duration(
            r.window.as_ref(),
            &k("remediation.window"),
            remediation.window,
            Zero::Allowed,
        );
    }

    PolicyConfig {
        name,
        mode,
        resources,
        include_users,
        include_groups,
        exclude_users,
        exclude_groups,
        client_apps,
        platforms,
        locations,
        grant,
        sign_in_frequency,
        remediation,
    }
}

/// `["all"]` -> All; ids -> Some; "all" mixed with ids is an error.
fn selector(ctx: &mut Ctx<'_>, list: &StrList, key: &str) -> Selector {
    let items = list.get_ref();
    if let Some(i) = items.iter().position(|v| v.get_ref() == "all") {
        if items.len() == 1 {
            return Selector::All;
        }
        ctx.error(&items[i], key, "\"all\" cannot be mixed with other values");
        return Selector::Some(Vec::new());
    }
    Selector::Some(ctx.text_list(Some(list), key))
}

/// An exclude list: "all" would exclude everyone, which is never what was meant.
fn no_all(ctx: &mut Ctx<'_>, list: Option<&StrList>, key: &str) -> Vec<String> {
    if let Some(item) = list.and_then(|l| l.get_ref().iter().find(|v| v.get_ref() == "all")) {
        ctx.error(
            item,
            key,
            "\"all\" is not allowed in an exclude list (use mode = \"disabled\")",
        );
    }
    ctx.text_list(list, key)
}

fn cidrs(ctx: &mut Ctx<'_>, list: Option<&StrList>, key: &str) -> Vec<ipnet::IpNet> {
    let mut out = Vec::new();
    for (i, item) in list
        .map(|l| l.get_ref().as_slice())
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        match net::cidr(item.get_ref()) {
            Ok(n) if !out.contains(&n) => out.push(n),
            Ok(_) => {}
            Err(e) => ctx.error(item, &format!("{key}[{i}]"), e),
        }
    }
    out
}

/// `grant`: exactly one of `block = true` or a non-empty `controls`.
fn grant(ctx: &mut Ctx<'_>, table: &Spanned<GrantFile>, key: &str, known: &Known<'_>) -> Grant {
    let g = table.get_ref();
    let k = |name: &str| format!("{key}.{name}");
    let block = g.block.as_ref().is_some_and(|b| *b.get_ref());
    if block {
        for (present, name) in [
            (g.controls.is_some(), "controls"),
            (g.operator.is_some(), "operator"),
            (g.auth_context.is_some(), "auth_context"),
        ] {
            if present {
                ctx.error(table, &k(name), "not allowed with block = true");
            }
        }
        return Grant::Block;
    }
    let Some(list) = g.controls.as_ref().filter(|l| !l.get_ref().is_empty()) else {
        let message = "needs either block = true or a non-empty controls list";
        match &g.block {
            Some(b) => ctx.error(b, key, message),
            None => ctx.error(table, key, message),
        }
        return Grant::Block;
    };
    let operator = ctx.keyword(
        g.operator.as_ref(),
        &k("operator"),
        &[("all", GrantOperator::All), ("any", GrantOperator::Any)],
        GrantOperator::All,
    );
    let mut controls = Vec::new();
    for (i, item) in list.get_ref().iter().enumerate() {
        let item_key = format!("{key}.controls[{i}]");
        match CONTROLS.iter().find(|c| c.as_str() == item.get_ref()) {
            Some(c) if !controls.contains(c) => {
                if *c == GrantControl::ApprovedApp && !known.has_approved_apps {
                    ctx.error(
                        item,
                        &item_key,
                        "approved_app needs [approved_apps] ids; with none, no app could satisfy it",
                    );
                }
                controls.push(*c);
            }
            Some(_) => {}
            None => {
                let valid: Vec<&str> = CONTROLS.iter().map(|c| c.as_str()).collect();
                ctx.error(
                    item,
                    &item_key,
                    format!(
                        "unknown control {:?} (valid: {})",
                        item.get_ref(),
                        valid.join(", ")
                    ),
                );
            }
        }
    }
    let auth_context = g.auth_context.as_ref().and_then(|v| {
        if !controls.contains(&GrantControl::Mfa) {
            ctx.error(
                v,
                &k("auth_context"),
                "only allowed when controls include \"mfa\"",
            );
        }
        // It is echoed inside WWW-Authenticate challenges: keep it to token characters.
        let s = v.get_ref();
        if s.is_empty()
            || !s
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        {
            ctx.error(
                v,
                &k("auth_context"),
                format!("{s:?} is not an authentication context id (e.g. \"c1\")"),
            );
            return None;
        }
        Some(s.clone())
    });
    Grant::Controls {
        operator,
        controls,
        auth_context,
    }
}

#[cfg(test)]
#[path = "policies_tests.rs"]
mod tests;
