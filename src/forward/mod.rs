//! `forward`: send an allowed request to the route's upstream over a pooled keep-alive
//! client, streaming bodies both ways.
//!
//! Header hygiene happens here and only here: hop-by-hop headers (and those named in
//! `Connection`) are removed, `Proxy-Authorization` never leaves, client-sent
//! `x-accessgate-*` is dropped before the gateway's own identity headers are added, and
//! `X-Forwarded-*` is replaced unless the peer is a trusted proxy.

use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header;
use http::{Request, Response, StatusCode};
use tower::Service;

use crate::authn::Principal;
use crate::body::{Body, ResponseFuture};
use crate::ids::DecisionId;
use crate::respond::{Rejection, reject};
use crate::route::{NormalizedPath, RouteMatch};
use crate::timing::{Phase, Phases};
use crate::transport::conn::{ClientIp, ConnInfo};

mod fault;
pub mod headers;
pub mod jwks;
pub mod tunnel;

pub use headers::{
    ForwardFacts, is_upgrade, prepare_headers, request_host, strip_hop_by_hop, upstream_uri,
};
use tunnel::ClientUpgrade;

/// The leaf service: forwards to the matched route's upstream.
#[derive(Clone, Default)]
pub struct Forward;

impl Service<Request<Body>> for Forward {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        Box::pin(forward(req))
    }
}

async fn forward(mut req: Request<Body>) -> Result<Response<Body>, Infallible> {
    let decision_id = DecisionId::of(req.extensions());
    let Some(rm) = req.extensions_mut().remove::<RouteMatch>() else {
        return Ok(reject(&Rejection::NotFound, decision_id));
    };
    let upgrade = is_upgrade(req.headers());
    let client_upgrade = upgrade.then(|| ClientUpgrade::take(&mut req));
    if let Err(r) = prepare_request(&mut req, &rm, upgrade, decision_id) {
        return Ok(reject(&r, decision_id));
    }
    let route = rm.route();
    // One clock read gives both the timeout's deadline and the upstream phase's start
    // (`timeout` would read the clock again for its deadline).
    let started = tokio::time::Instant::now();
    let sent = route.client().request(req);
    let result = match started.checked_add(route.config.request_timeout) {
        Some(deadline) => tokio::time::timeout_at(deadline, sent).await,
        // A timeout beyond the clock's range is no timeout, as `timeout` treats it.
        None => Ok(sent.await),
    };
    let elapsed = started.elapsed();
    route.metrics.upstream.observe(elapsed.as_secs_f64());
    let timed = |mut resp: Response<Body>| {
        Phases::record(resp.extensions_mut(), Phase::Upstream, elapsed);
        Ok(resp)
    };
    let mut resp = match result {
        Err(_) => return timed(reject(&Rejection::UpstreamTimeout, decision_id)),
        Ok(Err(e)) if fault::client_body_failed(&e) => {
            tracing::debug!(route = %route.config.name, error = %e, "client request body failed");
            return timed(reject(&Rejection::BadRequestBody, decision_id));
        }
        Ok(Err(e)) => {
            let why = if e.is_connect() {
                "the upstream refused or did not accept the connection"
            } else {
                "the upstream closed or reset the connection"
            };
            tracing::warn!(route = %route.config.name, error = %e, "upstream request failed");
            return timed(reject(&Rejection::UpstreamUnavailable(why), decision_id));
        }
        Ok(Ok(r)) => r,
    };
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        if let Some(c) = client_upgrade {
            c.spawn_tunnel(&mut resp);
        }
    } else {
        strip_hop_by_hop(resp.headers_mut(), false);
    }
    timed(resp.map(Body::Incoming))
}

/// Turn the client's request into the upstream's: URI (base path + normalised path),
/// HTTP/1.1, header hygiene and the gateway's identity headers.
fn prepare_request(
    req: &mut Request<Body>,
    rm: &RouteMatch,
    upgrade: bool,
    decision_id: DecisionId,
) -> Result<(), Rejection> {
    let cfg = &rm.route().config;
    let path = req
        .extensions()
        .get::<NormalizedPath>()
        .map(|p| p.0.as_str())
        .unwrap_or(req.uri().path());
    let uri = upstream_uri(cfg, path, req.uri().query())
        .map_err(|_| Rejection::BadRequest("request target cannot be forwarded"))?;
    let host = request_host(req.uri(), req.headers());
    let peer = req
        .extensions()
        .get::<ConnInfo>()
        .map(|c| c.peer.ip())
        .or_else(|| req.extensions().get::<ClientIp>().map(|c| c.0))
        .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    let peer_trusted = rm
        .snapshot
        .config
        .listen
        .trusted_proxies
        .iter()
        .any(|n| n.contains(&peer));
    let principal = req.extensions().get::<Arc<Principal>>().cloned();
    let headers = req.headers_mut();
    strip_hop_by_hop(headers, upgrade);
    prepare_headers(
        headers,
        &ForwardFacts {
            peer,
            peer_trusted,
            host: host.as_ref(),
            forward_token: cfg.forward_token,
            principal: principal.as_deref(),
            decision_id,
        },
    );
    if let Some(h) = host {
        // HTTP/2 clients send :authority, not Host; the upstream still wants the name
        // the client asked for.
        headers.insert(header::HOST, h);
    }
    // Signed after the client's x-accessgate-* headers are gone (prepare_headers). A route
    // that asks for an assertion never goes upstream without one (deny by default).
    if cfg.assertion {
        let token = rm
            .snapshot
            .assertion
            .as_ref()
            .zip(principal.as_deref())
            .and_then(|(signer, p)| {
                let now = crate::clock::unix_now();
                signer.sign(p, &cfg.resource, &decision_id.to_string(), now)
            })
            .ok_or(Rejection::AssertionUnavailable)?;
        headers.insert(crate::snapshot::assertion::HEADER.clone(), token);
    }
    *req.uri_mut() = uri;
    *req.version_mut() = http::Version::HTTP_11;
    Ok(())
}

#[cfg(test)]
#[path = "mod_tests.rs"]
mod tests;
