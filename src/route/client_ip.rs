//! Who the client is: the TCP peer, or what trusted proxies say in `X-Forwarded-For`.
//! Read by `route` (for [`crate::transport::conn::ClientIp`]) and by `forward` (to extend
//! the chain it sends upstream).

use std::net::IpAddr;

use http::HeaderMap;
use http::header::HeaderName;
use ipnet::IpNet;

/// The `X-Forwarded-For` header name.
pub static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// A trusted proxy's `X-Forwarded-For` held an entry that is not an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadForwardedFor;

/// The client IP: the TCP peer, unless the peer is a trusted proxy, in which case the
/// right-most `X-Forwarded-For` address that is not itself a trusted proxy.
///
/// `xff` is every `X-Forwarded-For` line joined in order (see [`forwarded_for`]).
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

/// All `X-Forwarded-For` field lines, joined in order (a proxy may add its own line).
pub fn forwarded_for(headers: &HeaderMap) -> Option<String> {
    let mut out: Option<String> = None;
    for v in headers.get_all(&X_FORWARDED_FOR) {
        let Ok(v) = v.to_str() else { continue };
        match &mut out {
            Some(o) => {
                o.push_str(", ");
                o.push_str(v);
            }
            None => out = Some(v.to_owned()),
        }
    }
    out
}
