//! `[[routes]]`: host + path prefix -> upstream, and whether a token is required.

use std::time::Duration;

use toml::Spanned;

use super::ctx::{Ctx, Zero};
use super::net;
use crate::config::file::RouteFile;
use crate::config::{AuthMode, RouteConfig, Upstream};

pub(crate) fn routes(ctx: &mut Ctx<'_>, file: &[Spanned<RouteFile>]) -> Vec<RouteConfig> {
    if file.is_empty() {
        ctx.error_nowhere("routes", "at least one [[routes]] entry is required");
    }
    let mut out: Vec<RouteConfig> = Vec::with_capacity(file.len());
    for (i, table) in file.iter().enumerate() {
        let key = format!("routes[{i}]");
        let route = route(ctx, table, &key);
        let f = table.get_ref();
        if !route.name.is_empty()
            && let Some(j) = out.iter().position(|o| o.name == route.name)
            && let Some(v) = &f.name
        {
            ctx.error(
                v,
                &format!("{key}.name"),
                format!("{:?} is already routes[{j}]", route.name),
            );
        }
        if let Some(j) = out
            .iter()
            .position(|o| o.host == route.host && o.path_prefix == route.path_prefix)
        {
            ctx.error(
                table,
                &key,
                format!(
                    "same host and path_prefix ({:?}) as routes[{j}]: it could never match",
                    route.path_prefix
                ),
            );
        }
        out.push(route);
    }
    out
}

fn route(ctx: &mut Ctx<'_>, table: &Spanned<RouteFile>, key: &str) -> RouteConfig {
    let f = table.get_ref();
    let k = |name: &str| format!("{key}.{name}");

    // Route names become metric labels and log fields: keep them plain.
    let name = match ctx.required(table, f.name.as_ref(), &k("name")) {
        Some(v) => match ctx.text(v, &k("name")) {
            Some(n)
                if n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) =>
            {
                n
            }
            Some(n) => {
                ctx.error(
                    v,
                    &k("name"),
                    format!("{n:?}: use letters, digits, '-', '_' and '.' only"),
                );
                String::new()
            }
            None => String::new(),
        },
        None => String::new(),
    };

    let host = f
        .host
        .as_ref()
        .and_then(|v| match net::route_host(v.get_ref()) {
            Ok(h) => Some(h),
            Err(e) => {
                ctx.error(v, &k("host"), e);
                None
            }
        });

    let path_prefix = match &f.path_prefix {
        None => "/".to_owned(),
        Some(v) => net::normalize_path(v.get_ref()).unwrap_or_else(|e| {
            ctx.error(v, &k("path_prefix"), e);
            "/".to_owned()
        }),
    };

    let placeholder = || Upstream {
        authority: http::uri::Authority::from_static("invalid:80"),
        base_path: String::new(),
    };
    let upstream = match ctx.required(table, f.upstream.as_ref(), &k("upstream")) {
        Some(v) => net::upstream(v.get_ref()).unwrap_or_else(|e| {
            ctx.error(v, &k("upstream"), e);
            placeholder()
        }),
        None => placeholder(),
    };

    let resource = match &f.resource {
        Some(v) => ctx.text(v, &k("resource")).unwrap_or_default(),
        None => name.clone(),
    };

    let auth = ctx.keyword(
        f.auth.as_ref(),
        &k("auth"),
        &[("required", AuthMode::Required), ("none", AuthMode::None)],
        AuthMode::Required,
    );

    RouteConfig {
        name,
        host,
        path_prefix,
        upstream,
        resource,
        auth,
        forward_token: f.forward_token.as_ref().is_none_or(|v| *v.get_ref()),
        connect_timeout: ctx.duration(
            f.connect_timeout.as_ref(),
            &k("connect_timeout"),
            Duration::from_secs(2),
            Zero::Refused,
        ),
        request_timeout: ctx.duration(
            f.request_timeout.as_ref(),
            &k("request_timeout"),
            Duration::from_secs(30),
            Zero::Refused,
        ),
        assertion: f.assertion.as_ref().is_some_and(|v| *v.get_ref()),
        upstream_max_connections: usize::try_from(ctx.int(
            f.upstream_max_connections.as_ref(),
            &k("upstream_max_connections"),
            256,
            1,
            65_535,
        ))
        .unwrap_or(256),
    }
}

#[cfg(test)]
#[path = "routes_tests.rs"]
mod tests;
