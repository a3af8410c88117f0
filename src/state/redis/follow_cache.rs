//! A follower's start from `cache_dir` while Redis is unreachable (see [`super::super::cache`]).

use std::time::SystemTime;

use super::{Follower, Position};

impl Follower {
    /// Redis failed before any state was loaded: serve what `cache_dir` holds, at the age
    /// its confirmation gives it, and follow on from its position once Redis answers. A
    /// cache that cannot be used is ignored with a log line (the store stays not ready).
    pub(super) async fn load_cache_once(&mut self) {
        let Some(cache) = self.cache.clone() else {
            return;
        };
        if self.cache_tried || self.pos.is_some() {
            return;
        }
        let Some(store) = self.store.upgrade() else {
            return;
        };
        if store.current().is_some() {
            return;
        }
        drop(store);
        self.cache_tried = true;
        let c = cache.clone();
        let loaded = tokio::task::spawn_blocking(move || c.load())
            .await
            .unwrap_or_else(|e| Err(format!("cache reader stopped: {e}")));
        let path = cache.path().display().to_string();
        let loaded = match loaded {
            Ok(Some(l)) => l,
            Ok(None) => {
                tracing::info!(path = %path, "cache_dir: no cached state yet; not ready until Redis answers");
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cache_dir: the cached state is unusable and ignored; not ready until Redis answers");
                return;
            }
        };
        let Some(store) = self.store.upgrade() else {
            return;
        };
        // Redis may have answered meanwhile: its state wins.
        if store.current().is_some() {
            return;
        }
        let counts = loaded.state.counts();
        let origin = format!("{path} (cache_dir; Redis unreachable)");
        store.install_followed(loaded.state, &origin, Some(loaded.confirmed_ms));
        let age = store.age(SystemTime::now()).unwrap_or_default();
        tracing::warn!(
            path = %path,
            snapshot = %loaded.snapshot,
            version = %loaded.version,
            batches = loaded.batches,
            age_s = age.as_secs(),
            fresh = store.is_fresh(SystemTime::now()),
            %counts,
            "policy state loaded from cache_dir while Redis is unreachable; its age counts from when the publisher last confirmed it"
        );
        self.pos = Some(Position {
            snapshot: loaded.snapshot,
            version: loaded.version,
        });
    }
}
