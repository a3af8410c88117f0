//! `accessgate demo`: the gateway on the embedded demo config, with a built-in echo
//! upstream on loopback, printing ready-to-paste curl commands for each decision.
//!
//! Everything the demo needs is compiled in (config, demo state, DEV ONLY certificates
//! and signing keys) and written to a fresh temporary folder at start, so the demo runs
//! from any directory and never touches the user's files.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::authn::dev::DevSigner;
use crate::body::Body;
use crate::cli::demo_scenarios;
pub use crate::cli::demo_scenarios::{Scenario, demo_token};
use crate::config::DEMO_CONFIG;
use crate::respond::push_json_str;
use crate::{Gateway, StartOptions};

/// The demo state with fixed dates; the demo writes it with its times moved to the start
/// (see [`super::demo_state`]).
const STATE_TEMPLATE: &str = include_str!("../../config/demo-state.json");

/// Files the demo writes into its folder as they are: (relative path, contents).
const FILES: [(&str, &str); 6] = [
    ("certs/ca.crt", include_str!("../../certs/ca.crt")),
    (
        "certs/localhost.crt",
        include_str!("../../certs/localhost.crt"),
    ),
    (
        "certs/localhost.key",
        include_str!("../../certs/localhost.key"),
    ),
    (
        "certs/dev-jwks.json",
        include_str!("../../certs/dev-jwks.json"),
    ),
    (
        "certs/dev-signing-rsa.pem",
        include_str!("../../certs/dev-signing-rsa.pem"),
    ),
    (
        "certs/dev-signing-ec.pem",
        include_str!("../../certs/dev-signing-ec.pem"),
    ),
];

/// Run the demo until SIGINT / SIGTERM.
pub fn run(upstream_port: u16) -> ExitCode {
    crate::ops::telemetry::init("warn");
    // The demo's echo upstream shares this runtime with the gateway's control plane.
    let rt = match crate::cli::runtime::build_pool(0) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("demo: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let dir = std::env::temp_dir().join(format!("accessgate-demo-{}", std::process::id()));
    let code = rt.block_on(run_in(&dir, upstream_port));
    let _ = std::fs::remove_dir_all(&dir);
    code
}

async fn run_in(dir: &Path, upstream_port: u16) -> ExitCode {
    let opts = DemoOptions {
        upstream_port,
        ephemeral_ports: false,
        quiet: false,
    };
    let demo = match start(dir, opts).await {
        Ok(d) => d,
        Err(e) => {
            eprintln!("demo: {e}");
            return ExitCode::FAILURE;
        }
    };
    print!("{}", banner(&demo));
    crate::gateway::reload::serve_until_stopped(&demo.gw, &demo.config_path).await;
    demo.gw.shutdown().await;
    ExitCode::SUCCESS
}

/// How to start the demo: the CLI uses the config's fixed ports; tests ask for port 0.
#[derive(Debug, Clone, Copy)]
pub struct DemoOptions {
    /// The echo upstream's port on 127.0.0.1 (0: any free port).
    pub upstream_port: u16,
    /// Listen and admin on 127.0.0.1 port 0 instead of 8443 / 9901.
    pub ephemeral_ports: bool,
    /// No decision log (see [`StartOptions::quiet`]).
    pub quiet: bool,
}

/// A running demo: the gateway, the dev signer its issuer trusts, and where things are.
pub struct RunningDemo {
    pub gw: Gateway,
    pub signer: DevSigner,
    pub upstream: SocketAddr,
    pub dir: PathBuf,
    pub config_path: PathBuf,
    /// When the demo started (unix seconds): its state's times are relative to this.
    pub started: i64,
}

/// Write the demo's files under `dir`, start its echo upstream and the gateway.
pub async fn start(dir: &Path, opts: DemoOptions) -> Result<RunningDemo, String> {
    let started = crate::clock::unix_now();
    let upstream = echo_server(SocketAddr::from(([127, 0, 0, 1], opts.upstream_port)))
        .await
        .map_err(|e| {
            format!(
                "cannot start the echo upstream on port {}: {e}",
                opts.upstream_port
            )
        })?;
    let text = demo_config(upstream, opts.ephemeral_ports)?;
    let state = super::demo_state::relative_to(STATE_TEMPLATE, started)?;
    materialize(dir, &text, &state)?;
    let config_path = dir.join("config/demo.toml");
    let config = crate::config::parse_str(&text, &config_path)
        .map_err(|e| format!("embedded config invalid: {e}"))?;
    let listen = config.listen.address;
    let gw = Gateway::start(config, StartOptions { quiet: opts.quiet })
        .await
        .map_err(|e| {
            let hint = if listen.port() == 8443 {
                format!(" (is something else listening on {listen}?)")
            } else {
                String::new()
            };
            format!("cannot start the gateway: {e}{hint}")
        })?;
    let signer = match DevSigner::load(&dir.join("certs")) {
        Ok(s) => s,
        Err(e) => {
            gw.shutdown().await;
            return Err(e.to_string());
        }
    };
    Ok(RunningDemo {
        gw,
        signer,
        upstream,
        dir: dir.to_path_buf(),
        config_path,
        started,
    })
}

/// The demo's copy of the embedded config: routes point at the echo upstream, the
/// remediation window is the demo's short one (both written into the file, so a SIGHUP
/// reload keeps them), and tests get port 0 listeners.
fn demo_config(upstream: SocketAddr, ephemeral_ports: bool) -> Result<String, String> {
    let mut text = replace_once(
        DEMO_CONFIG,
        "upstream = \"http://127.0.0.1:8080\"",
        &format!("upstream = \"http://{upstream}\""),
    )?;
    text = replace_once(
        &text,
        "window = \"36500d\"",
        &format!("window = \"{}\"", super::demo_state::WINDOW),
    )?;
    if ephemeral_ports {
        text = replace_once(
            &text,
            "address = \"127.0.0.1:8443\"",
            "address = \"127.0.0.1:0\"",
        )?;
        text = replace_once(
            &text,
            "address = \"127.0.0.1:9901\"",
            "address = \"127.0.0.1:0\"",
        )?;
    }
    Ok(text)
}

/// [`super::demo_state::WINDOW`] in seconds.
fn remediation_window_secs() -> i64 {
    crate::config::duration::parse_duration(super::demo_state::WINDOW)
        .ok()
        .and_then(|d| i64::try_from(d.as_secs()).ok())
        .unwrap_or(0)
}

/// Replace every `from` in `text`, refusing if there is none: the embedded config changed
/// shape and the demo would silently run on the wrong values.
fn replace_once(text: &str, from: &str, to: &str) -> Result<String, String> {
    if text.contains(from) {
        Ok(text.replace(from, to))
    } else {
        Err(format!("embedded config has no `{from}` to replace"))
    }
}

/// Write the embedded files (and the demo config, so SIGHUP reload works) under `dir`.
fn materialize(dir: &Path, config: &str, state: &str) -> Result<(), String> {
    let write = |rel: &str, text: &str| -> Result<(), String> {
        let p = dir.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        std::fs::write(&p, text).map_err(|e| format!("{}: {e}", p.display()))
    };
    write("config/demo.toml", config)?;
    write("config/demo-state.json", state)?;
    for (rel, text) in FILES {
        write(rel, text)?;
    }
    Ok(())
}

/// The demo's scenarios for a demo started at `started` (unix seconds), matching
/// `config/demo.toml` and the demo's state.
pub fn scenarios(started: i64) -> Vec<Scenario> {
    demo_scenarios::all(started)
}

/// What the demo prints at start: where things are, and a curl command per scenario.
pub fn banner(demo: &RunningDemo) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(8192);
    let port = demo.gw.local_addr().port();
    let ca: PathBuf = demo.dir.join("certs/ca.crt");
    let _ = writeln!(
        out,
        "accessgate demo: https://localhost:{port} -> echo upstream http://{}",
        demo.upstream
    );
    if let Some(a) = demo.gw.admin_addr() {
        let _ = writeln!(out, "admin: http://{a}/metrics  http://{a}/readyz");
    }
    let _ = writeln!(
        out,
        "DEV ONLY certificates and signing keys: {}",
        demo.dir.join("certs").display()
    );
    let since = demo.started - super::demo_state::AGO;
    let _ = writeln!(
        out,
        "demo state: rita's and sam's apps went noncompliant at {} (2 minutes before start);",
        crate::respond::rfc3339(since)
    );
    let _ = writeln!(
        out,
        "rita's {} remediation window closes at {}, then she is signed out.",
        super::demo_state::WINDOW,
        crate::respond::rfc3339(since + remediation_window_secs())
    );
    let _ = writeln!(out);
    for s in scenarios(demo.started) {
        let _ = writeln!(out, "# {} -> expect {}", s.title, s.expect);
        let mut cmd = format!(
            "curl -si --cacert {} https://localhost:{port}{}",
            ca.display(),
            s.path
        );
        if let Some(opts) = &s.token {
            match demo.signer.mint(opts) {
                Ok(t) => {
                    let _ = write!(cmd, " -H 'Authorization: Bearer {t}'");
                }
                Err(e) => {
                    let _ = writeln!(out, "(cannot mint token: {e})");
                    continue;
                }
            }
        }
        let _ = writeln!(out, "{cmd}");
        let _ = writeln!(out);
    }
    let _ = writeln!(out, "Press Ctrl-C to stop.");
    out
}

/// A small upstream for the demo and benchmarks: answers every request with a JSON echo
/// of the method, path and the identity headers the gateway added.
pub async fn echo_server(addr: SocketAddr) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(echo);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Ok(local)
}

async fn echo(req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let h = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    let mut s = String::with_capacity(256);
    s.push_str("{\"upstream\":\"accessgate demo echo\",\"method\":");
    push_json_str(&mut s, req.method().as_str());
    s.push_str(",\"path\":");
    push_json_str(&mut s, req.uri().path());
    for (key, header) in [
        ("user", "x-accessgate-user"),
        ("app", "x-accessgate-app"),
        ("device", "x-accessgate-device"),
        ("decision_id", "x-accessgate-decision-id"),
        ("forwarded_for", "x-forwarded-for"),
    ] {
        s.push_str(",\"");
        s.push_str(key);
        s.push_str("\":");
        push_json_str(&mut s, h(header));
    }
    s.push_str("}\n");
    let mut resp = Response::new(Body::Full(http_body_util::Full::new(Bytes::from(s))));
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}
