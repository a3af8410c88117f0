//! Fleet benchmarks (see benches/README.md, "Fleet"). Needs `redis-server` (started here on
//! a free loopback port with `--save "" --appendonly no`, killed at the end).
//!
//! - propagation: a publisher appends 1,000 single-device change batches, one at a time;
//!   for each, the time from the publisher having read the change (just before the
//!   publish call) to all 8 in-process gateway stores (`[state] source = "redis"`
//!   followers, one connection each) serving it. Stores are polled every 100 us, so each
//!   figure is high by up to the timer's granularity (~1 ms).
//! - early: 200 Graph pages of one device turned noncompliant handed to the early
//!   publisher (`state::publish::early::publish_page`: compared with the published
//!   state, published as a batch); the time from the page's arrival to all 8 stores
//!   applying it (same polling).
//! - Redis memory: `INFO memory` before and after publishing a 1M-device snapshot
//!   (100k users, 1M devices, 1M app registrations). Skipped with
//!   `ACCESSGATE_BENCH_SKIP_LOAD`.
//!
//! The CPU cost of applying a 100-record batch at 1M devices is in `benches/policy.rs`.

use std::fmt::Write as _;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use accessgate::clock::unix_ms;
use accessgate::config::RedisEndpoint;
use accessgate::state::publish::RedisPublisher;
use accessgate::state::{Freshness, StateStore};

const GATEWAYS: usize = 8;
const CHANGES: usize = 1_000;
const DEVICES: usize = 10_000;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("{e}"))
}

fn small_doc() -> Vec<u8> {
    let mut s = String::from(
        "{\"users\":[{\"id\":\"u\",\"accountEnabled\":true,\"licensed\":true}],\"devices\":[",
    );
    for d in 0..DEVICES {
        if d > 0 {
            s.push(',');
        }
        let _ = write!(
            s,
            "{{\"azureADDeviceId\":\"dev-{d}\",\"complianceState\":\"compliant\",\"operatingSystem\":\"iOS\"}}"
        );
    }
    s.push_str("],\"appProtectionPolicies\":[],\"appRegistrations\":[]}");
    s.into_bytes()
}

/// 100k users, 1M devices, 1M registrations (the shape of benches/policy.rs's big state).
fn big_doc() -> Vec<u8> {
    let mut s = String::with_capacity(520 * 1_000_000);
    s.push_str("{\"users\":[");
    for u in 0..100_000 {
        if u > 0 {
            s.push(',');
        }
        let _ = write!(
            s,
            "{{\"id\":\"{u:08x}-1111-4111-8111-111111111111\",\"accountEnabled\":true,\"licensed\":true,\"groups\":[\"{:08x}-6000-4000-8000-000000000000\"]}}",
            u % 1000
        );
    }
    s.push_str("],\"devices\":[");
    for d in 0..1_000_000 {
        if d > 0 {
            s.push(',');
        }
        let _ = write!(
            s,
            "{{\"azureADDeviceId\":\"{d:08x}-dddd-4ddd-8ddd-dddddddddddd\",\"complianceState\":\"compliant\",\"operatingSystem\":\"iOS\",\"osVersion\":\"17.4.1\",\"noncompliantSince\":null}}"
        );
    }
    s.push_str("],\"appProtectionPolicies\":[],\"appRegistrations\":[");
    for r in 0..1_000_000 {
        if r > 0 {
            s.push(',');
        }
        let _ = write!(
            s,
            "{{\"userId\":\"{:08x}-1111-4111-8111-111111111111\",\"appId\":\"{:08x}-aaaa-4aaa-8aaa-aaaaaaaaaaaa\",\"azureADDeviceId\":\"{r:08x}-dddd-4ddd-8ddd-dddddddddddd\",\"platform\":\"ios\",\"applicationVersion\":\"5.2.0\",\"platformVersion\":\"17.4.1\",\"flaggedReasons\":[],\"lastSyncDateTime\":\"2026-11-27T09:00:00Z\",\"complianceState\":\"compliant\",\"noncompliantSince\":null,\"remediation\":\"pending\"}}",
            r % 100_000,
            r % 10
        );
    }
    s.push_str("]}");
    s.into_bytes()
}

/// Page arrival -> all stores applying, through the early publisher.
async fn early(publisher: &mut RedisPublisher, stores: &[Arc<StateStore>], at: i64) {
    use accessgate::policy::RawDevice;
    use accessgate::state::graph::Page;
    use accessgate::state::publish::diff::{Early, Records};
    let published =
        Records::index(bytes::Bytes::from(small_doc())).unwrap_or_else(|e| panic!("{e}"));
    let mut early = Early::default();
    let mut lat = Vec::new();
    // Devices the propagation run above did not touch: compliant as published.
    for i in 0..200 {
        let dev = format!("dev-{}", DEVICES / 2 + i);
        let page = Page::Devices(vec![RawDevice {
            device_id: dev.clone().into(),
            compliance_state: "noncompliant".into(),
            operating_system: Some("iOS".into()),
            os_version: None,
            noncompliant_since: None,
            remediation: None,
        }]);
        let t = Instant::now();
        let n = accessgate::state::publish::early::publish_page(
            publisher, &published, &mut early, &page, at,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(n, 1, "the page's critical record was not published");
        let deadline = t + Duration::from_secs(10);
        while !stores.iter().all(|s| {
            s.current()
                .and_then(|c| c.state.device(&dev).map(|d| d.compliance.is_compliant()))
                == Some(false)
        }) {
            assert!(
                Instant::now() < deadline,
                "early change {i} never reached all stores"
            );
            tokio::time::sleep(Duration::from_micros(100)).await;
        }
        lat.push(t.elapsed());
    }
    lat.sort_unstable();
    let q = |q: f64| lat[((lat.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1e3;
    println!(
        "early (page arrival -> {GATEWAYS} gateway stores) over {} pages: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        lat.len(),
        q(0.5),
        q(0.99),
        q(1.0)
    );
}

async fn used_memory(conn: &mut redis::aio::MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(conn)
        .await
        .unwrap_or_default();
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

fn main() {
    if Command::new("redis-server")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("fleet bench: redis-server not found; skipped");
        return;
    }
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("accessgate-fleet-bench-{port}"));
    let _ = std::fs::create_dir_all(&dir);
    let mut child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .args(["--dir", &dir.display().to_string()])
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    rt.block_on(run(port));
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

async fn run(port: u16) {
    let url = format!("redis://127.0.0.1:{port}/0");
    let client = redis::Client::open(url.as_str()).unwrap_or_else(|e| panic!("{e}"));
    let mut conn = None;
    for _ in 0..200 {
        if let Ok(c) = client.get_multiplexed_async_connection().await {
            conn = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let mut conn = conn.unwrap_or_else(|| panic!("redis-server did not start"));
    let _: () = redis::cmd("SET")
        .arg("bench:lock")
        .arg("bench")
        .query_async(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let ep = RedisEndpoint {
        url: url.clone(),
        key_prefix: "bench".into(),
        password_file: None,
    };
    let mut publisher = RedisPublisher::new(&ep, "bench".into()).unwrap_or_else(|e| panic!("{e}"));
    let now = || unix_ms(SystemTime::now());
    publisher
        .publish_snapshot(&small_doc(), true, now())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let freshness = Freshness {
        refresh: Duration::from_secs(10),
        max_staleness: Duration::from_secs(60),
        fail_open: false,
    };
    let mut stores: Vec<Arc<StateStore>> = Vec::new();
    for _ in 0..GATEWAYS {
        stores.push(
            StateStore::follow_redis(ep.clone(), freshness, None, Duration::from_secs(10)).await,
        );
    }
    assert!(
        stores.iter().all(|s| s.current().is_some()),
        "stores not loaded"
    );
    let mut lat = Vec::with_capacity(CHANGES);
    for i in 0..CHANGES {
        let dev = format!("dev-{}", i % DEVICES);
        let state = if i % 2 == 0 {
            "noncompliant"
        } else {
            "compliant"
        };
        let want = state == "compliant";
        let batch = format!(
            "{{\"devices\":[{{\"azureADDeviceId\":\"{dev}\",\"complianceState\":\"{state}\",\"operatingSystem\":\"iOS\"}}]}}"
        );
        // The change has been read: the clock starts.
        let t = Instant::now();
        publisher
            .publish_batch(batch.as_bytes(), now())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let deadline = t + Duration::from_secs(10);
        loop {
            let done = stores.iter().all(|s| {
                s.current()
                    .and_then(|c| c.state.device(&dev).map(|d| d.compliance.is_compliant()))
                    == Some(want)
            });
            if done {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "change {i} never reached all stores"
            );
            tokio::time::sleep(Duration::from_micros(100)).await;
        }
        lat.push(t.elapsed());
    }
    lat.sort_unstable();
    let at = |q: f64| lat[((lat.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "propagation to {GATEWAYS} gateway stores over {CHANGES} changes: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        at(0.5).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        at(1.0).as_secs_f64() * 1e3
    );
    early(&mut publisher, &stores, now()).await;
    drop(stores);
    if std::env::var_os("ACCESSGATE_BENCH_SKIP_LOAD").is_some() {
        return;
    }
    let before = used_memory(&mut conn).await;
    let doc = big_doc();
    let t = Instant::now();
    publisher
        .publish_snapshot(&doc, true, now())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let took = t.elapsed();
    // The small snapshot's chunks expire later; count only what the big one added.
    let after = used_memory(&mut conn).await;
    println!(
        "1M-device snapshot: {} MiB of JSON in {} chunks, published in {:.1} s; Redis used_memory {} MiB -> {} MiB (+{} MiB)",
        doc.len() / (1 << 20),
        doc.len().div_ceil(accessgate::state::redis::CHUNK_BYTES),
        took.as_secs_f64(),
        before / (1 << 20),
        after / (1 << 20),
        after.saturating_sub(before) / (1 << 20)
    );
}
