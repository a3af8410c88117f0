//! The pooled upstream client of each route, built with the snapshot so a reload that
//! changes `connect_timeout` gets a fresh pool and an unchanged request path reuses its own.

use std::time::Duration;

use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::body::Body;
use crate::config::RouteConfig;
use crate::snapshot::capped::CappedConnector;

/// The pooled HTTP/1.1 client used for one route's upstream.
pub type UpstreamClient = Client<CappedConnector, Body>;

/// How long an idle pooled upstream connection is kept. Below common upstream keep-alive
/// timeouts (nginx 75s, Node 5s is the outlier) to avoid racing the upstream's close.
const POOL_IDLE: Duration = Duration::from_secs(30);

/// Build the pooled client for a route (connect timeout is a connector setting).
pub fn client_for(route: &RouteConfig) -> UpstreamClient {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(route.connect_timeout));
    connector.set_nodelay(true);
    connector.enforce_http(true);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(POOL_IDLE)
        .pool_max_idle_per_host(256)
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .build(CappedConnector::new(
            connector,
            route.upstream_max_connections,
            route.connect_timeout,
        ))
}
