//! `[[issuers]]`: which tokens are trusted, and where their keys come from.
//!
//! The rules here protect token verification itself: no symmetric or unsigned algorithm
//! can be configured, key and discovery URLs are TLS (or loopback), and a multi-tenant
//! issuer can only be narrowed by tenant GUIDs, never widened by a typo.

use toml::Spanned;

use super::ctx::Ctx;
use super::net;
use crate::config::file::IssuerFile;
use crate::config::{ChallengeStyle, ClaimNames, IssuerConfig, JwsAlgorithm, KeySource};

/// The placeholder a multi-tenant issuer holds.
const TENANT_PLACEHOLDER: &str = "{tenantid}";

pub(crate) fn issuers(ctx: &mut Ctx<'_>, file: &[Spanned<IssuerFile>]) -> Vec<IssuerConfig> {
    let mut out: Vec<IssuerConfig> = Vec::with_capacity(file.len());
    for (i, table) in file.iter().enumerate() {
        let key = format!("issuers[{i}]");
        let issuer = issuer(ctx, table, &key);
        if !issuer.issuer.is_empty()
            && let Some(j) = out.iter().position(|o| o.issuer == issuer.issuer)
        {
            let at = table.get_ref().issuer.as_ref();
            let message = format!("{:?} is already issuers[{j}]", issuer.issuer);
            match at {
                Some(v) => ctx.error(v, &format!("{key}.issuer"), message),
                None => ctx.error(table, &format!("{key}.issuer"), message),
            }
        }
        out.push(issuer);
    }
    out
}

fn issuer(ctx: &mut Ctx<'_>, table: &Spanned<IssuerFile>, key: &str) -> IssuerConfig {
    let f = table.get_ref();
    let k = |name: &str| format!("{key}.{name}");

    let issuer = ctx
        .required(table, f.issuer.as_ref(), &k("issuer"))
        .and_then(|v| ctx.text(v, &k("issuer")))
        .unwrap_or_default();
    let multi_tenant = issuer.contains(TENANT_PLACEHOLDER);
    if let Some(v) = &f.issuer {
        let rest = issuer.replacen(TENANT_PLACEHOLDER, "", 1);
        if rest.contains(TENANT_PLACEHOLDER) {
            ctx.error(v, &k("issuer"), "\"{tenantid}\" may appear only once");
        } else if rest.contains(['{', '}']) {
            ctx.error(
                v,
                &k("issuer"),
                format!("{issuer:?}: the only placeholder an issuer may hold is \"{{tenantid}}\""),
            );
        }
    }

    let tenants = tenants(ctx, f, key, multi_tenant);

    let audiences = match ctx.required(table, f.audiences.as_ref(), &k("audiences")) {
        Some(list) => {
            let audiences = ctx.text_list(Some(list), &k("audiences"));
            if list.get_ref().is_empty() {
                ctx.error(list, &k("audiences"), "must name at least one audience");
            }
            audiences
        }
        None => Vec::new(),
    };

    let keys = match (&f.jwks_uri, &f.jwks_file) {
        (Some(uri), Some(_)) => {
            ctx.error(
                uri,
                &k("jwks_uri"),
                "jwks_uri and jwks_file are mutually exclusive",
            );
            KeySource::Discovery
        }
        (Some(uri), None) => {
            if let Err(e) = net::fetch_url(uri.get_ref()) {
                ctx.error(uri, &k("jwks_uri"), e);
            }
            KeySource::Uri(uri.get_ref().clone())
        }
        (None, Some(path)) => KeySource::File(ctx.path(path, &k("jwks_file")).unwrap_or_default()),
        (None, None) => {
            if let Some(v) = &f.issuer {
                if multi_tenant {
                    ctx.error(
                        v,
                        &k("issuer"),
                        "an issuer with \"{tenantid}\" needs jwks_uri or jwks_file (OpenID discovery cannot fetch a templated URL)",
                    );
                } else if let Err(e) = net::fetch_url(&issuer) {
                    ctx.error(
                        v,
                        &k("issuer"),
                        format!("{e}; keys come from OpenID discovery of the issuer because neither jwks_uri nor jwks_file is set"),
                    );
                }
            }
            KeySource::Discovery
        }
    };

    let jwks_ca = f.jwks_ca.as_ref().and_then(|v| {
        if matches!(keys, KeySource::File(_)) {
            ctx.error(
                v,
                &k("jwks_ca"),
                "only applies to fetched keys (jwks_uri or discovery), not jwks_file",
            );
        }
        ctx.path(v, &k("jwks_ca"))
    });

    let algorithms = algorithms(ctx, f, key);

    let authorization_uri = f.authorization_uri.as_ref().map(|v| {
        if let Err(e) = net::fetch_url(v.get_ref()) {
            ctx.error(v, &k("authorization_uri"), e);
        }
        v.get_ref().clone()
    });

    let mut claims = ClaimNames::default();
    if let Some(c) = &f.claims {
        let c = c.get_ref();
        for (value, slot, name) in [
            (&c.user, &mut claims.user, "user"),
            (&c.client_app, &mut claims.client_app, "client_app"),
            (&c.device, &mut claims.device, "device"),
            (&c.groups, &mut claims.groups, "groups"),
        ] {
            if let Some(v) = value
                && let Some(s) = ctx.text(v, &k(&format!("claims.{name}")))
            {
                *slot = s;
            }
        }
    }

    let challenge = ctx.keyword(
        f.challenge.as_ref(),
        &k("challenge"),
        &[
            ("entra", ChallengeStyle::Entra),
            ("rfc9470", ChallengeStyle::Rfc9470),
        ],
        ChallengeStyle::Entra,
    );

    IssuerConfig {
        issuer,
        multi_tenant,
        tenants,
        audiences,
        keys,
        jwks_ca,
        algorithms,
        authorization_uri,
        claims,
        challenge,
    }
}

/// `tenants`: GUIDs, lower-cased, only on a `{tenantid}` issuer.
fn tenants(ctx: &mut Ctx<'_>, f: &IssuerFile, key: &str, multi_tenant: bool) -> Vec<String> {
    let Some(list) = &f.tenants else {
        return Vec::new();
    };
    if !multi_tenant {
        ctx.error(
            list,
            &format!("{key}.tenants"),
            "only allowed when issuer contains \"{tenantid}\"",
        );
        return Vec::new();
    }
    let mut out: Vec<String> = Vec::new();
    for (i, item) in list.get_ref().iter().enumerate() {
        let lower = item.get_ref().to_ascii_lowercase();
        if !is_guid(&lower) {
            ctx.error(
                item,
                &format!("{key}.tenants[{i}]"),
                format!(
                    "{:?} is not a tenant GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)",
                    item.get_ref()
                ),
            );
        } else if !out.contains(&lower) {
            out.push(lower);
        }
    }
    out
}

/// `algorithms`: an allow-list of asymmetric JWS algorithms (default RS256).
fn algorithms(ctx: &mut Ctx<'_>, f: &IssuerFile, key: &str) -> Vec<JwsAlgorithm> {
    let Some(list) = &f.algorithms else {
        return vec![JwsAlgorithm::RS256];
    };
    if list.get_ref().is_empty() {
        ctx.error(
            list,
            &format!("{key}.algorithms"),
            "must allow at least one algorithm",
        );
    }
    let mut out = Vec::new();
    for (i, item) in list.get_ref().iter().enumerate() {
        let name = item.get_ref();
        let item_key = format!("{key}.algorithms[{i}]");
        match JwsAlgorithm::parse(name) {
            Some(a) if !out.contains(&a) => out.push(a),
            Some(_) => {}
            None if name.eq_ignore_ascii_case("none")
                || name.to_ascii_uppercase().starts_with("HS") =>
            {
                ctx.error(
                    item,
                    &item_key,
                    format!("{name:?} is refused: symmetric (HS*) and unsigned (none) algorithms are never accepted"),
                );
            }
            None => {
                let valid: Vec<&str> = JwsAlgorithm::ALL.iter().map(|a| a.as_str()).collect();
                ctx.error(
                    item,
                    &item_key,
                    format!("unknown algorithm {name:?} (valid: {})", valid.join(", ")),
                );
            }
        }
    }
    out
}

/// 8-4-4-4-12 lower-case hex.
pub(crate) fn is_guid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups.iter().zip([8, 4, 4, 4, 12]).all(|(g, n)| {
            g.len() == n
                && g.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}

#[cfg(test)]
#[path = "issuers_tests.rs"]
mod tests;
