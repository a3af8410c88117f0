//! The forward step alone: a route match in the request, a stub upstream on 127.0.0.1:0
//! recording what it received. No listener, no TLS, no earlier steps.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Mutex;

use arc_swap::ArcSwap;
use http::header::HeaderMap;
use tower::ServiceExt as _;

use super::*;
use crate::ops::metrics::Metrics;
use crate::snapshot::Snapshot;

/// What the stub upstream received.
#[derive(Debug, Clone)]
struct Received {
    uri: String,
    headers: HeaderMap,
}

/// A plain HTTP/1.1 upstream answering 200 and recording every request, until dropped.
async fn upstream() -> (
    SocketAddr,
    Arc<Mutex<Vec<Received>>>,
    tokio::task::JoinHandle<()>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen: Arc<Mutex<Vec<Received>>> = Arc::default();
    let record = seen.clone();
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                    record.lock().expect("lock").push(Received {
                        uri: req.uri().to_string(),
                        headers: req.headers().clone(),
                    });
                    async { Ok::<_, Infallible>(Response::new(Body::full("up"))) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (addr, seen, task)
}

fn route_match(upstream: &str) -> RouteMatch {
    let text = format!(
        r#"
[listen]
address = "127.0.0.1:0"
tls_cert = "cert.pem"
tls_key = "key.pem"
[state]
source = "file"
path = "state.json"
[[routes]]
name = "api"
path_prefix = "/"
upstream = "{upstream}"
auth = "none"
connect_timeout = "1s"
request_timeout = "2s"
"#
    );
    let config =
        crate::config::parse_str(&text, Path::new("/tmp/forward-test.toml")).expect("valid config");
    let snap = Snapshot::build(Arc::new(config), &Metrics::new(), None).expect("snapshot");
    let shared = ArcSwap::from_pointee(snap);
    RouteMatch {
        snapshot: shared.load_full(),
        index: 0,
    }
}

fn request(path: &str, rm: Option<RouteMatch>) -> Request<Body> {
    let mut req = Request::builder()
        .uri(path)
        .header("host", "gw.example")
        .header("connection", "keep-alive, x-secret")
        .header("x-secret", "hop-by-hop by name")
        .header("x-accessgate-user", "forged")
        .header("proxy-authorization", "Basic Zm9vOmJhcg==")
        .body(Body::empty())
        .expect("request");
    if let Some(rm) = rm {
        req.extensions_mut().insert(rm);
    }
    req.extensions_mut().insert(ConnInfo {
        peer: "192.0.2.7:5000".parse().expect("peer"),
        tls: true,
    });
    req.extensions_mut()
        .insert(NormalizedPath("/v1/items".to_owned()));
    req
}

#[tokio::test]
async fn forwards_the_normalised_path_with_clean_headers() {
    let (addr, seen, task) = upstream().await;
    let rm = route_match(&format!("http://{addr}/base"));
    let Ok(resp) = Forward.oneshot(request("/v1/./items?q=1", Some(rm))).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(Phases::of(resp.extensions()).upstream.is_some());
    let got = seen.lock().expect("lock").clone();
    assert_eq!(got.len(), 1);
    let r = &got[0];
    assert_eq!(
        r.uri, "/base/v1/items?q=1",
        "base path + normalised path + query"
    );
    assert_eq!(
        r.headers.get("host").map(|v| v.as_bytes()),
        Some(&b"gw.example"[..])
    );
    for gone in ["x-secret", "proxy-authorization", "x-accessgate-user"] {
        assert!(r.headers.get(gone).is_none(), "{gone} reached the upstream");
    }
    assert_eq!(
        r.headers.get("x-forwarded-for").map(|v| v.as_bytes()),
        Some(&b"192.0.2.7"[..]),
        "an untrusted peer's chain is replaced"
    );
    assert!(r.headers.contains_key("x-accessgate-decision-id"));
    task.abort();
}

#[tokio::test]
async fn an_unreachable_upstream_is_a_502_and_no_route_match_a_404() {
    // A port that was bound and released: connecting to it is refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port");
    let rm = route_match(&format!("http://{closed}"));
    let Ok(resp) = Forward.oneshot(request("/x", Some(rm))).await;
    assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
    let Ok(resp) = Forward.oneshot(request("/x", None)).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}
