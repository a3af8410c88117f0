#![allow(clippy::unwrap_used)]
//! End-to-end connection handling: header and idle timeouts, graceful shutdown,
//! `max_connections`, and mutual TLS. Waits are bounded; the only time-based assertions are
//! generous upper bounds on things that must end, plus "still open after 2.5 s" where the
//! configured timeouts are 1 s (head) and 5 s (idle).
use crate::support;

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use support::*;

const GET: &[u8] = b"GET /keepalive HTTP/1.1\r\nHost: localhost\r\n\r\n";

#[tokio::test]
async fn partial_request_head_is_cut_off_by_header_read_timeout() {
    let up = Upstream::start().await;
    let mut gw = TestGateway::start(PLAIN_CONFIG, &up.url()).await; // header_read_timeout 1s
    let mut io = raw_tls(gw.addr, &gw.ca()).await;
    io.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .unwrap();
    let (_, eof) = read_until_close(&mut io, Duration::from_secs(5)).await;
    assert!(
        eof,
        "a never-finished request head kept the connection open"
    );
    assert_eq!(up.count(), 0);
    gw.shutdown().await;
}

#[tokio::test]
async fn trickled_request_head_is_cut_off_by_header_read_timeout() {
    let up = Upstream::start().await;
    let mut gw = TestGateway::start(PLAIN_CONFIG, &up.url()).await;
    let mut io = raw_tls(gw.addr, &gw.ca()).await;
    io.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
    // A byte every 200 ms keeps the connection busy but must not extend the head deadline.
    let mut closed = false;
    for i in 0..40 {
        let line = format!("x-{i}: y\r\n");
        if io.write_all(line.as_bytes()).await.is_err() || io.flush().await.is_err() {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    if !closed {
        let (_, eof) = read_until_close(&mut io, Duration::from_secs(1)).await;
        closed = eof;
    }
    assert!(
        closed,
        "a head trickled over 8 s was not cut off (header_read_timeout = 1s)"
    );
    assert_eq!(up.count(), 0);
    gw.shutdown().await;
}

#[tokio::test]
async fn idle_keepalive_outlives_header_timeout_and_closes_after_idle_timeout() {
    let up = Upstream::start().await;
    // header_read_timeout = 1s, idle_timeout = 5s.
    let mut gw = TestGateway::start(PLAIN_CONFIG, &up.url()).await;
    let mut io = raw_tls(gw.addr, &gw.ca()).await;
    io.write_all(GET).await.unwrap();
    let r = read_response(&mut io, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(r.status, 200);

    // Waiting for the next request is idle time, not a slow head.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    io.write_all(GET).await.unwrap();
    let r = read_response(&mut io, Duration::from_secs(10))
        .await
        .expect("keep-alive connection closed before idle_timeout");
    assert_eq!(r.status, 200);
    assert_eq!(up.count(), 2);

    let (_, eof) = read_until_close(&mut io, Duration::from_secs(5 + 3)).await;
    assert!(eof, "idle connection not closed after idle_timeout");
    gw.shutdown().await;
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish_then_refuses_connections() {
    for h2 in [false, true] {
        let up = Upstream::start().await;
        let mut gw = TestGateway::start(PLAIN_CONFIG, &up.url()).await;
        let c = client(&gw.ca(), h2);
        let req = get(&gw.url("/slow/1500"), &[]);
        let in_flight = tokio::spawn(async move { send(&c, req).await });
        assert!(
            eventually(Duration::from_secs(10), || up.count() == 1).await,
            "slow request never reached the upstream"
        );
        tokio::time::timeout(Duration::from_secs(15), gw.shutdown())
            .await
            .expect("shutdown did not finish");
        let (parts, body) = tokio::time::timeout(Duration::from_secs(15), in_flight)
            .await
            .expect("in-flight request did not finish")
            .unwrap();
        assert_eq!(parts.status, 200, "h2={h2}");
        assert_eq!(body, "slow done");

        // Nothing accepts on the address any more.
        match tokio::time::timeout(
            Duration::from_secs(5),
            tokio::net::TcpStream::connect(gw.addr),
        )
        .await
        {
            Ok(Err(_)) => {}
            Ok(Ok(_)) => panic!("a connection was accepted after shutdown"),
            Err(_) => panic!("connect after shutdown hung"),
        }
    }
}

#[tokio::test]
async fn readyz_reports_not_ready_while_draining() {
    let up = Upstream::start().await;
    let mut gw = TestGateway::start(PLAIN_CONFIG, &up.url()).await;
    let admin = gw.admin.unwrap();
    assert_eq!(admin_get(admin, "/readyz").await.0, 200);

    let c = client(&gw.ca(), false);
    let req = get(&gw.url("/slow/1500"), &[]);
    let in_flight = tokio::spawn(async move { send(&c, req).await });
    assert!(eventually(Duration::from_secs(10), || up.count() == 1).await);

    let running = gw.gw.take().unwrap();
    let stopping = tokio::spawn(running.shutdown());
    // The slow request holds the drain open for ~1.5 s; readyz must say 503 meanwhile.
    let mut saw = None;
    for _ in 0..50 {
        let (status, body) = admin_get(admin, "/readyz").await;
        if status == 503 {
            saw = Some(body);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let body = saw.expect("/readyz never answered 503 while draining");
    assert!(body.contains("shutting down"), "{body}");

    let (parts, _) = tokio::time::timeout(Duration::from_secs(15), in_flight)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(parts.status, 200);
    tokio::time::timeout(Duration::from_secs(15), stopping)
        .await
        .expect("shutdown did not finish")
        .unwrap();
}

#[tokio::test]
async fn max_connections_holds_further_handshakes_until_a_slot_frees() {
    let up = Upstream::start().await;
    // The held connections send nothing for a while: a header timeout longer than the
    // waits below, so a slot frees only when the test drops a connection.
    let config = PlainConfig::new()
        .listen("max_connections", "2")
        .listen("header_read_timeout", "\"30s\"")
        .listen("idle_timeout", "\"60s\"")
        // The first connection sends nothing: it must outlive the 1 s window below, or
        // its head timeout frees the slot the third is waiting for.
        .listen("header_read_timeout", "\"5s\"")
        .toml();
    let mut gw = TestGateway::start(&config, &up.url()).await;
    let first = raw_tls(gw.addr, &gw.ca()).await;
    let mut second = raw_tls(gw.addr, &gw.ca()).await;

    let cfg = tls_client_config(&gw.ca(), &[b"http/1.1"]);
    let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
    let addr = gw.addr;
    let mut third = tokio::spawn(async move {
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
        connector.connect(name, tcp).await
    });
    // The kernel completes the TCP connect, but the gateway does not accept it yet.
    assert!(
        tokio::time::timeout(Duration::from_secs(1), &mut third)
            .await
            .is_err(),
        "a third TLS handshake completed with max_connections = 2"
    );
    // The held connections still work.
    second.write_all(GET).await.unwrap();
    let r = read_response(&mut second, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(r.status, 200);

    drop(first);
    let mut third = tokio::time::timeout(Duration::from_secs(10), third)
        .await
        .expect("third handshake did not complete after a slot freed")
        .unwrap()
        .unwrap();
    third.write_all(GET).await.unwrap();
    let r = read_response(&mut third, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    drop((second, third));
    gw.shutdown().await;
}

fn mtls_config() -> String {
    plain_config_with_listen("client_ca", r#""{certs}/ca.crt""#)
}

#[tokio::test]
async fn mutual_tls_refuses_clients_without_a_certificate() {
    let up = Upstream::start().await;
    let mut gw = TestGateway::start(&mtls_config(), &up.url()).await;
    for h2 in [false, true] {
        let c = client(&gw.ca(), h2);
        let r = tokio::time::timeout(Duration::from_secs(10), c.request(get(&gw.url("/"), &[])))
            .await
            .expect("request without a client certificate hung");
        assert!(r.is_err(), "h2={h2}: got {:?}", r.map(|r| r.status()));
    }
    // A client certificate from another CA is refused too.
    let other = tempfile::tempdir().unwrap();
    accessgate::cli::devcerts::generate_tls(other.path()).unwrap();
    let tls = tls_client_config_with_cert(
        &gw.ca(),
        &other.path().join("client.crt"),
        &other.path().join("client.key"),
        &[],
    );
    let c = client_with_tls(tls, false);
    let r = tokio::time::timeout(Duration::from_secs(10), c.request(get(&gw.url("/"), &[])))
        .await
        .expect("request with a foreign client certificate hung");
    assert!(
        r.is_err(),
        "foreign client cert: got {:?}",
        r.map(|r| r.status())
    );
    assert_eq!(up.count(), 0);
    gw.shutdown().await;
}

#[tokio::test]
async fn mutual_tls_accepts_a_client_certificate_from_the_ca() {
    let up = Upstream::start().await;
    let mut gw = TestGateway::start(&mtls_config(), &up.url()).await;
    for h2 in [false, true] {
        let tls = tls_client_config_with_cert(
            &gw.ca(),
            &gw.certs.path("client.crt"),
            &gw.certs.path("client.key"),
            &[],
        );
        let c = client_with_tls(tls, h2);
        let (parts, _) = send(&c, get(&gw.url("/mtls"), &[])).await;
        assert_eq!(parts.status, 200, "h2={h2}");
    }
    assert_eq!(up.count(), 2);
    gw.shutdown().await;
}

#[tokio::test]
async fn keepalive_after_a_streamed_upload_is_governed_by_idle_timeout() {
    let up = Upstream::start().await;
    // header_read_timeout = 1s, idle_timeout = 5s.
    let mut gw = TestGateway::start(PLAIN_CONFIG, &up.url()).await;
    let mut io = raw_tls(gw.addr, &gw.ca()).await;
    let body = pattern(256 * 1024);
    io.write_all(
        format!(
            "POST /upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    // Body in pieces, after the head, as a real client streaming an upload would.
    for piece in body.chunks(16 * 1024) {
        io.write_all(piece).await.unwrap();
        io.flush().await.unwrap();
    }
    let r = read_response(&mut io, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), body.len());

    tokio::time::sleep(Duration::from_millis(2500)).await;
    io.write_all(GET).await.unwrap();
    let r = read_response(&mut io, Duration::from_secs(10)).await;
    assert_eq!(
        r.map(|r| r.status),
        Some(200),
        "keep-alive connection closed before idle_timeout after an upload"
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn idle_h2_connection_is_closed_after_idle_timeout() {
    let up = Upstream::start().await;
    let mut gw = TestGateway::start(PLAIN_CONFIG, &up.url()).await; // idle_timeout 5s
    let c = client(&gw.ca(), true);
    let (parts, _) = send(&c, get(&gw.url("/once"), &[])).await;
    assert_eq!(parts.status, 200);
    let open = gw.gw().metrics().open_connections.clone();
    assert_eq!(open.get(), 1);
    assert!(
        eventually(Duration::from_secs(5 + 3), || open.get() == 0).await,
        "an idle HTTP/2 connection outlived idle_timeout"
    );
    drop(c);
    gw.shutdown().await;
}

#[tokio::test]
async fn upgraded_tunnels_count_against_max_connections() {
    let up = Upstream::start().await;
    let config = PlainConfig::new()
        .listen("max_connections", "1")
        .listen("idle_timeout", "\"60s\"")
        .toml();
    let mut gw = TestGateway::start(&config, &up.url()).await;
    let mut ws = raw_tls(gw.addr, &gw.ca()).await;
    ws.write_all(
        b"GET /ws HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .await
    .unwrap();
    let (head, _) = read_head(&mut ws, Duration::from_secs(10)).await.unwrap();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");

    let open = gw.gw().metrics().open_connections.get();
    let cfg = tls_client_config(&gw.ca(), &[b"http/1.1"]);
    let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
    let addr = gw.addr;
    let second = tokio::spawn(async move {
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
        connector.connect(name, tcp).await
    });
    let handshake = tokio::time::timeout(Duration::from_secs(1), second).await;
    assert!(
        handshake.is_err(),
        "a second connection completed its handshake while a tunnel held the only slot \
         (open_connections = {open})"
    );
    assert_eq!(
        open, 1,
        "an open WebSocket tunnel is not counted in open_connections"
    );
    drop(ws);
    gw.shutdown().await;
}

/// An HTTP/1.1 connection quiet for a watchdog tick (250 ms here) is parked without
/// hyper's connection (src/transport/park.rs) and rebuilt when its next request arrives:
/// what follows a park must be served exactly as on a connection hyper kept.
#[tokio::test]
async fn parked_keepalive_connection_serves_bodies_pipelining_upgrades_and_close() {
    let up = Upstream::start().await;
    let mut gw = TestGateway::start(PLAIN_CONFIG, &up.url()).await; // head 1s, idle 5s
    let quiet = Duration::from_millis(1500);
    let mut io = raw_tls(gw.addr, &gw.ca()).await;
    io.write_all(GET).await.unwrap();
    let r = read_response(&mut io, Duration::from_secs(10)).await;
    assert_eq!(r.unwrap().status, 200);

    // A request with a body pipelined with the next one, after a park: both arrive whole
    // and are answered in order.
    tokio::time::sleep(quiet).await;
    io.write_all(
        b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\r\nhello\
          GET /after HTTP/1.1\r\nHost: localhost\r\n\r\n",
    )
    .await
    .unwrap();
    let echoed = read_response(&mut io, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(
        (echoed.status, echoed.body.as_slice()),
        (200, &b"hello"[..])
    );
    let after = read_response(&mut io, Duration::from_secs(10)).await;
    assert_eq!(after.expect("pipelined request lost").status, 200);

    // `Connection: close` after a park: answered, then closed (not parked and kept).
    tokio::time::sleep(quiet).await;
    io.write_all(b"GET /last HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let last = read_response(&mut io, Duration::from_secs(10)).await;
    assert_eq!(last.unwrap().status, 200);
    let (_, eof) = read_until_close(&mut io, Duration::from_secs(3)).await;
    assert!(eof, "a Connection: close request left the connection open");
    assert_eq!(up.count(), 4);

    // An upgrade after a park: the tunnel works.
    let mut ws = raw_tls(gw.addr, &gw.ca()).await;
    ws.write_all(GET).await.unwrap();
    let r = read_response(&mut ws, Duration::from_secs(10)).await;
    assert_eq!(r.unwrap().status, 200);
    tokio::time::sleep(quiet).await;
    ws.write_all(
        b"GET /ws HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .await
    .unwrap();
    let (head, _) = read_head(&mut ws, Duration::from_secs(10)).await.unwrap();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    ws.write_all(b"ping").await.unwrap();
    let mut got = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(10), ws.read_exact(&mut got))
        .await
        .expect("tunnel did not echo")
        .unwrap();
    assert_eq!(&got, b"ping");
    drop(ws);
    gw.shutdown().await;
}
