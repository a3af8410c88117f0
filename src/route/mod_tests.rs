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

// ---------------------------------------------------------------------------------------
// The route layer alone, with a stub inner service: it needs only the snapshot (routes and
// trusted proxies) and the connection facts.

mod layer {
    use std::net::SocketAddr;
    use std::path::Path;
    use std::sync::Mutex;

    use arc_swap::ArcSwap;
    use http::StatusCode;
    use tower::ServiceExt as _;

    use super::*;
    use crate::ops::metrics::Metrics;

    const CONFIG: &str = r#"
[listen]
address = "127.0.0.1:0"
tls_cert = "cert.pem"
tls_key = "key.pem"
trusted_proxies = ["10.0.0.0/8"]
[state]
source = "file"
path = "state.json"
[[routes]]
name = "admin"
path_prefix = "/admin"
upstream = "http://127.0.0.1:9"
auth = "none"
[[routes]]
name = "public"
path_prefix = "/public"
upstream = "http://127.0.0.1:9"
auth = "none"
"#;

    /// What the inner step saw of one request.
    #[derive(Debug, Default, Clone)]
    struct Seen {
        route: Option<String>,
        client_ip: Option<IpAddr>,
        normalized: Option<String>,
    }

    fn shared() -> SharedSnapshot {
        let config = crate::config::parse_str(CONFIG, Path::new("/tmp/route-layer.toml"))
            .expect("valid config");
        let snap = Snapshot::build(Arc::new(config), &Metrics::new(), None).expect("snapshot");
        Arc::new(ArcSwap::from_pointee(snap))
    }

    /// Run one request through the route layer; the inner step records what it saw.
    async fn run(path: &str, peer: &str, xff: Option<&str>) -> (StatusCode, Option<Seen>) {
        let seen: Arc<Mutex<Option<Seen>>> = Arc::default();
        let record = seen.clone();
        let inner = tower::service_fn(move |req: Request<Body>| {
            let s = Seen {
                route: req
                    .extensions()
                    .get::<RouteMatch>()
                    .map(|m| m.route().config.name.clone()),
                client_ip: req.extensions().get::<ClientIp>().map(|c| c.0),
                normalized: req
                    .extensions()
                    .get::<NormalizedPath>()
                    .map(|p| p.0.clone()),
            };
            *record.lock().expect("lock") = Some(s);
            async { Ok::<_, Infallible>(Response::new(Body::empty())) }
        });
        let svc = RouteLayer::new(shared()).layer(inner);
        let mut req = Request::builder().uri(path).header("host", "gw.example");
        if let Some(x) = xff {
            req = req.header("x-forwarded-for", x);
        }
        let mut req = req.body(Body::empty()).expect("request");
        let peer: SocketAddr = peer.parse().expect("peer");
        req.extensions_mut().insert(ConnInfo { peer, tls: true });
        let Ok(resp) = svc.oneshot(req).await;
        let status = resp.status();
        let got = seen.lock().expect("lock").clone();
        (status, got)
    }

    #[tokio::test]
    async fn the_route_is_chosen_on_the_normalised_path() {
        let (status, seen) = run("/public/../admin/x", "192.0.2.1:5000", None).await;
        assert_eq!(status, StatusCode::OK);
        let seen = seen.expect("inner called");
        assert_eq!(seen.route.as_deref(), Some("admin"));
        assert_eq!(seen.normalized.as_deref(), Some("/admin/x"));
        assert_eq!(seen.client_ip, Some("192.0.2.1".parse().expect("ip")));
        // Already normal: no NormalizedPath (the request's own path is used).
        let (_, seen) = run("/public/a", "192.0.2.1:5000", None).await;
        assert_eq!(seen.expect("inner called").normalized, None);
    }

    #[tokio::test]
    async fn no_route_and_bad_paths_never_reach_the_inner_step() {
        for (path, status) in [
            ("/other", StatusCode::NOT_FOUND),
            ("/public%5c..%5cadmin", StatusCode::BAD_REQUEST),
            ("/public/..;/admin", StatusCode::BAD_REQUEST),
            ("/public/%zz", StatusCode::BAD_REQUEST),
        ] {
            let (got, seen) = run(path, "192.0.2.1:5000", None).await;
            assert_eq!(got, status, "{path}");
            assert!(seen.is_none(), "{path}: inner step called");
        }
    }

    #[tokio::test]
    async fn forwarded_for_counts_only_from_a_trusted_peer() {
        let (_, seen) = run("/public", "10.1.2.3:5000", Some("203.0.113.9")).await;
        assert_eq!(
            seen.expect("inner called").client_ip,
            Some("203.0.113.9".parse().expect("ip"))
        );
        let (_, seen) = run("/public", "192.0.2.1:5000", Some("203.0.113.9")).await;
        assert_eq!(
            seen.expect("inner called").client_ip,
            Some("192.0.2.1".parse().expect("ip")),
            "an untrusted peer's X-Forwarded-For is ignored"
        );
        let (status, seen) = run("/public", "10.1.2.3:5000", Some("unknown")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            seen.is_none(),
            "a trusted proxy's garbage is refused, not guessed"
        );
    }
}
