//! `authenticate`: bearer extraction, JWT validation, JWKS, verified-token cache.
//!
//! ```text
//! Authorization header -> bearer::extract (one header, Bearer scheme, size)
//!   -> cache hit? (SHA-256 of the token; exp/nbf and the verifying key re-checked)
//!   -> bearer::token_syntax (b64token) -> jose: 3 parts, header (alg never none/HS*, no crit, jku/x5u/jwk/x5c never read),
//!            peek iss/tid -> issuer::select (exact iss, {tenantid} substitution)
//!   -> key by kid (unknown kid: single-flight, rate-limited refetch, negative cache)
//!   -> jsonwebtoken::decode (signature, exp, nbf, iss, aud) -> claims -> Principal
//! ```
//!
//! Locks: none on the hot path. Keys are an `ArcSwap` load; the cache is moka's
//! lock-light concurrent map. The only lock (`KeyStore::fetch`, a tokio mutex) is taken
//! when a key is unknown or by the background refresh.

pub mod dev;
pub mod error;
pub mod identity;
pub mod principal;

pub(crate) mod bearer; // also for crate::fuzzing
mod cache;
pub(crate) mod claims; // also for crate::fuzzing
mod fetch;
mod issuer;
pub(crate) mod jose; // also for crate::fuzzing
mod keys;
mod offline;
mod store;

use std::sync::{Arc, Weak};
use std::time::Duration;

use http::HeaderMap;
use prometheus::IntCounter;
use serde::de::IgnoredAny;
use tokio::task::AbortHandle;

pub use bearer::MAX_TOKEN_BYTES;
pub use error::{RefusalReason, TokenRefusal};
pub use offline::principal_from_payload;
pub use principal::Principal;

use cache::{CacheEntry, TokenCache, TokenDigest};
use error::{RefusalCounters, refuse};
use issuer::Issuer;
use keys::{Key, Lookup, MAX_KID_LEN};
use store::{KeyStore, Refetch};

use crate::clock::unix_now;
use crate::config::{ClaimNames, Config, IssuerConfig, KeySource};
use crate::ops::metrics::Metrics;
use crate::respond::Rejection;

const AUDIENCE: TokenRefusal = TokenRefusal::new(RefusalReason::Audience, "audience not accepted");
const SIGNATURE: TokenRefusal =
    TokenRefusal::new(RefusalReason::Signature, "signature verification failed");
const KEY_MISMATCH: TokenRefusal = TokenRefusal::new(
    RefusalReason::Algorithm,
    "signing algorithm does not match the key",
);
const NO_KID: TokenRefusal = TokenRefusal::new(RefusalReason::UnknownKey, "token has no key id");
const KEYS_NOT_LOADED: TokenRefusal = TokenRefusal::new(
    RefusalReason::UnknownKey,
    "signing keys are not available yet",
);

/// Validates bearer tokens for every configured issuer. One per config snapshot; key
/// stores (and the cache, when the issuers are unchanged) carry over a reload.
#[derive(Debug)]
pub struct Authenticator {
    issuers: Vec<Issuer>,
    cache: Arc<TokenCache>,
    skew: i64,
    min_refetch: Duration,
    hits: IntCounter,
    misses: IntCounter,
    refusals: RefusalCounters,
    /// Background refresh tasks, aborted on drop (a reload replaces the Authenticator).
    tasks: Vec<AbortHandle>,
    startup_errors: Vec<String>,
    /// The claim names, when every issuer uses the same ones.
    shared_names: Option<ClaimNames>,
}

impl Authenticator {
    /// Build from a validated config. Never blocks on the network: remote keys load on
    /// background tasks of the current tokio runtime (none outside a runtime: then only
    /// `jwks_file` keys are loaded, which happens here, at config time). `previous` is the
    /// Authenticator being replaced: issuers whose key source is unchanged keep their key
    /// store, and the token cache is kept when no issuer changed.
    pub fn new(config: &Config, metrics: &Metrics, previous: Option<&Authenticator>) -> Self {
        let tokens = &config.tokens;
        let mut startup_errors = Vec::new();
        let cache = match previous {
            Some(p)
                if same_issuers(p, &config.issuers)
                    && p.cache.capacity() == tokens.cache_capacity =>
            {
                Arc::clone(&p.cache)
            }
            _ => Arc::new(TokenCache::new(tokens.cache_capacity)),
        };
        let mut issuers = Vec::with_capacity(config.issuers.len());
        for (idx, cfg) in config.issuers.iter().enumerate() {
            let store = previous
                .and_then(|p| p.issuers.iter().find(|i| i.store.serves(cfg)))
                .map(|i| Arc::clone(&i.store))
                .unwrap_or_else(|| Arc::new(KeyStore::new(cfg, metrics)));
            if let KeySource::File(_) = cfg.keys {
                match store.load_file() {
                    Ok(removed) => cache.invalidate_keys(idx, &removed),
                    Err(e) => {
                        tracing::error!(issuer = %cfg.issuer, error = %e, "cannot load signing keys");
                        startup_errors.push(format!("issuer {}: {e}", cfg.issuer));
                    }
                }
            }
            if cfg.multi_tenant && cfg.keys == KeySource::Discovery {
                startup_errors.push(format!(
                    "issuer {}: a multi-tenant issuer needs jwks_uri or jwks_file (discovery cannot resolve {{tenantid}})",
                    cfg.issuer
                ));
            }
            issuers.push(Issuer::new(
                cfg.clone(),
                store,
                tokens.clock_skew,
                tokens.jwks_min_refetch,
            ));
        }

        let mut tasks = Vec::new();
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                for (idx, is) in issuers.iter().enumerate() {
                    if !is.store.is_remote() {
                        continue;
                    }
                    let weak: Weak<TokenCache> = Arc::downgrade(&cache);
                    let task = rt.spawn(store::refresh_loop(
                        Arc::clone(&is.store),
                        tokens.jwks_refresh,
                        move |removed| {
                            if let Some(c) = weak.upgrade() {
                                c.invalidate_keys(idx, removed);
                            }
                        },
                    ));
                    tasks.push(task.abort_handle());
                }
            }
            Err(_) => {
                if issuers.iter().any(|i| i.store.is_remote()) {
                    tracing::debug!("no tokio runtime: remote signing keys are not loaded");
                }
            }
        }

        Self {
            issuers,
            cache,
            skew: i64::try_from(tokens.clock_skew.as_secs()).unwrap_or(i64::MAX),
            min_refetch: tokens.jwks_min_refetch,
            hits: metrics.token_cache_hits_total.clone(),
            misses: metrics.token_cache_misses_total.clone(),
            refusals: RefusalCounters::new(metrics),
            tasks,
            startup_errors,
            shared_names: shared_names(&config.issuers),
        }
    }

    /// Every issuer has keys (for `/readyz`).
    pub fn is_ready(&self) -> bool {
        self.issuers.iter().all(|i| i.store.current().is_loaded())
    }

    /// Wait (polling, bounded by `timeout`) until [`Self::is_ready`]; for startup and tests.
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.is_ready() {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Problems found while building (unreadable `jwks_file`, multi-tenant issuer without a
    /// key location). `accessgate check` should print these and fail.
    pub fn startup_errors(&self) -> &[String] {
        &self.startup_errors
    }

    /// Stop the background refresh tasks now (dropping does the same).
    pub fn shutdown(&self) {
        for t in &self.tasks {
            t.abort();
        }
    }

    /// Authenticate a request by its headers. Counts cache hits/misses and refusals.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Arc<Principal>, Rejection> {
        self.check(headers).await.map_err(|r| {
            self.refusals.count(r.reason);
            r.to_rejection()
        })
    }

    /// As [`Self::authenticate`], with the precise refusal (reason and description).
    pub async fn check(&self, headers: &HeaderMap) -> Result<Arc<Principal>, TokenRefusal> {
        let raw = bearer::extract(headers)?;
        let digest = TokenDigest::of(raw);
        let now = unix_now();
        if let Some(entry) = self.cache.get(&digest) {
            match self.recheck(&entry, now) {
                Ok(()) => {
                    self.hits.inc();
                    return Ok(Arc::clone(&entry.principal));
                }
                Err(Some(refusal)) => {
                    self.cache.invalidate(&digest);
                    return Err(refusal);
                }
                // The verifying key left the JWKS: verify afresh (and refuse).
                Err(None) => self.cache.invalidate(&digest),
            }
        }
        let token = bearer::token_syntax(raw)?;
        self.misses.inc();
        let (principal, issuer, key) = self.verify(token, &digest, now).await?;
        let principal = Arc::new(principal);
        self.cache.insert(
            digest,
            CacheEntry {
                principal: Arc::clone(&principal),
                issuer,
                key,
            },
            now,
        );
        Ok(principal)
    }

    /// A cache hit is only as good as a fresh check of time and key.
    fn recheck(&self, e: &CacheEntry, now: i64) -> Result<(), Option<TokenRefusal>> {
        self.time_check(e.principal.exp, e.principal.nbf, now)
            .map_err(Some)?;
        match self.issuers.get(e.issuer) {
            Some(is) if is.store.current().contains(&e.key) => Ok(()),
            _ => Err(None),
        }
    }

    fn time_check(&self, exp: i64, nbf: Option<i64>, now: i64) -> Result<(), TokenRefusal> {
        if exp.saturating_add(self.skew) < now {
            return Err(refuse::EXPIRED);
        }
        if nbf.is_some_and(|n| n.saturating_sub(self.skew) > now) {
            return Err(refuse::NOT_YET_VALID);
        }
        Ok(())
    }

    /// `iat` / `auth_time` beyond `now + clock_skew` are refused: sign-out and
    /// sign-in-frequency rules compare them with a moment in time, and a future value
    /// would always read as "signed in after the sign-out".
    fn issued_check(
        &self,
        iat: Option<i64>,
        auth_time: Option<i64>,
        now: i64,
    ) -> Result<(), TokenRefusal> {
        let future = |t: Option<i64>| t.is_some_and(|t| t.saturating_sub(self.skew) > now);
        if future(iat) {
            return Err(refuse::FUTURE_IAT);
        }
        if future(auth_time) {
            return Err(refuse::FUTURE_AUTH_TIME);
        }
        Ok(())
    }

    async fn verify(
        &self,
        token: &str,
        digest: &TokenDigest,
        now: i64,
    ) -> Result<(Principal, usize, Arc<Key>), TokenRefusal> {
        let parts = jose::split(token)?;
        let header = jose::parse_header(parts.header)?;
        let payload = jose::b64_decode(parts.payload)?;
        // When every issuer reads the same claim names (the usual case), one parse serves
        // both choosing the issuer and, after verification, the principal.
        let parsed = match &self.shared_names {
            Some(names) => Some(claims::parse(&payload, names)?),
            None => None,
        };
        let peek = match &parsed {
            Some(c) => c.peek()?,
            None => jose::peek(&payload)?,
        };
        let idx = issuer::select(&self.issuers, &peek)?;
        let is = &self.issuers[idx];
        if !is.config.algorithms.contains(&header.alg) {
            return Err(refuse::ALG_NOT_ALLOWED);
        }
        let key = self.key_for(idx, header.kid.as_deref()).await?;
        if !key.accepts(header.alg) {
            return Err(KEY_MISMATCH);
        }
        let validation = is
            .validation(header.alg, &peek.iss)
            .ok_or(refuse::ALG_NOT_ALLOWED)?;
        jsonwebtoken::decode::<IgnoredAny>(token, &key.decoding, &validation)
            .map_err(|e| jwt_refusal(&e))?;
        let iss: Arc<str> = Arc::from(peek.iss);
        let hash_id = || claims::short_hash_id(&digest.0);
        let principal = match parsed {
            Some(c) => c.into_principal(idx, &iss, hash_id)?,
            None => claims::principal(&payload, &is.config.claims, idx, &iss, hash_id)?,
        };
        // jsonwebtoken checked these already; the cache re-checks with this same function,
        // so both paths agree on the boundary.
        self.time_check(principal.exp, principal.nbf, now)?;
        // Only a verified token reaches the cache, and its iat / auth_time only move into
        // the past, so this one check at verification is enough.
        self.issued_check(principal.iat, principal.auth_time, now)?;
        Ok((principal, idx, key))
    }

    /// The key for `kid`, refetching once (single-flight, rate-limited) when unknown.
    async fn key_for(&self, idx: usize, kid: Option<&str>) -> Result<Arc<Key>, TokenRefusal> {
        let is = &self.issuers[idx];
        let seen = {
            let set = is.store.current();
            match set.find(kid) {
                Lookup::Found(k) => return Ok(Arc::clone(k)),
                Lookup::Ambiguous => return Err(NO_KID),
                Lookup::Absent => set.generation,
            }
        };
        // Absent without a kid means an empty set; remember it under "".
        let neg = kid.unwrap_or("");
        if neg.len() > MAX_KID_LEN || is.is_known_unknown(neg) {
            return Err(refuse::UNKNOWN_KEY);
        }
        if let Refetch::Changed(removed) = is.store.refetch_unknown(seen, self.min_refetch).await {
            self.cache.invalidate_keys(idx, &removed);
        }
        let set = is.store.current();
        match set.find(kid) {
            Lookup::Found(k) => Ok(Arc::clone(k)),
            Lookup::Ambiguous => Err(NO_KID),
            Lookup::Absent if !set.is_loaded() => Err(KEYS_NOT_LOADED),
            Lookup::Absent => {
                is.remember_unknown(neg);
                Err(refuse::UNKNOWN_KEY)
            }
        }
    }

    /// Entries in the verified-token cache (after pending maintenance), for tests and
    /// diagnostics.
    pub fn cached_tokens(&self) -> u64 {
        self.cache.sync();
        self.cache.entry_count()
    }
}

impl Drop for Authenticator {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn shared_names(issuers: &[IssuerConfig]) -> Option<ClaimNames> {
    let first = &issuers.first()?.claims;
    issuers
        .iter()
        .all(|i| &i.claims == first)
        .then(|| first.clone())
}

/// Issuers equal in everything a cached principal depends on, in the same order.
fn same_issuers(prev: &Authenticator, next: &[IssuerConfig]) -> bool {
    prev.issuers.len() == next.len()
        && prev.issuers.iter().zip(next).all(|(a, b)| {
            let a = &a.config;
            a.issuer == b.issuer
                && a.multi_tenant == b.multi_tenant
                && a.tenants == b.tenants
                && a.audiences == b.audiences
                && a.keys == b.keys
                && a.jwks_ca == b.jwks_ca
                && a.algorithms == b.algorithms
                && a.claims == b.claims
        })
}

fn jwt_refusal(e: &jsonwebtoken::errors::Error) -> TokenRefusal {
    use jsonwebtoken::errors::ErrorKind as K;
    match e.kind() {
        K::ExpiredSignature => refuse::EXPIRED,
        K::ImmatureSignature => refuse::NOT_YET_VALID,
        K::InvalidAudience => AUDIENCE,
        K::InvalidIssuer => refuse::ISSUER,
        K::InvalidSignature => SIGNATURE,
        K::InvalidAlgorithm | K::MissingAlgorithm | K::InvalidAlgorithmName => {
            refuse::ALG_NOT_ALLOWED
        }
        K::MissingRequiredClaim(c) if c == "aud" => AUDIENCE,
        K::MissingRequiredClaim(c) if c == "iss" => refuse::ISSUER,
        K::MissingRequiredClaim(_) | K::InvalidClaimFormat(_) => refuse::CLAIMS,
        K::InvalidToken | K::Base64(_) | K::Json(_) | K::Utf8(_) => refuse::MALFORMED,
        // Key and provider errors: the token did not verify.
        _ => SIGNATURE,
    }
}

#[cfg(test)]
#[path = "mod_tests.rs"]
mod tests;
