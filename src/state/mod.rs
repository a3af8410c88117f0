//! Policy state: where it comes from (file / http), how it refreshes, and the
//! atomically swapped snapshot `authorize` reads.
//!
//! A background task polls the source every `refresh`. A new version is parsed and
//! validated off the runtime threads (`spawn_blocking`: a million records take seconds)
//! and only then swapped in; a source that is unreachable or serves something invalid
//! never replaces the last good state. Requests load the current snapshot once
//! (lock-free `ArcSwap`), so a request in flight finishes on the state it started with.
//!
//! Locks here (`Mutex` around the source's poll state and the last error) are taken only by
//! the refresh task, `SIGHUP` refreshes and readiness checks: never on the request path.
//!
//! Freshness: the state is as old as the last time the source confirmed it (a load, an
//! unchanged file, or an HTTP 304). Past `max_staleness` requests that need state get 503,
//! unless `fail_open`.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwapOption;
use tokio::task::AbortHandle;

use crate::clock;
use crate::config::{StateConfig, StateSource};
use crate::ops::metrics::Metrics;
use crate::policy::PolicyState;

mod early_apply;
pub mod graph;
pub mod publish;
pub mod redis;
pub(crate) mod source;

pub use source::MAX_STATE_BYTES;
use source::{Fetched, Source};

/// One loaded state version.
#[derive(Debug)]
pub struct StateSnapshot {
    pub state: PolicyState,
    /// When it was loaded (unix milliseconds).
    pub loaded_at_ms: i64,
    /// Where it came from (path or URL), for logs.
    pub origin: String,
}

/// The knobs of `[state]` that decide how requests treat old state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Freshness {
    pub refresh: Duration,
    pub max_staleness: Duration,
    pub fail_open: bool,
}

impl From<&StateConfig> for Freshness {
    fn from(c: &StateConfig) -> Self {
        Self {
            refresh: c.refresh,
            max_staleness: c.max_staleness,
            fail_open: c.fail_open,
        }
    }
}

/// What a refresh did (also the `accessgate_state_refresh_total{outcome}` label).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshOutcome {
    Updated,
    Unchanged,
    Error(String),
}

impl RefreshOutcome {
    pub fn label(&self) -> &'static str {
        match self {
            Self::Updated => "updated",
            Self::Unchanged => "unchanged",
            Self::Error(_) => "error",
        }
    }
}

/// The current policy state and its refresher.
pub struct StateStore {
    current: ArcSwapOption<StateSnapshot>,
    /// Unix ms when the source last confirmed the current state; `i64::MIN` = never.
    checked_at_ms: AtomicI64,
    freshness: Freshness,
    source: Option<tokio::sync::Mutex<Source>>,
    metrics: Option<Metrics>,
    last_error: Mutex<Option<String>>,
    task: Mutex<Option<AbortHandle>>,
    /// Unix seconds of the last fail-open warning (rate limit: one per 10 s).
    fail_open_warned: AtomicI64,
    /// `source = "redis"` with `cache_dir`: flushed at shutdown.
    redis_cache: std::sync::OnceLock<Arc<redis::cache::RedisCache>>,
}

impl std::fmt::Debug for StateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateStore")
            .field("loaded", &self.current.load().is_some())
            .field("freshness", &self.freshness)
            .finish()
    }
}

impl Drop for StateStore {
    fn drop(&mut self) {
        if let Ok(mut t) = self.task.lock()
            && let Some(h) = t.take()
        {
            h.abort();
        }
    }
}

/// Unix milliseconds of `t` (0 before the epoch).
impl StateStore {
    /// Start the store for `[state]`: the first load is attempted before this returns
    /// (bounded by the source's timeouts); then a background task refreshes every
    /// `refresh` until the store is dropped. A failed first load is not fatal: the store
    /// is simply not ready (see [`StateStore::readiness`]) and keeps trying.
    pub async fn start(cfg: &StateConfig, metrics: &Metrics) -> Arc<StateStore> {
        if let StateSource::Redis(endpoint) = &cfg.source {
            let store = Self::follow_redis_cached(
                endpoint.clone(),
                cfg.cache_dir.as_deref(),
                Freshness::from(cfg),
                Some(metrics.clone()),
                // Bounded: a gateway started while Redis is down starts (not ready) soon.
                Duration::from_secs(3),
            )
            .await;
            store.spawn_age_ticker(cfg.refresh);
            return store;
        }
        let source = match &cfg.source {
            StateSource::Redis(_) => Err("unreachable: redis is followed above".to_owned()),
            StateSource::File(p) => Ok(Source::file(p.clone())),
            StateSource::Http { url, ca } => {
                let (url, ca) = (url.clone(), ca.clone());
                // Building the client reads CA files: keep it off the runtime threads.
                match tokio::task::spawn_blocking(move || Source::http(url, ca.as_deref())).await {
                    Ok(r) => r,
                    Err(e) => Err(format!("state http client: {e}")),
                }
            }
            StateSource::Graph(g) => {
                let (g, dir, m) = (g.clone(), cfg.cache_dir.clone(), metrics.clone());
                // Reads the credential and the ledger: keep it off the runtime threads.
                let built = tokio::task::spawn_blocking(move || {
                    graph::GraphSource::new(
                        &g,
                        dir.as_deref(),
                        Some(m),
                        graph::RetryPolicy::default(),
                    )
                })
                .await;
                match built {
                    Ok(Ok(s)) => Ok(Source::Graph(Box::new(s))),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(e) => Err(format!("graph source: {e}")),
                }
            }
        };
        let (source, error) = match source {
            Ok(s) => (Some(tokio::sync::Mutex::new(s)), None),
            Err(e) => (None, Some(e)),
        };
        let store = Arc::new(StateStore {
            current: ArcSwapOption::empty(),
            checked_at_ms: AtomicI64::new(i64::MIN),
            freshness: Freshness::from(cfg),
            source,
            metrics: Some(metrics.clone()),
            last_error: Mutex::new(None),
            task: Mutex::new(None),
            fail_open_warned: AtomicI64::new(i64::MIN),
            redis_cache: std::sync::OnceLock::new(),
        });
        if let Some(e) = error {
            tracing::error!(error = %e, "policy state source unusable");
            store.set_error(Some(e));
            return store;
        }
        let _ = store.refresh().await;
        store.observe_age(clock::now());
        let weak = Arc::downgrade(&store);
        let handle = tokio::spawn(refresh_loop(weak, cfg.refresh));
        if let Ok(mut t) = store.task.lock() {
            *t = Some(handle.abort_handle());
        }
        store
    }

    /// Write what `cache_dir` should hold now (shutdown); a no-op without one. Bounded by
    /// the caller: a write copies the whole snapshot.
    pub async fn flush_cache(&self) {
        if let Some(c) = self.redis_cache.get() {
            c.flush().await;
        }
    }

    /// A store holding `state` with no source (tests, What If, benches). Confirmed now.
    pub fn with_state(state: PolicyState, freshness: Freshness) -> Arc<StateStore> {
        let store = Self::without_state(freshness);
        store.publish(state, clock::now());
        store
    }

    /// The same store reporting to `metrics` (before it is shared).
    fn with_metrics(self: Arc<Self>, metrics: Metrics) -> Arc<Self> {
        match Arc::try_unwrap(self) {
            Ok(mut s) => {
                s.metrics = Some(metrics);
                Arc::new(s)
            }
            Err(shared) => shared,
        }
    }

    /// Keep `accessgate_state_age_seconds` moving for a store without a refresh loop.
    fn spawn_age_ticker(self: &Arc<Self>, every: Duration) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick =
                tokio::time::interval(every.clamp(Duration::from_secs(1), Duration::from_secs(10)));
            loop {
                tick.tick().await;
                let Some(s) = weak.upgrade() else { return };
                s.observe_age(SystemTime::now());
            }
        });
    }

    /// A store with no state and no source: never ready until something is published.
    pub fn without_state(freshness: Freshness) -> Arc<StateStore> {
        Arc::new(StateStore {
            current: ArcSwapOption::empty(),
            checked_at_ms: AtomicI64::new(i64::MIN),
            freshness,
            source: None,
            metrics: None,
            last_error: Mutex::new(None),
            task: Mutex::new(None),
            fail_open_warned: AtomicI64::new(i64::MIN),
            redis_cache: std::sync::OnceLock::new(),
        })
    }

    /// Swap in a new state, confirmed at `at`. Requests already holding the old snapshot
    /// finish on it.
    pub fn publish(&self, state: PolicyState, at: SystemTime) {
        let ms = clock::unix_ms(at);
        self.current.store(Some(Arc::new(StateSnapshot {
            state,
            loaded_at_ms: ms,
            origin: "published".into(),
        })));
        self.checked_at_ms.store(ms, Ordering::Release);
    }

    /// The current snapshot (lock-free), or `None` before the first good load.
    pub fn current(&self) -> Option<Arc<StateSnapshot>> {
        self.current.load_full()
    }

    pub fn freshness(&self) -> Freshness {
        self.freshness
    }

    /// How long since the source last confirmed the state; `None` if never loaded.
    pub fn age(&self, now: SystemTime) -> Option<Duration> {
        let at = self.checked_at_ms.load(Ordering::Acquire);
        if at == i64::MIN {
            return None;
        }
        let ms = clock::unix_ms(now).saturating_sub(at).max(0);
        Some(Duration::from_millis(u64::try_from(ms).unwrap_or(0)))
    }

    /// Loaded, and confirmed within `max_staleness`.
    pub fn is_fresh(&self, now: SystemTime) -> bool {
        self.current.load().is_some()
            && self
                .age(now)
                .is_some_and(|a| a <= self.freshness.max_staleness)
    }

    /// `Retry-After` for a 503: the next refresh is the earliest chance of fresh state.
    pub fn retry_after(&self) -> u64 {
        self.freshness.refresh.as_secs().clamp(1, 60)
    }

    /// For `/readyz`: `Err` names why requests needing state would get 503.
    pub fn readiness(&self, now: SystemTime) -> Result<(), String> {
        let last = self.last_error.lock().ok().and_then(|e| e.clone());
        match self.age(now) {
            _ if self.current.load().is_none() => Err(match last {
                Some(e) => format!("policy state not loaded: {e}"),
                None => "policy state not loaded yet".into(),
            }),
            Some(a) if a <= self.freshness.max_staleness => Ok(()),
            a => Err(format!(
                "policy state stale: {}s old (max_staleness {}s){}",
                a.map_or(0, |a| a.as_secs()),
                self.freshness.max_staleness.as_secs(),
                last.map(|e| format!("; last error: {e}"))
                    .unwrap_or_default()
            )),
        }
    }

    /// Set `accessgate_state_age_seconds` (the refresh task does it every tick; the admin
    /// listener may call it before encoding `/metrics` for an exact figure).
    pub fn observe_age(&self, now: SystemTime) {
        if let (Some(m), Some(age)) = (&self.metrics, self.age(now)) {
            m.state_age_seconds.set(age.as_secs_f64());
        }
    }

    /// Log a fail-open decision at warn, at most once per 10 seconds (the counter counts all).
    pub(crate) fn warn_fail_open(&self, now_s: i64) {
        let last = self.fail_open_warned.load(Ordering::Relaxed);
        if (last == i64::MIN || now_s.saturating_sub(last) >= 10)
            && self
                .fail_open_warned
                .compare_exchange(last, now_s, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                "policy state unavailable or stale; fail_open = true lets requests through without state checks"
            );
        }
    }

    fn set_error(&self, e: Option<String>) {
        if let Ok(mut g) = self.last_error.lock() {
            *g = e;
        }
    }

    async fn source_wants_fetch_now(&self) -> bool {
        match &self.source {
            Some(s) => s.lock().await.wants_fetch_now().await,
            None => false,
        }
    }

    /// Poll the source once now (the refresh task, and `SIGHUP`).
    pub async fn refresh(&self) -> RefreshOutcome {
        let Some(source) = &self.source else {
            return RefreshOutcome::Unchanged;
        };
        let mut src = source.lock().await;
        let loaded = self.current.load().is_some();
        // Graph: critical changes are applied as their pages are read, on top of the
        // state built from the connector's last round (none before a first round).
        let hook = match &*src {
            Source::Graph(g) if loaded => g.last().await.map(|last| early_apply::StoreHook {
                store: self,
                last,
                origin: src.origin().to_owned(),
                early: Mutex::default(),
            }),
            _ => None,
        };
        let fetched = src
            .fetch_with(loaded, hook.as_ref().map(|h| h as &dyn graph::PageHook))
            .await;
        drop(hook);
        let outcome = match fetched {
            Ok(Fetched::Unchanged) => {
                self.checked_at_ms
                    .store(clock::unix_ms(clock::now()), Ordering::Release);
                RefreshOutcome::Unchanged
            }
            Ok(Fetched::New { bytes, version }) => {
                let parsed = tokio::task::spawn_blocking(move || PolicyState::from_json(&bytes))
                    .await
                    .unwrap_or_else(|e| Err(format!("state parser stopped: {e}")));
                match parsed {
                    Ok(state) => {
                        let counts = state.counts();
                        let now = clock::now();
                        self.current.store(Some(Arc::new(StateSnapshot {
                            state,
                            loaded_at_ms: clock::unix_ms(now),
                            origin: src.origin().to_owned(),
                        })));
                        self.checked_at_ms
                            .store(clock::unix_ms(now), Ordering::Release);
                        src.commit(version);
                        tracing::info!(origin = src.origin(), %counts, "policy state loaded");
                        RefreshOutcome::Updated
                    }
                    Err(e) => RefreshOutcome::Error(format!("{}: {e}", src.origin())),
                }
            }
            Ok(Fetched::State { state, at }) => {
                let counts = state.counts();
                self.current.store(Some(Arc::new(StateSnapshot {
                    state: *state,
                    loaded_at_ms: clock::unix_ms(SystemTime::now()),
                    origin: src.origin().to_owned(),
                })));
                // The age is the source's: a cached snapshot keeps the age it had.
                self.checked_at_ms
                    .store(clock::unix_ms(at), Ordering::Release);
                tracing::info!(origin = src.origin(), %counts, "policy state loaded");
                RefreshOutcome::Updated
            }
            Err(e) => RefreshOutcome::Error(e),
        };
        drop(src);
        match &outcome {
            RefreshOutcome::Error(e) => {
                let repeated = self
                    .last_error
                    .lock()
                    .ok()
                    .is_some_and(|g| g.as_deref() == Some(e.as_str()));
                if repeated {
                    tracing::debug!(error = %e, "policy state refresh failed again; keeping the last good state");
                } else {
                    tracing::warn!(error = %e, "policy state refresh failed; keeping the last good state");
                }
                self.set_error(Some(e.clone()));
            }
            RefreshOutcome::Updated | RefreshOutcome::Unchanged => self.set_error(None),
        }
        if let Some(m) = &self.metrics {
            m.state_refresh_total
                .with_label_values(&[outcome.label()])
                .inc();
            match &outcome {
                RefreshOutcome::Updated => m
                    .reloads_total
                    .with_label_values(&["state", "success"])
                    .inc(),
                RefreshOutcome::Error(_) => {
                    m.reloads_total.with_label_values(&["state", "error"]).inc()
                }
                RefreshOutcome::Unchanged => {}
            }
        }
        outcome
    }
}

/// Refresh every `every` while the store is alive. Holds only a `Weak` between ticks, so
/// dropping the last `Arc<StateStore>` ends it (and `Drop` aborts it mid-fetch).
async fn refresh_loop(store: Weak<StateStore>, every: Duration) {
    let mut tick = tokio::time::interval(every.max(Duration::from_millis(100)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await; // the first tick is immediate; `start` has just loaded
    // A source serving a stand-in (Graph's cached snapshot) syncs right away.
    if let Some(s) = store.upgrade()
        && s.source_wants_fetch_now().await
    {
        let _ = s.refresh().await;
        s.observe_age(SystemTime::now());
    }
    loop {
        tick.tick().await;
        let Some(s) = store.upgrade() else { return };
        let _ = s.refresh().await;
        s.observe_age(clock::now());
    }
}

#[cfg(test)]
#[path = "mod_tests.rs"]
mod tests;
