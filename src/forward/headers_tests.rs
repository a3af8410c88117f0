use super::*;
use crate::route::client_ip::forwarded_for;

fn hm(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}

#[test]
fn hop_by_hop_and_connection_named_headers_are_removed() {
    let mut h = hm(&[
        ("connection", "keep-alive, x-secret-hop"),
        ("keep-alive", "timeout=5"),
        ("x-secret-hop", "1"),
        ("te", "trailers"),
        ("transfer-encoding", "chunked"),
        ("proxy-authorization", "Basic abc"),
        ("upgrade", "h2c"),
        ("x-keep", "yes"),
    ]);
    strip_hop_by_hop(&mut h, false);
    assert_eq!(h.len(), 1, "{h:?}");
    assert_eq!(h["x-keep"], "yes");
}

#[test]
fn upgrade_survives_when_asked() {
    let mut h = hm(&[("connection", "Upgrade"), ("upgrade", "websocket")]);
    assert!(is_upgrade(&h));
    strip_hop_by_hop(&mut h, true);
    assert_eq!(h["upgrade"], "websocket");
    assert_eq!(h["connection"], "upgrade");
}

static API_HOST: HeaderValue = HeaderValue::from_static("api.example:8443");

fn facts(peer: &str, trusted: bool) -> ForwardFacts<'static> {
    ForwardFacts {
        peer: peer.parse().unwrap(),
        peer_trusted: trusted,
        host: Some(&API_HOST),
        forward_token: true,
        principal: None,
        decision_id: DecisionId::next(),
    }
}

#[test]
fn spoofed_identity_and_forwarded_headers_are_replaced() {
    let mut h = hm(&[
        ("x-accessgate-user", "admin"),
        ("X-AccessGate-Decision-Id", "forged"),
        ("x-forwarded-for", "1.2.3.4"),
        ("x-forwarded-host", "evil.example"),
        ("x-forwarded-proto", "http"),
        ("forwarded", "for=1.2.3.4"),
        ("x-real-ip", "1.2.3.4"),
        ("true-client-ip", "1.2.3.4"),
    ]);
    let f = facts("198.51.100.7", false);
    prepare_headers(&mut h, &f);
    assert!(h.get("x-accessgate-user").is_none());
    assert_eq!(h["x-accessgate-decision-id"], f.decision_id.to_string());
    assert_eq!(h["x-forwarded-for"], "198.51.100.7");
    assert_eq!(h["x-forwarded-host"], "api.example:8443");
    assert_eq!(h["x-forwarded-proto"], "https");
    assert!(h.get("forwarded").is_none());
    assert!(h.get("x-real-ip").is_none());
    assert!(h.get("true-client-ip").is_none());
}

#[test]
fn trusted_proxy_chain_is_appended() {
    let mut h = hm(&[
        ("x-forwarded-for", "203.0.113.1"),
        ("x-forwarded-proto", "https"),
    ]);
    prepare_headers(&mut h, &facts("10.0.0.5", true));
    assert_eq!(h["x-forwarded-for"], "203.0.113.1, 10.0.0.5");
}

#[test]
fn identity_headers_come_from_the_principal() {
    let p = Principal {
        user: "u1".into(),
        client_app: Some("app1".into()),
        device: Some("dev1".into()),
        ..Default::default()
    };
    let mut h = hm(&[("authorization", "Bearer x")]);
    let mut f = facts("198.51.100.7", false);
    f.principal = Some(&p);
    f.forward_token = false;
    prepare_headers(&mut h, &f);
    assert_eq!(h["x-accessgate-user"], "u1");
    assert_eq!(h["x-accessgate-app"], "app1");
    assert_eq!(h["x-accessgate-device"], "dev1");
    assert!(h.get("authorization").is_none());
}

#[test]
fn upstream_uri_joins_base_path_and_query() {
    let mut r = crate::route::tests_support::route("r", None, "/");
    r.upstream.base_path = "/base".into();
    let u = upstream_uri(&r, "/a/b", Some("x=1")).unwrap();
    assert_eq!(u.to_string(), "http://127.0.0.1:1/base/a/b?x=1");
}

#[test]
fn every_forwarded_for_line_is_kept_in_order() {
    let h = hm(&[
        ("x-forwarded-for", "6.6.6.6"),
        ("x-forwarded-for", "7.7.7.7, 8.8.8.8"),
    ]);
    assert_eq!(
        forwarded_for(&h).as_deref(),
        Some("6.6.6.6, 7.7.7.7, 8.8.8.8")
    );
    assert_eq!(forwarded_for(&HeaderMap::new()), None);
}

#[test]
fn only_websocket_upgrades_are_tunnelled() {
    let ws = hm(&[("connection", "Upgrade"), ("upgrade", "WebSocket")]);
    assert!(is_upgrade(&ws));
    let h2c = hm(&[
        ("connection", "Upgrade, HTTP2-Settings"),
        ("upgrade", "h2c"),
    ]);
    assert!(!is_upgrade(&h2c));
    let mut h = h2c.clone();
    strip_hop_by_hop(&mut h, false);
    assert!(
        h.get("upgrade").is_none(),
        "a refused upgrade is forwarded as a plain request"
    );
    let no_conn = hm(&[("upgrade", "websocket")]);
    assert!(
        !is_upgrade(&no_conn),
        "Upgrade without Connection: upgrade is not an upgrade"
    );
}

#[test]
fn every_header_the_scan_watches_is_removed_for_an_untrusted_peer() {
    let mut h = hm(&[
        ("authorization", "Bearer x"),
        ("proxy-authorization", "Basic abc"),
        ("x-client-ip", "1.2.3.4"),
        ("x-real-ip", "1.2.3.4"),
        ("true-client-ip", "1.2.3.4"),
        ("forwarded", "for=1.2.3.4"),
        ("x-forwarded-host", "evil.example"),
        ("x-accessgate-app", "forged"),
        ("x-accessgate-anything", "forged"),
        ("x-keep", "yes"),
    ]);
    let mut f = facts("198.51.100.7", false);
    f.forward_token = false;
    prepare_headers(&mut h, &f);
    let mut names: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "x-accessgate-decision-id",
            "x-forwarded-for",
            "x-forwarded-host",
            "x-forwarded-proto",
            "x-keep"
        ],
        "{h:?}"
    );
    assert_eq!(h["x-forwarded-host"], "api.example:8443");
}

#[test]
fn the_token_is_kept_when_the_route_forwards_it_and_a_trusted_chain_is_kept() {
    let mut h = hm(&[
        ("authorization", "Bearer x"),
        ("x-forwarded-host", "front.example"),
        ("x-forwarded-proto", "http"),
    ]);
    prepare_headers(&mut h, &facts("10.0.0.5", true));
    assert_eq!(h["authorization"], "Bearer x");
    assert_eq!(h["x-forwarded-host"], "front.example");
    assert_eq!(h["x-forwarded-proto"], "http");
    assert_eq!(
        h["x-forwarded-for"], "10.0.0.5",
        "no chain sent: the peer alone"
    );
}

#[test]
fn an_identity_value_a_header_cannot_carry_is_left_out_and_its_spoof_still_stripped() {
    let p = Principal {
        user: "u1\nx-injected: 1".into(),
        client_app: Some("app1".into()),
        device: None,
        ..Default::default()
    };
    let mut h = hm(&[
        ("x-accessgate-user", "admin"),
        ("x-accessgate-device", "forged-device"),
    ]);
    let mut f = facts("198.51.100.7", false);
    f.principal = Some(&p);
    prepare_headers(&mut h, &f);
    assert!(h.get("x-accessgate-user").is_none(), "{h:?}");
    assert!(h.get("x-accessgate-device").is_none(), "{h:?}");
    assert_eq!(h["x-accessgate-app"], "app1");
    // The next request of the same principal gets the same (prepared) values.
    let mut again = hm(&[("x-accessgate-user", "admin")]);
    prepare_headers(&mut again, &f);
    assert!(again.get("x-accessgate-user").is_none());
    assert_eq!(again["x-accessgate-app"], "app1");
}

#[test]
fn the_decision_id_header_is_its_display_form() {
    let f = facts("198.51.100.7", false);
    let mut h = HeaderMap::new();
    prepare_headers(&mut h, &f);
    assert_eq!(h["x-accessgate-decision-id"], f.decision_id.to_string());
    assert_eq!(h["x-accessgate-decision-id"].len(), 32);
}

#[test]
fn the_longest_ipv6_peer_is_forwarded_whole() {
    let long = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
    let mut h = HeaderMap::new();
    prepare_headers(&mut h, &facts(long, false));
    assert_eq!(h["x-forwarded-for"], long);
    let mapped: IpAddr = "::ffff:255.255.255.255".parse().unwrap();
    assert_eq!(ip_value(mapped).unwrap(), mapped.to_string().as_str());
}

#[test]
fn hop_by_hop_names_in_connection_are_removed_with_upgrade_kept_for_websocket() {
    let mut h = hm(&[
        ("connection", "Upgrade, X-Hop"),
        ("connection", "keep-alive"),
        ("upgrade", "websocket"),
        ("x-hop", "1"),
        ("keep-alive", "timeout=5"),
        ("x-keep", "yes"),
    ]);
    strip_hop_by_hop(&mut h, true);
    let mut names: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
    names.sort_unstable();
    assert_eq!(names, ["connection", "upgrade", "x-keep"], "{h:?}");
    assert_eq!(h["connection"], "upgrade");
    let mut plain = hm(&[("x-keep", "yes"), ("host", "a.example")]);
    strip_hop_by_hop(&mut plain, false);
    assert_eq!(plain.len(), 2, "nothing hop-by-hop: nothing removed");
}

#[test]
fn request_host_prefers_the_authority_and_refuses_what_host_cannot_carry() {
    let h = hm(&[("host", "host.example")]);
    let abs: Uri = "https://auth.example:8443/x".parse().unwrap();
    assert_eq!(request_host(&abs, &h).unwrap(), "auth.example:8443");
    let origin: Uri = "/x".parse().unwrap();
    assert_eq!(request_host(&origin, &h).unwrap(), "host.example");
    assert!(request_host(&origin, &HeaderMap::new()).is_none());
    let mut obs = HeaderMap::new();
    obs.insert(
        header::HOST,
        HeaderValue::from_bytes(b"h\xe9.example").unwrap(),
    );
    assert!(
        request_host(&origin, &obs).is_none(),
        "not visible ASCII: left as the client sent it, as before"
    );
}
