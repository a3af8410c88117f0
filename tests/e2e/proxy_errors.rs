#![allow(clippy::unwrap_used)]
//! End-to-end refusals: every error the transport produces is RFC 9457 problem+json with
//! the right status (404, 502, 504), oversized heads get 431, and request smuggling shapes
//! (Content-Length with Transfer-Encoding, conflicting Content-Lengths) are refused with 400
//! before anything reaches the upstream.
use crate::support;

use support::*;

/// PLAIN_CONFIG with its route replaced by `route` (a `[[routes]]` table body).
fn with_route(route: &str) -> String {
    let head = PLAIN_CONFIG.split("[[routes]]").next().unwrap();
    format!("{head}[[routes]]\n{route}")
}

#[tokio::test]
async fn no_matching_route_is_a_404_problem() {
    let up = Upstream::start().await;
    let config = with_route(
        "name = \"api\"\npath_prefix = \"/api\"\nupstream = \"{upstream}\"\nauth = \"none\"\n",
    );
    let mut gw = TestGateway::start(&config, &up.url()).await;
    for h2 in [false, true] {
        let c = client(&gw.ca(), h2);
        for path in ["/other", "/apix", "/", "/other/api"] {
            let (parts, body) = send(&c, get(&gw.url(path), &[])).await;
            let p = assert_problem(&parts, &body, 404);
            assert_eq!(p["reason"], "no_route", "{path}");
        }
        // The route itself still works.
        let (parts, _) = send(&c, get(&gw.url("/api/x"), &[])).await;
        assert_eq!(parts.status, 200);
    }
    assert_eq!(up.count(), 2);
    gw.shutdown().await;
}

#[tokio::test]
async fn refused_upstream_connection_is_a_502_problem() {
    // A port that was bound and released: connecting to it is refused.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let mut gw = TestGateway::start(PLAIN_CONFIG, &format!("http://{closed}")).await;
    for h2 in [false, true] {
        let c = client(&gw.ca(), h2);
        let (parts, body) = send(&c, get(&gw.url("/down"), &[])).await;
        let p = assert_problem(&parts, &body, 502);
        assert_eq!(p["reason"], "upstream_unavailable");
    }
    gw.shutdown().await;
}

#[tokio::test]
async fn slow_upstream_is_a_504_problem() {
    let up = Upstream::start().await;
    let config = PLAIN_CONFIG.replace("request_timeout = \"2s\"", "request_timeout = \"300ms\"");
    assert_ne!(config, PLAIN_CONFIG, "PLAIN_CONFIG changed shape");
    let mut gw = TestGateway::start(&config, &up.url()).await;
    for h2 in [false, true] {
        let c = client(&gw.ca(), h2);
        let (parts, body) = send(&c, get(&gw.url("/slow/3000"), &[])).await;
        let p = assert_problem(&parts, &body, 504);
        assert_eq!(p["reason"], "upstream_timeout");
        // A fast request on the same client still goes through.
        let (parts, _) = send(&c, get(&gw.url("/fast"), &[])).await;
        assert_eq!(parts.status, 200);
    }
    gw.shutdown().await;
}

#[tokio::test]
async fn oversized_request_head_gets_431_over_h1() {
    let up = Upstream::start().await;
    let mut gw = TestGateway::start(PLAIN_CONFIG, &up.url()).await;
    let big = "a".repeat(20 * 1024);
    let raw = format!("GET /big HTTP/1.1\r\nHost: localhost\r\nx-big: {big}\r\n\r\n");
    let resp = raw_exchange(gw.addr, &gw.ca(), raw.as_bytes())
        .await
        .unwrap();
    assert_eq!(resp.status, 431, "{}", resp.head);
    // Just under the limit passes.
    let fits = "a".repeat(12 * 1024);
    let c = client(&gw.ca(), false);
    let (parts, _) = send(&c, get(&gw.url("/fits"), &[("x-big", &fits)])).await;
    assert_eq!(parts.status, 200);
    assert_eq!(up.count(), 1, "the oversized request reached the upstream");
    gw.shutdown().await;
}

#[tokio::test]
async fn oversized_request_head_gets_431_over_h2() {
    let up = Upstream::start().await;
    let mut gw = TestGateway::start(PLAIN_CONFIG, &up.url()).await;
    let big = "a".repeat(20 * 1024);
    let c = client(&gw.ca(), true);
    let (parts, _) = send(&c, get(&gw.url("/big"), &[("x-big", &big)])).await;
    assert_eq!(parts.status, 431);
    let fits = "a".repeat(12 * 1024);
    let (parts, _) = send(&c, get(&gw.url("/fits"), &[("x-big", &fits)])).await;
    assert_eq!(parts.status, 200);
    assert_eq!(up.count(), 1, "the oversized request reached the upstream");
    gw.shutdown().await;
}

#[tokio::test]
async fn content_length_with_transfer_encoding_is_refused() {
    let up = Upstream::start().await;
    let mut gw = TestGateway::start(PLAIN_CONFIG, &up.url()).await;
    let shapes = [
        "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: localhost\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n",
    ];
    for raw in shapes {
        let resp = raw_exchange(gw.addr, &gw.ca(), raw.as_bytes()).await;
        let resp = resp.unwrap_or_else(|| panic!("no response to {raw:?}"));
        assert_eq!(resp.status, 400, "{raw:?}\n{}", resp.head);
        assert_eq!(
            resp.header("content-type"),
            Some("application/problem+json"),
            "{}",
            resp.head
        );
    }
    assert_eq!(up.count(), 0, "a CL+TE request reached the upstream");
    gw.shutdown().await;
}

#[tokio::test]
async fn smuggled_second_request_never_reaches_the_upstream() {
    let up = Upstream::start().await;
    let mut gw = TestGateway::start(PLAIN_CONFIG, &up.url()).await;
    // The classic CL.TE shape: a front end honouring Content-Length would see one request,
    // one honouring chunked would see a second one hidden in the body.
    let raw = "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 44\r\nTransfer-Encoding: chunked\r\n\r\n\
               0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let mut io = raw_tls(gw.addr, &gw.ca()).await;
    tokio::io::AsyncWriteExt::write_all(&mut io, raw.as_bytes())
        .await
        .unwrap();
    let (bytes, eof) = read_until_close(&mut io, std::time::Duration::from_secs(10)).await;
    assert!(eof, "connection left open after a smuggling attempt");
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert_eq!(up.count(), 0, "{:?}", up.requests());
    gw.shutdown().await;
}

#[tokio::test]
async fn conflicting_content_lengths_are_refused() {
    let up = Upstream::start().await;
    let mut gw = TestGateway::start(PLAIN_CONFIG, &up.url()).await;
    for raw in [
        "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5, 6\r\n\r\nhello!",
    ] {
        let mut io = raw_tls(gw.addr, &gw.ca()).await;
        tokio::io::AsyncWriteExt::write_all(&mut io, raw.as_bytes())
            .await
            .unwrap();
        let (bytes, eof) = read_until_close(&mut io, std::time::Duration::from_secs(10)).await;
        assert!(eof, "{raw:?}: connection left open");
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.starts_with("HTTP/1.1 400"), "{raw:?}: {text}");
    }
    assert_eq!(up.count(), 0);
    gw.shutdown().await;
}

#[tokio::test]
async fn content_length_list_with_transfer_encoding_is_refused() {
    let up = Upstream::start().await;
    let mut gw = TestGateway::start(PLAIN_CONFIG, &up.url()).await;
    // A Content-Length list next to Transfer-Encoding: the smuggling guard stops following
    // at the comma, so this proves the combination is still refused (hyper's server parser
    // takes only plain digits).
    let raw = "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5, 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    let resp = raw_exchange(gw.addr, &gw.ca(), raw.as_bytes())
        .await
        .unwrap();
    assert_eq!(resp.status, 400, "{}", resp.head);
    assert_eq!(up.count(), 0, "a CL+TE request reached the upstream");
    gw.shutdown().await;
}

#[tokio::test]
async fn content_length_with_transfer_encoding_is_refused_after_a_declined_upgrade() {
    let up = Upstream::start().await;
    let mut gw = TestGateway::start(PLAIN_CONFIG, &up.url()).await;
    let mut io = raw_tls(gw.addr, &gw.ca()).await;
    // An upgrade request the upstream declines (200, not 101): the connection stays HTTP.
    tokio::io::AsyncWriteExt::write_all(
        &mut io,
        b"GET /not-ws HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    )
    .await
    .unwrap();
    let first = read_response(&mut io, std::time::Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(first.status, 200, "{}", first.head);
    // The smuggling guard cannot follow a stream past an upgrade request, so a declined
    // upgrade ends the connection: nothing after it can reach the upstream.
    assert_eq!(first.header("connection"), Some("close"), "{}", first.head);
    let _ = tokio::io::AsyncWriteExt::write_all(
        &mut io,
        b"POST /second HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    )
    .await;
    let second = read_response(&mut io, std::time::Duration::from_secs(10)).await;
    let status = second.as_ref().map(|r| r.status);
    assert!(status.is_none() || status == Some(400), "{second:?}");
    assert_eq!(up.count(), 1, "{:?}", up.requests());
    gw.shutdown().await;
}

#[tokio::test]
async fn small_max_header_bytes_is_enforced_over_h1_and_h2() {
    let up = Upstream::start().await;
    let config = plain_config_with_listen("max_header_bytes = 4096");
    let mut gw = TestGateway::start(&config, &up.url()).await;
    let big = "a".repeat(6 * 1024);
    let raw = format!("GET /big HTTP/1.1\r\nHost: localhost\r\nx-big: {big}\r\n\r\n");
    let h1 = raw_exchange(gw.addr, &gw.ca(), raw.as_bytes())
        .await
        .map(|r| r.status);
    let c = client(&gw.ca(), true);
    let (parts, _) = send(&c, get(&gw.url("/big"), &[("x-big", &big)])).await;
    assert_eq!(parts.status, 431, "h2");
    assert_eq!(
        h1,
        Some(431),
        "h1: a 6 KiB head passed max_header_bytes = 4096"
    );
    assert_eq!(up.count(), 0);
    gw.shutdown().await;
}

#[tokio::test]
async fn transfer_codings_other_than_chunked_are_refused_with_501() {
    let up = Upstream::start().await;
    let mut gw = TestGateway::start(PLAIN_CONFIG, &up.url()).await;
    let raw = b"POST /gz HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    let resp = raw_exchange(gw.addr, &gw.ca(), raw)
        .await
        .expect("an answer");
    assert_eq!(resp.status, 501, "{}", resp.head);
    assert_eq!(up.count(), 0, "nothing reaches the upstream");
    // Plain chunked still works on a new connection.
    let raw = b"POST /ok HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    let resp = raw_exchange(gw.addr, &gw.ca(), raw)
        .await
        .expect("an answer");
    assert_eq!(resp.status, 200, "{}", resp.head);
    assert_eq!(up.requests()[0].body.as_ref(), b"hello");
    gw.shutdown().await;
}
