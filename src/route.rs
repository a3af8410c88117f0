//! `route`: match host and longest path prefix on the normalised path.

use std::sync::Arc;

use crate::config::RouteConfig;
use crate::snapshot::{Route, Snapshot};

/// Inserted by the route step: the snapshot this request runs on, and its route.
#[derive(Debug, Clone)]
pub struct RouteMatch {
    pub snapshot: Arc<Snapshot>,
    pub index: usize,
}

impl RouteMatch {
    /// The matched route.
    pub fn route(&self) -> &Route {
        &self.snapshot.routes[self.index]
    }
}

/// The routing table (stub, being written).
#[derive(Debug, Default)]
pub struct Router {}

impl Router {
    pub fn new(_routes: &[RouteConfig]) -> Self {
        Self {}
    }
}
