//! The decision log's cost on the request path: what a request task pays to log one line
//! (the writer's own work happens on its thread). Run: `cargo bench --bench decision_log`.
//! Method and figures: `benches/README.md`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use accessgate::authn::Principal;
use accessgate::config::{DecisionLogTarget, LogConfig, parse_str};
use accessgate::decision_log::{DecisionLog, RequestFacts};
use accessgate::ids::DecisionId;
use accessgate::metrics::Metrics;
use accessgate::respond::{Outcome, Verdict};
use accessgate::route::RouteMatch;
use accessgate::snapshot::Snapshot;
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
    let rm = RouteMatch { snapshot, index: 0 };
    let req = http::Request::get("https://api.corp.example/api/orders/42?x=1")
        .body(())
        .unwrap();
    let p = principal();
    let cfg = LogConfig {
        level: "info".into(),
        decisions: DecisionLogTarget::File("/dev/null".into()),
        allow_sample: 1.0,
    };
    let log = DecisionLog::new(&cfg, &metrics).unwrap();
    let ext = http::Extensions::new();
    let ip = Some(std::net::IpAddr::from([203, 0, 113, 7]));
    let verdict = Verdict {
        outcome: Outcome::Allow,
        reason: "",
    };
    c.bench_function("decision_log/one_line", |b| {
        b.iter(|| {
            let facts = RequestFacts::capture(&req);
            log.write(
                black_box(&facts),
                DecisionId::next(),
                Some(&rm),
                Some(&*p),
                ip,
                verdict,
                200,
                Duration::from_micros(412),
                Some(Duration::from_micros(300)),
                Some(120),
                &ext,
            );
        })
    });
    println!(
        "lines dropped (queue full) during the run: {}",
        metrics.decision_log_dropped_total.get()
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    targets = bench
}
criterion_main!(benches);
