//! The `authenticate` step as a tower layer.
//!
//! Reads the [`RouteMatch`] that `route` inserted; on `auth = "none"` routes passes the
//! request through untouched. Otherwise the snapshot's [`crate::authn::Authenticator`] decides:
//! on success the `Arc<Principal>` goes into the request extensions (for `authorize`) and
//! into the response extensions (for the decision log, which only sees the response); on
//! refusal the inner service is never called and `respond` builds the 400/401.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use http::{Request, Response};
use tower::{Layer, Service};

use crate::body::Body;
use crate::config::AuthMode;
use crate::ids::DecisionId;
use crate::respond::{Rejection, reject};
use crate::route::RouteMatch;
use crate::timing::{Phase, Phases};

/// Adds the `authenticate` step.
#[derive(Debug, Clone, Copy, Default)]
pub struct AuthenticateLayer;

impl AuthenticateLayer {
    pub fn new() -> Self {
        Self
    }
}

impl<S> Layer<S> for AuthenticateLayer {
    type Service = Authenticate<S>;

    fn layer(&self, inner: S) -> Authenticate<S> {
        Authenticate { inner }
    }
}

/// The `authenticate` service (see the module doc).
#[derive(Debug, Clone)]
pub struct Authenticate<S> {
    inner: S,
}

/// Boxed because the authenticator's future is an `async fn` (unnameable); one small
/// allocation per request, the same as every other boxed tower step.
pub use crate::body::ResponseFuture;

impl<S, B> Service<Request<B>> for Authenticate<S>
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

    fn call(&mut self, mut req: Request<B>) -> ResponseFuture {
        // Use the service that was driven to readiness; leave a fresh clone in its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let decision_id = DecisionId::of(req.extensions());
            let Some(rm) = req.extensions().get::<RouteMatch>().cloned() else {
                // `route` runs before us and always inserts a RouteMatch; without one there
                // is no route to authenticate for. Answer 404 rather than guess.
                tracing::error!("authenticate: request without RouteMatch");
                return Ok(reject(&Rejection::NotFound, decision_id));
            };
            let Some(route) = rm.snapshot.routes.get(rm.index) else {
                tracing::error!("authenticate: RouteMatch index out of range");
                return Ok(reject(&Rejection::NotFound, decision_id));
            };
            match route.config.auth {
                AuthMode::None => inner.call(req).await,
                AuthMode::Required => {
                    let started = Instant::now();
                    let result = rm.snapshot.authn.authenticate(req.headers()).await;
                    let took = started.elapsed();
                    let mut resp = match result {
                        Ok(principal) => {
                            req.extensions_mut().insert(Arc::clone(&principal));
                            let mut resp = inner.call(req).await?;
                            resp.extensions_mut().insert(principal);
                            resp
                        }
                        Err(rejection) => reject(&rejection, decision_id),
                    };
                    Phases::record(resp.extensions_mut(), Phase::Authn, took);
                    Ok(resp)
                }
            }
        })
    }
}

#[cfg(test)]
#[path = "authenticate_tests.rs"]
mod tests;
