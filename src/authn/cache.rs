//! The verified-token cache: SHA-256 of the whole token -> the principal it proved.
//!
//! Bounded by `cache_capacity` (moka, TinyLFU admission). Each entry expires at its token's
//! `exp` (moka's per-entry `Expiry`), and the caller re-checks `exp`/`nbf` and that the
//! verifying key is still published on every hit, so a cached answer is never staler than
//! a fresh verification would be.
//!
//! The map hashes keys with the first 8 bytes of the SHA-256 itself instead of SipHash: the
//! key is already a uniform cryptographic digest, and only tokens whose signature verified
//! are ever inserted, so an attacker cannot choose keys to collide.

use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lc_rs::digest;
use moka::Expiry;
use moka::sync::Cache;

use super::keys::Key;
use super::principal::Principal;

/// SHA-256 of a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenDigest(pub [u8; 32]);

impl TokenDigest {
    pub fn of(token: &[u8]) -> Self {
        let d = digest::digest(&digest::SHA256, token);
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        Self(out)
    }
}

impl Hash for TokenDigest {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let mut first = [0u8; 8];
        first.copy_from_slice(&self.0[..8]);
        state.write_u64(u64::from_le_bytes(first));
    }
}

/// Passes the digest's own bits through (see the module doc for why that is safe).
#[derive(Debug, Clone, Copy, Default)]
pub struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only reached if something other than `TokenDigest` is hashed; stay correct.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 ^= v;
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct BuildDigestHasher;

impl BuildHasher for BuildDigestHasher {
    type Hasher = DigestHasher;
    fn build_hasher(&self) -> DigestHasher {
        DigestHasher::default()
    }
}

/// What a hit returns.
#[derive(Debug)]
pub struct CacheEntry {
    pub principal: Arc<Principal>,
    /// Index of the issuer in this config (the cache is only carried over a reload when
    /// the issuers are unchanged, so indices stay meaningful).
    pub issuer: usize,
    /// The key that verified the token; the entry is void once it leaves the key set.
    pub key: Arc<Key>,
}

/// Expire each entry at its token's `exp`.
struct UntilExp;

impl Expiry<TokenDigest, Arc<CacheEntry>> for UntilExp {
    fn expire_after_create(
        &self,
        _key: &TokenDigest,
        value: &Arc<CacheEntry>,
        _created_at: Instant,
    ) -> Option<Duration> {
        let left = value.principal.exp.saturating_sub(crate::clock::unix_now());
        Some(Duration::from_secs(u64::try_from(left).unwrap_or(0)))
    }
}

/// The verified-token cache.
pub struct TokenCache {
    inner: Cache<TokenDigest, Arc<CacheEntry>, BuildDigestHasher>,
    capacity: u64,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("capacity", &self.capacity)
            .field("entries", &self.inner.entry_count())
            .finish()
    }
}

impl TokenCache {
    pub fn new(capacity: u64) -> Self {
        Self {
            inner: Cache::builder()
                .max_capacity(capacity)
                .expire_after(UntilExp)
                .support_invalidation_closures()
                .build_with_hasher(BuildDigestHasher),
            capacity,
        }
    }

    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    pub fn get(&self, d: &TokenDigest) -> Option<Arc<CacheEntry>> {
        if self.capacity == 0 {
            return None;
        }
        self.inner.get(d)
    }

    /// Insert unless the token is already past its `exp` (it was accepted within the clock
    /// skew; such tokens are verified afresh every time).
    pub fn insert(&self, d: TokenDigest, entry: CacheEntry, now: i64) {
        if self.capacity == 0 || entry.principal.exp <= now {
            return;
        }
        self.inner.insert(d, Arc::new(entry));
    }

    pub fn invalidate(&self, d: &TokenDigest) {
        self.inner.invalidate(d);
    }

    /// Drop every entry of `issuer` verified by one of the `removed` keys.
    pub fn invalidate_keys(&self, issuer: usize, removed: &[[u8; 32]]) {
        if removed.is_empty() {
            return;
        }
        let removed = removed.to_vec();
        // Fails only if closures were not enabled at build time (they are); the per-hit
        // key check in `Authenticator` refuses such entries regardless.
        let _ = self.inner.invalidate_entries_if(move |_, e| {
            e.issuer == issuer && removed.contains(&e.key.fingerprint)
        });
    }

    /// Run pending maintenance (tests and benches observe exact counts after this).
    pub fn sync(&self) {
        self.inner.run_pending_tasks();
    }

    pub fn entry_count(&self) -> u64 {
        self.inner.entry_count()
    }
}
