//! Parking mechanics on an in-memory stream: hyper is built only while a request is on
//! the wire, no byte is lost across a park, and the timeouts and signals still end a
//! parked connection. (The TLS listener path is covered end to end in tests/e2e.)

use super::*;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioTimer;
use tokio::io::{AsyncReadExt, DuplexStream};
use tokio::sync::watch;

use crate::transport::h1_guard::H1Guard;

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";

struct Harness {
    client: DuplexStream,
    task: tokio::task::JoinHandle<()>,
    builds: Arc<AtomicUsize>,
    /// One clone per live hyper connection, plus the harness's and the template's.
    live: Arc<()>,
    drain: watch::Sender<bool>,
    _kill: watch::Sender<bool>,
}

impl Harness {
    fn start(header: Duration, idle: Duration) -> Self {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let activity = Arc::new(ConnActivity::default());
        let tracked = Tracked {
            inner: Rewind::new(server, false),
            activity: activity.clone(),
            guard: Some(H1Guard::new(8192)),
        };
        let settings = ServerSettings {
            handshake_timeout: Duration::from_secs(5),
            header_read_timeout: header,
            idle_timeout: idle,
            max_connections: 100,
            max_header_bytes: 8192,
            h2_max_concurrent_streams: 10,
        };
        let gauge = prometheus::IntGauge::new("open", "open").unwrap();
        let pressure = Pressure::new(gauge, 100);
        let (drain, drain_rx) = watch::channel(false);
        let (kill, kill_rx) = watch::channel(false);
        let shutdown = Shutdown {
            drain: drain_rx,
            kill: kill_rx,
        };
        let builds = Arc::new(AtomicUsize::new(0));
        let live = Arc::new(());
        let (b, l) = (builds.clone(), live.clone());
        let make = move |io| {
            b.fetch_add(1, Ordering::SeqCst);
            let (activity, marker) = (activity.clone(), l.clone());
            // Counts dispatches as the real service does (the watchdog and the park
            // decision read them).
            let svc = hyper::service::service_fn(move |_req: http::Request<Incoming>| {
                let _held = &marker;
                activity.dispatched.fetch_add(1, Ordering::Relaxed);
                async { Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from("ok")))) }
            });
            hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .serve_connection(io, svc)
                .with_upgrades()
        };
        let peer: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let task = tokio::spawn(async move {
            serve_h1(tracked, make, &settings, shutdown, peer, pressure).await;
        });
        Self {
            client,
            task,
            builds,
            live,
            drain,
            _kill: kill,
        }
    }

    fn builds(&self) -> usize {
        self.builds.load(Ordering::SeqCst)
    }

    /// Whether no hyper connection is alive (the harness and the closure hold the rest).
    fn parked(&self) -> bool {
        Arc::strong_count(&self.live) == 2
    }

    async fn wait_parked(&self) {
        for _ in 0..500 {
            if self.parked() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the quiet connection was never parked");
    }

    /// Read one `ok` response (hyper sends `content-length: 2`).
    async fn response(&mut self) -> String {
        self.responses(1).await
    }

    /// Read `n` `ok` responses.
    async fn responses(&mut self, n: usize) -> String {
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        let read = async {
            while !(got.ends_with(b"\r\n\r\nok")
                && got.windows(6).filter(|w| w == b"\r\n\r\nok").count() == n)
            {
                let n = self.client.read(&mut buf).await.unwrap();
                assert!(
                    n > 0,
                    "closed before a response: {:?}",
                    String::from_utf8_lossy(&got)
                );
                got.extend_from_slice(&buf[..n]);
            }
        };
        tokio::time::timeout(Duration::from_secs(10), read)
            .await
            .expect("no response");
        String::from_utf8(got).unwrap()
    }

    /// Whether the connection ends (EOF) within `bound`.
    async fn closes_within(&mut self, bound: Duration) -> bool {
        let mut buf = [0u8; 256];
        tokio::time::timeout(bound, async {
            loop {
                match self.client.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await
        .is_ok()
    }
}

const SHORT: Duration = Duration::from_millis(200);
const LONG: Duration = Duration::from_secs(30);

#[tokio::test]
async fn a_silent_connection_never_builds_hyper_and_ends_at_header_read_timeout() {
    let mut h = Harness::start(SHORT, LONG);
    assert!(
        h.closes_within(Duration::from_secs(10)).await,
        "a connection that sent nothing kept its slot"
    );
    assert_eq!(
        h.builds(),
        0,
        "hyper was built for a connection that sent nothing"
    );
    h.task.await.unwrap();
}

#[tokio::test]
async fn a_quiet_keepalive_connection_is_parked_and_serves_the_next_request() {
    let mut h = Harness::start(SHORT, LONG);
    h.client.write_all(GET).await.unwrap();
    assert!(h.response().await.starts_with("HTTP/1.1 200"));
    h.wait_parked().await;
    assert!(!h.task.is_finished(), "parking closed the connection");
    // The next request rebuilds hyper; its first byte (the one parking waited for) is
    // replayed, so the request arrives whole.
    h.client.write_all(GET).await.unwrap();
    assert!(h.response().await.starts_with("HTTP/1.1 200"));
    assert_eq!(h.builds(), 2);
    h.wait_parked().await;
    // Pipelined requests after a park: both answered, in order, by one hyper connection.
    let two = [GET, GET].concat();
    h.client.write_all(&two).await.unwrap();
    let both = h.responses(2).await;
    assert_eq!(both.matches("HTTP/1.1 200").count(), 2, "{both}");
    assert_eq!(h.builds(), 3);
}

#[tokio::test]
async fn a_head_split_around_a_quiet_spell_is_not_lost() {
    // A long header timeout: the half head must not be cut off, only held.
    let mut h = Harness::start(Duration::from_secs(2), LONG);
    h.client.write_all(GET).await.unwrap();
    h.client.write_all(b"GET / HTTP/1.1\r\nHo").await.unwrap();
    assert!(h.response().await.starts_with("HTTP/1.1 200"));
    // Several watchdog ticks (500 ms each) with a head pending: not parkable.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(!h.parked(), "parked while hyper held half a request head");
    h.client.write_all(b"st: a\r\n\r\n").await.unwrap();
    assert!(h.response().await.starts_with("HTTP/1.1 200"));
    assert_eq!(h.builds(), 1);
}

#[tokio::test]
async fn a_head_started_after_a_park_still_ends_at_header_read_timeout() {
    let mut h = Harness::start(SHORT, LONG);
    h.client.write_all(GET).await.unwrap();
    h.response().await;
    h.wait_parked().await;
    h.client
        .write_all(b"GET / HTTP/1.1\r\nHost: a\r\n")
        .await
        .unwrap();
    assert!(
        h.closes_within(Duration::from_secs(10)).await,
        "an unfinished head after a park kept the connection open"
    );
    h.task.await.unwrap();
}

#[tokio::test]
async fn idle_timeout_and_drain_close_a_parked_connection() {
    let mut h = Harness::start(SHORT, Duration::from_millis(800));
    h.client.write_all(GET).await.unwrap();
    h.response().await;
    h.wait_parked().await;
    assert!(
        h.closes_within(Duration::from_secs(10)).await,
        "a parked connection outlived idle_timeout"
    );
    h.task.await.unwrap();

    let mut h = Harness::start(SHORT, LONG);
    h.client.write_all(GET).await.unwrap();
    h.response().await;
    h.wait_parked().await;
    h.drain.send_replace(true);
    assert!(
        h.closes_within(Duration::from_secs(10)).await,
        "a parked connection outlived the drain"
    );
    h.task.await.unwrap();
}

#[tokio::test]
async fn rewind_replays_the_preface_or_the_byte_it_waited_for() {
    let (mut client, server) = tokio::io::duplex(1024);
    let mut r = Rewind::new(server, true);
    let mut got = [0u8; 64];
    let n = r.read(&mut got).await.unwrap();
    assert_eq!(&got[..n], crate::transport::preface::PREFACE);
    client.write_all(b"xyz").await.unwrap();
    assert!(std::future::poll_fn(|cx| r.poll_fill(cx)).await.unwrap());
    // Waiting again with a byte held reads nothing more.
    assert!(std::future::poll_fn(|cx| r.poll_fill(cx)).await.unwrap());
    let mut all = Vec::new();
    while all.len() < 3 {
        let n = r.read(&mut got).await.unwrap();
        all.extend_from_slice(&got[..n]);
    }
    assert_eq!(all, b"xyz");
    drop(client);
    assert!(
        !std::future::poll_fn(|cx| r.poll_fill(cx)).await.unwrap(),
        "EOF"
    );
}

#[tokio::test(start_paused = true)]
async fn a_served_connection_parks_soon_not_after_a_watchdog_tick() {
    // Timeouts of 30 s: the watchdog ticks once a second, so a park before the first tick
    // (on the paused clock) is the early check's.
    let mut h = Harness::start(LONG, LONG);
    h.client.write_all(GET).await.unwrap();
    assert!(h.response().await.starts_with("HTTP/1.1 200"));
    tokio::time::sleep(QUICK_PARK * 3).await;
    assert!(
        h.parked(),
        "a connection that served its request and went quiet kept hyper's buffers"
    );
    // Parked, not closed: the next request is served by a new hyper connection.
    h.client.write_all(GET).await.unwrap();
    assert!(h.response().await.starts_with("HTTP/1.1 200"));
    assert_eq!(h.builds(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_busy_keepalive_connection_is_not_rebuilt_between_requests() {
    let mut h = Harness::start(LONG, LONG);
    // A request every 30 ms for 900 ms (less than a watchdog tick plus one): the early
    // check sees new requests between its two checks, so it leaves the connection alone.
    for _ in 0..30 {
        h.client.write_all(GET).await.unwrap();
        assert!(h.response().await.starts_with("HTTP/1.1 200"));
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert_eq!(
        h.builds(),
        1,
        "a busy connection was parked between its requests"
    );
    assert!(!h.parked());
}
