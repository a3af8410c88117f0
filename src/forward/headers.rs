//! Header hygiene for the upstream request and response: hop-by-hop removal, the
//! gateway's identity headers, `X-Forwarded-*`, and the upstream URI.

use std::fmt::Write as _;
use std::net::IpAddr;

use http::Uri;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};

use crate::authn::Principal;
use crate::config::RouteConfig;
use crate::ids::DecisionId;
use crate::route::client_ip::{X_FORWARDED_FOR, forwarded_for};

const HOP_BY_HOP_COUNT: usize = 8;

/// Headers that describe one connection, never forwarded (RFC 9110 7.6.1 plus the
/// de-facto `Proxy-Connection` and `Keep-Alive`).
const HOP_BY_HOP: [HeaderName; HOP_BY_HOP_COUNT] = [
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
const CLIENT_ADDRESS_COUNT: usize = 3;
/// Client-address headers some upstreams believe; only a trusted proxy may set them.
static CLIENT_ADDRESS_HEADERS: [HeaderName; CLIENT_ADDRESS_COUNT] = [
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
///
/// One pass over the names finds which of them are present: removing a name the map does
/// not hold still costs a hash and a probe, and most messages hold none. Removals then run
/// in the same order as always, so the map comes out the same.
pub fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    let mut present = [false; HOP_BY_HOP_COUNT];
    let (mut connection, mut upgrade) = (false, false);
    for k in headers.keys() {
        match HOP_BY_HOP.iter().position(|h| h == k) {
            Some(i) => {
                present[i] = true;
                connection |= k == header::CONNECTION;
            }
            None => upgrade |= k == header::UPGRADE,
        }
    }
    if connection {
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
    }
    for (h, here) in HOP_BY_HOP.iter().zip(present) {
        if here {
            headers.remove(h);
        }
    }
    if keep_upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    } else if upgrade {
        headers.remove(header::UPGRADE);
    }
}

/// What the gateway knows about the request that upstream headers are built from.
#[derive(Debug, Clone, Copy)]
pub struct ForwardFacts<'a> {
    pub peer: IpAddr,
    /// The peer is in `trusted_proxies`: its `X-Forwarded-*` are kept and appended to.
    pub peer_trusted: bool,
    /// The host the client asked for (`Host` or `:authority`), as received (see
    /// [`request_host`]).
    pub host: Option<&'a HeaderValue>,
    pub forward_token: bool,
    pub principal: Option<&'a Principal>,
    pub decision_id: DecisionId,
}

/// The request headers [`prepare_headers`] removes or looks at, found in one pass over the
/// map's names (a removal of an absent name still hashes and probes; a typical request
/// holds none of these).
#[derive(Default)]
struct Seen {
    authorization: bool,
    proxy_authorization: bool,
    forwarded: bool,
    x_forwarded_for: bool,
    x_forwarded_host: bool,
    x_forwarded_proto: bool,
    client_address: [bool; CLIENT_ADDRESS_COUNT],
    /// Client-sent `x-accessgate-*` (allocates only when there is one).
    spoofed: Vec<HeaderName>,
}

impl Seen {
    fn scan(headers: &HeaderMap) -> Self {
        let mut s = Seen::default();
        for k in headers.keys() {
            if k == header::AUTHORIZATION {
                s.authorization = true;
            } else if k == header::PROXY_AUTHORIZATION {
                s.proxy_authorization = true;
            } else if k == FORWARDED {
                s.forwarded = true;
            } else if k == X_FORWARDED_FOR {
                s.x_forwarded_for = true;
            } else if k == X_FORWARDED_HOST {
                s.x_forwarded_host = true;
            } else if k == X_FORWARDED_PROTO {
                s.x_forwarded_proto = true;
            } else if let Some(i) = CLIENT_ADDRESS_HEADERS.iter().position(|h| h == k) {
                s.client_address[i] = true;
            } else if k.as_str().starts_with("x-accessgate-") {
                s.spoofed.push(k.clone());
            }
        }
        s
    }
}

/// Prepare request headers for the upstream (everything but hop-by-hop removal).
pub fn prepare_headers(headers: &mut HeaderMap, facts: &ForwardFacts<'_>) {
    let seen = Seen::scan(headers);
    // Nothing the client says about our identity headers is believed.
    for k in &seen.spoofed {
        headers.remove(k);
    }
    if !facts.forward_token && seen.authorization {
        headers.remove(header::AUTHORIZATION);
    }
    if seen.proxy_authorization {
        headers.remove(header::PROXY_AUTHORIZATION);
    }

    let peer = ip_value(facts.peer);
    if facts.peer_trusted {
        // Append the peer to the chain the trusted proxy sent.
        let chain = seen
            .x_forwarded_for
            .then(|| forwarded_for(headers))
            .flatten()
            .map(|v| format!("{v}, {}", facts.peer));
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
        if !seen.x_forwarded_proto {
            headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static("https"));
        }
        if !seen.x_forwarded_host
            && let Some(h) = facts.host
        {
            headers.insert(X_FORWARDED_HOST.clone(), h.clone());
        }
    } else {
        if seen.forwarded {
            headers.remove(&FORWARDED);
        }
        if seen.x_forwarded_host {
            headers.remove(&X_FORWARDED_HOST);
        }
        for (h, here) in CLIENT_ADDRESS_HEADERS.iter().zip(seen.client_address) {
            if here {
                headers.remove(h);
            }
        }
        match peer {
            Some(p) => {
                headers.insert(X_FORWARDED_FOR.clone(), p);
            }
            None => {
                if seen.x_forwarded_for {
                    headers.remove(&X_FORWARDED_FOR);
                }
            }
        }
        headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static("https"));
        if let Some(h) = facts.host {
            headers.insert(X_FORWARDED_HOST.clone(), h.clone());
        }
    }
    if let Some(p) = facts.principal {
        // Built once per verified principal and shared by every request of its token.
        let id = p.identity_headers();
        for (name, value) in [
            (&X_USER, &id.user),
            (&X_APP, &id.app),
            (&X_DEVICE, &id.device),
        ] {
            if let Some(v) = value {
                headers.insert(name.clone(), v.clone());
            }
        }
    }
    if let Ok(v) = HeaderValue::from_bytes(&facts.decision_id.hex()) {
        headers.insert(X_DECISION.clone(), v);
    }
}

/// The host the client asked for, as a header value: `:authority` (HTTP/2, or an
/// absolute-form target), else `Host` when it is visible ASCII (shared with the request's
/// own header, no copy). `None` when neither gives a usable value.
pub fn request_host(uri: &Uri, headers: &HeaderMap) -> Option<HeaderValue> {
    match uri.authority() {
        Some(a) => HeaderValue::from_str(a.as_str()).ok(),
        None => headers
            .get(header::HOST)
            .filter(|h| h.to_str().is_ok())
            .cloned(),
    }
}

/// An address as a header value, formatted on the stack (one copy, into the value).
fn ip_value(ip: IpAddr) -> Option<HeaderValue> {
    let mut buf = IpText::default();
    write!(buf, "{ip}").ok()?;
    HeaderValue::from_bytes(buf.as_bytes()).ok()
}

/// Room for the longest IPv6 text (45 bytes, an IPv4-mapped address with every group).
struct IpText {
    buf: [u8; 48],
    len: usize,
}

impl Default for IpText {
    fn default() -> Self {
        Self {
            buf: [0; 48],
            len: 0,
        }
    }
}

impl IpText {
    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl std::fmt::Write for IpText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        let dst = self.buf.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
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
