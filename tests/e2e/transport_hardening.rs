#![allow(clippy::unwrap_used)]
//! Issue 14 findings 1, 2 and 6: paced rapid reset, silent connections holding slots, and
//! an invalid HTTP/2 preface. Waits are bounded; the only time-based assertions are
//! generous upper bounds that catch a hang (never "took less than X").
use crate::support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

use support::*;

/// An HTTP/1.1 upstream that counts the TCP connections it accepts and the most that were
/// open at once; each response waits `delay`.
struct CountingUpstream {
    addr: std::net::SocketAddr,
    accepted: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl CountingUpstream {
    async fn start(delay: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let open = Arc::new(AtomicUsize::new(0));
        let (a, p) = (accepted.clone(), peak.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                a.fetch_add(1, Ordering::SeqCst);
                let now = open.fetch_add(1, Ordering::SeqCst) + 1;
                p.fetch_max(now, Ordering::SeqCst);
                let open = open.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |_req| async move {
                        tokio::time::sleep(delay).await;
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(
                            http_body_util::Full::new(Bytes::from_static(b"ok")),
                        ))
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                    open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Self {
            addr,
            accepted,
            peak,
            task,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for CountingUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A TLS connection offering only `h2` in ALPN.
async fn h2_tls(gw: &TestGateway) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let cfg = tls_client_config(&gw.ca(), &[b"h2"]);
    let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
    let tcp = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let tls = connector.connect(name, tcp).await.unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    tls
}

fn cancelled(gw: &TestGateway) -> u64 {
    support::authn::counter(
        gw.gw().metrics(),
        "accessgate_requests_total",
        &[("decision", "cancelled")],
    )
}

#[tokio::test]
async fn paced_rapid_reset_keeps_upstream_connects_bounded_and_is_counted() {
    let up = CountingUpstream::start(Duration::ZERO).await;
    let mut gw = TestGateway::start(PLAIN_CONFIG, &up.url()).await;
    let (mut send, conn) = h2::client::handshake(h2_tls(&gw).await).await.unwrap();
    let conn_task = tokio::spawn(conn);
    // 40 rounds of 50 streams opened and reset at once, 50 ms apart: 2,000 streams in
    // about 2 s, never more than 50 at a time (below any per-burst limit).
    let mut opened = 0usize;
    let mut closed_by_gateway = false;
    'rounds: for _ in 0..40 {
        for _ in 0..50 {
            let ready = tokio::time::timeout(Duration::from_secs(5), send.clone().ready()).await;
            let Ok(Ok(s)) = ready else {
                closed_by_gateway = true;
                break 'rounds;
            };
            send = s;
            let req = http::Request::get(gw.url("/reset")).body(()).unwrap();
            let Ok((_resp, mut stream)) = send.send_request(req, true) else {
                closed_by_gateway = true;
                break 'rounds;
            };
            stream.send_reset(h2::Reason::CANCEL);
            opened += 1;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if !closed_by_gateway {
        // The connection must end on its own (GOAWAY / close) within a generous bound.
        closed_by_gateway = tokio::time::timeout(Duration::from_secs(10), conn_task)
            .await
            .is_ok();
    }
    let connects = up.accepted.load(Ordering::SeqCst);
    assert!(
        connects <= 8,
        "{opened} cancelled streams made the gateway open {connects} upstream connections"
    );
    assert!(
        closed_by_gateway,
        "{opened} streams reset within ~2 s did not get the connection closed"
    );
    assert!(opened < 2000, "all 2000 streams were accepted");
    assert!(
        cancelled(&gw) > 0,
        "cancelled streams are not counted in accessgate_requests_total"
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn connections_per_upstream_are_capped() {
    let up = CountingUpstream::start(Duration::from_millis(200)).await;
    // The route is the last table: this key lands in it.
    let toml = PlainConfig::new().toml() + "upstream_max_connections = 2\n";
    let mut gw = TestGateway::start(&toml, &up.url()).await;
    let client = client(&gw.ca(), true);
    let mut tasks = Vec::new();
    for i in 0..4 {
        let c = client.clone();
        let url = gw.url(&format!("/cap/{i}"));
        tasks.push(tokio::spawn(async move {
            send(&c, get(&url, &[])).await.0.status
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), http::StatusCode::OK);
    }
    let peak = up.peak.load(Ordering::SeqCst);
    assert!(
        peak <= 2,
        "{peak} upstream connections were open at once (cap 2)"
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn silent_tls_connection_is_closed_after_header_read_timeout() {
    let up = Upstream::start().await;
    let toml = PlainConfig::new().listen("idle_timeout", "\"60s\"").toml();
    let mut gw = TestGateway::start(&toml, &up.url()).await; // header_read_timeout 1s
    let mut io = raw_tls(gw.addr, &gw.ca()).await;
    let (_, eof) = read_until_close(&mut io, Duration::from_secs(15)).await;
    assert!(eof, "a connection that never sent a byte kept its slot");
    gw.shutdown().await;
}

#[tokio::test]
async fn h2_connection_without_a_request_is_closed_after_header_read_timeout() {
    let up = Upstream::start().await;
    let toml = PlainConfig::new().listen("idle_timeout", "\"60s\"").toml();
    let mut gw = TestGateway::start(&toml, &up.url()).await;
    let mut io = h2_tls(&gw).await;
    // Preface, empty SETTINGS, then a HEADERS frame without END_HEADERS that never ends.
    io.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    io.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).await.unwrap();
    io.write_all(&[0, 0, 1, 1, 0, 0, 0, 0, 1, 0x82])
        .await
        .unwrap();
    io.flush().await.unwrap();
    let (_, eof) = read_until_close(&mut io, Duration::from_secs(15)).await;
    assert!(
        eof,
        "an h2 connection with an unfinished header block kept its slot"
    );
    assert_eq!(up.count(), 0);
    gw.shutdown().await;
}

#[tokio::test]
async fn idle_connections_are_shed_near_the_connection_limit() {
    let up = Upstream::start().await;
    let toml = PlainConfig::new()
        .listen("idle_timeout", "\"60s\"")
        .listen("max_connections", "3")
        .toml();
    let mut gw = TestGateway::start(&toml, &up.url()).await;
    // Three clients, each holding one idle keep-alive connection after a request.
    let mut idle = Vec::new();
    for i in 0..3 {
        let c = client(&gw.ca(), false);
        let (parts, _) = send(&c, get(&gw.url(&format!("/idle/{i}")), &[])).await;
        assert_eq!(parts.status, http::StatusCode::OK);
        idle.push(c);
    }
    let fresh = client(&gw.ca(), false);
    // The bound only catches a wait for the 60 s idle timeout.
    let served = tokio::time::timeout(
        Duration::from_secs(20),
        fresh.request(get(&gw.url("/fresh"), &[])),
    )
    .await;
    let status = served
        .expect("a new client waited for the idle connections to time out")
        .unwrap()
        .status();
    assert_eq!(status, http::StatusCode::OK);
    drop(idle);
    gw.shutdown().await;
}

#[tokio::test]
async fn invalid_h2_preface_gets_goaway_protocol_error() {
    let up = Upstream::start().await;
    let mut gw = TestGateway::start(PLAIN_CONFIG, &up.url()).await;
    let mut io = h2_tls(&gw).await;
    io.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    io.flush().await.unwrap();
    let (bytes, eof) = read_until_close(&mut io, Duration::from_secs(10)).await;
    assert!(eof, "the connection was not closed");
    // Walk the frames: a GOAWAY (type 7) on stream 0 with PROTOCOL_ERROR (1).
    let mut goaway = None;
    let mut at = 0;
    while at + 9 <= bytes.len() {
        let len = usize::from(bytes[at]) << 16
            | usize::from(bytes[at + 1]) << 8
            | usize::from(bytes[at + 2]);
        let end = at + 9 + len;
        if end > bytes.len() {
            break;
        }
        if bytes[at + 3] == 7 && len >= 8 {
            let p = &bytes[at + 9..end];
            goaway = Some(u32::from_be_bytes([p[4], p[5], p[6], p[7]]));
        }
        at = end;
    }
    assert_eq!(
        goaway,
        Some(1),
        "no GOAWAY(PROTOCOL_ERROR) before close; got {bytes:02x?}"
    );
    assert_eq!(up.count(), 0);
    gw.shutdown().await;
}
