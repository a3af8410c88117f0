//! `route`: pick the route for a request by host and longest path prefix, on the
//! *normalised* path, and insert [`RouteMatch`] and [`ClientIp`] for later steps.
//!
//! The normalised path is also what `forward` sends upstream, so the path a policy was
//! chosen for is the path the upstream serves: `/public/../admin` and `/public/%2e%2e/admin`
//! are `/admin` both here and there.

use std::borrow::Cow;
use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use ipnet::IpNet;
use tower::{Layer, Service};

use crate::body::Body;
use crate::config::RouteConfig;
use crate::ids::DecisionId;
use crate::respond::{Rejection, reject};
use crate::snapshot::{Route, SharedSnapshot, Snapshot};
use crate::transport::conn::{ClientIp, ConnInfo};

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

/// The routing table: host-specific routes first, then host-less ones; longest prefix wins.
#[derive(Debug, Default)]
pub struct Router {
    /// (lower-case host or None, prefix, route index), sorted by prefix length, longest first.
    entries: Vec<(Option<String>, String, usize)>,
}

impl Router {
    /// Build the table from validated routes (hosts lower-case, prefixes normalised).
    pub fn new(routes: &[RouteConfig]) -> Self {
        let mut entries: Vec<_> = routes
            .iter()
            .enumerate()
            .map(|(i, r)| (r.host.clone(), r.path_prefix.clone(), i))
            .collect();
        entries.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.2.cmp(&b.2)));
        Self { entries }
    }

    /// The route for `host` (lower-case, no port) and a normalised `path`. Routes naming
    /// this host are preferred over host-less ones (like a virtual host); within the
    /// chosen group the longest matching prefix wins.
    pub fn find(&self, host: Option<&str>, path: &str) -> Option<usize> {
        if let Some(h) = host {
            let has_vhost = self
                .entries
                .iter()
                .any(|(eh, _, _)| eh.as_deref() == Some(h));
            if has_vhost {
                return self
                    .entries
                    .iter()
                    .find(|(eh, p, _)| eh.as_deref() == Some(h) && prefix_matches(p, path))
                    .map(|e| e.2);
            }
        }
        self.entries
            .iter()
            .find(|(eh, p, _)| eh.is_none() && prefix_matches(p, path))
            .map(|e| e.2)
    }
}

/// Prefix match on segment boundaries: `/api` matches `/api` and `/api/x`, not `/apix`.
pub fn prefix_matches(prefix: &str, path: &str) -> bool {
    if !path.starts_with(prefix) {
        return false;
    }
    prefix.ends_with('/') || path.len() == prefix.len() || path.as_bytes()[prefix.len()] == b'/'
}

/// Why a path was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    NotAbsolute,
    BadEscape,
    Backslash,
    DotSegmentParameters,
}

impl PathError {
    pub fn as_str(self) -> &'static str {
        match self {
            PathError::NotAbsolute => "request path must start with /",
            PathError::BadEscape => "malformed percent-encoding in path",
            PathError::Backslash => "backslash in path",
            PathError::DotSegmentParameters => "dot-segment with ; parameters in path",
        }
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Normalise a request path (RFC 3986 6.2.2): decode percent-encoded unreserved
/// characters, upper-case the remaining escapes, remove dot-segments, and merge repeated
/// slashes. `%2F` stays encoded (it is data, not a separator). Borrowed when already normal.
pub fn normalize_path(path: &str) -> Result<Cow<'_, str>, PathError> {
    let bytes = path.as_bytes();
    if bytes.first() != Some(&b'/') {
        return Err(PathError::NotAbsolute);
    }
    if bytes.contains(&b'\\') {
        return Err(PathError::Backslash);
    }
    let needs_work = bytes.contains(&b'%')
        || bytes.contains(&b';')
        || path.contains("//")
        || path.contains("/./")
        || path.contains("/../")
        || path.ends_with("/.")
        || path.ends_with("/..");
    if !needs_work {
        return Ok(Cow::Borrowed(path));
    }
    // Pass 1: escapes.
    let mut decoded = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let (h, l) = match (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            ) {
                (Some(h), Some(l)) => (h, l),
                _ => return Err(PathError::BadEscape),
            };
            let v = h * 16 + l;
            if is_unreserved(v) {
                decoded.push(v as char);
            } else if v == b'\\' {
                return Err(PathError::Backslash);
            } else {
                decoded.push('%');
                decoded.push(char::from(b"0123456789ABCDEF"[(v >> 4) as usize]));
                decoded.push(char::from(b"0123456789ABCDEF"[(v & 15) as usize]));
            }
            i += 3;
        } else {
            // The path is &str and we only split at ASCII bytes, so pushing the char
            // starting here keeps UTF-8 intact.
            let ch_len = utf8_len(b);
            decoded.push_str(&path[i..i + ch_len]);
            i += ch_len;
        }
    }
    // Pass 2: segments.
    let mut out: Vec<&str> = Vec::new();
    let mut trailing_slash = decoded.ends_with('/');
    for seg in decoded.split('/') {
        // `..;x` / `.;x`: servlet containers (Tomcat, Jetty) drop the `;` parameters and
        // treat these as dot-segments, so a router that did not would route `/public/..;/admin`
        // to /public while the upstream serves /admin.
        if let Some((name, _)) = seg.split_once(';')
            && (name == "." || name == "..")
        {
            return Err(PathError::DotSegmentParameters);
        }
        match seg {
            "" => {}
            "." => trailing_slash = true,
            ".." => {
                out.pop();
                trailing_slash = true;
            }
            s => {
                out.push(s);
                trailing_slash = false;
            }
        }
    }
    if decoded.ends_with('/') {
        trailing_slash = true;
    }
    let mut norm = String::with_capacity(decoded.len());
    for s in &out {
        norm.push('/');
        norm.push_str(s);
    }
    if trailing_slash || norm.is_empty() {
        norm.push('/');
    }
    Ok(Cow::Owned(norm))
}

fn utf8_len(first: u8) -> usize {
    match first {
        0x00..=0x7F => 1,
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    }
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

/// The client IP: the TCP peer, unless the peer is a trusted proxy, in which case the
/// right-most `X-Forwarded-For` address that is not itself a trusted proxy.
/// A trusted proxy's `X-Forwarded-For` held an entry that is not an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadForwardedFor;

/// `xff` is every `X-Forwarded-For` line joined in order (see `forward::forwarded_for`).
/// Entries may carry a port (`203.0.113.9:51234`, `[2001:db8::1]:443`, as some load
/// balancers append); IPv4-mapped IPv6 addresses compare as IPv4. An entry that is not an
/// address at all (`unknown`, garbage) from a trusted proxy is `Err`: the caller refuses
/// the request rather than fall back to the proxy's own address, which would make every
/// client look like it stands where the proxy does.
pub fn client_ip(
    peer: IpAddr,
    xff: Option<&str>,
    trusted: &[IpNet],
) -> Result<IpAddr, BadForwardedFor> {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    let peer = peer.to_canonical();
    if !is_trusted(&peer) {
        return Ok(peer);
    }
    let Some(list) = xff else {
        return Ok(peer);
    };
    let mut candidate = peer;
    for part in list.rsplit(',') {
        let ip = parse_forwarded_addr(part.trim()).ok_or(BadForwardedFor)?;
        candidate = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    Ok(candidate)
}

/// An address from `X-Forwarded-For`: `ip`, `ip:port`, `[v6]` or `[v6]:port`.
fn parse_forwarded_addr(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Some(rest) = s.strip_prefix('[') {
        let (v6, tail) = rest.split_once(']')?;
        if !(tail.is_empty()
            || tail
                .strip_prefix(':')
                .is_some_and(|p| p.parse::<u16>().is_ok()))
        {
            return None;
        }
        return v6.parse::<IpAddr>().ok().map(|ip| ip.to_canonical());
    }
    let (host, port) = s.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
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

use crate::body::ResponseFuture as BoxFuture;

impl<S, B> Service<Request<B>> for RouteService<S>
where
    S: Service<Request<B>, Response = Response<Body>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture;

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
                crate::forward::forwarded_for(req.headers())
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
        }
    }
}
