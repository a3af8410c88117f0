//! One issuer's key store: the current [`KeySet`] behind an `ArcSwap` (the request path
//! only ever does a lock-free load) and the cold-path machinery that replaces it.
//!
//! Locks: `fetch` (a tokio mutex) is held only while fetching, never on the request path
//! for a known `kid`. It serialises background refreshes and unknown-`kid` refetches, which
//! makes the refetch single-flight: requests that queued behind a fetch see the generation
//! change and look again instead of fetching again. `last_on_demand` rate-limits refetches
//! triggered by unknown kids to one per `jwks_min_refetch` per issuer.
//!
//! A store outlives config reloads when its issuer's key source is unchanged (the new
//! `Authenticator` takes the same `Arc`), so a reload never makes keys disappear.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arc_swap::{ArcSwap, Guard};
use prometheus::IntCounter;
use tokio::sync::Mutex;

use super::fetch::{self, HttpClient};
use super::keys::{Key, KeySet, ParsedJwks, parse_jwks};
use crate::config::{IssuerConfig, KeySource};
use crate::ops::metrics::Metrics;

/// Fingerprints of keys that left the set in one publish.
pub type Removed = Vec<[u8; 32]>;

/// What an unknown-`kid` refetch did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refetch {
    /// The key set changed (by this fetch or by one we waited for): look again.
    Changed(Removed),
    /// Not fetched: the last on-demand fetch was less than `jwks_min_refetch` ago, or the
    /// keys come from a file.
    Skipped,
    /// Fetched and failed; the last good keys stay.
    Failed,
}

#[derive(Default)]
struct FetchState {
    last_on_demand: Option<Instant>,
    /// From discovery; cleared after a failed fetch so the next one rediscovers.
    jwks_uri: Option<String>,
    client: Option<HttpClient>,
}

/// One issuer's keys.
pub struct KeyStore {
    /// The configured `issuer` (with `{tenantid}` when multi-tenant): names it in logs and
    /// in the `issuer` label of `jwks_refresh_total`.
    pub issuer: String,
    source: KeySource,
    ca: Option<PathBuf>,
    keys: ArcSwap<KeySet>,
    fetch: Mutex<FetchState>,
    /// Lock-free copy of `FetchState::last_on_demand` (ms since `epoch`, +1; 0 = never), so
    /// a spray of unknown kids inside `jwks_min_refetch` is turned away without queueing
    /// on the lock. The check under the lock stays authoritative.
    last_on_demand_ms: AtomicU64,
    epoch: Instant,
    fetched_ok: IntCounter,
    fetched_err: IntCounter,
}

impl std::fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyStore")
            .field("issuer", &self.issuer)
            .field("source", &self.source)
            .field("generation", &self.keys.load().generation)
            .finish_non_exhaustive()
    }
}

impl KeyStore {
    pub fn new(cfg: &IssuerConfig, metrics: &Metrics) -> Self {
        let label = cfg.issuer.as_str();
        Self {
            issuer: cfg.issuer.clone(),
            source: cfg.keys.clone(),
            ca: cfg.jwks_ca.clone(),
            keys: ArcSwap::from_pointee(KeySet::default()),
            fetch: Mutex::new(FetchState::default()),
            last_on_demand_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            fetched_ok: metrics
                .jwks_refresh_total
                .with_label_values(&[label, "success"]),
            fetched_err: metrics
                .jwks_refresh_total
                .with_label_values(&[label, "error"]),
        }
    }

    /// Whether this store serves `cfg` unchanged (same issuer, key source and CA), so a
    /// reload can keep it.
    pub fn serves(&self, cfg: &IssuerConfig) -> bool {
        self.issuer == cfg.issuer && self.source == cfg.keys && self.ca == cfg.jwks_ca
    }

    /// The current keys: one lock-free load.
    pub fn current(&self) -> Guard<Arc<KeySet>> {
        self.keys.load()
    }

    /// Keys fetched over the network (and so refreshed and refetched)?
    pub fn is_remote(&self) -> bool {
        !matches!(self.source, KeySource::File(_))
    }

    /// Read `jwks_file` now. Config-time only (construction of an `Authenticator`).
    pub fn load_file(&self) -> Result<Removed, String> {
        let KeySource::File(path) = &self.source else {
            return Ok(Vec::new());
        };
        let bytes =
            std::fs::read(path).map_err(|e| format!("jwks_file {}: {e}", path.display()))?;
        let parsed =
            parse_jwks(&bytes).map_err(|e| format!("jwks_file {}: {e}", path.display()))?;
        self.note_skipped(&parsed);
        Ok(self.publish(parsed))
    }

    /// Replace the key set. Callers hold the `fetch` lock (remote keys) or are constructing
    /// the store's owner (file keys), so two publishes never race. Keys present before (same fingerprint) keep their allocation,
    /// so cached tokens they verified stay valid; returns the fingerprints that left.
    fn publish(&self, parsed: ParsedJwks) -> Removed {
        let old = self.keys.load_full();
        let keys: Vec<Arc<Key>> = parsed
            .keys
            .into_iter()
            .map(|k| {
                old.keys
                    .iter()
                    .find(|o| o.fingerprint == k.fingerprint)
                    .map(Arc::clone)
                    .unwrap_or_else(|| Arc::new(k))
            })
            .collect();
        let removed = old
            .keys
            .iter()
            .filter(|o| !keys.iter().any(|k| Arc::ptr_eq(k, o)))
            .map(|o| o.fingerprint)
            .collect();
        self.keys.store(Arc::new(KeySet {
            keys,
            generation: old.generation + 1,
        }));
        removed
    }

    fn note_skipped(&self, parsed: &ParsedJwks) {
        for s in &parsed.skipped {
            tracing::debug!(issuer = %self.issuer, "JWKS: skipped {s}");
        }
    }

    /// Fetch now (waiting for any fetch in progress), e.g. the periodic refresh.
    pub async fn refresh(&self) -> Result<Removed, String> {
        let mut st = self.fetch.lock().await;
        self.fetch_locked(&mut st).await
    }

    /// The unknown-`kid` path. `seen_generation` is the key set the caller looked in.
    /// Runs the fetch on its own task so a client hanging up cannot cancel it half-way.
    pub async fn refetch_unknown(self: &Arc<Self>, seen_generation: u64, min: Duration) -> Refetch {
        if !self.is_remote() || self.recently_refetched(min) {
            return Refetch::Skipped;
        }
        let store = Arc::clone(self);
        let work = async move {
            let mut st = store.fetch.lock().await;
            if store.keys.load().generation != seen_generation {
                // Someone fetched while we queued: single flight.
                return Refetch::Changed(Vec::new());
            }
            if st.last_on_demand.is_some_and(|t| t.elapsed() < min) {
                return Refetch::Skipped;
            }
            let now = Instant::now();
            st.last_on_demand = Some(now);
            let ms = now.saturating_duration_since(store.epoch).as_millis();
            store.last_on_demand_ms.store(
                u64::try_from(ms).unwrap_or(u64::MAX - 1) + 1,
                Ordering::Release,
            );
            match store.fetch_locked(&mut st).await {
                Ok(removed) => Refetch::Changed(removed),
                Err(_) => Refetch::Failed,
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => rt.spawn(work).await.unwrap_or(Refetch::Failed),
            // Not on a tokio runtime (a foreign executor): run inline rather than panic.
            Err(_) => work.await,
        }
    }

    fn recently_refetched(&self, min: Duration) -> bool {
        let last = self.last_on_demand_ms.load(Ordering::Acquire);
        if last == 0 {
            return false;
        }
        let now = self.epoch.elapsed().as_millis();
        now.saturating_sub(u128::from(last - 1)) < min.as_millis()
    }

    async fn fetch_locked(&self, st: &mut FetchState) -> Result<Removed, String> {
        let result = self.fetch_and_parse(st).await;
        match result {
            Ok(parsed) => {
                self.fetched_ok.inc();
                self.note_skipped(&parsed);
                let n = parsed.keys.len();
                let removed = self.publish(parsed);
                tracing::info!(issuer = %self.issuer, keys = n, removed = removed.len(), "JWKS refreshed");
                Ok(removed)
            }
            Err(e) => {
                self.fetched_err.inc();
                st.jwks_uri = None;
                tracing::warn!(issuer = %self.issuer, error = %e, "JWKS fetch failed; keeping the last good keys");
                Err(e)
            }
        }
    }

    async fn fetch_and_parse(&self, st: &mut FetchState) -> Result<ParsedJwks, String> {
        let client = match &st.client {
            Some(c) => c.clone(),
            None => {
                // Reads certificate files: off the async workers.
                let ca = self.ca.clone();
                let c = tokio::task::spawn_blocking(move || fetch::build_client(ca.as_deref()))
                    .await
                    .map_err(|e| format!("building the HTTPS client: {e}"))??;
                st.client = Some(c.clone());
                c
            }
        };
        let uri = match (&self.source, &st.jwks_uri) {
            (KeySource::Uri(u), _) => u.clone(),
            (KeySource::Discovery, Some(u)) => u.clone(),
            (KeySource::Discovery, None) => {
                if self.issuer.contains("{tenantid}") {
                    return Err("a multi-tenant issuer needs jwks_uri or jwks_file".into());
                }
                let u = fetch::discover_jwks_uri(&client, &self.issuer).await?;
                st.jwks_uri = Some(u.clone());
                u
            }
            (KeySource::File(_), _) => return Err("keys come from jwks_file".into()),
        };
        let body = fetch::get(&client, &uri).await?;
        parse_jwks(&body).map_err(|e| format!("{uri}: {e}"))
    }
}

/// The background task of one issuer: load (retrying with backoff until the first
/// success), then refresh every `every`, retrying sooner after a failure. `on_removed`
/// drops cached tokens verified by keys that left. Ends when its `Authenticator` aborts it.
pub async fn refresh_loop(
    store: Arc<KeyStore>,
    every: Duration,
    on_removed: impl Fn(&Removed) + Send + 'static,
) {
    let every = every.max(Duration::from_secs(1));
    let retry_cap = every.min(Duration::from_secs(60));
    let mut retry = Duration::from_secs(1).min(retry_cap);
    let mut next = if store.current().is_loaded() {
        every
    } else {
        Duration::ZERO
    };
    loop {
        if !next.is_zero() {
            tokio::time::sleep(next).await;
        }
        match store.refresh().await {
            Ok(removed) => {
                on_removed(&removed);
                retry = Duration::from_secs(1).min(retry_cap);
                next = every;
            }
            Err(_) => {
                next = retry;
                retry = (retry * 2).min(retry_cap);
            }
        }
    }
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
