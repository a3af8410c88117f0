//! Checks for the network-shaped values: socket addresses, CIDRs, fetch URLs, upstreams,
//! route hosts and path prefixes. Pure functions from text to a value or a message; the
//! caller adds the key and line.

use std::net::{IpAddr, SocketAddr};

use http::uri::{Authority, Uri};
use ipnet::IpNet;

use crate::config::Upstream;
use crate::config::path::PathError;

/// `ip:port` (IPv6 in brackets). Host names are refused: a listener binds an address.
pub(crate) fn socket_addr(text: &str) -> Result<SocketAddr, String> {
    text.parse::<SocketAddr>().map_err(|_| {
        format!(
            "{text:?} is not an ip:port socket address (e.g. \"0.0.0.0:8443\", \"[::]:8443\"; host names are not resolved)"
        )
    })
}

/// A CIDR (`10.0.0.0/8`, `2001:db8::/32`) or a bare IP (taken as a single host). Host bits
/// are cleared, so `10.1.2.3/8` means `10.0.0.0/8`.
pub(crate) fn cidr(text: &str) -> Result<IpNet, String> {
    if let Ok(net) = text.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(IpNet::from(ip));
    }
    Err(format!(
        "{text:?} is not a CIDR (e.g. \"10.0.0.0/8\", \"2001:db8::/32\") or an IP address"
    ))
}

/// Whether a URI host (as `http::Uri` gives it, IPv6 in brackets) is a loopback address.
fn is_loopback_host(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// A URL the gateway fetches from or hands to clients (JWKS, discovery, state, sign-in):
/// `https://`, or `http://` only to a loopback host (local IdPs and tests). No user info.
pub(crate) fn fetch_url(text: &str) -> Result<(), String> {
    let uri: Uri = text.parse().map_err(|_| format!("{text:?} is not a URL"))?;
    let Some(authority) = uri.authority() else {
        return Err(format!("{text:?} is not an absolute URL"));
    };
    if authority.as_str().contains('@') {
        return Err(format!(
            "{text:?}: user info (user:password@) is not allowed in URLs"
        ));
    }
    if authority.host().is_empty() {
        return Err(format!("{text:?} has no host"));
    }
    match uri.scheme_str() {
        Some("https") => Ok(()),
        Some("http") if is_loopback_host(authority.host()) => Ok(()),
        Some("http") => Err(format!(
            "{text:?} must be https:// (plain http:// is only allowed to a loopback address)"
        )),
        _ => Err(format!("{text:?} must be an https:// URL")),
    }
}

/// `http://host[:port][/base]` -> [`Upstream`] with the port defaulted to 80 and the base
/// path without a trailing slash.
pub(crate) fn upstream(text: &str) -> Result<Upstream, String> {
    if text.starts_with("https://") {
        return Err(format!(
            "{text:?}: https upstreams are not supported; the gateway speaks plain http:// to upstreams on a trusted network"
        ));
    }
    let not_http =
        || format!("{text:?} is not an http:// URL (expected http://host[:port][/base])");
    let uri: Uri = text.parse().map_err(|_| not_http())?;
    if uri.scheme_str() != Some("http") {
        return Err(not_http());
    }
    let Some(authority) = uri.authority() else {
        return Err(not_http());
    };
    if authority.as_str().contains('@') {
        return Err(format!(
            "{text:?}: user info (user:password@) is not allowed in an upstream"
        ));
    }
    if authority.host().is_empty() {
        return Err(format!("{text:?} has no host"));
    }
    if uri.query().is_some() || text.contains('#') {
        return Err(format!(
            "{text:?}: an upstream cannot have a query or fragment"
        ));
    }
    let port = match authority.port_u16() {
        Some(0) => return Err(format!("{text:?}: port 0 is not a valid upstream port")),
        Some(port) => port,
        None if authority.as_str().ends_with(':') => {
            return Err(format!("{text:?}: empty port"));
        }
        None => 80,
    };
    let authority: Authority = format!("{}:{port}", authority.host())
        .parse()
        .map_err(|_| not_http())?;
    let base_path = normalize_path(uri.path())
        .map_err(|e| format!("{text:?}: path {e}"))?
        .trim_end_matches('/')
        .to_owned();
    Ok(Upstream {
        authority,
        base_path,
    })
}

/// A route host: lower-cased, port stripped, trailing dot dropped. A DNS name or an IP
/// literal (IPv6 in brackets); no wildcards.
pub(crate) fn route_host(text: &str) -> Result<String, String> {
    let lower = text.to_ascii_lowercase();
    if let Some(rest) = lower.strip_prefix('[') {
        let Some((ip, after)) = rest.split_once(']') else {
            return Err(format!("{text:?}: unclosed [ in IPv6 host"));
        };
        if ip.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("{text:?} is not a valid IPv6 literal"));
        }
        if !(after.is_empty() || after.strip_prefix(':').is_some_and(is_port)) {
            return Err(format!("{text:?}: unexpected text after the IPv6 literal"));
        }
        return Ok(format!("[{ip}]"));
    }
    let host = match lower.rsplit_once(':') {
        Some((host, port)) if is_port(port) => host,
        Some(_) => {
            return Err(format!(
                "{text:?} is not a host name (bad port, or an IPv6 literal without [ ])"
            ));
        }
        None => lower.as_str(),
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    if host.is_empty() || host.len() > 253 || !host.split('.').all(label_ok) {
        return Err(format!(
            "{text:?} is not a host name (letters, digits, '-' and '.'; no scheme, path or wildcard)"
        ));
    }
    Ok(host.to_owned())
}

fn is_port(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 5
        && text.bytes().all(|b| b.is_ascii_digit())
        && text.parse::<u16>().is_ok()
}

/// Normalise a path prefix (or an upstream's base path) with the request-path normaliser,
/// [`crate::config::path::normalize_path`], so a prefix compares equal to a request path
/// exactly when they name the same thing. What that normaliser refuses in a request (a
/// backslash, `.;x` / `..;x` dot-segment parameters, a bad escape) is refused here too:
/// such a prefix could never match. On top, a prefix is written by a person, so a query,
/// fragment, space, control or non-ASCII character is refused with the reason.
pub(crate) fn normalize_path(text: &str) -> Result<String, String> {
    if !text.starts_with('/') {
        return Err(format!("{text:?} must start with \"/\""));
    }
    if text.contains(['?', '#']) {
        return Err(format!("{text:?}: a path cannot hold a query or fragment"));
    }
    if !text.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "{text:?}: spaces, control and non-ASCII characters must be percent-encoded"
        ));
    }
    match crate::config::path::normalize_path(text) {
        Ok(p) => Ok(p.into_owned()),
        Err(PathError::BadEscape) => Err(format!("{text:?} has a bad percent-escape")),
        Err(e) => Err(format!("{text:?}: {}", e.as_str())),
    }
}

#[cfg(test)]
#[path = "net_tests.rs"]
mod tests;
