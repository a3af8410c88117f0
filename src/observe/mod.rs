//! The outermost step: give each request its decision id, time it, count it, and write
//! its decision log line once the inner steps have answered.
//!
//! Inner steps report back through the *response* extensions (the request has moved
//! inward by then): `route` puts back its [`RouteMatch`], `authenticate` the
//! `Arc<Principal>`, `authorize` its evaluation, `forward` the upstream timing, and
//! `respond` the [`Verdict`] of a refusal. No verdict means the upstream answered: allow.

pub mod decision_log;

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use http::{Request, Response};
use tower::{Layer, Service};

use crate::authn::Principal;
use crate::body::{Body, ResponseFuture};
use crate::forward::UpstreamTiming;
use crate::ids::DecisionId;
use crate::observe::decision_log::{DecisionLog, Line, RequestFacts};
use crate::respond::{Outcome, Verdict};
use crate::route::RouteMatch;
use crate::transport::conn::{ClientIp, ConnInfo};

/// Layer for [`Observe`].
#[derive(Clone)]
pub struct ObserveLayer {
    log: Arc<DecisionLog>,
}

impl ObserveLayer {
    pub fn new(log: Arc<DecisionLog>) -> Self {
        Self { log }
    }
}

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Observe {
            inner,
            log: self.log.clone(),
        }
    }
}

/// See the module docs.
#[derive(Clone)]
pub struct Observe<S> {
    inner: S,
    log: Arc<DecisionLog>,
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
        Box::pin(async move {
            let resp = inner.call(req).await?;
            let elapsed = started.elapsed();
            let verdict = resp
                .extensions()
                .get::<Verdict>()
                .copied()
                .unwrap_or(Verdict {
                    outcome: Outcome::Allow,
                    reason: "",
                });
            let rm = resp.extensions().get::<RouteMatch>();
            if let Some(rm) = rm {
                let m = &rm.route().metrics;
                m.count(verdict.outcome);
                m.duration.observe(elapsed.as_secs_f64());
            } else {
                log.unrouted(verdict.outcome);
            }
            if let Some(facts) = facts {
                let upstream = resp.extensions().get::<UpstreamTiming>().map(|t| t.0);
                let principal = resp.extensions().get::<Arc<Principal>>();
                let client_ip = resp.extensions().get::<ClientIp>().map(|c| c.0).or(peer);
                // Response body size when it is known up front (Content-Length or a
                // generated body); streamed bodies without a length are not counted.
                let bytes = http_body::Body::size_hint(resp.body()).exact();
                log.write(&Line {
                    facts: &facts,
                    id,
                    rm,
                    principal: principal.map(|p| p.as_ref()),
                    client_ip,
                    verdict,
                    status: resp.status().as_u16(),
                    elapsed,
                    upstream,
                    response_bytes: bytes,
                    extensions: resp.extensions(),
                });
            }
            Ok(resp)
        })
    }
}

#[cfg(test)]
#[path = "mod_tests.rs"]
mod tests;
