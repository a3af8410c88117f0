use super::*;
use crate::snapshot::router::{Router, prefix_matches};
use ipnet::IpNet;
use std::net::IpAddr;

#[test]
fn normal_paths_are_borrowed() {
    assert!(matches!(
        normalize_path("/a/b/c"),
        Ok(Cow::Borrowed("/a/b/c"))
    ));
    assert!(matches!(normalize_path("/"), Ok(Cow::Borrowed("/"))));
    assert!(matches!(normalize_path("/a.b/c..d"), Ok(Cow::Borrowed(_))));
}

#[test]
fn dot_segments_are_removed() {
    let n = |p| normalize_path(p).unwrap().into_owned();
    assert_eq!(n("/public/../admin"), "/admin");
    assert_eq!(n("/public/./x"), "/public/x");
    assert_eq!(n("/../../etc/passwd"), "/etc/passwd");
    assert_eq!(n("/a/b/.."), "/a/");
    assert_eq!(n("/a/."), "/a/");
    assert_eq!(n("/a//b///c"), "/a/b/c");
    assert_eq!(n("//admin"), "/admin");
}

#[test]
fn encoded_dots_are_decoded_before_dot_removal() {
    let n = |p| normalize_path(p).unwrap().into_owned();
    assert_eq!(n("/public/%2e%2e/admin"), "/admin");
    assert_eq!(n("/public/%2E%2E/admin"), "/admin");
    assert_eq!(n("/public/.%2e/admin"), "/admin");
    assert_eq!(n("/%61dmin"), "/admin");
}

#[test]
fn reserved_escapes_stay_encoded_and_uppercased() {
    let n = |p| normalize_path(p).unwrap().into_owned();
    assert_eq!(n("/a%2fb"), "/a%2Fb");
    assert_eq!(n("/a%20b"), "/a%20b");
    assert_eq!(n("/a%00b"), "/a%00b");
}

#[test]
fn bad_paths_are_refused() {
    assert_eq!(normalize_path("a/b"), Err(PathError::NotAbsolute));
    assert_eq!(normalize_path("*"), Err(PathError::NotAbsolute));
    assert_eq!(normalize_path("/a%zz"), Err(PathError::BadEscape));
    assert_eq!(normalize_path("/a%2"), Err(PathError::BadEscape));
    assert_eq!(normalize_path("/a\\b"), Err(PathError::Backslash));
    assert_eq!(normalize_path("/a%5cb"), Err(PathError::Backslash));
}

#[test]
fn prefix_matching_respects_segments() {
    assert!(prefix_matches("/api", "/api"));
    assert!(prefix_matches("/api", "/api/x"));
    assert!(!prefix_matches("/api", "/apix"));
    assert!(prefix_matches("/api/", "/api/x"));
    assert!(prefix_matches("/", "/anything"));
}

use super::tests_support::route;

#[test]
fn router_prefers_host_then_longest_prefix() {
    let r = Router::new(&[
        route("root", None, "/"),
        route("public", None, "/public"),
        route("vhost-root", Some("api.corp.example"), "/"),
        route("vhost-v2", Some("api.corp.example"), "/v2"),
    ]);
    assert_eq!(r.find(Some("other.example"), "/x"), Some(0));
    assert_eq!(r.find(None, "/public/a"), Some(1));
    assert_eq!(r.find(None, "/publicity"), Some(0));
    assert_eq!(r.find(Some("api.corp.example"), "/v2/x"), Some(3));
    assert_eq!(r.find(Some("api.corp.example"), "/public"), Some(2));
}

#[test]
fn router_without_match_is_none() {
    let r = Router::new(&[route("public", None, "/public")]);
    assert_eq!(r.find(None, "/admin"), None);
    let v = Router::new(&[route("v", Some("a.example"), "/x")]);
    assert_eq!(v.find(Some("b.example"), "/x"), None);
    assert_eq!(v.find(Some("a.example"), "/y"), None);
}

#[test]
fn host_is_lowercased_and_port_stripped() {
    let req = Request::builder()
        .uri("/x")
        .header("host", "API.Corp.Example:8443")
        .body(())
        .unwrap();
    assert_eq!(request_host(&req).as_deref(), Some("api.corp.example"));
    let req = Request::builder()
        .uri("https://[::1]:8443/x")
        .body(())
        .unwrap();
    assert_eq!(request_host(&req).as_deref(), Some("::1"));
}

#[test]
fn forwarded_for_is_believed_only_from_trusted_proxies() {
    let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
    let xff = Some("203.0.113.9, 10.1.1.1");
    let client_ip = |p, x, t: &[IpNet]| super::client_ip(p, x, t).unwrap();
    let untrusted_peer: IpAddr = "198.51.100.7".parse().unwrap();
    assert_eq!(client_ip(untrusted_peer, xff, &trusted), untrusted_peer);
    let proxy: IpAddr = "10.2.2.2".parse().unwrap();
    assert_eq!(
        client_ip(proxy, xff, &trusted),
        "203.0.113.9".parse::<IpAddr>().unwrap()
    );
    assert_eq!(client_ip(proxy, None, &trusted), proxy);
}

#[test]
fn forwarded_for_entries_with_ports_and_mapped_addresses() {
    let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
    let proxy: IpAddr = "10.2.2.2".parse().unwrap();
    let mapped: IpAddr = "::ffff:10.2.2.2".parse().unwrap();
    let want: IpAddr = "203.0.113.9".parse().unwrap();
    assert_eq!(
        client_ip(proxy, Some("203.0.113.9:51234"), &trusted),
        Ok(want)
    );
    assert_eq!(
        client_ip(mapped, Some("203.0.113.9"), &trusted),
        Ok(want),
        "mapped peer is trusted"
    );
    assert_eq!(
        client_ip(proxy, Some("[2001:db8::1]:443"), &trusted),
        Ok("2001:db8::1".parse().unwrap())
    );
    assert_eq!(
        client_ip(proxy, Some("::ffff:203.0.113.9"), &trusted),
        Ok(want)
    );
    // Never fall back to the proxy's own address on garbage.
    assert_eq!(
        client_ip(proxy, Some("unknown"), &trusted),
        Err(BadForwardedFor)
    );
    assert_eq!(
        client_ip(proxy, Some("203.0.113.9, junk"), &trusted),
        Err(BadForwardedFor)
    );
    // An untrusted peer's header is not read at all.
    let peer: IpAddr = "198.51.100.7".parse().unwrap();
    assert_eq!(client_ip(peer, Some("junk"), &trusted), Ok(peer));
}

#[test]
fn dot_segments_with_parameters_are_refused() {
    assert_eq!(
        normalize_path("/public/..;/admin"),
        Err(PathError::DotSegmentParameters)
    );
    assert_eq!(
        normalize_path("/public/.;x/admin"),
        Err(PathError::DotSegmentParameters)
    );
    assert_eq!(
        normalize_path("/public/%2e%2e;/admin"),
        Err(PathError::DotSegmentParameters)
    );
    assert_eq!(normalize_path("/a;b/c").unwrap(), "/a;b/c");
}

#[test]
fn trailing_dot_host_is_the_same_name() {
    let req = Request::builder()
        .uri("/x")
        .header("host", "API.Corp.Example.:443")
        .body(())
        .unwrap();
    assert_eq!(request_host(&req).as_deref(), Some("api.corp.example"));
}
