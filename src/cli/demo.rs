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
use crate::config::{DEMO_CONFIG, Upstream};
use crate::respond::push_json_str;
use crate::{Gateway, StartOptions};

/// Files the demo writes into its folder: (relative path, contents).
const FILES: [(&str, &str); 7] = [
    (
        "config/demo-state.json",
        include_str!("../../config/demo-state.json"),
    ),
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
    let rt = match crate::cli::runtime::build(0) {
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
    if let Err(e) = materialize(dir) {
        eprintln!("demo: {e}");
        return ExitCode::FAILURE;
    }
    let config_path = dir.join("config/demo.toml");
    let mut config = match crate::config::parse_str(DEMO_CONFIG, &config_path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("demo: embedded config invalid: {e}");
            return ExitCode::FAILURE;
        }
    };
    let upstream = match echo_server(SocketAddr::from(([127, 0, 0, 1], upstream_port))).await {
        Ok(a) => a,
        Err(e) => {
            eprintln!("demo: cannot start the echo upstream on port {upstream_port}: {e}");
            return ExitCode::FAILURE;
        }
    };
    for r in &mut config.routes {
        if let Ok(authority) = upstream.to_string().parse() {
            r.upstream = Upstream {
                authority,
                base_path: String::new(),
            };
        }
    }
    let listen = config.listen.address;
    let gw = match Gateway::start(config, StartOptions::default()).await {
        Ok(gw) => gw,
        Err(e) => {
            eprintln!("demo: cannot start the gateway: {e}");
            if listen.port() == 8443 {
                eprintln!("(is something else listening on {listen}?)");
            }
            return ExitCode::FAILURE;
        }
    };
    let signer = match DevSigner::load(&dir.join("certs")) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("demo: {e}");
            gw.shutdown().await;
            return ExitCode::FAILURE;
        }
    };
    print_banner(&gw, dir, upstream, &signer);
    crate::gateway::reload::serve_until_stopped(&gw, &config_path).await;
    gw.shutdown().await;
    ExitCode::SUCCESS
}

/// Write the embedded files (and the demo config, so SIGHUP reload works) under `dir`.
pub fn materialize(dir: &Path) -> Result<(), String> {
    let write = |rel: &str, text: &str| -> Result<(), String> {
        let p = dir.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        std::fs::write(&p, text).map_err(|e| format!("{}: {e}", p.display()))
    };
    write("config/demo.toml", DEMO_CONFIG)?;
    for (rel, text) in FILES {
        write(rel, text)?;
    }
    Ok(())
}

/// The demo's scenarios, matching `config/demo.toml` and `config/demo-state.json`.
pub fn scenarios() -> Vec<Scenario> {
    demo_scenarios::all()
}

fn print_banner(gw: &Gateway, dir: &Path, upstream: SocketAddr, signer: &DevSigner) {
    let port = gw.local_addr().port();
    let ca: PathBuf = dir.join("certs/ca.crt");
    println!("accessgate demo: https://localhost:{port} -> echo upstream http://{upstream}");
    if let Some(a) = gw.admin_addr() {
        println!("admin: http://{a}/metrics  http://{a}/readyz");
    }
    println!(
        "DEV ONLY certificates and signing keys: {}",
        dir.join("certs").display()
    );
    println!();
    for s in scenarios() {
        println!("# {} -> expect {}", s.title, s.expect);
        let mut cmd = format!(
            "curl -si --cacert {} https://localhost:{port}{}",
            ca.display(),
            s.path
        );
        if let Some(opts) = &s.token {
            match signer.mint(opts) {
                Ok(t) => cmd.push_str(&format!(" -H 'Authorization: Bearer {t}'")),
                Err(e) => {
                    println!("(cannot mint token: {e})");
                    continue;
                }
            }
        }
        println!("{cmd}");
        println!();
    }
    println!("Press Ctrl-C to stop.");
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
