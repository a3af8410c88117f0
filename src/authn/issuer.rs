//! Per-issuer runtime state and choosing the issuer of a token by its `iss`.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::{Algorithm, Validation};
use moka::sync::Cache;

use super::error::{RefusalReason, TokenRefusal, refuse};
use super::jose::Peek;
use super::store::KeyStore;
use crate::config::{IssuerConfig, JwsAlgorithm};

const TENANT_NOT_ALLOWED: TokenRefusal =
    TokenRefusal::new(RefusalReason::Issuer, "tenant not allowed");

/// Kids remembered as unknown per issuer (a spray of random kids stops here).
const NEGATIVE_CACHE_CAPACITY: u64 = 10_000;

/// One configured issuer, ready for the request path.
pub(crate) struct Issuer {
    pub config: IssuerConfig,
    /// `issuer` split on `{tenantid}` when multi-tenant (at least two pieces).
    template: Option<Vec<String>>,
    /// One prebuilt `Validation` per allowed algorithm (jsonwebtoken requires all of a
    /// validation's algorithms to share the key's family, so one per alg).
    validations: Vec<(JwsAlgorithm, Validation)>,
    pub store: Arc<KeyStore>,
    /// Kids still unknown after a refetch, for `jwks_min_refetch`.
    unknown_kids: Option<Cache<String, ()>>,
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer")
            .field("issuer", &self.config.issuer)
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

pub(crate) fn jwt_algorithm(a: JwsAlgorithm) -> Algorithm {
    match a {
        JwsAlgorithm::RS256 => Algorithm::RS256,
        JwsAlgorithm::RS384 => Algorithm::RS384,
        JwsAlgorithm::RS512 => Algorithm::RS512,
        JwsAlgorithm::PS256 => Algorithm::PS256,
        JwsAlgorithm::PS384 => Algorithm::PS384,
        JwsAlgorithm::PS512 => Algorithm::PS512,
        JwsAlgorithm::ES256 => Algorithm::ES256,
        JwsAlgorithm::ES384 => Algorithm::ES384,
        JwsAlgorithm::EdDSA => Algorithm::EdDSA,
    }
}

impl Issuer {
    pub fn new(
        config: IssuerConfig,
        store: Arc<KeyStore>,
        clock_skew: Duration,
        min_refetch: Duration,
    ) -> Self {
        let template = config
            .multi_tenant
            .then(|| {
                config
                    .issuer
                    .split("{tenantid}")
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .filter(|p| p.len() >= 2);
        let validations = config
            .algorithms
            .iter()
            .map(|&a| {
                let mut v = Validation::new(jwt_algorithm(a));
                v.leeway = clock_skew.as_secs();
                v.validate_exp = true;
                v.validate_nbf = true;
                v.validate_aud = true;
                // `aud` and `iss` must be present: jsonwebtoken skips absent ones otherwise.
                v.set_required_spec_claims(&["exp", "iss", "aud"]);
                v.set_audience(&config.audiences);
                if template.is_none() {
                    v.set_issuer(&[config.issuer.as_str()]);
                }
                (a, v)
            })
            .collect();
        let unknown_kids = (!min_refetch.is_zero()).then(|| {
            Cache::builder()
                .max_capacity(NEGATIVE_CACHE_CAPACITY)
                .time_to_live(min_refetch)
                .build()
        });
        Self {
            config,
            template,
            validations,
            store,
            unknown_kids,
        }
    }

    /// The validation for `alg` with `iss` pinned exactly (per tenant when multi-tenant).
    pub fn validation(&self, alg: JwsAlgorithm, iss: &str) -> Option<Cow<'_, Validation>> {
        let (_, v) = self.validations.iter().find(|(a, _)| *a == alg)?;
        if self.template.is_none() {
            return Some(Cow::Borrowed(v));
        }
        let mut v = v.clone();
        v.set_issuer(&[iss]);
        Some(Cow::Owned(v))
    }

    pub fn is_known_unknown(&self, kid: &str) -> bool {
        self.unknown_kids
            .as_ref()
            .is_some_and(|c| c.contains_key(kid))
    }

    pub fn remember_unknown(&self, kid: &str) {
        if let Some(c) = &self.unknown_kids {
            c.insert(kid.to_owned(), ());
        }
    }

    /// Does this multi-tenant issuer's template, with `tid` put in, equal `iss` exactly?
    fn template_matches(&self, iss: &str, tid: &str) -> bool {
        let Some(pieces) = &self.template else {
            return false;
        };
        let mut rest = iss;
        for (i, piece) in pieces.iter().enumerate() {
            if i > 0 {
                match rest.strip_prefix(tid) {
                    Some(r) => rest = r,
                    None => return false,
                }
            }
            match rest.strip_prefix(piece.as_str()) {
                Some(r) => rest = r,
                None => return false,
            }
        }
        rest.is_empty()
    }
}

/// The issuer a token claims, by exact `iss` (single-tenant issuers first, then the
/// multi-tenant templates in config order).
pub(crate) fn select(issuers: &[Issuer], peek: &Peek) -> Result<usize, TokenRefusal> {
    if let Some(i) = issuers
        .iter()
        .position(|is| is.template.is_none() && is.config.issuer == peek.iss)
    {
        return Ok(i);
    }
    let Some(tid) = peek.tid.as_deref().filter(|t| is_guid(t)) else {
        return Err(refuse::ISSUER);
    };
    let mut tenant_refused = false;
    for (i, is) in issuers.iter().enumerate() {
        if !is.template_matches(&peek.iss, tid) {
            continue;
        }
        if is.config.tenants.is_empty()
            || is
                .config
                .tenants
                .iter()
                .any(|t| t.eq_ignore_ascii_case(tid))
        {
            return Ok(i);
        }
        tenant_refused = true;
    }
    Err(if tenant_refused {
        TENANT_NOT_ALLOWED
    } else {
        refuse::ISSUER
    })
}

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, hex digits of either case.
pub(crate) fn is_guid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, &c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
#[path = "issuer_tests.rs"]
mod tests;
