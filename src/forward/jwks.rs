//! The assertion's public keys on the gateway listener: `GET` [`JWKS_PATH`] answers with
//! the live snapshot's JWKS, before routing and without a token, so an upstream can fetch
//! the keys through the same name it is reached by.
//!
//! Outermost in the stack on purpose: a key fetch is not a Conditional Access decision,
//! so it is neither counted in `accessgate_requests_total` nor written to the decision
//! log. Without `[assertion]` the path is not special and the request goes on as usual.
//! Every other request costs one string comparison and no allocation: the future is an
//! enum over the inner one, not another box.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use tower::{Layer, Service};

use crate::body::Body;
use crate::snapshot::SharedSnapshot;
use crate::snapshot::assertion::JWKS_PATH;

/// How long verifiers may cache the key set. Rotation publishes a new key well before it
/// signs (see `docs/configuration.md`), so this bounds how long that step must last.
const CACHE_CONTROL_VALUE: &str = "public, max-age=300";

/// Layer for [`Jwks`].
#[derive(Clone)]
pub struct JwksLayer {
    shared: SharedSnapshot,
}

impl JwksLayer {
    pub fn new(shared: SharedSnapshot) -> Self {
        Self { shared }
    }
}

impl<S> Layer<S> for JwksLayer {
    type Service = Jwks<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Jwks {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// See the module docs.
#[derive(Clone)]
pub struct Jwks<S> {
    inner: S,
    shared: SharedSnapshot,
}

/// The JWKS answer, or the inner service's future.
pub enum JwksFuture<F> {
    Ready(Option<Response<Body>>),
    Inner(F),
}

impl<F> Future for JwksFuture<F>
where
    F: Future<Output = Result<Response<Body>, Infallible>> + Unpin,
{
    type Output = Result<Response<Body>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            JwksFuture::Ready(r) => match r.take() {
                Some(resp) => Poll::Ready(Ok(resp)),
                // Polled again after completion: answer something rather than panic.
                None => Poll::Ready(Ok(status(StatusCode::INTERNAL_SERVER_ERROR))),
            },
            JwksFuture::Inner(f) => Pin::new(f).poll(cx),
        }
    }
}

impl<S> Service<Request<Body>> for Jwks<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>,
    S::Future: Unpin,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = JwksFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        if req.uri().path() == JWKS_PATH
            && let Some(jwks) = self.shared.load().assertion.as_ref().map(|a| a.jwks())
        {
            return JwksFuture::Ready(Some(respond(req.method(), jwks)));
        }
        JwksFuture::Inner(self.inner.call(req))
    }
}

/// The JWKS response for `method` (GET and HEAD only), shared by both listeners.
pub fn respond(method: &Method, jwks: Bytes) -> Response<Body> {
    if method != Method::GET && method != Method::HEAD {
        let mut r = status(StatusCode::METHOD_NOT_ALLOWED);
        r.headers_mut()
            .insert(http::header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let mut r = Response::new(Body::full(jwks));
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static(CACHE_CONTROL_VALUE));
    r
}

fn status(code: StatusCode) -> Response<Body> {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = code;
    r
}
