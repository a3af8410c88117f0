//! `route`: pick the route for a request by host and longest path prefix, on the
//! *normalised* path, and insert [`RouteMatch`] and [`ClientIp`] for later steps.
//!
//! The normalised path is also what `forward` sends upstream, so the path a policy was
//! chosen for is the path the upstream serves: `/public/../admin` and `/public/%2e%2e/admin`
//! are `/admin` both here and there.

use std::borrow::Cow;
use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower::{Layer, Service};

use crate::body::{Body, ResponseFuture};
use crate::ids::DecisionId;
use crate::respond::{Rejection, reject};
use crate::snapshot::{Route, SharedSnapshot, Snapshot};
use crate::transport::conn::{ClientIp, ConnInfo};

pub mod client_ip;

pub use crate::config::path::{PathError, normalize_path};
use client_ip::{BadForwardedFor, client_ip, forwarded_for};

/// Inserted by the route step (into the request, and back into the response for the
/// logging layer): the snapshot this request runs on, and its route.
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

/// The request path after normalisation, when it differs from the one received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalizedPath(pub String);

/// True when the request's authority (`:authority`, an absolute-form target, or any
/// `Host` line) carries userinfo (`evil@host`). RFC 9110 4.2.4 forbids it in `http(s)`
/// URIs and a `Host` header has no place for it; passed on, the upstream would see a host
/// other than the one the route was chosen for.
pub fn has_userinfo<B>(req: &Request<B>) -> bool {
    req.uri()
        .authority()
        .is_some_and(|a| a.as_str().contains('@'))
        || req
            .headers()
            .get_all(http::header::HOST)
            .iter()
            .any(|v| v.as_bytes().contains(&b'@'))
}

/// The request's host: the URI authority (HTTP/2, absolute-form) or the `Host` header,
/// lower-cased, without port.
pub fn request_host<B>(req: &Request<B>) -> Option<Cow<'_, str>> {
    let raw = match req.uri().host() {
        Some(h) => h,
        None => req.headers().get(http::header::HOST)?.to_str().ok()?,
    };
    let host = strip_port(raw);
    // `api.example.` (fully qualified) is the same name as `api.example`.
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        Some(Cow::Owned(host.to_ascii_lowercase()))
    } else {
        Some(Cow::Borrowed(host))
    }
}

fn strip_port(h: &str) -> &str {
    if let Some(rest) = h.strip_prefix('[') {
        // [v6]:port -> v6
        return rest.split(']').next().unwrap_or(rest);
    }
    match h.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => h,
    }
}

/// Layer that routes requests against the live snapshot.
#[derive(Clone)]
pub struct RouteLayer {
    shared: SharedSnapshot,
}

impl RouteLayer {
    pub fn new(shared: SharedSnapshot) -> Self {
        Self { shared }
    }
}

impl<S> Layer<S> for RouteLayer {
    type Service = RouteService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RouteService {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// See [`RouteLayer`].
#[derive(Clone)]
pub struct RouteService<S> {
    inner: S,
    shared: SharedSnapshot,
}

impl<S, B> Service<Request<B>> for RouteService<S>
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
        let decision_id = DecisionId::of(req.extensions());
        let snapshot = self.shared.load_full();
        let normalized = match normalize_path(req.uri().path()) {
            Ok(Cow::Borrowed(_)) => None,
            Ok(Cow::Owned(p)) => Some(p),
            Err(e) => {
                let resp = reject(&Rejection::BadRequest(e.as_str()), decision_id);
                return Box::pin(async move { Ok(resp) });
            }
        };
        if has_userinfo(&req) {
            let resp = reject(
                &Rejection::BadRequest("userinfo is not allowed in Host or :authority"),
                decision_id,
            );
            return Box::pin(async move { Ok(resp) });
        }
        let path = normalized.as_deref().unwrap_or(req.uri().path());
        let host = request_host(&req);
        let Some(index) = snapshot.router.find(host.as_deref(), path) else {
            let resp = reject(&Rejection::NotFound, decision_id);
            return Box::pin(async move { Ok(resp) });
        };
        if let Some(conn) = req.extensions().get::<ConnInfo>().copied() {
            let trusted = &snapshot.config.listen.trusted_proxies;
            // Only a trusted peer's X-Forwarded-For is read at all (no work otherwise).
            let xff = if trusted.iter().any(|n| n.contains(&conn.peer.ip())) {
                forwarded_for(req.headers())
            } else {
                None
            };
            match client_ip(conn.peer.ip(), xff.as_deref(), trusted) {
                Ok(ip) => {
                    req.extensions_mut().insert(ClientIp(ip));
                }
                Err(BadForwardedFor) => {
                    let resp = reject(
                        &Rejection::BadRequest(
                            "X-Forwarded-For holds an entry that is not an address",
                        ),
                        decision_id,
                    );
                    return Box::pin(async move { Ok(resp) });
                }
            }
        }
        if let Some(p) = normalized {
            req.extensions_mut().insert(NormalizedPath(p));
        }
        let rm = RouteMatch { snapshot, index };
        req.extensions_mut().insert(rm.clone());
        let mut inner = self.inner.clone();
        std::mem::swap(&mut self.inner, &mut inner);
        Box::pin(async move {
            let mut resp = inner.call(req).await?;
            resp.extensions_mut().insert(rm);
            Ok(resp)
        })
    }
}

#[cfg(test)]
#[path = "mod_tests.rs"]
mod tests;

/// Route fixtures shared by unit tests of several steps.
#[cfg(test)]
pub(crate) mod tests_support {
    use crate::config::{AuthMode, RouteConfig, Upstream};
    use std::time::Duration;

    pub fn route(name: &str, host: Option<&str>, prefix: &str) -> RouteConfig {
        RouteConfig {
            name: name.into(),
            host: host.map(Into::into),
            path_prefix: prefix.into(),
            upstream: Upstream {
                authority: http::uri::Authority::from_static("127.0.0.1:1"),
                base_path: String::new(),
            },
            resource: name.into(),
            auth: AuthMode::Required,
            forward_token: true,
            connect_timeout: Duration::from_secs(1),
            request_timeout: Duration::from_secs(1),
            assertion: false,
            upstream_max_connections: 256,
        }
    }
}
