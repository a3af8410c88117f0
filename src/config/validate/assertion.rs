//! `[assertion]`: the issuer, lifetime and keys of the identity assertion, and the routes
//! that ask for one. Key *files* are opened by `check` and at start / reload (see
//! `snapshot::assertion`), like TLS material; here only their shape is checked.

use std::time::Duration;

use toml::Spanned;

use super::ctx::{Ctx, Zero};
use crate::config::file::{AssertionFile, FileConfig};
use crate::config::{AssertionConfig, AssertionKey, AuthMode, RouteConfig};

/// Longest `lifetime`: an assertion is a proof for one request, not a session.
const MAX_LIFETIME: Duration = Duration::from_secs(60);

/// Longest key id; it is copied into every assertion's header.
const MAX_KID: usize = 64;

pub(crate) fn assertion(
    ctx: &mut Ctx<'_>,
    file: Option<&Spanned<AssertionFile>>,
) -> Option<AssertionConfig> {
    let table = file?;
    let f = table.get_ref();
    let issuer = ctx
        .required(table, f.issuer.as_ref(), "assertion.issuer")
        .and_then(|v| ctx.text(v, "assertion.issuer"))
        .unwrap_or_default();
    let lifetime = ctx.duration_at_most(
        f.lifetime.as_ref(),
        "assertion.lifetime",
        MAX_LIFETIME,
        Zero::Refused,
        MAX_LIFETIME,
    );
    let mut keys: Vec<AssertionKey> = Vec::new();
    match &f.keys {
        None => ctx.error(table, "assertion.keys", "missing (required)"),
        Some(list) if list.get_ref().is_empty() => {
            ctx.error(list, "assertion.keys", "at least one key is required");
        }
        Some(list) => {
            for (i, item) in list.get_ref().iter().enumerate() {
                let k = format!("assertion.keys[{i}]");
                let kf = item.get_ref();
                let id = ctx
                    .required(item, kf.id.as_ref(), &format!("{k}.id"))
                    .and_then(|v| {
                        let id = ctx.text(v, &format!("{k}.id"))?;
                        if id.len() > MAX_KID
                            || !id.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
                        {
                            ctx.error(
                                v,
                                &format!("{k}.id"),
                                format!("{id:?}: use at most {MAX_KID} printable ASCII characters, no quotes or backslashes"),
                            );
                            return None;
                        }
                        if let Some(j) = keys.iter().position(|o| o.id == id) {
                            ctx.error(v, &format!("{k}.id"), format!("{id:?} is already assertion.keys[{j}]"));
                            return None;
                        }
                        Some(id)
                    });
                let path = ctx
                    .required(item, kf.key.as_ref(), &format!("{k}.key"))
                    .and_then(|v| ctx.path(v, &format!("{k}.key")));
                if let (Some(id), Some(key)) = (id, path) {
                    keys.push(AssertionKey { id, key });
                }
            }
        }
    }
    Some(AssertionConfig {
        issuer,
        lifetime,
        keys,
    })
}

/// A route that asks for an assertion needs an authenticated caller to assert and an
/// `[assertion]` section to sign with.
pub(crate) fn check_routes(
    ctx: &mut Ctx<'_>,
    file: &FileConfig,
    routes: &[RouteConfig],
    assertion: Option<&AssertionConfig>,
) {
    for (i, (route, table)) in routes.iter().zip(&file.routes).enumerate() {
        if !route.assertion {
            continue;
        }
        let Some(v) = table.get_ref().assertion.as_ref() else {
            continue;
        };
        let key = format!("routes[{i}].assertion");
        if route.auth == AuthMode::None {
            ctx.error(
                v,
                &key,
                "needs auth = \"required\": an assertion names the authenticated caller",
            );
        }
        if assertion.is_none() {
            ctx.error(
                v,
                &key,
                "needs an [assertion] section (issuer and keys) to sign with",
            );
        }
    }
}
