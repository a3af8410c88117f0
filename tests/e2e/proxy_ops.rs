#![allow(clippy::unwrap_used)]
//! End-to-end operations: the admin listener (`/healthz`, `/readyz`, `/metrics`), live
//! config and certificate reload without dropping connections, and `accessgate check`.
use crate::support;

use std::process::Command;

use prometheus_parse::{Sample, Scrape, Value};

use support::*;

fn scrape(text: &str) -> Scrape {
    Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap()
}

fn find<'a>(s: &'a Scrape, name: &str, labels: &[(&str, &str)]) -> Option<&'a Sample> {
    s.samples
        .iter()
        .find(|x| x.metric == name && labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
}

#[tokio::test]
async fn admin_endpoints_answer_and_metrics_parse() {
    let up = Upstream::start().await;
    let mut gw = TestGateway::start(PLAIN_CONFIG, &up.url()).await;
    let admin = gw.admin.unwrap();
    assert_eq!(admin_get(admin, "/healthz").await.0, 200);
    // Only auth = "none" routes and no issuers: nothing to wait for.
    let (status, body) = admin_get(admin, "/readyz").await;
    assert_eq!(status, 200, "{body}");

    let c = client(&gw.ca(), false);
    for _ in 0..3 {
        let (parts, _) = send(&c, get(&gw.url("/counted"), &[])).await;
        assert_eq!(parts.status, 200);
    }
    let (status, text) = admin_get(admin, "/metrics").await;
    assert_eq!(status, 200);
    let s = scrape(&text);

    let total = find(
        &s,
        "accessgate_requests_total",
        &[("route", "open"), ("decision", "allow")],
    )
    .unwrap_or_else(|| panic!("no requests_total{{route=open,decision=allow}}:\n{text}"));
    match total.value {
        Value::Counter(v) | Value::Untyped(v) => assert!(v >= 3.0, "{v}"),
        ref other => panic!("requests_total is {other:?}"),
    }

    let hist = s
        .samples
        .iter()
        .find(|x| {
            x.metric.starts_with("accessgate_request_duration_seconds")
                && x.labels.get("route") == Some("open")
                && matches!(x.value, Value::Histogram(_))
        })
        .unwrap_or_else(|| panic!("no request_duration_seconds histogram:\n{text}"));
    let Value::Histogram(buckets) = &hist.value else {
        unreachable!()
    };
    assert!(
        buckets.iter().any(|b| b.less_than <= 0.0001),
        "no sub-millisecond bucket: {buckets:?}"
    );
    let inf = buckets.iter().find(|b| b.less_than.is_infinite()).unwrap();
    assert!(inf.count >= 3.0, "{buckets:?}");

    let open = s
        .samples
        .iter()
        .find(|x| x.metric == "accessgate_open_connections")
        .unwrap_or_else(|| panic!("no open_connections:\n{text}"));
    match open.value {
        // The client's pooled keep-alive connection is still open.
        Value::Gauge(v) | Value::Untyped(v) => assert!(v >= 1.0, "{v}"),
        ref other => panic!("open_connections is {other:?}"),
    }

    assert_eq!(admin_get(admin, "/nope").await.0, 404);
    gw.shutdown().await;
}

#[tokio::test]
async fn unrouted_and_failed_requests_are_counted_by_decision() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let mut gw = TestGateway::start(PLAIN_CONFIG, &format!("http://{closed}")).await;
    let c = client(&gw.ca(), true);
    let (parts, _) = send(&c, get(&gw.url("/down"), &[])).await;
    assert_eq!(parts.status, 502);
    let (_, text) = admin_get(gw.admin.unwrap(), "/metrics").await;
    let s = scrape(&text);
    let v = find(
        &s,
        "accessgate_requests_total",
        &[("route", "open"), ("decision", "upstream_error")],
    )
    .unwrap_or_else(|| panic!("502 not counted:\n{text}"));
    assert!(matches!(v.value, Value::Counter(n) | Value::Untyped(n) if n >= 1.0));
    gw.shutdown().await;
}

#[tokio::test]
async fn apply_config_switches_upstream_on_the_same_connection_and_refuses_listen_changes() {
    let a = Upstream::start().await;
    let b = Upstream::start().await;
    let mut gw = TestGateway::start(PLAIN_CONFIG, &a.url()).await;
    let c = client(&gw.ca(), true);
    let (parts, _) = send(&c, get(&gw.url("/before"), &[])).await;
    assert_eq!(parts.status, 200);
    assert_eq!(a.count(), 1);

    let text = std::fs::read_to_string(&gw.config_path).unwrap();
    let to_b = text.replace(&a.url(), &b.url());
    let cfg = accessgate::config::parse_str(&to_b, &gw.config_path).unwrap();
    gw.gw().apply_config(cfg).unwrap();
    let (parts, _) = send(&c, get(&gw.url("/after"), &[])).await;
    assert_eq!(parts.status, 200);
    assert_eq!((a.count(), b.count()), (1, 1));
    assert_eq!(b.requests()[0].uri.path(), "/after");
    assert_eq!(
        gw.gw().metrics().connections_total.get(),
        1,
        "the reload was seen through a new connection, not the kept-alive one"
    );

    // A listen address change needs a restart: refused, and B keeps serving.
    let moved = to_b.replacen("address = \"127.0.0.1:0\"", "address = \"127.0.0.1:1\"", 1);
    assert_ne!(moved, to_b);
    let cfg = accessgate::config::parse_str(&moved, &gw.config_path).unwrap();
    let err = gw.gw().apply_config(cfg).unwrap_err();
    assert!(err.contains("listen.address"), "{err}");
    let (parts, _) = send(&c, get(&gw.url("/still"), &[])).await;
    assert_eq!(parts.status, 200);
    assert_eq!((a.count(), b.count()), (1, 2));
    let reloads = &gw.gw().metrics().reloads_total;
    assert_eq!(reloads.with_label_values(&["config", "success"]).get(), 1);
    assert_eq!(reloads.with_label_values(&["config", "error"]).get(), 1);
    gw.shutdown().await;
}

#[tokio::test]
async fn reload_tls_serves_the_new_certificate_to_new_handshakes_only() {
    let up = Upstream::start().await;
    let mut gw = TestGateway::start(PLAIN_CONFIG, &up.url()).await;
    // Connections opened (and kept alive) under the old certificate.
    let old_h1 = client(&gw.ca(), false);
    let old_h2 = client(&gw.ca(), true);
    for c in [&old_h1, &old_h2] {
        assert_eq!(send(c, get(&gw.url("/old"), &[])).await.0.status, 200);
    }

    let other = tempfile::tempdir().unwrap();
    accessgate::cli::devcerts::generate_tls(other.path()).unwrap();
    for f in ["localhost.crt", "localhost.key"] {
        std::fs::copy(other.path().join(f), gw.certs.path(f)).unwrap();
    }
    gw.gw().reload_tls().unwrap();

    let new_ca = other.path().join("ca.crt");
    for h2 in [false, true] {
        let c = client(&new_ca, h2);
        assert_eq!(
            send(&c, get(&gw.url("/new"), &[])).await.0.status,
            200,
            "h2={h2}"
        );
    }
    // A new handshake no longer presents the old CA's certificate.
    let fresh_old = client(&gw.ca(), false);
    let r = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        fresh_old.request(get(&gw.url("/old-ca"), &[])),
    )
    .await
    .unwrap();
    assert!(r.is_err(), "old CA still accepted on a new connection");
    // The connections opened before the reload keep working (a reconnect would fail).
    for c in [&old_h1, &old_h2] {
        assert_eq!(send(c, get(&gw.url("/old-again"), &[])).await.0.status, 200);
    }
    assert_eq!(up.count(), 2 + 2 + 2);

    // A broken key file is refused and the live certificate stays.
    std::fs::write(gw.certs.path("localhost.key"), "not a key").unwrap();
    assert!(gw.gw().reload_tls().is_err());
    let c = client(&new_ca, false);
    assert_eq!(
        send(&c, get(&gw.url("/new-again"), &[])).await.0.status,
        200
    );
    gw.shutdown().await;
}

/// Run `accessgate check --config <path>`; returns exit code and stderr + stdout.
fn check(path: &std::path::Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_accessgate"))
        .arg("check")
        .arg("--config")
        .arg(path)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    (out.status.code().unwrap_or(-1), text)
}

const CHECKED: &str = r#"[listen]
address = "127.0.0.1:0"
tls_cert = "localhost.crt"
tls_key = "localhost.key"
idle_timeout = "60s"

[admin]
address = "127.0.0.1:0"

[[routes]]
name = "open"
path_prefix = "/"
upstream = "http://127.0.0.1:9"
auth = "none"
"#;

#[test]
fn check_accepts_a_valid_config_and_names_key_and_line_of_errors() {
    // Relative cert paths resolve against the config file's folder.
    let certs = Certs::new();
    let path = certs.path("checked.toml");

    std::fs::write(&path, CHECKED).unwrap();
    let (code, out) = check(&path);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("valid"), "{out}");

    // Line 2: unknown key.
    std::fs::write(
        &path,
        CHECKED.replace(
            "address = \"127.0.0.1:0\"\ntls",
            "adress = \"127.0.0.1:0\"\ntls",
        ),
    )
    .unwrap();
    let (code, out) = check(&path);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("adress"), "{out}");
    assert!(out.contains(":2:"), "no line number: {out}");

    // Line 5: bad duration.
    std::fs::write(&path, CHECKED.replace("\"60s\"", "\"5 parsecs\"")).unwrap();
    let (code, out) = check(&path);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("idle_timeout"), "{out}");
    assert!(out.contains(":5:"), "no line number: {out}");

    // A missing certificate file is caught by check, not at first connection.
    std::fs::write(&path, CHECKED.replace("localhost.crt", "missing.crt")).unwrap();
    let (code, out) = check(&path);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("missing.crt"), "{out}");
}
