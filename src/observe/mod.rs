//! The outermost step: give each request its decision id, time it, count it, and write
//! its decision log line once the inner steps have answered.
//!
//! Inner steps report back through the *response* extensions (the request has moved
//! inward by then): `route` puts back its [`RouteMatch`], `authenticate` the
//! `Arc<Principal>`, `authorize` its evaluation, each timed step its [`Phases`] entry, and
//! `respond` the [`Verdict`] of a refusal. No verdict means the upstream answered: allow.

pub mod decision_log;
mod line_format;
pub mod phases;
pub mod writer;

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use http::{Request, Response};
use tower::{Layer, Service};

use crate::authn::Principal;
use crate::authorize::AuthzOutcome;
use crate::body::{Body, ResponseFuture};
use crate::ids::DecisionId;
use crate::observe::decision_log::{DecisionLog, Line, RequestFacts};
use crate::observe::phases::PhaseMetrics;
use crate::ops::metrics::Metrics;
use crate::respond::{Outcome, Verdict};
use crate::route::RouteMatch;
use crate::timing::Phases;
use crate::transport::conn::{ClientIp, ConnInfo};

/// Layer for [`Observe`].
#[derive(Clone)]
pub struct ObserveLayer {
    log: Arc<DecisionLog>,
    phases: Arc<PhaseMetrics>,
}

impl ObserveLayer {
    pub fn new(log: Arc<DecisionLog>, metrics: &Metrics) -> Self {
        Self {
            log,
            phases: Arc::new(PhaseMetrics::new(metrics)),
        }
    }
}

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Observe {
            inner,
            log: self.log.clone(),
            phases: self.phases.clone(),
        }
    }
}

/// See the module docs.
#[derive(Clone)]
pub struct Observe<S> {
    inner: S,
    log: Arc<DecisionLog>,
    phases: Arc<PhaseMetrics>,
}

/// `Server-Timing` (W3C), sent only with `[log] server_timing = true`: it tells clients
/// about the inside.
fn server_timing_header() -> http::HeaderName {
    http::HeaderName::from_static("server-timing")
}

impl<S> Service<Request<Body>> for Observe<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<Body>) -> Self::Future {
        let started = Instant::now();
        let id = DecisionId::next();
        req.extensions_mut().insert(id);
        // Only what the log line needs, captured before the request moves inward, and only
        // when a line may be written.
        let facts = self.log.enabled().then(|| RequestFacts::capture(&req));
        let peer = req.extensions().get::<ConnInfo>().map(|c| c.peer.ip());
        let mut inner = self.inner.clone();
        std::mem::swap(&mut self.inner, &mut inner);
        let log = self.log.clone();
        let phase_metrics = self.phases.clone();
        Box::pin(async move {
            let mut resp = inner.call(req).await?;
            let elapsed = started.elapsed();
            let verdict = resp
                .extensions()
                .get::<Verdict>()
                .copied()
                .unwrap_or(Verdict {
                    outcome: Outcome::Allow,
                    reason: "",
                });
            let phases = Phases::of(resp.extensions());
            phase_metrics.observe(&phases, elapsed);
            let rm = resp.extensions().get::<RouteMatch>();
            if let Some(rm) = rm {
                let m = &rm.route().metrics;
                m.count(verdict.outcome);
                m.duration.observe(elapsed.as_secs_f64());
            } else {
                log.unrouted(verdict.outcome);
            }
            // Read from the request's own snapshot: the setting reloads live.
            let server_timing = rm.is_some_and(|rm| rm.snapshot.config.log.server_timing);
            if let Some(facts) = facts
                && log.wants(verdict.outcome, id)
            {
                let ext = resp.extensions();
                let line = Line {
                    at: crate::clock::now(),
                    id,
                    facts,
                    route: ext.get::<RouteMatch>().cloned(),
                    principal: ext.get::<Arc<Principal>>().cloned(),
                    client_ip: ext.get::<ClientIp>().map(|c| c.0).or(peer),
                    verdict,
                    status: resp.status().as_u16(),
                    // Response body size when it is known up front (Content-Length or a
                    // generated body); streamed bodies without a length are not counted.
                    bytes: http_body::Body::size_hint(resp.body()).exact(),
                    authz: ext.get::<Arc<AuthzOutcome>>().cloned(),
                    phases,
                    total: elapsed,
                };
                log.write(line);
            }
            if server_timing && let Some(v) = phases.server_timing() {
                resp.headers_mut().insert(server_timing_header(), v);
            }
            Ok(resp)
        })
    }
}
