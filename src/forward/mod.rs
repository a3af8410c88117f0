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
use std::time::{Duration, Instant};

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tower::Service;

use crate::authn::Principal;
use crate::body::{Body, ResponseFuture};
use crate::config::RouteConfig;
use crate::ids::DecisionId;
use crate::respond::{Rejection, reject};
use crate::route::client_ip::{X_FORWARDED_FOR, forwarded_for};
use crate::route::{NormalizedPath, RouteMatch};
use crate::transport::conn::{ClientIp, ConnInfo};
use crate::transport::server::TunnelGuard;

/// Headers that describe one connection, never forwarded (RFC 9110 7.6.1 plus the
/// de-facto `Proxy-Connection` and `Keep-Alive`).
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];

static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static FORWARDED: HeaderName = HeaderName::from_static("forwarded");
/// Client-address headers some upstreams believe; only a trusted proxy may set them.
static CLIENT_ADDRESS_HEADERS: [HeaderName; 3] = [
    HeaderName::from_static("x-real-ip"),
    HeaderName::from_static("true-client-ip"),
    HeaderName::from_static("x-client-ip"),
];
static X_USER: HeaderName = HeaderName::from_static("x-accessgate-user");
static X_APP: HeaderName = HeaderName::from_static("x-accessgate-app");
static X_DEVICE: HeaderName = HeaderName::from_static("x-accessgate-device");
static X_DECISION: HeaderName = HeaderName::from_static("x-accessgate-decision-id");

/// True when the request asks to switch to WebSocket (HTTP/1.1 `Upgrade: websocket`).
/// Other upgrades (`h2c`, custom protocols) are not tunnelled: inside a tunnel every later
/// request would bypass routing, authentication and header hygiene. Their `Upgrade`
/// header is dropped and the request is forwarded as a plain one.
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::UPGRADE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| {
            let name = p.trim().split('/').next().unwrap_or("");
            name.eq_ignore_ascii_case("websocket")
        })
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
}

/// Remove hop-by-hop headers, including every header named in `Connection`. When
/// `keep_upgrade` is set, `Upgrade` and `Connection: upgrade` survive (WebSocket).
pub fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    // Headers named by Connection are hop-by-hop too (RFC 9110 7.6.1).
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .filter(|n| !(keep_upgrade && n == header::UPGRADE))
        .collect();
    for n in named {
        headers.remove(n);
    }
    for h in &HOP_BY_HOP {
        headers.remove(h);
    }
    if keep_upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    } else {
        headers.remove(header::UPGRADE);
    }
}

/// What the gateway knows about the request that upstream headers are built from.
#[derive(Debug, Clone, Copy)]
pub struct ForwardFacts<'a> {
    pub peer: IpAddr,
    /// The peer is in `trusted_proxies`: its `X-Forwarded-*` are kept and appended to.
    pub peer_trusted: bool,
    /// The host the client asked for (`Host` or `:authority`), as received.
    pub host: Option<&'a str>,
    pub forward_token: bool,
    pub principal: Option<&'a Principal>,
    pub decision_id: DecisionId,
}

/// Prepare request headers for the upstream (everything but hop-by-hop removal).
pub fn prepare_headers(headers: &mut HeaderMap, facts: &ForwardFacts<'_>) {
    // Nothing the client says about our identity headers is believed.
    let spoofed: Vec<HeaderName> = headers
        .keys()
        .filter(|k| k.as_str().starts_with("x-accessgate-"))
        .cloned()
        .collect();
    for k in spoofed {
        headers.remove(k);
    }
    if !facts.forward_token {
        headers.remove(header::AUTHORIZATION);
    }
    headers.remove(header::PROXY_AUTHORIZATION);

    let peer = HeaderValue::from_str(&facts.peer.to_string()).ok();
    if facts.peer_trusted {
        // Append the peer to the chain the trusted proxy sent.
        let chain = forwarded_for(headers).map(|v| format!("{v}, {}", facts.peer));
        match chain.and_then(|c| HeaderValue::from_str(&c).ok()) {
            Some(v) => {
                headers.insert(X_FORWARDED_FOR.clone(), v);
            }
            None => {
                if let Some(p) = peer {
                    headers.insert(X_FORWARDED_FOR.clone(), p);
                }
            }
        }
        if !headers.contains_key(&X_FORWARDED_PROTO) {
            headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static("https"));
        }
        if !headers.contains_key(&X_FORWARDED_HOST)
            && let Some(h) = facts.host.and_then(|h| HeaderValue::from_str(h).ok())
        {
            headers.insert(X_FORWARDED_HOST.clone(), h);
        }
    } else {
        headers.remove(&FORWARDED);
        headers.remove(&X_FORWARDED_HOST);
        for h in &CLIENT_ADDRESS_HEADERS {
            headers.remove(h);
        }
        match peer {
            Some(p) => {
                headers.insert(X_FORWARDED_FOR.clone(), p);
            }
            None => {
                headers.remove(&X_FORWARDED_FOR);
            }
        }
        headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static("https"));
        if let Some(h) = facts.host.and_then(|h| HeaderValue::from_str(h).ok()) {
            headers.insert(X_FORWARDED_HOST.clone(), h);
        }
    }
    if let Some(p) = facts.principal {
        if let Ok(v) = HeaderValue::from_str(&p.user) {
            headers.insert(X_USER.clone(), v);
        }
        if let Some(v) = p
            .client_app
            .as_deref()
            .and_then(|a| HeaderValue::from_str(a).ok())
        {
            headers.insert(X_APP.clone(), v);
        }
        if let Some(v) = p
            .device
            .as_deref()
            .and_then(|d| HeaderValue::from_str(d).ok())
        {
            headers.insert(X_DEVICE.clone(), v);
        }
    }
    if let Ok(v) = HeaderValue::from_str(&facts.decision_id.to_string()) {
        headers.insert(X_DECISION.clone(), v);
    }
}

/// The upstream URI: route base path + (normalised) request path + query.
pub fn upstream_uri(
    route: &RouteConfig,
    path: &str,
    query: Option<&str>,
) -> Result<Uri, http::Error> {
    let mut pq = String::with_capacity(route.upstream.base_path.len() + path.len() + 32);
    pq.push_str(&route.upstream.base_path);
    pq.push_str(path);
    if let Some(q) = query {
        pq.push('?');
        pq.push_str(q);
    }
    Uri::builder()
        .scheme("http")
        .authority(route.upstream.authority.clone())
        .path_and_query(pq)
        .build()
}

/// Time the upstream took to send its response head; recorded by the logging layer.
#[derive(Debug, Clone, Copy)]
pub struct UpstreamTiming(pub Duration);

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
    let route = rm.route();
    let cfg = &route.config;

    let uri = {
        let path = req
            .extensions()
            .get::<NormalizedPath>()
            .map(|p| p.0.as_str())
            .unwrap_or(req.uri().path());
        match upstream_uri(cfg, path, req.uri().query()) {
            Ok(u) => u,
            Err(_) => {
                return Ok(reject(
                    &Rejection::BadRequest("request target cannot be forwarded"),
                    decision_id,
                ));
            }
        }
    };
    let host: Option<String> = req
        .uri()
        .authority()
        .map(|a| a.as_str().to_owned())
        .or_else(|| {
            req.headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned)
        });
    let upgrade = is_upgrade(req.headers());
    let client_upgrade = if upgrade {
        // The tunnel keeps the connection's slot (max_connections, open_connections) and
        // learns when the shutdown grace period is over.
        let guard = req.extensions_mut().remove::<TunnelGuard>();
        Some((hyper::upgrade::on(&mut req), guard))
    } else {
        None
    };

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
    {
        let headers = req.headers_mut();
        strip_hop_by_hop(headers, upgrade);
        prepare_headers(
            headers,
            &ForwardFacts {
                peer,
                peer_trusted,
                host: host.as_deref(),
                forward_token: cfg.forward_token,
                principal: principal.as_deref(),
                decision_id,
            },
        );
        if let Some(h) = host.as_deref().and_then(|h| HeaderValue::from_str(h).ok()) {
            // HTTP/2 clients send :authority, not Host; the upstream still wants the name
            // the client asked for.
            headers.insert(header::HOST, h);
        }
    }
    *req.uri_mut() = uri;
    *req.version_mut() = http::Version::HTTP_11;

    let started = Instant::now();
    let result = tokio::time::timeout(cfg.request_timeout, route.client.request(req)).await;
    let elapsed = started.elapsed();
    route.metrics.upstream.observe(elapsed.as_secs_f64());
    let mut resp = match result {
        Err(_) => return Ok(reject(&Rejection::UpstreamTimeout, decision_id)),
        Ok(Err(e)) => {
            let why = if e.is_connect() {
                "the upstream refused or did not accept the connection"
            } else {
                "the upstream closed or reset the connection"
            };
            tracing::warn!(route = %cfg.name, error = %e, "upstream request failed");
            return Ok(reject(&Rejection::UpstreamUnavailable(why), decision_id));
        }
        Ok(Ok(r)) => r,
    };

    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        if let Some((client_upgrade, guard)) = client_upgrade {
            let upstream_upgrade = hyper::upgrade::on(&mut resp);
            tokio::spawn(tunnel(client_upgrade, upstream_upgrade, guard));
        }
        let mut resp = resp.map(Body::Incoming);
        resp.extensions_mut().insert(UpstreamTiming(elapsed));
        return Ok(resp);
    }
    strip_hop_by_hop(resp.headers_mut(), false);
    let mut resp = resp.map(Body::Incoming);
    resp.extensions_mut().insert(UpstreamTiming(elapsed));
    Ok(resp)
}

/// Copy bytes both ways between an upgraded client connection and the upstream, until
/// either side closes or the shutdown grace period ends.
async fn tunnel(
    client: hyper::upgrade::OnUpgrade,
    upstream: hyper::upgrade::OnUpgrade,
    guard: Option<TunnelGuard>,
) {
    let (client, upstream) = match tokio::try_join!(client, upstream) {
        Ok(x) => x,
        Err(e) => {
            tracing::debug!(error = %e, "upgrade failed");
            return;
        }
    };
    let mut c = TokioIo::new(client);
    let mut u = TokioIo::new(upstream);
    let copy = tokio::io::copy_bidirectional(&mut c, &mut u);
    match guard {
        Some(mut g) => {
            if *g.kill.borrow() {
                return;
            }
            tokio::select! {
                _ = copy => {}
                _ = g.kill.changed() => {}
            }
        }
        None => {
            let _ = copy.await;
        }
    }
}

#[cfg(test)]
#[path = "mod_tests.rs"]
mod tests;
