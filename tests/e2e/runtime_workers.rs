#![allow(clippy::unwrap_used)]
//! `[runtime] scheduler = "per_core"` with two workers: each worker's `SO_REUSEPORT`
//! listener takes connections, the gateway's counters see all of them, and a drain waits
//! for the requests in flight on every worker before anything closes. Loops are bounded
//! by a count of connections or by a deadline; nothing asserts on elapsed time.
use crate::support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::watch;

use support::*;

const GET: &[u8] = b"GET /held HTTP/1.1\r\nHost: localhost\r\n\r\n";

fn per_core(workers: &str, scheduler: &str) -> String {
    PlainConfig::new()
        .runtime("worker_threads", workers)
        .runtime("scheduler", &format!("{scheduler:?}"))
        // Longer than any wait below: a drain that ends early is the gateway's doing.
        .runtime("shutdown_grace", "\"30s\"")
        .request_timeout("30s")
        .toml()
}

fn accepted_by(gw: &TestGateway, worker: &str) -> u64 {
    gw.gw()
        .metrics()
        .worker_connections_total
        .with_label_values(&[worker])
        .get()
}

/// An upstream that answers nothing until the gate opens; counts requests received.
struct GatedUpstream {
    addr: SocketAddr,
    arrived: Arc<AtomicUsize>,
    open: watch::Sender<bool>,
}

impl GatedUpstream {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let arrived = Arc::new(AtomicUsize::new(0));
        let (open, gate) = watch::channel(false);
        let counter = arrived.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let counter = counter.clone();
                let gate = gate.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |_req| {
                        counter.fetch_add(1, Ordering::SeqCst);
                        let mut gate = gate.clone();
                        async move {
                            let _ = gate.wait_for(|o| *o).await;
                            Ok::<_, Infallible>(hyper::Response::new(Full::new(
                                Bytes::from_static(b"released"),
                            )))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Self {
            addr,
            arrived,
            open,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_two_workers_both_accept_connections() {
    let up = Upstream::start().await;
    let mut gw = TestGateway::start(&per_core("2", "per_core"), &up.url()).await;
    let ca = gw.ca();
    let mut sent = 0u64;
    // The kernel hashes each connection's 4-tuple to one of the two listeners: 64
    // connections all landing on one has a chance of 2^-63.
    for _ in 0..64 {
        let r = raw_exchange(gw.addr, &ca, b"GET /w HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .expect("no response");
        assert_eq!(r.status, 200);
        sent += 1;
        if accepted_by(&gw, "0") > 0 && accepted_by(&gw, "1") > 0 {
            break;
        }
    }
    let (w0, w1) = (accepted_by(&gw, "0"), accepted_by(&gw, "1"));
    assert!(
        w0 > 0 && w1 > 0,
        "after {sent} connections: worker 0 accepted {w0}, worker 1 {w1}"
    );
    assert_eq!(
        w0 + w1,
        sent,
        "each connection is accepted by exactly one worker"
    );
    assert_eq!(gw.gw().metrics().connections_total.get(), sent);
    assert_eq!(
        accepted_by(&gw, "2"),
        0,
        "a third accept loop with two workers"
    );
    // The admin endpoint shows the same split.
    let (status, text) = admin_get(gw.admin.unwrap(), "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        text.contains("accessgate_worker_connections_total{worker=\"1\"}"),
        "{text}"
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn work_stealing_serves_one_listener_from_one_accept_loop() {
    let up = Upstream::start().await;
    let mut gw = TestGateway::start(&per_core("2", "work_stealing"), &up.url()).await;
    let ca = gw.ca();
    for _ in 0..8 {
        let r = raw_exchange(gw.addr, &ca, b"GET /w HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .expect("no response");
        assert_eq!(r.status, 200);
    }
    assert_eq!(accepted_by(&gw, "0"), 8);
    assert_eq!(accepted_by(&gw, "1"), 0);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_waits_for_in_flight_requests_on_every_worker() {
    let up = GatedUpstream::start().await;
    let mut gw = TestGateway::start(&per_core("2", "per_core"), &up.url()).await;
    let ca = gw.ca();
    let admin = gw.admin.unwrap();
    // Open connections, each with one request held at the upstream, until both workers
    // hold at least one.
    let mut held = Vec::new();
    for i in 0..64 {
        let mut io = raw_tls(gw.addr, &ca).await;
        io.write_all(GET).await.unwrap();
        io.flush().await.unwrap();
        held.push(io);
        assert!(
            eventually(Duration::from_secs(10), || up
                .arrived
                .load(Ordering::SeqCst)
                == i + 1)
            .await,
            "request {i} never reached the upstream"
        );
        if accepted_by(&gw, "0") > 0 && accepted_by(&gw, "1") > 0 {
            break;
        }
    }
    let n = held.len();
    let (w0, w1) = (accepted_by(&gw, "0"), accepted_by(&gw, "1"));
    assert!(
        w0 > 0 && w1 > 0,
        "after {n} connections: worker 0 has {w0}, worker 1 {w1}"
    );
    assert_eq!(
        gw.gw().metrics().open_connections.get(),
        i64::try_from(n).unwrap(),
        "open_connections counts every worker's connections"
    );

    let running = gw.gw.take().unwrap();
    let stopping = tokio::spawn(running.shutdown());
    // Draining: not ready, and neither worker's listener takes a connection (eight
    // refusals in a row: the kernel would have sent some of them to a listener left open).
    let mut saw_not_ready = false;
    for _ in 0..250 {
        if admin_get(admin, "/readyz").await.0 == 503 {
            saw_not_ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(saw_not_ready, "/readyz never said 503 while draining");
    let mut refused_in_a_row = 0;
    for _ in 0..250 {
        match tokio::net::TcpStream::connect(gw.addr).await {
            Err(_) => refused_in_a_row += 1,
            Ok(_) => {
                refused_in_a_row = 0;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        if refused_in_a_row == 8 {
            break;
        }
    }
    assert_eq!(
        refused_in_a_row, 8,
        "a listener still accepted during the drain"
    );
    // The held requests keep the drain open (grace 30 s): nothing has closed them.
    assert!(
        !stopping.is_finished(),
        "shutdown ended with requests in flight"
    );
    assert_eq!(up.arrived.load(Ordering::SeqCst), n);

    up.open.send(true).unwrap();
    for (i, io) in held.iter_mut().enumerate() {
        let r = read_response(io, Duration::from_secs(15))
            .await
            .unwrap_or_else(|| panic!("held request {i} was cut off by the drain"));
        assert_eq!(r.status, 200, "held request {i}");
        assert_eq!(r.body, b"released", "held request {i}");
    }
    drop(held);
    tokio::time::timeout(Duration::from_secs(15), stopping)
        .await
        .expect("shutdown did not finish once the requests were answered")
        .unwrap();
}
