//! `import-policies --from-graph`: read the policies and named locations from Microsoft
//! Graph with the config's `[graph]` credentials.
//!
//! Reuses the connector's token client and pager (retries, `Retry-After`, the token only
//! ever sent to the Graph host), paced by one shared limiter: Conditional Access
//! endpoints allow one request per second per tenant, for all apps together, and their 429
//! carries no `Retry-After`, so the pager's own capped, jittered backoff applies. The
//! whole of both collections is read before anything is mapped: a read that fails midway
//! is an error, never a partial import.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::config::GraphConfig;
use crate::state::graph::pager::{Collection, Counter, Limiter};
use crate::state::graph::{Pager, RetryPolicy, TokenProvider};

/// Graph's limit for Conditional Access (research/graph.md section 7).
pub const CA_REQUEST_INTERVAL: Duration = Duration::from_secs(1);

/// What was read.
#[derive(Debug, Default)]
pub struct Fetched {
    pub policies: Vec<Value>,
    pub named_locations: Vec<Value>,
    /// Requests sent (pages, retries included; token requests not).
    pub requests: u64,
}

/// Read both collections to their end. `interval` is the pacing between requests
/// ([`CA_REQUEST_INTERVAL`] outside tests).
pub async fn fetch(
    cfg: &GraphConfig,
    retry: RetryPolicy,
    interval: Duration,
) -> Result<Fetched, String> {
    let client = crate::ops::outbound::https_body_client(None, "graph", Duration::from_secs(5))?;
    let token = TokenProvider::new(cfg, client.clone()).map_err(|e| e.to_string())?;
    let pager = Pager::new(client, Arc::new(token), &cfg.graph_url, retry, None)
        .map_err(|e| e.to_string())?;
    let limiter = Limiter::new(1, interval);
    let requests = Counter::default();
    let mut out = Fetched::default();
    for (label, path, into) in [
        (
            "conditionalAccessPolicies",
            "identity/conditionalAccess/policies",
            &mut out.policies,
        ),
        (
            "namedLocations",
            "identity/conditionalAccess/namedLocations",
            &mut out.named_locations,
        ),
    ] {
        let c = Collection {
            label,
            limiter: &limiter,
            requests: &requests,
        };
        let url = format!("{}/v1.0/{path}", cfg.graph_url);
        pager
            .read::<Value, _>(&c, &url, |page| {
                into.extend(page);
                Ok(())
            })
            .await
            .map_err(|e| format!("{label}: {e}"))?;
    }
    out.requests = requests.get();
    Ok(out)
}

/// [`fetch`] on a runtime of its own (the CLI is synchronous).
pub fn fetch_blocking(cfg: &GraphConfig) -> Result<Fetched, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a runtime: {e}"))?;
    rt.block_on(fetch(cfg, RetryPolicy::default(), CA_REQUEST_INTERVAL))
}
