use super::*;

#[test]
fn socket_addr_accepts_ip_port_only() {
    assert_eq!(socket_addr("127.0.0.1:8443").map(|a| a.port()), Ok(8443));
    assert!(socket_addr("[::1]:9901").is_ok());
    for bad in ["localhost:8443", "0.0.0.0", ":8443", "1.2.3.4:99999", ""] {
        let err = socket_addr(bad).expect_err(bad);
        assert!(err.contains("is not an ip:port"), "{bad}: {err}");
    }
}

#[test]
fn cidr_accepts_nets_and_bare_ips_and_clears_host_bits() {
    assert_eq!(
        cidr("10.1.2.3/8").map(|n| n.to_string()),
        Ok("10.0.0.0/8".into())
    );
    assert_eq!(
        cidr("192.0.2.7").map(|n| n.to_string()),
        Ok("192.0.2.7/32".into())
    );
    assert_eq!(
        cidr("2001:db8::1/32").map(|n| n.to_string()),
        Ok("2001:db8::/32".into())
    );
    for bad in ["10.0.0.0/33", "corp", "10.0.0/8", ""] {
        let err = cidr(bad).expect_err(bad);
        assert!(err.contains("is not a CIDR"), "{bad}: {err}");
    }
}

#[test]
fn fetch_url_is_https_or_loopback_http() {
    for good in [
        "https://login.microsoftonline.com/t/discovery/v2.0/keys",
        "http://127.0.0.1:8080/keys",
        "http://127.9.9.9/keys",
        "http://localhost:1234/keys",
        "http://[::1]:1234/keys",
    ] {
        assert_eq!(fetch_url(good), Ok(()), "{good}");
    }
    let cases = [
        ("http://idp.corp.example/keys", "must be https://"),
        ("http://10.0.0.1/keys", "must be https://"),
        ("http://[::2]/keys", "must be https://"),
        ("ftp://idp.example/keys", "must be an https:// URL"),
        ("https://user:pw@idp.example/keys", "user info"),
        ("/keys", "not an absolute URL"),
        ("not a url", "is not a URL"),
    ];
    for (bad, needle) in cases {
        let err = fetch_url(bad).expect_err(bad);
        assert!(err.contains(needle), "{bad}: {err}");
    }
}

#[test]
fn upstream_defaults_port_and_splits_base_path() {
    let u = upstream("http://127.0.0.1:8080").expect("plain");
    assert_eq!(
        (u.authority.as_str(), u.base_path.as_str()),
        ("127.0.0.1:8080", "")
    );
    let u = upstream("http://backend.internal").expect("no port");
    assert_eq!(u.authority.as_str(), "backend.internal:80");
    let u = upstream("http://backend:9000/api/v1/").expect("base");
    assert_eq!(
        (u.authority.as_str(), u.base_path.as_str()),
        ("backend:9000", "/api/v1")
    );
    let u = upstream("http://[::1]:81/").expect("v6");
    assert_eq!(
        (u.authority.as_str(), u.base_path.as_str()),
        ("[::1]:81", "")
    );
}

#[test]
fn upstream_refuses_anything_but_plain_http() {
    let cases = [
        ("ftp://x", "is not an http:// URL"),
        ("https://backend", "https upstreams are not supported"),
        ("backend:8080", "is not an http:// URL"),
        ("http://user:pw@backend", "user info"),
        ("http://backend/?a=b", "query or fragment"),
        ("http://backend:0", "port 0"),
        ("http://backend:", "empty port"),
        ("", "is not an http:// URL"),
    ];
    for (bad, needle) in cases {
        let err = upstream(bad).expect_err(bad);
        assert!(err.contains(needle), "{bad}: {err}");
    }
}

#[test]
fn route_host_is_lowercased_without_port() {
    assert_eq!(
        route_host("API.Corp.Example:8443"),
        Ok("api.corp.example".into())
    );
    assert_eq!(
        route_host("api.corp.example."),
        Ok("api.corp.example".into())
    );
    assert_eq!(route_host("[::1]:8443"), Ok("[::1]".into()));
    assert_eq!(route_host("10.0.0.1"), Ok("10.0.0.1".into()));
    for bad in [
        "*.corp.example",
        "https://api",
        "api/x",
        "",
        "a..b",
        "-a.b",
        "[::1",
        "::1",
        "api:99999",
    ] {
        assert!(route_host(bad).is_err(), "{bad}");
    }
}

#[test]
fn path_prefix_is_normalised() {
    let cases = [
        ("/", "/"),
        ("/public", "/public"),
        ("/public/", "/public/"),
        ("//a///b", "/a/b"),
        ("/a/./b/../c", "/a/c"),
        ("/a/..", "/"),
        ("/../../x", "/x"),
        ("/%7Euser/%61pi", "/~user/api"),
        ("/a%2fb", "/a%2Fb"),
        ("/a/b/..", "/a/"),
        // `;` in an ordinary segment is data, in a prefix as in a request path.
        ("/api;v=1/x", "/api;v=1/x"),
    ];
    for (input, want) in cases {
        assert_eq!(normalize_path(input).as_deref(), Ok(want), "{input}");
        // The same rule as request paths: a prefix and the request it names agree.
        assert_eq!(
            crate::config::path::normalize_path(input).as_deref(),
            Ok(want),
            "{input} as a request path"
        );
    }
}

#[test]
fn path_prefix_refuses_what_cannot_match_a_request_path() {
    let cases = [
        ("public", "must start with"),
        ("", "must start with"),
        ("/a%zz", "bad percent-escape"),
        ("/a%2", "bad percent-escape"),
        ("/a?b=c", "query or fragment"),
        ("/a#top", "query or fragment"),
        ("/a b", "percent-encoded"),
        ("/caf\u{e9}", "percent-encoded"),
        // Refused in request paths, so a prefix holding them could never match.
        ("/a\\b", "backslash"),
        ("/a%5cb", "backslash"),
        ("/public/..;/admin", "dot-segment with ; parameters"),
        ("/a/.;x/b", "dot-segment with ; parameters"),
    ];
    for (input, needle) in cases {
        let err = normalize_path(input).expect_err(input);
        assert!(err.contains(needle), "{input:?}: {err}");
    }
}
