//! `[state] source = "redis"` and `[publish]`: the keys of a fleet (docs/fleet.md).

use toml::Spanned;

use super::Ctx;
use super::net::is_loopback_host;
use crate::config::file::{PublishFile, Str};
use crate::config::{PublishTarget, RedisEndpoint};

/// The prefix every fleet key starts with when none is configured.
pub const DEFAULT_KEY_PREFIX: &str = "accessgate";

/// `rediss://`, or `redis://` only to a loopback host: policy state decides who gets in,
/// so it never crosses a network in clear text (the same rule as an http state URL).
pub(crate) fn redis_url(text: &str) -> Result<(), String> {
    let (scheme, rest) = text
        .split_once("://")
        .ok_or_else(|| format!("{text:?} is not a redis:// or rediss:// URL"))?;
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or("");
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host_port.split(':').next().unwrap_or(""),
    };
    if host.is_empty() {
        return Err(format!("{text:?} has no host"));
    }
    match scheme {
        "rediss" => Ok(()),
        "redis" if is_loopback_host(host) => Ok(()),
        "redis" => Err(format!(
            "{text:?} must be rediss:// (plain redis:// is only allowed to a loopback address)"
        )),
        _ => Err(format!("{text:?} must be a rediss:// URL")),
    }
}

/// `url`, `key_prefix`, `password_file` of a Redis endpoint; `table` names where an error
/// about a missing `url` goes.
pub(crate) fn endpoint<T>(
    ctx: &mut Ctx<'_>,
    section: &str,
    table: &Spanned<T>,
    url: Option<&Str>,
    key_prefix: Option<&Str>,
    password_file: Option<&Str>,
) -> RedisEndpoint {
    let url = match url {
        Some(v) => {
            if let Err(e) = redis_url(v.get_ref()) {
                ctx.error(v, &format!("{section}.url"), e);
            }
            v.get_ref().clone()
        }
        None => {
            ctx.error(
                table,
                &format!("{section}.url"),
                "missing (required with Redis)",
            );
            String::new()
        }
    };
    let key_prefix = match key_prefix {
        Some(v) => {
            let key = format!("{section}.key_prefix");
            match ctx.text(v, &key) {
                Some(p) if p.chars().any(char::is_whitespace) => {
                    ctx.error(v, &key, "must not contain whitespace");
                    DEFAULT_KEY_PREFIX.to_owned()
                }
                Some(p) => p,
                None => DEFAULT_KEY_PREFIX.to_owned(),
            }
        }
        None => DEFAULT_KEY_PREFIX.to_owned(),
    };
    let password_file = password_file.and_then(|v| {
        let key = format!("{section}.password_file");
        let path = ctx.path(v, &key)?;
        match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => Some(path),
            Ok(_) => {
                ctx.error(v, &key, format!("{} is not a file", path.display()));
                None
            }
            Err(e) => {
                ctx.error(v, &key, format!("{}: {e}", path.display()));
                None
            }
        }
    });
    RedisEndpoint {
        url,
        key_prefix,
        password_file,
    }
}

/// `[publish]`: absent for a gateway; `accessgate sync` refuses to start without it.
pub(crate) fn publish(
    ctx: &mut Ctx<'_>,
    file: Option<&Spanned<PublishFile>>,
) -> Option<PublishTarget> {
    #[derive(Clone, Copy)]
    enum To {
        File,
        Redis,
    }
    let table = file?;
    let f = table.get_ref();
    let to = match &f.to {
        Some(v) => ctx.keyword(
            Some(v),
            "publish.to",
            &[("file", To::File), ("redis", To::Redis)],
            To::File,
        ),
        None => {
            ctx.error(table, "publish.to", "missing (\"file\" or \"redis\")");
            return None;
        }
    };
    Some(match to {
        To::File => {
            for (v, key) in [
                (&f.url, "publish.url"),
                (&f.key_prefix, "publish.key_prefix"),
                (&f.password_file, "publish.password_file"),
            ] {
                if let Some(v) = v {
                    ctx.error(v, key, "only with to = \"redis\"");
                }
            }
            let path = match &f.path {
                Some(v) => ctx.path(v, "publish.path").unwrap_or_default(),
                None => ctx.resolve("state.json".as_ref()),
            };
            PublishTarget::File(path)
        }
        To::Redis => {
            if let Some(v) = &f.path {
                ctx.error(v, "publish.path", "only with to = \"file\"");
            }
            PublishTarget::Redis(endpoint(
                ctx,
                "publish",
                table,
                f.url.as_ref(),
                f.key_prefix.as_ref(),
                f.password_file.as_ref(),
            ))
        }
    })
}

#[cfg(test)]
#[path = "fleet_tests.rs"]
mod tests;
