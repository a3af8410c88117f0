//! Issue 14 findings 3, 4 and 5: each test failed before its fix.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};

use super::h2raw;
use crate::support::authn_gateway::Fx;
use crate::support::*;

fn decisions(gw: &TestGateway, decision: &str) -> f64 {
    let text = String::from_utf8(gw.gw().metrics().encode()).unwrap();
    metric_in(
        &text,
        "accessgate_requests_total",
        &[("route", "open"), ("decision", decision)],
    )
}

// ---------------------------------------------------------------------------------------
// Finding 3: a client's malformed request body is the client's fault, not the upstream's.

#[tokio::test]
async fn bad_chunk_line_is_a_400_counted_as_the_clients_fault() {
    let up = Upstream::start().await;
    let mut gw = TestGateway::start(PLAIN_CONFIG, &up.url()).await;
    for bad_chunk in ["zz\r\n", "3\r\nabcX\r\n", "-1\r\n"] {
        let raw = format!(
            "POST /upload HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n\
             5\r\nhello\r\n{bad_chunk}0\r\n\r\n"
        );
        let resp = raw_exchange(gw.addr, &gw.ca(), raw.as_bytes())
            .await
            .expect("the gateway answers");
        assert_eq!(resp.status, 400, "{bad_chunk:?}: {}", resp.head);
        let v: Value = serde_json::from_slice(&resp.body).unwrap();
        assert_eq!(v["reason"], "bad_request_body", "{v}");
    }
    assert_eq!(decisions(&gw, "bad_request"), 3.0);
    assert_eq!(decisions(&gw, "upstream_error"), 0.0);
    gw.shutdown().await;
}

/// The h2 form of a malformed body: `content-length` promises 100 bytes, END_STREAM comes
/// after 5 (RFC 9113 8.1.1). The h2 layer itself refuses it with a PROTOCOL_ERROR reset
/// before the forward step can blame anyone, so it is never counted as `upstream_error`.
#[tokio::test]
async fn h2_body_shorter_than_its_content_length_is_reset_not_blamed_on_the_upstream() {
    let up = Upstream::start().await;
    let mut gw = TestGateway::start(PLAIN_CONFIG, &up.url()).await;
    let mut send = h2raw::connect(gw.addr, &gw.ca()).await;
    let body = Full::new(Bytes::from_static(b"hello"))
        .map_err(|never| match never {})
        .boxed();
    let mut req = h2raw::request("POST", &gw.url("/upload"), body);
    req.headers_mut().insert(
        http::header::CONTENT_LENGTH,
        http::HeaderValue::from(100u32),
    );
    let r = tokio::time::timeout(Duration::from_secs(10), send.send_request(req))
        .await
        .expect("the gateway answers");
    let e = r.expect_err("a malformed h2 request is refused");
    let h2e = std::error::Error::source(&e)
        .and_then(|s| s.downcast_ref::<h2::Error>())
        .unwrap_or_else(|| panic!("not an h2 error: {e:?}"));
    assert_eq!(h2e.reason(), Some(h2::Reason::PROTOCOL_ERROR), "{e:?}");
    assert!(h2e.is_remote(), "the gateway reset the stream: {e:?}");
    assert_eq!(decisions(&gw, "upstream_error"), 0.0);
    // The connection stays usable for well-formed requests.
    let ok = h2raw::request(
        "POST",
        &gw.url("/upload"),
        Full::new(Bytes::from_static(b"hello"))
            .map_err(|never| match never {})
            .boxed(),
    );
    let resp = send.send_request(ok).await.unwrap();
    assert_eq!(resp.status(), 200);
    gw.shutdown().await;
}

#[tokio::test]
async fn a_failing_upstream_is_still_the_upstreams_fault() {
    // The other side of finding 3: an upstream that closes mid-request stays a 502.
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        for _ in 0..4 {
            let Ok((s, _)) = l.accept().await else { return };
            drop(s);
        }
    });
    let mut gw = TestGateway::start(PLAIN_CONFIG, &format!("http://{addr}")).await;
    let c = client(&gw.ca(), false);
    let (parts, body) = send(&c, request("POST", &gw.url("/x"), &[], "hello")).await;
    let v = assert_problem(&parts, &body, 502);
    assert_eq!(v["reason"], "upstream_unavailable");
    assert_eq!(decisions(&gw, "upstream_error"), 1.0);
    assert_eq!(decisions(&gw, "bad_request"), 0.0);
    gw.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// Finding 4: `iat` / `auth_time` beyond now + clock_skew are refused.

async fn expect_future_refusal(fx: &Fx, claim: &str, description: &str) {
    let t = fx.with_claim(claim, json!(unix_now() + 3600));
    let authz = format!("Bearer {t}");
    for h2 in [false, true] {
        let (parts, body) = fx.call("/", &[("authorization", &authz)], h2).await;
        let v = assert_problem(&parts, &body, 401);
        assert_eq!(v["detail"], description, "h2={h2}");
        let c = challenge_of(&parts);
        assert_eq!(c.get("error"), Some("invalid_token"));
        assert_eq!(c.get("error_description"), Some(description));
    }
    fx.expect_invalid_token(&authz, "issued_in_future").await;
}

#[tokio::test]
async fn iat_beyond_the_clock_skew_is_refused() {
    let fx = Fx::start().await;
    expect_future_refusal(&fx, "iat", "token issued in the future (iat)").await;
}

#[tokio::test]
async fn auth_time_beyond_the_clock_skew_is_refused() {
    let fx = Fx::start().await;
    expect_future_refusal(
        &fx,
        "auth_time",
        "authentication time in the future (auth_time)",
    )
    .await;
}

#[tokio::test]
async fn iat_and_auth_time_within_the_clock_skew_are_accepted() {
    let fx = Fx::start().await;
    // The fixture's clock_skew is 60 s.
    let mut c = fx.claims();
    c["iat"] = json!(unix_now() + 30);
    c["auth_time"] = json!(unix_now() + 30);
    let t = fx
        .signer
        .sign(accessgate::authn::dev::DevAlg::RS256, &fx.rs_header(), &c)
        .unwrap();
    fx.expect_accepted(
        "/",
        &format!("Bearer {t}"),
        crate::support::authn_gateway::USER,
        None,
    )
    .await;
}

// ---------------------------------------------------------------------------------------
// Finding 5: a Host / :authority with userinfo is refused, never passed on.

#[tokio::test]
async fn host_with_userinfo_is_refused_on_h1() {
    let up = Upstream::start().await;
    let mut gw = TestGateway::start(PLAIN_CONFIG, &up.url()).await;
    let port = gw.addr.port();
    for host in [
        "evil@localhost".to_owned(),
        format!("evil@localhost:{port}"),
        format!("user:pw@127.0.0.1:{port}"),
        "@localhost".to_owned(),
    ] {
        let raw = format!("GET /x HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        let resp = raw_exchange(gw.addr, &gw.ca(), raw.as_bytes())
            .await
            .expect("the gateway answers");
        assert_eq!(resp.status, 400, "Host: {host}: {}", resp.head);
        let v: Value = serde_json::from_slice(&resp.body).unwrap();
        assert_eq!(v["reason"], "bad_request", "{v}");
    }
    // Absolute-form target with userinfo too.
    let raw = format!(
        "GET https://evil@localhost:{port}/x HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n\r\n"
    );
    let resp = raw_exchange(gw.addr, &gw.ca(), raw.as_bytes())
        .await
        .unwrap();
    assert_eq!(resp.status, 400, "{}", resp.head);
    assert_eq!(
        up.count(),
        0,
        "a request with userinfo reached the upstream"
    );
    // A plain Host still works.
    let raw = format!("GET /x HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n\r\n");
    let resp = raw_exchange(gw.addr, &gw.ca(), raw.as_bytes())
        .await
        .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.head);
    assert_eq!(up.count(), 1);
    gw.shutdown().await;
}

#[tokio::test]
async fn authority_with_userinfo_is_refused_on_h2() {
    let up = Upstream::start().await;
    let mut gw = TestGateway::start(PLAIN_CONFIG, &up.url()).await;
    let port = gw.addr.port();
    let mut send = h2raw::connect(gw.addr, &gw.ca()).await;
    let empty = || {
        Full::new(Bytes::new())
            .map_err(|never| match never {})
            .boxed()
    };
    let req = h2raw::request("GET", &format!("https://evil@localhost:{port}/x"), empty());
    let resp = send.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 400);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["reason"], "bad_request", "{v}");
    // A `host` header with userinfo next to a clean :authority is refused as well.
    let mut req = h2raw::request("GET", &format!("https://localhost:{port}/x"), empty());
    req.headers_mut().insert(
        http::header::HOST,
        http::HeaderValue::from_static("evil@localhost"),
    );
    let resp = send.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(
        up.count(),
        0,
        "a request with userinfo reached the upstream"
    );
    let req = h2raw::request("GET", &format!("https://localhost:{port}/x"), empty());
    let resp = send.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    gw.shutdown().await;
}
