//! Latency phase by phase, end to end: every decision log line (written by the real writer
//! to a real file) carries the phases that ran, and `Server-Timing` appears only with
//! `[log] server_timing = true`, on refusals too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::time::Duration;

use accessgate::authn::dev::{DevSigner, DevTokenOptions};
use accessgate::{Gateway, StartOptions};
use serde_json::{Value, json};

use crate::support;
use support::*;

const ALICE: &str = "11111111-1111-4111-8111-111111111111";
const BOB: &str = "22222222-2222-4222-8222-222222222222";

const POLICIES: &str = r#"
[[policies]]
name = "block-bob"
resources = ["corp-api"]
include_users = ["22222222-2222-4222-8222-222222222222"]
grant = { block = true }
"#;

struct Fixture {
    gw: TestGateway,
    _up: Upstream,
    signer: DevSigner,
    h1: TestClient,
    h2: TestClient,
}

async fn start(server_timing: bool) -> Fixture {
    let up = Upstream::start().await;
    let certs = Certs::new();
    let state = json!({
        "users": [
            {"id": ALICE, "accountEnabled": true, "licensed": true, "groups": []},
            {"id": BOB, "accountEnabled": true, "licensed": true, "groups": []},
        ],
        "devices": [], "appProtectionPolicies": [], "appRegistrations": []
    });
    std::fs::write(certs.path("state.json"), state.to_string()).unwrap();
    let toml = ca_config(&CaSpec::new(POLICIES, state)).replace(
        "decisions = \"off\"",
        &format!("decisions = \"{{certs}}/decisions.log\"\nserver_timing = {server_timing}"),
    );
    let text = toml
        .replace("{certs}", &certs.dir.path().display().to_string())
        .replace("{upstream}", &up.url());
    let config_path = certs.path("accessgate.toml");
    std::fs::write(&config_path, &text).unwrap();
    let config = accessgate::config::parse_str(&text, &config_path).unwrap();
    assert_eq!(config.log.server_timing, server_timing);
    // Not quiet: the decision log is the thing under test.
    let gw = Gateway::start(config, StartOptions { quiet: false })
        .await
        .unwrap();
    let signer = DevSigner::load(certs.dir.path()).unwrap();
    let gw = TestGateway {
        addr: gw.local_addr(),
        admin: gw.admin_addr(),
        gw: Some(gw),
        certs,
        config_path,
    };
    let (h1, h2) = (client(&gw.ca(), false), client(&gw.ca(), true));
    Fixture {
        gw,
        _up: up,
        signer,
        h1,
        h2,
    }
}

impl Fixture {
    fn token(&self, oid: &str) -> String {
        self.signer
            .mint(&DevTokenOptions {
                oid: Some(oid.to_owned()),
                ..Default::default()
            })
            .unwrap()
    }

    async fn get(&self, path: &str, token: Option<&str>, h2: bool) -> http::response::Parts {
        let bearer = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = bearer.iter().map(|b| ("authorization", &**b)).collect();
        let c = if h2 { &self.h2 } else { &self.h1 };
        send(c, get(&self.gw.url(path), &headers)).await.0
    }

    /// Stop the gateway (which flushes the log) and read its lines, by path.
    async fn lines(mut self) -> HashMap<String, Vec<Value>> {
        let path = self.gw.certs.path("decisions.log");
        self.gw.shutdown().await;
        let text = std::fs::read_to_string(path).unwrap();
        let mut by_path: HashMap<String, Vec<Value>> = HashMap::new();
        for l in text.lines() {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            by_path
                .entry(v["path"].as_str().unwrap().to_owned())
                .or_default()
                .push(v);
        }
        by_path
    }
}

fn us(v: &Value, field: &str) -> u64 {
    v[field]
        .as_u64()
        .unwrap_or_else(|| panic!("{field} missing: {v}"))
}

/// `name;dur=ms` entries of a Server-Timing header, in order.
fn timing_names(parts: &http::response::Parts) -> Vec<String> {
    let h = parts
        .headers
        .get("server-timing")
        .expect("Server-Timing")
        .to_str()
        .unwrap();
    h.split(", ")
        .map(|m| {
            let (name, dur) = m.split_once(";dur=").unwrap_or_else(|| panic!("{h}"));
            let ms: f64 = dur.parse().unwrap_or_else(|_| panic!("{h}"));
            assert!(ms >= 0.0, "{h}");
            name.to_owned()
        })
        .collect()
}

#[tokio::test]
async fn log_lines_carry_the_phases_that_ran_and_server_timing_is_sent_when_on() {
    let f = start(true).await;
    let (alice, bob) = (f.token(ALICE), f.token(BOB));
    for h2 in [false, true] {
        let ok = f.get("/allowed", Some(&alice), h2).await;
        assert_eq!(ok.status, 200);
        assert_eq!(timing_names(&ok), ["authn", "authz", "upstream"]);
        let blocked = f.get("/blocked", Some(&bob), h2).await;
        assert_eq!(blocked.status, 403);
        assert_eq!(
            timing_names(&blocked),
            ["authn", "authz"],
            "no upstream on a refusal"
        );
        let anon = f.get("/anonymous", None, h2).await;
        assert_eq!(anon.status, 401);
        assert_eq!(timing_names(&anon), ["authn"]);
    }
    let lines = f.lines().await;
    let allowed = &lines["/allowed"];
    assert_eq!(allowed.len(), 2, "one line per request: {allowed:?}");
    for v in allowed {
        assert_eq!(v["decision"], "allow");
        let total = us(v, "total_us");
        let parts = us(v, "authn_us") + us(v, "authz_us") + us(v, "upstream_us");
        assert!(parts <= total, "phases fit in the total: {v}");
    }
    for v in &lines["/blocked"] {
        assert_eq!(v["decision"], "block");
        us(v, "authn_us");
        us(v, "authz_us");
        assert!(v.get("upstream_us").is_none(), "{v}");
    }
    for v in &lines["/anonymous"] {
        assert_eq!(v["status"], 401);
        us(v, "authn_us");
        assert!(
            v.get("authz_us").is_none() && v.get("upstream_us").is_none(),
            "{v}"
        );
        us(v, "total_us");
    }
    assert_eq!(lines["/blocked"].len() + lines["/anonymous"].len(), 4);
}

#[tokio::test]
async fn server_timing_is_off_by_default_but_the_log_keeps_the_phases() {
    let f = start(false).await;
    let alice = f.token(ALICE);
    for h2 in [false, true] {
        let ok = f.get("/allowed", Some(&alice), h2).await;
        assert_eq!(ok.status, 200);
        assert!(ok.headers.get("server-timing").is_none());
        let anon = f.get("/anonymous", None, h2).await;
        assert_eq!(anon.status, 401);
        assert!(anon.headers.get("server-timing").is_none());
    }
    let lines = f.lines().await;
    for v in &lines["/allowed"] {
        us(v, "upstream_us");
        us(v, "total_us");
    }
    assert_eq!(lines["/allowed"].len(), 2);
}

#[tokio::test]
async fn phase_histograms_are_exported() {
    let f = start(false).await;
    let alice = f.token(ALICE);
    assert_eq!(f.get("/x", Some(&alice), false).await.status, 200);
    let (status, text) = admin_get(f.gw.admin.unwrap(), "/metrics").await;
    assert_eq!(status, 200);
    for phase in ["authn", "authz", "upstream", "total"] {
        let n = metric_in(
            &text,
            "accessgate_phase_duration_seconds_count",
            &[("phase", phase)],
        );
        assert_eq!(n, 1.0, "{phase}");
    }
    f.lines().await;
}

/// A free loopback port (bind, read, release).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn line_count(p: &std::path::Path) -> usize {
    std::fs::read_to_string(p)
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_binary_follows_a_rotation_on_sighup_and_writes_every_line_before_exiting() {
    let up = Upstream::start().await;
    let certs = Certs::new();
    let (port, admin) = (free_port(), free_port());
    let log = certs.path("decisions.log");
    let text = PLAIN_CONFIG
        .replace(
            "address = \"127.0.0.1:0\"\ntls_cert",
            &format!("address = \"127.0.0.1:{port}\"\ntls_cert"),
        )
        .replace(
            "[admin]\naddress = \"127.0.0.1:0\"",
            &format!("[admin]\naddress = \"127.0.0.1:{admin}\""),
        )
        .replace(
            "decisions = \"off\"",
            &format!("decisions = \"{}\"", log.display()),
        )
        .replace("{certs}", &certs.dir.path().display().to_string())
        .replace("{upstream}", &up.url());
    let path = certs.path("gw.toml");
    std::fs::write(&path, text).unwrap();
    let admin_addr: std::net::SocketAddr = format!("127.0.0.1:{admin}").parse().unwrap();
    let mut child = spawn_ready_binary(&path, admin_addr).await;
    let signal = |sig: &str| {
        let ok = std::process::Command::new("kill")
            .args([sig, &child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig}");
    };
    let c = client(&certs.path("ca.crt"), false);
    let url = |i: usize| format!("https://localhost:{port}/n/{i}");
    for i in 0..20 {
        assert_eq!(send(&c, get(&url(i), &[])).await.0.status, 200);
    }
    assert!(eventually(Duration::from_secs(10), || line_count(&log) == 20).await);
    // logrotate `create` with a postrotate `kill -HUP`.
    let rotated = certs.path("decisions.log.1");
    std::fs::rename(&log, &rotated).unwrap();
    std::fs::File::create(&log).unwrap();
    signal("-HUP");
    for i in 20..50 {
        assert_eq!(send(&c, get(&url(i), &[])).await.0.status, 200);
    }
    // Stop at once: lines still queued or in the writer's buffer must reach the file.
    signal("-TERM");
    let exit = wait_exit(
        &mut child,
        Duration::from_secs(15),
        "the gateway after SIGTERM",
    )
    .await;
    assert_eq!(exit.code(), Some(0));
    let paths = |p: &std::path::Path| -> Vec<String> {
        std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                v["path"].as_str().unwrap().to_owned()
            })
            .collect()
    };
    let want = |r: std::ops::Range<usize>| r.map(|i| format!("/n/{i}")).collect::<Vec<_>>();
    assert_eq!(paths(&rotated), want(0..20), "before the rotation");
    assert_eq!(
        paths(&log),
        want(20..50),
        "after it, every line up to the exit"
    );
}
