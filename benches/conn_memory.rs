//! What one idle TLS connection holds in the gateway's heap, by owner (issue 13: 10k idle
//! HTTP/2 connections took 399.7 MiB of RSS, and RSS alone does not say whose bytes they
//! are).
//!
//! `cargo bench --locked --bench conn_memory` (release) or `cargo test --locked --bench
//! conn_memory` (debug: deeper backtraces, bigger futures). For each variant, a server
//! process (this binary again, under dhat's counting allocator) accepts N loopback TLS
//! connections from a client process (this binary again, so the client's own memory is not
//! counted); each connection serves one request and then idles. The server reports live
//! heap bytes and blocks per connection (dhat's `curr_bytes` after the N connections minus
//! before) and, from dhat's profile at that moment, the allocation sites that hold at least
//! one block per connection. Variants (`CONN_MEMORY_VARIANTS`, comma-separated; `N` is
//! `CONN_MEMORY_N`, default 1000):
//!
//! - `tls`: the TLS handshake only (the listener's rustls config), stream held, no HTTP.
//! - `h2`, `h1`: TLS plus hyper's h2 / h1 builder exactly as `transport::server` builds it
//!   for connections whose ALPN says so, with a trivial service (hyper's and h2's own
//!   share; `h1` is not parked); `auto-h2`: hyper-util's auto builder (connections without
//!   ALPN; what `h2` connections were served by before).
//! - `h2:SETTING=VALUE`: `h2` with one setting changed on top of the shipped builder
//!   (`header_table_size`, `max_frame_size`, `max_concurrent_streams`, `max_send_buf_size`,
//!   `initial_stream_window_size`, `initial_connection_window_size`,
//!   `max_header_list_size`, `keep_alive=off`).
//! - `full-h2`, `full-h1`: `transport::server::run` itself (watchdog, activity, wrappers,
//!   HTTP/1.1 parking) with a trivial tower stack.
//!
//! Results go to stdout and to `target/bench/conn-memory.json`; dhat's raw profiles to
//! `target/bench/dhat-conn-<variant>.json` (viewable with DHAT's dh_view.html).

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

#[path = "conn_memory/client.rs"]
mod client;
#[path = "conn_memory/server.rs"]
mod server;
#[path = "conn_memory/sites.rs"]
mod sites;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

const DEFAULT_VARIANTS: &str = "tls,h1,auto-h2,h2,full-h1,full-h2,\
h2:header_table_size=0,h2:header_table_size=1024,h2:max_frame_size=16384,\
h2:max_concurrent_streams=16,h2:max_send_buf_size=16384,\
h2:initial_stream_window_size=65535,h2:initial_connection_window_size=65535,\
h2:max_header_list_size=16384,h2:keep_alive=off";

fn main() {
    let role = std::env::var("CONN_MEMORY_ROLE").unwrap_or_default();
    let r = match role.as_str() {
        "server" => server::main(),
        "client" => client::main(),
        _ => orchestrate(),
    };
    if let Err(e) = r {
        eprintln!("conn_memory ({role}): {e}");
        std::process::exit(1);
    }
}

fn env_n() -> usize {
    std::env::var("CONN_MEMORY_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n: &usize| n > 0)
        .unwrap_or(1000)
}

fn out_dir() -> std::path::PathBuf {
    let d = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"))
        .join("bench");
    let _ = std::fs::create_dir_all(&d);
    d
}

/// Run each variant in a fresh server process with its own client process.
fn orchestrate() -> Result<(), String> {
    let n = env_n();
    let variants =
        std::env::var("CONN_MEMORY_VARIANTS").unwrap_or_else(|_| DEFAULT_VARIANTS.to_owned());
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut results = Vec::new();
    println!(
        "{n} idle TLS connections per variant, each served one request; live heap per connection:"
    );
    for v in variants.split(',').map(str::trim).filter(|v| !v.is_empty()) {
        let r = run_variant(&exe, v, n)?;
        println!("{}", sites::summary_line(&r));
        results.push(r);
    }
    let path = out_dir().join("conn-memory.json");
    let body = serde_json::to_string_pretty(&results).map_err(|e| e.to_string())?;
    std::fs::write(&path, body).map_err(|e| format!("{}: {e}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}

fn run_variant(
    exe: &std::path::Path,
    variant: &str,
    n: usize,
) -> Result<serde_json::Value, String> {
    let mut srv = Command::new(exe)
        .env("CONN_MEMORY_ROLE", "server")
        .env("CONN_MEMORY_VARIANT", variant)
        .env("CONN_MEMORY_N", n.to_string())
        .env("CONN_MEMORY_OUT", out_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn server: {e}"))?;
    let mut srv_out = BufReader::new(srv.stdout.take().ok_or("server stdout")?);
    let mut line = String::new();
    srv_out.read_line(&mut line).map_err(|e| e.to_string())?;
    // "listening PORT CERT"
    let mut it = line.split_whitespace();
    let (Some("listening"), Some(port), Some(cert)) = (it.next(), it.next(), it.next()) else {
        let _ = srv.kill();
        return Err(format!("{variant}: server said {line:?}"));
    };
    let proto = if variant == "tls" {
        "tls"
    } else if variant.contains("h1") {
        "h1"
    } else {
        "h2"
    };
    let mut cli = Command::new(exe)
        .env("CONN_MEMORY_ROLE", "client")
        .env("CONN_MEMORY_PORT", port)
        .env("CONN_MEMORY_CERT", cert)
        .env("CONN_MEMORY_PROTO", proto)
        .env("CONN_MEMORY_N", n.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn client: {e}"))?;
    let mut cli_out = BufReader::new(cli.stdout.take().ok_or("client stdout")?);
    let mut cl = String::new();
    cli_out.read_line(&mut cl).map_err(|e| e.to_string())?;
    let result = if cl.trim() == "idle" {
        let mut stdin = srv.stdin.take().ok_or("server stdin")?;
        writeln!(stdin, "measure").map_err(|e| e.to_string())?;
        let mut res = String::new();
        srv_out.read_line(&mut res).map_err(|e| e.to_string())?;
        serde_json::from_str(&res).map_err(|e| format!("{variant}: server said {res:?}: {e}"))
    } else {
        Err(format!("{variant}: client said {cl:?}"))
    };
    let _ = cli.kill();
    let _ = cli.wait();
    let _ = srv.kill();
    let _ = srv.wait();
    result
}
