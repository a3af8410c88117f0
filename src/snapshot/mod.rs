//! The immutable per-config snapshot every request reads exactly once.
//!
//! Routes, issuers (with their key stores), and compiled policies are built together from
//! one validated [`Config`] and published behind an [`ArcSwap`]. The route step loads it once
//! per request and passes it on inside [`crate::route::RouteMatch`], so a request runs start
//! to finish on one consistent version even if a reload swaps in another meanwhile.
//! Policy *state* is not here: it refreshes on its own clock (see `crate::state`).

use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::authn::Authenticator;
use crate::config::{Config, RouteConfig};
use crate::ops::metrics::{Metrics, RouteMetrics};
use crate::policy::PolicySet;

pub mod assertion;
pub mod capped;
pub mod router;
pub mod upstream;

use assertion::AssertionSigner;
use router::Router;
use upstream::{Pools, UpstreamClient};

/// One route with its precomputed hot-path pieces.
#[derive(Debug)]
pub struct Route {
    pub config: RouteConfig,
    pub metrics: RouteMetrics,
    /// Pooled keep-alive clients to this route's upstream (one per worker with
    /// `scheduler = "per_core"`).
    pub pools: Pools,
}

impl Route {
    /// The pooled client for the worker thread this request runs on.
    pub fn client(&self) -> &UpstreamClient {
        self.pools.get()
    }
}

/// Everything derived from one config version.
#[derive(Debug)]
pub struct Snapshot {
    pub config: Arc<Config>,
    pub router: Router,
    pub routes: Vec<Route>,
    pub authn: Arc<Authenticator>,
    pub policies: Arc<PolicySet>,
    /// Signs `x-accessgate-assertion` and holds the published JWKS, when `[assertion]`
    /// is configured. Keys are read here, once per config version.
    pub assertion: Option<AssertionSigner>,
}

/// Errors building a snapshot from a config that parsed and validated.
#[derive(Debug)]
pub struct SnapshotError(pub String);

impl std::fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SnapshotError {}

impl Snapshot {
    /// Build a snapshot. `previous` lets long-lived pieces (JWKS key stores of unchanged
    /// issuers) carry over a reload instead of starting cold.
    pub fn build(
        config: Arc<Config>,
        metrics: &Metrics,
        previous: Option<&Snapshot>,
    ) -> Result<Self, SnapshotError> {
        let pools = config.runtime.upstream_pools();
        let routes: Vec<Route> = config
            .routes
            .iter()
            .map(|r| Route {
                config: r.clone(),
                metrics: metrics.route(&r.name),
                pools: Pools::for_route(r, pools),
            })
            .collect();
        let router = Router::new(&config.routes);
        let authn = Arc::new(Authenticator::new(
            &config,
            metrics,
            previous.map(|p| p.authn.as_ref()),
        ));
        let policies = Arc::new(PolicySet::compile(&config).map_err(SnapshotError)?);
        let assertion = config
            .assertion
            .as_ref()
            .map(AssertionSigner::load)
            .transpose()
            .map_err(SnapshotError)?;
        Ok(Self {
            config,
            router,
            routes,
            authn,
            policies,
            assertion,
        })
    }
}

/// The published snapshot.
pub type SharedSnapshot = Arc<ArcSwap<Snapshot>>;
