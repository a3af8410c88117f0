//! A single gateway on `[state] source = "graph"` (no `sync`): the same critical changes
//! `sync` publishes as they are read (`publish::early`), applied to the gateway's own
//! state page by page, each page as one batch and one atomic swap. The round's end then
//! replaces the whole state as before, so nothing needs folding in; a round that fails
//! keeps what was applied (it is true in Graph). The state's age is not touched: only a
//! completed round confirms the state as a whole.

use std::sync::{Arc, Mutex};

use super::graph::{Mapped, Page, PageHook};
use super::publish::diff::Early;
use super::publish::early::pending;
use super::{StateSnapshot, StateStore};
use crate::clock;
use crate::policy::ChangeBatch;

/// Applies one round's critical pages to `store`, against the round before it (`last`,
/// the records the store's state was built from).
pub(super) struct StoreHook<'a> {
    pub(super) store: &'a StateStore,
    pub(super) last: Arc<Mapped>,
    pub(super) origin: String,
    /// What this round already applied (one round's hook: uncontended).
    pub(super) early: Mutex<Early>,
}

impl StoreHook<'_> {
    fn apply(&self, page: &Page) -> Result<usize, String> {
        let Some(current) = self.store.current.load_full() else {
            return Ok(0);
        };
        let mut early = self.early.lock().map_err(|_| "early set poisoned")?;
        let p = pending(&*self.last, &early, page)?;
        if p.is_empty() {
            return Ok(0);
        }
        let mut state = None;
        for doc in p.batches() {
            let batch = ChangeBatch::from_json(&doc)?;
            state = Some(state.as_ref().unwrap_or(&current.state).apply(&batch)?);
        }
        let Some(state) = state else {
            return Ok(0);
        };
        self.store.current.store(Some(Arc::new(StateSnapshot {
            state,
            loaded_at_ms: clock::unix_ms(clock::now()),
            origin: self.origin.clone(),
        })));
        early.record(&p);
        Ok(p.len())
    }
}

impl PageHook for StoreHook<'_> {
    fn page(&self, page: Page) {
        match self.apply(&page) {
            Ok(0) => {}
            Ok(n) => tracing::info!(records = n, "critical state changes applied as read"),
            // Nothing of the page is applied; the round's end brings it.
            Err(e) => tracing::warn!(error = %e, "critical state changes not applied early"),
        }
    }
}
