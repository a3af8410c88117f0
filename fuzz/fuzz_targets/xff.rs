//! `X-Forwarded-For` from a trusted proxy -> the client IP policies see.
//!
//! Input: header values, one per line (several lines = several `X-Forwarded-For` headers).
//!
//! Invariants: an untrusted peer's header is never read; the answer is the right-most entry
//! that is not a trusted proxy (or the left-most when all are), so nothing a client writes
//! to the left of that entry can change it; IPv4-mapped addresses come out as IPv4.

#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use accessgate::route::client_ip::client_ip;
use accessgate::route::client_ip::forwarded_for;
use http::{HeaderMap, HeaderValue};
use ipnet::IpNet;
use libfuzzer_sys::fuzz_target;

const TRUSTED: [&str; 4] = ["10.0.0.0/8", "127.0.0.1/32", "::1/128", "fd00::/8"];

fuzz_target!(|data: &[u8]| {
    let trusted: Vec<IpNet> = TRUSTED.iter().filter_map(|s| s.parse().ok()).collect();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    let mut headers = HeaderMap::new();
    let mut valid = Vec::new();
    for line in data.split(|&b| b == b'\n') {
        let Ok(v) = HeaderValue::from_bytes(line) else {
            return;
        };
        if let Ok(s) = v.to_str() {
            valid.push(s.to_owned());
        }
        headers.append("x-forwarded-for", v);
    }
    let joined = forwarded_for(&headers);
    assert_eq!(joined, (!valid.is_empty()).then(|| valid.join(", ")));

    let outsider = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7));
    assert_eq!(
        client_ip(outsider, joined.as_deref(), &trusted),
        Ok(outsider)
    );

    let proxy = IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3));
    let Some(list) = joined else { return };
    let Ok(ip) = client_ip(proxy, Some(&list), &trusted) else {
        return;
    };
    assert_eq!(ip, ip.to_canonical(), "IPv4-mapped address not canonical");
    if is_trusted(&ip) {
        // Only when every entry is a trusted proxy: then nothing to the left may be
        // untrusted, and prepending an outsider changes the answer to that outsider.
        let more = format!("198.51.100.9, {list}");
        assert_eq!(
            client_ip(proxy, Some(&more), &trusted),
            Ok("198.51.100.9".parse().expect("literal"))
        );
    } else {
        for prefix in ["203.0.113.1, ", "unknown, ", "10.0.0.1, ", ", "] {
            let more = format!("{prefix}{list}");
            assert_eq!(client_ip(proxy, Some(&more), &trusted), Ok(ip), "{more:?}");
        }
    }
});
