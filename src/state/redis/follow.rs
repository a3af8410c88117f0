//! The gateway side of `[state] source = "redis"`: load the snapshot, then follow the
//! change stream with blocking reads and apply each batch incrementally.
//!
//! One task per store, one connection. It holds only a `Weak` to the store, so dropping
//! the store ends it. Everything that goes wrong keeps the last good state in force and
//! its age counting (the store's usual `max_staleness` / `fail_open` rule then applies):
//! - Redis unreachable: reconnect with capped, jittered backoff; on return the stream is
//!   read on from the version held, so the gateway catches up by itself.
//! - The stream no longer holds the entry after our version (trimmed, or Redis lost its
//!   data): every entry names its predecessor (`prev`), so the gap is seen at the first
//!   entry read and the snapshot is reloaded.
//! - A malformed entry (bad JSON, a batch that does not validate or apply): an error,
//!   nothing of it applied, the snapshot reloaded; if the snapshot does not yet include the
//!   bad entry, the gateway waits on its last good state for one that does.
//!
//! - With `cache_dir` ([`super::cache`]): the state served is kept on disk; a first
//!   attempt at Redis that fails before any state is loaded serves the cache (at its
//!   recorded age) and follows on from its position.
//!
//! Freshness is the publisher's: each entry carries when `sync` read it (`at`) and the
//! head carries when it last confirmed its source (`confirmed_ms`), so a dead publisher
//! makes the fleet's state age even while Redis answers.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use ::redis::Value;
use ::redis::aio::MultiplexedConnection;
use ::redis::streams::{StreamId, StreamReadReply};

use super::cache::RedisCache;
use super::{Head, Keys, client, connect, entry_id, read_snapshot};
use crate::clock::unix_ms;
use crate::config::RedisEndpoint;
use crate::policy::state_overlay::COMPACT_AFTER;
use crate::policy::{ChangeBatch, PolicyState};
use crate::state::{StateSnapshot, StateStore};

// Starting from `cache_dir` (a child module: it works on the follower's own fields).
#[path = "follow_cache.rs"]
mod follow_cache;

/// Entries read per XREAD.
const READ_COUNT: usize = 256;

/// Where the follower is: which snapshot it loaded and the last entry it applied.
#[derive(Debug, Clone)]
struct Position {
    snapshot: String,
    version: String,
}

struct Compaction {
    handle: tokio::task::JoinHandle<PolicyState>,
    /// Batches applied while the compaction ran: replayed onto its result.
    replay: Vec<Arc<ChangeBatch>>,
}

/// Capped exponential backoff with jitter (100 ms .. 5 s).
#[derive(Default)]
pub(crate) struct Backoff(u32);

impl Backoff {
    pub(crate) fn next(&mut self) -> Duration {
        let base = 100u64.saturating_mul(1 << self.0.min(6)).min(5_000);
        self.0 = self.0.saturating_add(1);
        let mut b = [0u8; 1];
        let _ = aws_lc_rs::rand::fill(&mut b);
        // 50% .. 100% of the step, so a fleet does not reconnect in lockstep.
        Duration::from_millis(base / 2 + base * u64::from(b[0]) / 512)
    }

    pub(crate) fn reset(&mut self) {
        self.0 = 0;
    }
}

pub(crate) struct Follower {
    store: Weak<StateStore>,
    endpoint: RedisEndpoint,
    keys: Keys,
    origin: String,
    block: Duration,
    client: Option<::redis::Client>,
    pos: Option<Position>,
    /// A malformed entry we could not apply: wait for a snapshot that includes it.
    poisoned: Option<String>,
    compaction: Option<Compaction>,
    /// `cache_dir`: the state served, kept on disk for a start while Redis is down.
    cache: Option<Arc<RedisCache>>,
    /// The cache is read at most once, before any state was loaded.
    cache_tried: bool,
}

enum Step {
    /// The store is gone: stop.
    Stop,
}

impl Follower {
    pub(crate) fn new(store: Weak<StateStore>, endpoint: RedisEndpoint, refresh: Duration) -> Self {
        Self {
            keys: super::Keys::new(&endpoint.key_prefix),
            origin: format!("{} ({})", endpoint.redacted_url(), endpoint.key_prefix),
            endpoint,
            store,
            // A blocking read returns at least this often to look at the publisher's
            // confirmation time; it is not a poll (changes arrive as they are written).
            block: (refresh / 2).clamp(Duration::from_millis(200), Duration::from_secs(5)),
            client: None,
            pos: None,
            poisoned: None,
            compaction: None,
            cache: None,
            cache_tried: false,
        }
    }

    pub(crate) fn with_cache(mut self, cache: Option<Arc<RedisCache>>) -> Self {
        self.cache = cache;
        self
    }

    /// Run until the store is dropped.
    pub(crate) async fn run(mut self) {
        let mut backoff = Backoff::default();
        loop {
            match self.session(&mut backoff).await {
                Ok(Step::Stop) => return,
                Err(e) => {
                    let Some(store) = self.store.upgrade() else {
                        return;
                    };
                    store.follower_error(&self.origin, e);
                    drop(store);
                    self.load_cache_once().await;
                    if let Some(c) = &self.cache {
                        c.poll();
                    }
                    tokio::time::sleep(backoff.next()).await;
                }
            }
        }
    }

    async fn session(&mut self, backoff: &mut Backoff) -> Result<Step, String> {
        let client = match &self.client {
            Some(c) => c.clone(),
            None => {
                let ep = self.endpoint.clone();
                let c = tokio::task::spawn_blocking(move || client(&ep))
                    .await
                    .map_err(|e| format!("redis client: {e}"))??;
                self.client = Some(c.clone());
                c
            }
        };
        let mut conn = connect(&client, self.block + Duration::from_secs(10)).await?;
        let mut block = true;
        loop {
            if self.store.strong_count() == 0 {
                return Ok(Step::Stop);
            }
            if let Some(c) = &self.cache {
                c.poll();
            }
            let Some(pos) = self.pos.clone() else {
                self.load_snapshot(&mut conn).await?;
                backoff.reset();
                continue;
            };
            let mut cmd = ::redis::cmd("XREAD");
            cmd.arg("COUNT").arg(READ_COUNT);
            if block {
                cmd.arg("BLOCK").arg(self.block.as_millis() as u64);
            }
            cmd.arg("STREAMS").arg(&self.keys.changes).arg(&pos.version);
            let reply: Option<StreamReadReply> = cmd
                .query_async(&mut conn)
                .await
                .map_err(|e| format!("XREAD: {e}"))?;
            backoff.reset();
            let entries: Vec<StreamId> = reply
                .map(|r| r.keys.into_iter().flat_map(|k| k.ids).collect())
                .unwrap_or_default();
            if entries.is_empty() {
                let (last, confirmed): (Option<String>, Option<i64>) = ::redis::cmd("HMGET")
                    .arg(&self.keys.head)
                    .arg("last")
                    .arg("confirmed_ms")
                    .query_async(&mut conn)
                    .await
                    .map_err(|e| format!("HMGET head: {e}"))?;
                let Some(store) = self.store.upgrade() else {
                    return Ok(Step::Stop);
                };
                match last {
                    None => store.follower_error(
                        &self.origin,
                        "the head is gone (Redis lost its data?); keeping the last good state"
                            .into(),
                    ),
                    Some(last) if last != pos.version => {
                        if block {
                            // Entries may have landed between the read and the head: read
                            // again at once before calling it a gap.
                            block = false;
                            continue;
                        }
                        tracing::warn!(
                            origin = %self.origin,
                            version = %pos.version,
                            last = %last,
                            "the change stream no longer holds what follows our version; reloading the snapshot"
                        );
                        self.pos = None;
                    }
                    Some(_) => {
                        if let Some(c) = confirmed {
                            store.confirm_at(c);
                            if let Some(cache) = &self.cache {
                                cache.confirmed(c);
                            }
                        }
                        store.clear_follower_error();
                    }
                }
                block = true;
                self.finish_compaction(&store);
                continue;
            }
            block = true;
            let Some(store) = self.store.upgrade() else {
                return Ok(Step::Stop);
            };
            self.apply_entries(&store, pos, entries);
            self.finish_compaction(&store);
        }
    }

    /// Apply what was read; one swap for all of it, so no request sees part of a batch.
    fn apply_entries(&mut self, store: &StateStore, mut pos: Position, entries: Vec<StreamId>) {
        let Some(current) = store.current() else {
            self.pos = None;
            return;
        };
        let mut next: Option<PolicyState> = None;
        let mut confirmed: Option<i64> = None;
        let mut applied = 0usize;
        let from = pos.version.clone();
        // The raw batches applied, for the cache (kept only when there is one).
        let mut raw: Vec<Arc<[u8]>> = Vec::new();
        for e in entries {
            let field = |k: &str| -> Option<Vec<u8>> {
                e.map
                    .get(k)
                    .and_then(|v: &Value| ::redis::from_redis_value_ref::<Vec<u8>>(v).ok())
            };
            let text = |k: &str| field(k).and_then(|b| String::from_utf8(b).ok());
            if text("prev").as_deref() != Some(pos.version.as_str()) {
                tracing::warn!(
                    origin = %self.origin,
                    version = %pos.version,
                    entry = %e.id,
                    "the change stream skips past our version (trimmed or rewritten); reloading the snapshot"
                );
                self.pos = None;
                break;
            }
            match text("kind").as_deref() {
                Some("batch") => {
                    let base = next.as_ref().unwrap_or(&current.state);
                    let bytes = field("batch");
                    let result = bytes
                        .as_deref()
                        .ok_or_else(|| "no batch field".to_owned())
                        .and_then(ChangeBatch::from_json)
                        .and_then(|b| base.apply(&b).map(|s| (s, b)));
                    match result {
                        Ok((s, b)) => {
                            if self.cache.is_some()
                                && let Some(bytes) = bytes
                            {
                                raw.push(Arc::from(bytes));
                            }
                            if let Some(c) = &mut self.compaction {
                                c.replay.push(Arc::new(b));
                            }
                            next = Some(s);
                            applied += 1;
                        }
                        Err(err) => {
                            store.follower_error(
                                &self.origin,
                                format!(
                                    "change {} is malformed, nothing of it applied: {err}",
                                    e.id
                                ),
                            );
                            self.poisoned = Some(e.id.clone());
                            self.pos = None;
                            break;
                        }
                    }
                }
                Some("snapshot") => {
                    if text("snapshot").as_deref() != Some(pos.snapshot.as_str()) {
                        tracing::info!(origin = %self.origin, entry = %e.id, "a new publisher snapshot; reloading");
                        self.pos = None;
                        break;
                    }
                }
                other => {
                    store.follower_error(
                        &self.origin,
                        format!(
                            "change {} has an unknown kind {other:?}; reloading the snapshot",
                            e.id
                        ),
                    );
                    self.poisoned = Some(e.id.clone());
                    self.pos = None;
                    break;
                }
            }
            if let Some(at) = text("at").and_then(|t| t.parse::<i64>().ok()) {
                confirmed = Some(at);
            }
            pos.version = e.id.clone();
        }
        if let Some(c) = &self.cache
            && pos.version != from
        {
            c.advanced(&pos.version, raw, confirmed);
        }
        if let Some(state) = next {
            store.install_followed(state, &self.origin, confirmed);
            if let Some(m) = &store.metrics {
                m.state_refresh_total
                    .with_label_values(&["updated"])
                    .inc_by(applied as u64);
            }
        }
        if self.pos.is_some() {
            self.pos = Some(pos);
            if let Some(snap) = store.current()
                && snap.state.overlay_records() > COMPACT_AFTER
                && self.compaction.is_none()
            {
                self.compaction = Some(Compaction {
                    handle: tokio::task::spawn_blocking(move || snap.state.compacted()),
                    replay: Vec::new(),
                });
            }
        }
    }

    /// Swap in a finished compaction (with what was applied meanwhile replayed on it).
    fn finish_compaction(&mut self, store: &StateStore) {
        if !self
            .compaction
            .as_ref()
            .is_some_and(|c| c.handle.is_finished())
        {
            return;
        }
        let Some(c) = self.compaction.take() else {
            return;
        };
        let Some(Ok(mut state)) = futures_now(c.handle) else {
            return;
        };
        for b in &c.replay {
            match state.apply(b) {
                Ok(s) => state = s,
                Err(_) => return,
            }
        }
        store.install_followed(state, &self.origin, None);
    }

    async fn load_snapshot(&mut self, conn: &mut MultiplexedConnection) -> Result<(), String> {
        let fields: std::collections::HashMap<String, String> = ::redis::cmd("HGETALL")
            .arg(&self.keys.head)
            .query_async(conn)
            .await
            .map_err(|e| format!("HGETALL head: {e}"))?;
        let head = Head::parse(&fields)?;
        if let Some(bad) = &self.poisoned {
            if entry_id(&head.version) < entry_id(bad) {
                return Err(format!(
                    "change {bad} is malformed and the snapshot (version {}) does not include it yet; keeping the last good state",
                    head.version
                ));
            }
            self.poisoned = None;
        }
        let bytes = read_snapshot(conn, &self.keys, &head).await?;
        let (parsed, bytes) = tokio::task::spawn_blocking(move || {
            let parsed = PolicyState::from_json(&bytes);
            (parsed, Some(bytes))
        })
        .await
        .unwrap_or_else(|e| (Err(format!("state parser stopped: {e}")), None));
        let Some(store) = self.store.upgrade() else {
            return Ok(());
        };
        let state = match parsed {
            Ok(s) => s,
            Err(e) => {
                if let Some(m) = &store.metrics {
                    m.reloads_total.with_label_values(&["state", "error"]).inc();
                }
                return Err(format!("snapshot {}: {e}", head.snapshot));
            }
        };
        let counts = state.counts();
        store.install_followed(state, &self.origin, head.confirmed_ms);
        store.clear_follower_error();
        if let (Some(c), Some(bytes)) = (&self.cache, bytes) {
            // The head's confirmation covers `last`; it is the snapshot's own only when no
            // entry follows it. Otherwise the cache waits for the entries' own times.
            let confirmed = head.confirmed_ms.filter(|_| head.version == head.last);
            c.snapshot_loaded(&head.snapshot, &head.version, confirmed, Arc::new(bytes));
        }
        if let Some(m) = &store.metrics {
            m.reloads_total
                .with_label_values(&["state", "success"])
                .inc();
        }
        tracing::info!(origin = %self.origin, snapshot = %head.snapshot, version = %head.version, %counts, "policy state loaded from Redis");
        // A compaction of the state we just replaced is of no use.
        self.compaction = None;
        self.pos = Some(Position {
            snapshot: head.snapshot,
            version: head.version,
        });
        Ok(())
    }
}

/// The output of a task known to be finished, without awaiting.
fn futures_now<T>(h: tokio::task::JoinHandle<T>) -> Option<Result<T, tokio::task::JoinError>> {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};
    let mut h = h;
    let mut cx = Context::from_waker(Waker::noop());
    match std::pin::Pin::new(&mut h).poll(&mut cx) {
        Poll::Ready(r) => Some(r),
        Poll::Pending => None,
    }
}

impl StateStore {
    /// Swap in a followed state. `confirmed_ms`: when the publisher read it (never later
    /// than now); `None` keeps the current confirmation.
    pub(crate) fn install_followed(
        &self,
        state: PolicyState,
        origin: &str,
        confirmed_ms: Option<i64>,
    ) {
        let now = unix_ms(SystemTime::now());
        self.current.store(Some(Arc::new(StateSnapshot {
            state,
            loaded_at_ms: now,
            origin: origin.to_owned(),
        })));
        if let Some(c) = confirmed_ms {
            self.confirm_at(c);
        }
    }

    /// The publisher confirmed its source at `ms` (clamped to now: a clock ahead must not
    /// make state look younger than it is).
    pub(crate) fn confirm_at(&self, ms: i64) {
        let now = unix_ms(SystemTime::now());
        let ms = ms.min(now);
        // Never move backwards (an older confirmation read late).
        self.checked_at_ms.fetch_max(ms, Ordering::AcqRel);
    }

    pub(crate) fn follower_error(&self, origin: &str, e: String) {
        let repeated = self
            .last_error
            .lock()
            .ok()
            .is_some_and(|g| g.as_deref() == Some(e.as_str()));
        if repeated {
            tracing::debug!(origin, error = %e, "policy state from Redis: still failing; keeping the last good state");
        } else {
            tracing::warn!(origin, error = %e, "policy state from Redis failed; keeping the last good state");
        }
        if let Some(m) = &self.metrics {
            m.state_refresh_total.with_label_values(&["error"]).inc();
        }
        self.set_error(Some(e));
    }

    pub(crate) fn clear_follower_error(&self) {
        self.set_error(None);
    }
}

impl StateStore {
    /// A store fed by `accessgate sync` through Redis (`[state] source = "redis"`). Returns
    /// once the first snapshot is loaded or `wait` has passed; until then the store is not
    /// ready and requests that need state get 503 (never an allow on empty state).
    pub async fn follow_redis(
        endpoint: RedisEndpoint,
        freshness: crate::state::Freshness,
        metrics: Option<crate::ops::metrics::Metrics>,
        wait: Duration,
    ) -> Arc<StateStore> {
        Self::follow_redis_cached(endpoint, None, freshness, metrics, wait).await
    }

    /// As [`StateStore::follow_redis`], keeping the state served in `cache_dir` (see
    /// [`super::cache`]): a start while Redis is unreachable serves it.
    pub async fn follow_redis_cached(
        endpoint: RedisEndpoint,
        cache_dir: Option<&std::path::Path>,
        freshness: crate::state::Freshness,
        metrics: Option<crate::ops::metrics::Metrics>,
        wait: Duration,
    ) -> Arc<StateStore> {
        let store = StateStore::without_state(freshness);
        let store = match metrics {
            Some(m) => store.with_metrics(m),
            None => store,
        };
        let cache = cache_dir.map(|d| Arc::new(RedisCache::new(d, &endpoint.key_prefix)));
        if let Some(c) = &cache {
            let _ = store.redis_cache.set(c.clone());
        }
        let follower =
            Follower::new(Arc::downgrade(&store), endpoint, freshness.refresh).with_cache(cache);
        let handle = tokio::spawn(follower.run());
        if let Ok(mut t) = store.task.lock() {
            *t = Some(handle.abort_handle());
        }
        let deadline = tokio::time::Instant::now() + wait;
        while store.current().is_none() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        store.observe_age(SystemTime::now());
        store
    }
}
