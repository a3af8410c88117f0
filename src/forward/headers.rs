//! Header hygiene for the upstream request and response: hop-by-hop removal, the
//! gateway's identity headers, `X-Forwarded-*`, and the upstream URI.

use std::net::IpAddr;

use http::Uri;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};

use crate::authn::Principal;
use crate::config::RouteConfig;
use crate::ids::DecisionId;
use crate::route::client_ip::{X_FORWARDED_FOR, forwarded_for};

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

#[cfg(test)]
#[path = "headers_tests.rs"]
mod tests;
