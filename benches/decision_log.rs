//! The decision log's cost on the request path: what a request task pays to log one line
//! (the writer's own work happens on its thread). Run: `cargo bench --bench decision_log`.
//! Method and figures: `benches/README.md`.
//!
//! - `old_format_and_send`: the previous design, kept here to compare against: format the
//!   line on the request task into a fresh `String` and `try_send` it over a std
//!   `sync_channel` to a thread blocked in `recv` that writes and flushes each drain.
//! - `format_only`: formatting one line into a reused buffer, nothing else: the least a
//!   "format on the request task into a pooled buffer" design would pay.
//! - `format_prebuilt`: formatting a record that is already built: the writer thread's
//!   own CPU per line (what the proxy bench pays when the writer shares the core).
//! - `handover`: what the gateway does now: move the record into the writer's queue.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::sync::Arc;
use std::sync::mpsc::sync_channel;
use std::time::{Duration, Instant, SystemTime};

use accessgate::authn::Principal;
use accessgate::authorize::AuthzOutcome;
use accessgate::config::parse_str;
use accessgate::ids::DecisionId;
use accessgate::observe::decision_log::{DecisionLog, Line, RequestFacts};
use accessgate::observe::writer::{Record, Sink};
use accessgate::ops::metrics::Metrics;
use accessgate::policy::{Decision, Evaluation, GraphResult, PolicyResult};
use accessgate::respond::{Outcome, Verdict};
use accessgate::route::RouteMatch;
use accessgate::snapshot::Snapshot;
use accessgate::timing::Phases;
use criterion::{Criterion, black_box, criterion_group, criterion_main};

const CONFIG: &str = r#"
[listen]
address = "127.0.0.1:0"
tls_cert = "cert.pem"
tls_key = "key.pem"
[[routes]]
name = "corp-api"
path_prefix = "/"
upstream = "http://127.0.0.1:9"
auth = "none"
[[policies]]
name = "corp-api-require-mfa"
resources = ["all"]
include_users = ["all"]
grant = { controls = ["mfa"] }
[[policies]]
name = "report-only-compliant-device"
mode = "report_only"
resources = ["all"]
include_users = ["all"]
grant = { controls = ["compliant_device"] }
"#;

fn principal() -> Arc<Principal> {
    Arc::new(Principal {
        issuer: "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0"
            .into(),
        user: "11111111-1111-4111-8111-111111111111".into(),
        client_app: Some("0c1307d4-29d6-4389-a11c-5cbe7f65d7fa".into()),
        device: Some("d1111111-1111-4111-8111-111111111111".into()),
        token_id: "AAAAAAAAAAAAAAAAAAAAAA".into(),
        exp: i64::MAX,
        ..Principal::default()
    })
}

fn bench(c: &mut Criterion) {
    let metrics = Metrics::new();
    let config = Arc::new(parse_str(CONFIG, std::path::Path::new("bench.toml")).unwrap());
    let snapshot = Arc::new(Snapshot::build(config, &metrics, None).unwrap());
    // Two policies applied (one report-only), as the line of an allowed request lists them.
    let authz = Arc::new(AuthzOutcome {
        policies: snapshot.policies.clone(),
        evaluation: Evaluation {
            decision: Decision::Allow,
            results: vec![
                PolicyResult {
                    policy: 0,
                    result: GraphResult::Success,
                    reason: "grant_satisfied",
                },
                PolicyResult {
                    policy: 1,
                    result: GraphResult::ReportOnlyFailure,
                    reason: "device_noncompliant",
                },
            ],
            fail_open: false,
        },
    });
    let rm = RouteMatch { snapshot, index: 0 };
    let req = http::Request::get("https://api.corp.example/api/orders/42?x=1")
        .body(())
        .unwrap();
    let p = principal();
    let line = || Line {
        at: SystemTime::now(),
        id: DecisionId::next(),
        facts: RequestFacts::capture(black_box(&req)),
        route: Some(rm.clone()),
        principal: Some(p.clone()),
        client_ip: Some(std::net::IpAddr::from([203, 0, 113, 7])),
        verdict: Verdict {
            outcome: Outcome::Allow,
            reason: "",
        },
        status: 200,
        bytes: Some(120),
        authz: Some(authz.clone()),
        phases: Phases {
            authn: Some(Duration::from_micros(12)),
            authz: Some(Duration::from_micros(3)),
            upstream: Some(Duration::from_micros(300)),
        },
        total: Duration::from_micros(412),
    };
    println!("one queued Line: {} bytes", std::mem::size_of::<Line>());

    // The old path: a fresh String per line, std sync_channel, a writer blocked in recv.
    // An empty string asks it to acknowledge that it drained everything before it.
    let (tx, rx) = sync_channel::<String>(16 * 1024);
    let (ack_tx, ack_rx) = sync_channel::<()>(1);
    let old_writer = std::thread::spawn(move || {
        let devnull = std::fs::OpenOptions::new()
            .append(true)
            .open("/dev/null")
            .unwrap();
        let mut w = std::io::BufWriter::with_capacity(64 * 1024, devnull);
        while let Ok(l) = rx.recv() {
            let mut marker = l.is_empty();
            let _ = w.write_all(l.as_bytes());
            while let Ok(more) = rx.try_recv() {
                marker |= more.is_empty();
                let _ = w.write_all(more.as_bytes());
            }
            let _ = w.flush();
            if marker {
                let _ = ack_tx.send(());
            }
        }
    });
    let mut old_dropped = 0u64;
    // Batches smaller than either queue, drained (untimed) between batches, so every
    // figure is the accept path, never the cheaper queue-full path.
    c.bench_function("decision_log/old_format_and_send", |b| {
        b.iter_custom(|iters| {
            let mut took = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let n = left.min(BATCH);
                let t = Instant::now();
                for _ in 0..n {
                    let mut s = String::with_capacity(512);
                    line().write_line(&mut s);
                    if tx.try_send(s).is_err() {
                        old_dropped += 1;
                    }
                }
                took += t.elapsed();
                tx.send(String::new()).unwrap();
                ack_rx.recv().unwrap();
                left -= n;
            }
            took
        })
    });
    drop(tx);
    old_writer.join().unwrap();

    let mut reused = String::with_capacity(1024);
    c.bench_function("decision_log/format_only", |b| {
        b.iter(|| {
            reused.clear();
            line().write_line(&mut reused);
            black_box(&reused);
        })
    });

    // The writer thread's own cost per line: formatting a record already built.
    let built = line();
    reused.clear();
    built.write_line(&mut reused);
    println!("one formatted line: {} bytes", reused.len());
    c.bench_function("decision_log/format_prebuilt", |b| {
        b.iter(|| {
            reused.clear();
            black_box(&built).write_line(&mut reused);
            black_box(&reused);
        })
    });

    let log = DecisionLog::to_sink(Sink::File("/dev/null".into()), 8 * 1024, &metrics).unwrap();
    c.bench_function("decision_log/handover", |b| {
        b.iter_custom(|iters| {
            let mut took = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let n = left.min(BATCH);
                let t = Instant::now();
                for _ in 0..n {
                    log.write(line());
                }
                took += t.elapsed();
                assert!(log.flush(Duration::from_secs(30)));
                left -= n;
            }
            took
        })
    });
    assert!(log.close(Duration::from_secs(30)));
    println!(
        "lines dropped (queue full): old {old_dropped}, handover {}",
        metrics.decision_log_dropped_total.get()
    );
}

/// Lines per timed batch (below both queues' capacity).
const BATCH: u64 = 2048;

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    targets = bench
}
criterion_main!(benches);
