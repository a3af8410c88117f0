#![allow(clippy::unwrap_used)]
//! End-to-end forwarding through a real TLS client, over HTTP/1.1 and HTTP/2: requests and
//! bodies arrive intact, large bodies stream byte-identical, connection-level and spoofed
//! headers are cleaned, paths route on their normalised form, hosts match case-insensitively,
//! and HTTP/1.1 upgrades tunnel.
use crate::support;

use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use support::*;

/// All values of a header at the upstream, as strings.
fn values(rec: &Recorded, name: &str) -> Vec<String> {
    rec.headers
        .get_all(name)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

fn last(up: &Upstream) -> Recorded {
    up.requests()
        .last()
        .cloned()
        .expect("upstream received nothing")
}

/// Byte comparison that reports where two large bodies first differ, not both bodies.
fn assert_same_bytes(got: &[u8], want: &[u8], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    if let Some(i) = got.iter().zip(want).position(|(a, b)| a != b) {
        panic!("{what}: first difference at byte {i}");
    }
}

#[tokio::test]
async fn method_path_query_headers_and_body_arrive_intact() {
    let up = Upstream::start().await;
    let mut gw = TestGateway::start(PLAIN_CONFIG, &up.url()).await;
    let path = "/echo/a%20b/c";
    let query = "q=1&r=x%2Fy&empty=";
    for h2 in [false, true] {
        let c = client(&gw.ca(), h2);
        for method in ["GET", "POST", "PUT", "DELETE", "PATCH"] {
            let body = format!("{method} body, h2={h2}");
            let mut req = request(
                method,
                &gw.url(&format!("{path}?{query}")),
                &[("x-custom", "Custom Value"), ("x-multi", "one")],
                body.clone(),
            );
            req.headers_mut()
                .append("x-multi", http::HeaderValue::from_static("two"));
            let (parts, got) = send(&c, req).await;
            assert_eq!(parts.status, 200, "{method} h2={h2}");
            assert_eq!(got, body.as_bytes(), "{method} h2={h2}: response body");
            assert_eq!(parts.headers["x-upstream"], "echo");

            let rec = last(&up);
            assert_eq!(rec.method.as_str(), method, "h2={h2}");
            assert_eq!(rec.uri.path(), path, "{method} h2={h2}");
            assert_eq!(rec.uri.query(), Some(query), "{method} h2={h2}");
            assert_eq!(values(&rec, "x-custom"), ["Custom Value"]);
            assert_eq!(values(&rec, "x-multi"), ["one", "two"]);
            assert_eq!(rec.body, body.as_bytes(), "{method} h2={h2}: upstream body");
            // HTTP/2 carries the host in :authority; the upstream still gets a Host header.
            assert_eq!(
                values(&rec, "host"),
                [format!("localhost:{}", gw.addr.port())],
                "h2={h2}"
            );
        }
    }
    assert_eq!(up.count(), 10);
    gw.shutdown().await;
}

#[tokio::test]
async fn large_upload_and_download_stream_byte_identical() {
    let up = Upstream::start().await;
    // The upstream builds the 32 MiB body before its response head (a debug build on a
    // busy machine can take longer than the plain config's 2 s): this test is about bytes.
    let config = PlainConfig::new().request_timeout("30s").toml();
    let mut gw = TestGateway::start(&config, &up.url()).await;
    let upload = Bytes::from(pattern(8 << 20));
    let download = pattern(32 << 20);
    for h2 in [false, true] {
        let c = client(&gw.ca(), h2);
        let (parts, echoed) =
            send(&c, request("POST", &gw.url("/upload"), &[], upload.clone())).await;
        assert_eq!(parts.status, 200, "h2={h2}");
        assert_same_bytes(
            &last(&up).body,
            &upload,
            &format!("upload at upstream, h2={h2}"),
        );
        assert_same_bytes(&echoed, &upload, &format!("upload echoed back, h2={h2}"));

        let (parts, got) = send(&c, get(&gw.url(&format!("/download/{}", 32 << 20)), &[])).await;
        assert_eq!(parts.status, 200, "h2={h2}");
        assert_same_bytes(&got, &download, &format!("download, h2={h2}"));
    }
    gw.shutdown().await;
}

#[tokio::test]
async fn hop_by_hop_headers_do_not_cross_the_gateway() {
    let up = Upstream::start().await;
    let mut gw = TestGateway::start(PLAIN_CONFIG, &up.url()).await;
    // Raw HTTP/1.1 so that no client library drops or rewrites the headers under test.
    let raw = "GET /hygiene HTTP/1.1\r\nHost: localhost\r\n\
        Connection: x-foo, keep-alive\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\n\
        Trailer: x-checksum\r\nProxy-Authorization: Basic Zm9vOmJhcg==\r\n\
        Proxy-Connection: keep-alive\r\nx-foo: 1\r\nx-keep: yes\r\n\r\n";
    let resp = raw_exchange(gw.addr, &gw.ca(), raw.as_bytes())
        .await
        .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.head);
    assert_eq!(resp.header("x-upstream"), Some("echo"));
    // The upstream's echo says `connection: x-drop-me` + `x-drop-me: hop`.
    assert_eq!(resp.header("x-drop-me"), None, "{}", resp.head);

    let rec = last(&up);
    for h in [
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "proxy-authorization",
        "proxy-connection",
        "x-foo",
    ] {
        assert!(rec.headers.get(h).is_none(), "{h} reached the upstream");
    }
    assert_eq!(values(&rec, "x-keep"), ["yes"]);

    // Response side through both protocols with a real client.
    for h2 in [false, true] {
        let c = client(&gw.ca(), h2);
        let (parts, _) = send(&c, get(&gw.url("/hygiene"), &[])).await;
        assert_eq!(parts.status, 200);
        assert_eq!(parts.headers["x-upstream"], "echo");
        assert!(parts.headers.get("x-drop-me").is_none(), "h2={h2}");
        assert!(parts.headers.get("connection").is_none(), "h2={h2}");
    }

    // Control: the upstream really does send them, so their absence above is the gateway's doing.
    let mut direct = tokio::net::TcpStream::connect(up.addr).await.unwrap();
    direct
        .write_all(b"GET /direct HTTP/1.1\r\nHost: upstream\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let (bytes, _) = read_until_close(&mut direct, Duration::from_secs(10)).await;
    let text = String::from_utf8_lossy(&bytes).to_ascii_lowercase();
    assert!(text.contains("x-drop-me: hop"), "{text}");
    gw.shutdown().await;
}

const SPOOFED: [(&str, &str); 8] = [
    ("x-accessgate-user", "mallory"),
    ("X-Accessgate-Anything", "1"),
    ("x-accessgate-decision-id", "spoofed"),
    ("X-Forwarded-For", "6.6.6.6"),
    ("X-Forwarded-Host", "evil.example"),
    ("X-Forwarded-Proto", "http"),
    ("Forwarded", "for=6.6.6.6"),
    ("Proxy-Authorization", "Basic Zm9vOmJhcg=="),
];

/// Identity headers are the gateway's alone, from any peer.
fn assert_identity_headers_are_ours(rec: &Recorded) {
    assert!(rec.headers.get("x-accessgate-user").is_none());
    assert!(rec.headers.get("x-accessgate-anything").is_none());
    assert!(rec.headers.get("proxy-authorization").is_none());
    let ids = values(rec, "x-accessgate-decision-id");
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_ne!(ids[0], "spoofed");
    assert!(!ids[0].is_empty());
}

#[tokio::test]
async fn spoofed_identity_and_forwarded_headers_are_replaced_for_untrusted_peers() {
    let up = Upstream::start().await;
    let mut gw = TestGateway::start(PLAIN_CONFIG, &up.url()).await;
    for h2 in [false, true] {
        let c = client(&gw.ca(), h2);
        let (parts, _) = send(&c, get(&gw.url("/spoof"), &SPOOFED)).await;
        assert_eq!(parts.status, 200, "h2={h2}");
        let rec = last(&up);
        assert_identity_headers_are_ours(&rec);
        assert_eq!(values(&rec, "x-forwarded-for"), ["127.0.0.1"], "h2={h2}");
        assert_eq!(
            values(&rec, "x-forwarded-host"),
            [format!("localhost:{}", gw.addr.port())],
            "h2={h2}"
        );
        assert_eq!(values(&rec, "x-forwarded-proto"), ["https"], "h2={h2}");
        assert!(rec.headers.get("forwarded").is_none(), "h2={h2}");
    }
    gw.shutdown().await;
}

#[tokio::test]
async fn trusted_proxy_forwarded_headers_are_kept_and_appended() {
    let up = Upstream::start().await;
    let config = plain_config_with_listen("trusted_proxies", r#"["127.0.0.0/8"]"#);
    let mut gw = TestGateway::start(&config, &up.url()).await;
    for h2 in [false, true] {
        let c = client(&gw.ca(), h2);
        let (parts, _) = send(&c, get(&gw.url("/trusted"), &SPOOFED)).await;
        assert_eq!(parts.status, 200, "h2={h2}");
        let rec = last(&up);
        // Trusting a proxy's X-Forwarded-* never extends to identity headers.
        assert_identity_headers_are_ours(&rec);
        assert_eq!(
            values(&rec, "x-forwarded-for"),
            ["6.6.6.6, 127.0.0.1"],
            "h2={h2}"
        );
        assert_eq!(
            values(&rec, "x-forwarded-host"),
            ["evil.example"],
            "h2={h2}"
        );
        assert_eq!(values(&rec, "x-forwarded-proto"), ["http"], "h2={h2}");
    }
    gw.shutdown().await;
}

/// Routes `public` (/public -> A) and `admin` (/admin -> B), or only `public`.
fn public_admin_config(admin_upstream: Option<&str>) -> String {
    let mut c = PLAIN_CONFIG.split("[[routes]]").next().unwrap().to_owned();
    c.push_str(
        r#"
[[routes]]
name = "public"
path_prefix = "/public"
upstream = "{upstream}"
auth = "none"
"#,
    );
    if let Some(b) = admin_upstream {
        c.push_str(&format!(
            "\n[[routes]]\nname = \"admin\"\npath_prefix = \"/admin\"\nupstream = \"{b}\"\nauth = \"none\"\n"
        ));
    }
    c
}

const ESCAPES: [&str; 4] = [
    "/public/../admin",
    "/public/%2e%2e/admin",
    "/public/%2E%2E/admin",
    "/public/./x/../../admin",
];

#[tokio::test]
async fn dot_segments_route_to_the_route_the_normalised_path_names() {
    let a = Upstream::start().await;
    let b = Upstream::start().await;
    let mut gw = TestGateway::start(&public_admin_config(Some(&b.url())), &a.url()).await;
    for h2 in [false, true] {
        let c = client(&gw.ca(), h2);
        for p in ESCAPES {
            let (parts, _) = send(&c, get(&gw.url(p), &[])).await;
            assert_eq!(parts.status, 200, "{p} h2={h2}");
            assert_eq!(last(&b).uri.path(), "/admin", "{p} h2={h2}");
        }
    }
    assert_eq!(
        a.count(),
        0,
        "the public route's upstream saw an escaped path"
    );
    assert_eq!(b.count(), 2 * ESCAPES.len());
    gw.shutdown().await;
}

#[tokio::test]
async fn dot_segments_cannot_reach_an_unrouted_path() {
    let a = Upstream::start().await;
    let mut gw = TestGateway::start(&public_admin_config(None), &a.url()).await;
    for h2 in [false, true] {
        let c = client(&gw.ca(), h2);
        for p in ESCAPES {
            let (parts, body) = send(&c, get(&gw.url(p), &[])).await;
            assert_problem(&parts, &body, 404);
        }
    }
    // Raw too, in case a client library normalised the path itself.
    let raw = "GET /public/%2e%2e/admin HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let resp = raw_exchange(gw.addr, &gw.ca(), raw.as_bytes())
        .await
        .unwrap();
    assert_eq!(resp.status, 404, "{}", resp.head);
    assert_eq!(a.count(), 0);
    gw.shutdown().await;
}

#[tokio::test]
async fn host_routes_match_case_insensitively_without_the_port() {
    let api = Upstream::start().await;
    let other = Upstream::start().await;
    let config = format!(
        "{}\n[[routes]]\nname = \"api\"\nhost = \"api.example\"\npath_prefix = \"/\"\nupstream = \"{}\"\nauth = \"none\"\n",
        PLAIN_CONFIG,
        api.url()
    );
    let mut gw = TestGateway::start(&config, &other.url()).await;
    // TLS SNI stays `localhost`; only the Host header names the virtual host.
    let c = client(&gw.ca(), false);
    for host in ["API.Example:443", "api.example", "Api.EXAMPLE:8443"] {
        let (parts, _) = send(&c, get(&gw.url("/v1/items"), &[("host", host)])).await;
        assert_eq!(parts.status, 200, "{host}");
        assert_eq!(last(&api).uri.path(), "/v1/items");
        assert_eq!(values(&last(&api), "host"), [host]);
    }
    let raw = "GET /raw HTTP/1.1\r\nHost: API.Example:443\r\n\r\n";
    let resp = raw_exchange(gw.addr, &gw.ca(), raw.as_bytes())
        .await
        .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.head);
    assert_eq!(api.count(), 4);
    assert_eq!(other.count(), 0);

    // Any other host falls through to the host-less route.
    let (parts, _) = send(&c, get(&gw.url("/v1/items"), &[])).await;
    assert_eq!(parts.status, 200);
    let (parts, _) = send(
        &c,
        get(&gw.url("/v1/items"), &[("host", "api.example.evil")]),
    )
    .await;
    assert_eq!(parts.status, 200);
    assert_eq!(other.count(), 2);
    assert_eq!(api.count(), 4);
    gw.shutdown().await;
}

#[tokio::test]
async fn websocket_upgrade_tunnels_bytes_both_ways() {
    let up = Upstream::start().await;
    let mut gw = TestGateway::start(PLAIN_CONFIG, &up.url()).await;
    let mut io = raw_tls(gw.addr, &gw.ca()).await;
    io.write_all(
        b"GET /ws HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .await
    .unwrap();
    let (head, rest) = read_head(&mut io, Duration::from_secs(10)).await.unwrap();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(rest.is_empty(), "bytes before anything was sent: {rest:?}");
    let rec = last(&up);
    assert_eq!(rec.uri.path(), "/ws");
    assert_eq!(values(&rec, "upgrade"), ["websocket"]);
    assert!(rec.headers.get("sec-websocket-key").is_some());

    for msg in [
        &b"hello through the tunnel"[..],
        &[0u8, 1, 2, 255, 13, 10][..],
    ] {
        io.write_all(msg).await.unwrap();
        let mut got = vec![0u8; msg.len()];
        tokio::time::timeout(Duration::from_secs(10), io.read_exact(&mut got))
            .await
            .expect("echo timed out")
            .unwrap();
        assert_eq!(got, msg);
    }
    drop(io);
    gw.shutdown().await;
}

#[tokio::test]
async fn repeated_x_forwarded_for_lines_from_a_trusted_proxy_are_all_kept() {
    let up = Upstream::start().await;
    let config = plain_config_with_listen("trusted_proxies", r#"["127.0.0.0/8"]"#);
    let mut gw = TestGateway::start(&config, &up.url()).await;
    // RFC 9110 5.3: repeated field lines are one comma-joined list, in order. A proxy
    // that adds its own line after the client's must not lose its entry.
    let raw = "GET /xff HTTP/1.1\r\nHost: localhost\r\n\
        X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-For: 7.7.7.7\r\n\r\n";
    let resp = raw_exchange(gw.addr, &gw.ca(), raw.as_bytes())
        .await
        .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.head);
    let got = values(&last(&up), "x-forwarded-for").join(", ");
    assert_eq!(got, "6.6.6.6, 7.7.7.7, 127.0.0.1");
    gw.shutdown().await;
}
