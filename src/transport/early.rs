//! The transport's own refusals, answered inside the observed pipeline.
//!
//! The HTTP/1.1 guard decides some requests before the stack sees them (`Content-Length`
//! with `Transfer-Encoding`: 400; a head over `max_header_bytes`: 431; a transfer coding
//! other than chunked: 501). The server tags such a request with [`EarlyRefusal`] instead
//! of answering it itself, and this step, right inside `observe`, answers it through
//! `respond`: so these refusals get a decision id, are counted in
//! `accessgate_requests_total` and are written to the decision log like every other. The
//! request never reaches `route` and its body is never read.

use std::convert::Infallible;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower::{Layer, Service};

use crate::body::{Body, ResponseFuture};
use crate::ids::DecisionId;
use crate::respond::{Rejection, reject};

/// Request extension: the transport refused this request already; answer with this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EarlyRefusal(pub Rejection);

/// Adds the early-refusal step.
#[derive(Debug, Clone, Copy, Default)]
pub struct EarlyRefusalLayer;

impl<S> Layer<S> for EarlyRefusalLayer {
    type Service = EarlyRefusalService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        EarlyRefusalService { inner }
    }
}

/// See the module doc.
#[derive(Debug, Clone)]
pub struct EarlyRefusalService<S> {
    inner: S,
}

impl<S, B> Service<Request<B>> for EarlyRefusalService<S>
where
    S: Service<Request<B>, Response = Response<Body>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        if let Some(EarlyRefusal(rejection)) = req.extensions_mut().remove::<EarlyRefusal>() {
            let resp = reject(&rejection, DecisionId::of(req.extensions()));
            return Box::pin(async move { Ok(resp) });
        }
        let fut = self.inner.call(req);
        Box::pin(fut)
    }
}

#[cfg(test)]
#[path = "early_tests.rs"]
mod tests;
