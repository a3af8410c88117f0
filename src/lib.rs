//! # accessgate
//!
//! A Conditional Access gateway: a TLS reverse proxy that validates the bearer token on
//! every request, checks the caller's managed-app and device-compliance state against
//! cached policy state, and forwards, blocks, asks for remediation, or forces a fresh sign-in.
//!
//! The request path, each step a tower layer testable alone, each in its own module:
//!
//! ```text
//! transport   accept -> tls -> http (hyper; the HTTP/1.1 smuggling guard beside it)
//! build_stack observe [ early refusal -> route -> authenticate -> authorize -> forward ]
//!               |         any refusal -> respond (problem+json), counted and logged
//!               +-- decision id, timing, requests_total, one decision log line
//! ```
//!
//! Around it: [`gateway`] (listeners, snapshot swaps, reload), [`snapshot`] (the
//! immutable config version a request runs on), [`state`] (policy state and its sources),
//! [`ops`] (metrics, admin, logging), [`cli`] (the subcommands). Underneath: [`policy`]
//! (the pure engine), [`authn`] (the token engine), [`config`], [`clock`]. Dependencies
//! point one way, cli -> gateway -> steps -> engines -> config (tests/e2e/layout.rs).

pub mod authenticate;
pub mod authn;
pub mod authorize;
pub mod body;
pub mod cli;
pub mod clock;
pub mod config;
pub mod forward;
pub mod gateway;
pub mod ids;
pub mod observe;
pub mod ops;
pub mod policy;
pub mod respond;
pub mod route;
pub mod snapshot;
pub mod state;
pub mod timing;
pub mod transport;

pub use gateway::{Gateway, StartOptions};

use std::convert::Infallible;
use std::sync::Arc;

use http::{Request, Response};
use tower::{Service, ServiceBuilder};

use crate::body::Body;
use crate::observe::decision_log::DecisionLog;
use crate::snapshot::SharedSnapshot;

/// The request pipeline, outermost first. Order matters: `route` loads the snapshot that
/// every later step reads from its `RouteMatch`; `authorize` reads the `Principal` that
/// `authenticate` inserted; `forward` reads both to set identity headers.
pub fn build_stack(
    shared: SharedSnapshot,
    state: Arc<state::StateStore>,
    metrics: ops::metrics::Metrics,
    log: Arc<DecisionLog>,
) -> impl Service<
    Request<Body>,
    Response = Response<Body>,
    Error = Infallible,
    Future: Send + Unpin + 'static,
> + Clone
+ Send
+ Sync
+ Unpin
+ 'static {
    ServiceBuilder::new()
        .layer(observe::ObserveLayer::new(log, &metrics)) // decision id, timing, metrics, decision log
        .layer(transport::early::EarlyRefusalLayer) // the h1 guard's 400/431/501, observed
        .layer(route::RouteLayer::new(shared)) // RouteMatch + ClientIp, or 404/400
        .layer(authenticate::AuthenticateLayer::new()) // Arc<Principal> from the bearer token, or 401/400
        .layer(authorize::AuthorizeLayer::new(state, metrics)) // policies x state: allow, or 401/403/503
        .service(forward::Forward) // pooled upstream client
}
