//! Operations end to end: live reload under load, refused reloads, certificate swap by
//! file change, state that goes bad or stale, SIGTERM of the real binary, and /metrics
//! parsed by a Prometheus text parser.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use crate::support;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use accessgate::authn::dev::{DevAlg, DevSigner, DevTokenOptions};
use support::*;

const APP: &str = "0c1307d4-29d6-4389-a11c-5cbe7f65d7fa";
const ALICE: &str = "11111111-1111-4111-8111-111111111111";
const ALICE_DEVICE: &str = "d1111111-1111-4111-8111-111111111111";

/// Config with the demo state and one block policy whose mode the tests flip.
fn config(mode: &str, refresh: &str, staleness: &str) -> String {
    format!(
        r#"
[listen]
address = "127.0.0.1:0"
tls_cert = "{{certs}}/localhost.crt"
tls_key = "{{certs}}/localhost.key"

[admin]
address = "127.0.0.1:0"

[runtime]
shutdown_grace = "5s"

[log]
decisions = "off"

[[issuers]]
issuer = "https://login.accessgate.dev/demo-tenant/v2.0"
audiences = ["api://accessgate-demo"]
jwks_file = "{{certs}}/dev-jwks.json"
algorithms = ["RS256", "ES256"]

[state]
path = "{{certs}}/state.json"
refresh = "{refresh}"
max_staleness = "{staleness}"

[[routes]]
name = "api"
path_prefix = "/"
upstream = "{{upstream}}"
resource = "api"

[[policies]]
name = "kill-switch"
mode = "{mode}"
resources = ["api"]
include_users = ["all"]
grant = {{ block = true }}

[[policies]]
name = "require-app-protection"
resources = ["api"]
include_users = ["all"]
grant = {{ operator = "all", controls = ["approved_app", "app_protection"] }}

[approved_apps]
ids = ["{APP}"]
"#
    )
}

const DEMO_STATE: &str = include_str!("../../config/demo-state.json");

async fn start(mode: &str, refresh: &str, staleness: &str) -> (Upstream, TestGateway, String) {
    let up = Upstream::start().await;
    let certs = Certs::new();
    std::fs::write(certs.path("state.json"), DEMO_STATE).unwrap();
    let gw = TestGateway::start_with(certs, &config(mode, refresh, staleness), &up.url()).await;
    let token = DevSigner::load(gw.certs.dir.path())
        .unwrap()
        .mint(&DevTokenOptions {
            oid: Some(ALICE.into()),
            azp: Some(APP.into()),
            deviceid: Some(ALICE_DEVICE.into()),
            alg: DevAlg::ES256,
            ..DevTokenOptions::default()
        })
        .unwrap();
    (up, gw, token)
}

/// Rewrite a file the way editors and config managers do: write aside, rename over.
fn replace_file(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp-write");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_under_load_flips_allow_to_block_without_errors() {
    let (_up, mut gw, token) = start("disabled", "10s", "5m").await;
    let config_path = gw.config_path.clone();
    let text = std::fs::read_to_string(&config_path).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let blocked = Arc::new(AtomicUsize::new(0));
    let other = Arc::new(AtomicUsize::new(0));
    let blocked_after_flip = Arc::new(AtomicUsize::new(0));
    let flipped = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for i in 0..4 {
        let c = client(&gw.ca(), i % 2 == 1);
        let url = gw.url("/orders");
        let auth = bearer(&token);
        let (stop, ok, blocked, other, flipped, after) = (
            stop.clone(),
            ok.clone(),
            blocked.clone(),
            other.clone(),
            flipped.clone(),
            blocked_after_flip.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) && n < 20_000 {
                n += 1;
                let req = get(&url, &[("authorization", &auth)]);
                match tokio::time::timeout(Duration::from_secs(10), c.request(req)).await {
                    Ok(Ok(resp)) => {
                        let status = resp.status().as_u16();
                        let _ = http_body_util::BodyExt::collect(resp.into_body()).await;
                        match status {
                            200 => ok.fetch_add(1, Ordering::Relaxed),
                            403 => {
                                if flipped.load(Ordering::Relaxed) {
                                    after.fetch_add(1, Ordering::Relaxed);
                                }
                                blocked.fetch_add(1, Ordering::Relaxed)
                            }
                            _ => other.fetch_add(1, Ordering::Relaxed),
                        };
                    }
                    _ => {
                        other.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    let gw_ref = gw.gw.as_ref().unwrap();
    let body = async {
        assert!(eventually(Duration::from_secs(10), || ok.load(Ordering::Relaxed) > 50).await);
        assert_eq!(blocked.load(Ordering::Relaxed), 0, "the policy is disabled");
        // Flip the policy on by editing the file: the watcher reloads it.
        replace_file(
            &config_path,
            &text.replace("mode = \"disabled\"", "mode = \"enabled\""),
        );
        flipped.store(true, Ordering::Relaxed);
        let saw_block = eventually(Duration::from_secs(10), || {
            blocked_after_flip.load(Ordering::Relaxed) > 200
        })
        .await;
        assert!(saw_block, "the reload did not take effect");
        let ok_before = ok.load(Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            ok.load(Ordering::Relaxed),
            ok_before,
            "still allowed after the reload"
        );
    };
    tokio::select! {
        _ = accessgate::gateway::reload::serve_until_stopped(gw_ref, &config_path) => panic!("stopped"),
        _ = body => {}
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        tokio::time::timeout(Duration::from_secs(20), w)
            .await
            .unwrap()
            .unwrap();
    }
    assert_eq!(
        other.load(Ordering::Relaxed),
        0,
        "connection errors or unexpected statuses"
    );
    let m = gw.gw().metrics();
    assert_eq!(
        m.reloads_total
            .with_label_values(&["config", "success"])
            .get(),
        1
    );
    assert_eq!(
        m.connections_total.get(),
        4,
        "the keep-alive connections survived the reload"
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn bad_configs_are_refused_and_the_old_one_keeps_serving() {
    let (up, mut gw, token) = start("disabled", "10s", "5m").await;
    let path = gw.config_path.clone();
    let good = std::fs::read_to_string(&path).unwrap();
    let c = client(&gw.ca(), true);
    let auth = bearer(&token);
    let syntax = good.replace("[admin]", "[admin"); // TOML syntax error
    let semantic = good.replace(
        "resources = [\"api\"]\ninclude_users = [\"all\"]\ngrant = { block = true }",
        "resources = [\"payroll\"]\ninclude_users = [\"all\"]\ngrant = { block = true }",
    );
    assert_ne!(semantic, good, "fixture: the semantic edit must apply");
    // A listener limit belongs to the bound listener: changing it needs a restart, so the
    // whole reload is refused (even though it also enables the kill switch).
    let restart = good
        .replace("[admin]", "idle_timeout = \"7s\"\n\n[admin]")
        .replace("mode = \"disabled\"", "mode = \"enabled\"");
    assert_ne!(restart, good);
    for (bad, what) in [
        (syntax, "syntax"),
        (semantic.replace("disabled", "enabled"), "semantic"),
        (restart, "needs a restart"),
    ] {
        std::fs::write(&path, &bad).unwrap();
        accessgate::gateway::reload::reload_from_file(gw.gw(), &path);
        let (parts, _) = send(&c, get(&gw.url("/orders"), &[("authorization", &auth)])).await;
        assert_eq!(parts.status, 200, "{what}: old config must keep serving");
    }
    assert_eq!(
        gw.gw()
            .metrics()
            .reloads_total
            .with_label_values(&["config", "error"])
            .get(),
        3
    );
    // And a good edit afterwards still applies.
    std::fs::write(
        &path,
        good.replace("mode = \"disabled\"", "mode = \"enabled\""),
    )
    .unwrap();
    accessgate::gateway::reload::reload_from_file(gw.gw(), &path);
    let (parts, body) = send(&c, get(&gw.url("/orders"), &[("authorization", &auth)])).await;
    let problem = assert_problem(&parts, &body, 403);
    assert_eq!(problem["reason"], "block_policy");
    assert_eq!(up.count(), 3, "the three refused reloads each kept serving");
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_swap_by_file_change_is_seen_by_new_handshakes_only() {
    let (_up, mut gw, token) = start("disabled", "10s", "5m").await;
    let path = gw.config_path.clone();
    let other = tempfile::tempdir().unwrap();
    accessgate::cli::devcerts::generate_tls(other.path()).unwrap();
    let old_client = client(&gw.ca(), true);
    let auth = bearer(&token);
    let (parts, _) = send(
        &old_client,
        get(&gw.url("/orders"), &[("authorization", &auth)]),
    )
    .await;
    assert_eq!(parts.status, 200);
    let gw_ref = gw.gw.as_ref().unwrap();
    let cert = gw.certs.path("localhost.crt");
    let key = gw.certs.path("localhost.key");
    let new_ca = other.path().join("ca.crt");
    let body = async {
        // Let the watcher start (select! may poll this body first).
        tokio::time::sleep(Duration::from_millis(300)).await;
        // Key first, then certificate: the watcher debounces the pair into one reload.
        replace_file(
            &key,
            &std::fs::read_to_string(other.path().join("localhost.key")).unwrap(),
        );
        replace_file(
            &cert,
            &std::fs::read_to_string(other.path().join("localhost.crt")).unwrap(),
        );
        let mut swapped = false;
        for _ in 0..50 {
            let fresh = client(&new_ca, false);
            let r = tokio::time::timeout(
                Duration::from_secs(5),
                fresh.request(get(&gw.url("/orders"), &[("authorization", &auth)])),
            )
            .await;
            if matches!(r, Ok(Ok(ref resp)) if resp.status() == 200) {
                swapped = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            swapped,
            "a new handshake never presented the new certificate"
        );
        // The connection opened before the swap still works.
        let (parts, _) = send(
            &old_client,
            get(&gw.url("/orders"), &[("authorization", &auth)]),
        )
        .await;
        assert_eq!(parts.status, 200);
    };
    tokio::select! {
        _ = accessgate::gateway::reload::serve_until_stopped(gw_ref, &path) => panic!("stopped"),
        _ = body => {}
    }
    gw.shutdown().await;
}

#[tokio::test]
async fn garbage_state_keeps_the_last_good_state_and_stale_state_turns_readyz_off() {
    let (_up, mut gw, token) = start("disabled", "100ms", "1s").await;
    let admin = gw.admin.unwrap();
    let c = client(&gw.ca(), false);
    let auth = bearer(&token);
    assert_eq!(admin_get(admin, "/readyz").await.0, 200);
    std::fs::write(gw.certs.path("state.json"), "{ this is not json").unwrap();
    // Several refreshes fail; decisions still use the last good state.
    let m = gw.gw().metrics().clone();
    assert!(
        eventually(Duration::from_secs(5), || {
            m.state_refresh_total.with_label_values(&["error"]).get() >= 2
        })
        .await
    );
    let (parts, _) = send(&c, get(&gw.url("/orders"), &[("authorization", &auth)])).await;
    assert_eq!(parts.status, 200, "last good state keeps deciding");
    // Past max_staleness: not ready, and requests that need state get 503.
    let mut stale = false;
    for _ in 0..100 {
        let (status, body) = admin_get(admin, "/readyz").await;
        if status == 503 {
            assert!(body.contains("stale"), "{body}");
            stale = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(stale, "/readyz never turned unready");
    let (parts, body) = send(&c, get(&gw.url("/orders"), &[("authorization", &auth)])).await;
    let problem = assert_problem(&parts, &body, 503);
    assert_eq!(problem["reason"], "state_stale");
    assert!(parts.headers.contains_key("retry-after"));
    // A good state file brings it back.
    std::fs::write(gw.certs.path("state.json"), DEMO_STATE).unwrap();
    let mut ready = false;
    for _ in 0..100 {
        if admin_get(admin, "/readyz").await.0 == 200 {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready);
    gw.shutdown().await;
}

#[tokio::test]
async fn metrics_parse_and_hold_every_documented_family() {
    let (_up, mut gw, token) = start("disabled", "10s", "5m").await;
    let c = client(&gw.ca(), false);
    let auth = bearer(&token);
    send(&c, get(&gw.url("/orders"), &[("authorization", &auth)])).await;
    send(
        &c,
        get(&gw.url("/orders"), &[("authorization", "Bearer nope")]),
    )
    .await;
    let (status, text) = admin_get(gw.admin.unwrap(), "/metrics").await;
    assert_eq!(status, 200);
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("valid Prometheus text");
    let present: std::collections::HashSet<&str> = scrape
        .samples
        .iter()
        .map(|s| {
            s.metric
                .trim_end_matches("_bucket")
                .trim_end_matches("_sum")
                .trim_end_matches("_count")
        })
        .collect();
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/operations.md"))
        .unwrap();
    let mut documented: Vec<&str> = doc
        .split('`')
        .filter(|w| {
            (w.starts_with("accessgate_") || w.starts_with("process_"))
                && w.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
        .collect();
    documented.sort_unstable();
    documented.dedup();
    assert!(documented.len() >= 20, "{documented:?}");
    let missing: Vec<&&str> = documented
        .iter()
        .filter(|m| !present.contains(**m))
        .collect();
    assert!(
        missing.is_empty(),
        "documented but not exported: {missing:?}"
    );
    // Label values come from closed sets: the only route is "api" (or "" when unrouted).
    for s in &scrape.samples {
        if let Some(r) = s.labels.get("route") {
            assert!(r == "api" || r.is_empty(), "{r}");
        }
    }
    gw.shutdown().await;
}

/// A free loopback port (bind, read, release).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_a_slow_request_finish_and_exits_zero() {
    let up = Upstream::start().await;
    let certs = Certs::new();
    let (port, admin) = (free_port(), free_port());
    let text = PLAIN_CONFIG
        .replace(
            "address = \"127.0.0.1:0\"\ntls_cert",
            &format!("address = \"127.0.0.1:{port}\"\ntls_cert"),
        )
        .replace(
            "[admin]\naddress = \"127.0.0.1:0\"",
            &format!("[admin]\naddress = \"127.0.0.1:{admin}\""),
        )
        .replace("{certs}", &certs.dir.path().display().to_string())
        .replace("{upstream}", &up.url());
    let path = certs.path("gw.toml");
    std::fs::write(&path, text).unwrap();
    let admin_addr: std::net::SocketAddr = format!("127.0.0.1:{admin}").parse().unwrap();
    let mut child = spawn_ready_binary(&path, admin_addr).await;
    let c = client(&certs.path("ca.crt"), false);
    let url = format!("https://localhost:{port}/slow/1500");
    let slow = tokio::spawn(async move { send(&c, get(&url, &[])).await.0.status });
    // Let the request reach the upstream, then ask the process to stop.
    assert!(eventually(Duration::from_secs(5), || up.count() == 1).await);
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(10), slow)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status, 200, "the in-flight request completed");
    let exit = wait_exit(
        &mut child,
        Duration::from_secs(10),
        "the gateway after SIGTERM",
    )
    .await;
    assert_eq!(exit.code(), Some(0));
}

#[test]
fn kubernetes_configmap_holds_a_valid_config() {
    let yaml = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/kubernetes/configmap.yaml"
    ))
    .unwrap();
    let start = yaml.find("accessgate.toml: |").expect("configmap key");
    let toml: String = yaml[start..]
        .lines()
        .skip(1)
        .take_while(|l| l.is_empty() || l.starts_with("    "))
        .map(|l| format!("{}\n", l.strip_prefix("    ").unwrap_or(l)))
        .collect();
    let config = accessgate::config::parse_str(&toml, Path::new("/etc/accessgate/accessgate.toml"))
        .unwrap_or_else(|e| panic!("{e}\n{toml}"));
    assert_eq!(config.routes.len(), 1);
    assert_eq!(config.policies.len(), 1);
}
