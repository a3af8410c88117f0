//! The child-process roles of the bench binary: `--serve-gateway CONFIG` and
//! `--serve-upstream`.
//!
//! The harness re-executes itself rather than running `target/release/accessgate`: the
//! bench binary is built with the bench profile (= release), so this is the same library
//! code the release binary runs, with no extra `cargo build` step and no stale binary to
//! worry about. Each role binds 127.0.0.1:0, prints one `READY ...` line with the bound
//! addresses on stdout, and runs until its stdin closes (the harness exiting, however it
//! exits, closes it).

use std::io::{Read as _, Write as _};
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;

use accessgate::{Gateway, StartOptions};

/// Block until stdin reaches EOF (or errors).
fn wait_for_stdin_eof() {
    let mut sink = [0u8; 64];
    let mut stdin = std::io::stdin().lock();
    while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
}

fn ready(words: &str) -> Result<(), std::io::Error> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "READY {words}")?;
    out.flush()
}

/// `--serve-gateway CONFIG`: the gateway on the runtime `[runtime]` asks for
/// (`worker_threads`, `scheduler`), exactly as `accessgate run` builds it. Prints
/// `READY <listen addr> <admin addr>`.
pub fn gateway(config_path: &Path) -> ExitCode {
    let config = match accessgate::config::load(config_path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("serve-gateway: {e}");
            return ExitCode::FAILURE;
        }
    };
    let rt = match accessgate::cli::runtime::build(&config.runtime) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("serve-gateway: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async {
        let gw = match Gateway::start(
            config,
            StartOptions {
                // The decision log follows the config: off in the tuned rows, to a file in
                // the shipped-default row.
                quiet: false,
            },
        )
        .await
        {
            Ok(gw) => gw,
            Err(e) => {
                eprintln!("serve-gateway: cannot start: {e}");
                return ExitCode::FAILURE;
            }
        };
        let admin = gw
            .admin_addr()
            .map_or_else(|| "-".to_owned(), |a| a.to_string());
        if ready(&format!("{} {admin}", gw.local_addr())).is_err() {
            return ExitCode::FAILURE;
        }
        let _ = tokio::task::spawn_blocking(wait_for_stdin_eof).await;
        gw.shutdown().await;
        ExitCode::SUCCESS
    })
}

/// `--serve-upstream`: the demo echo server on a single-threaded runtime (one core's
/// worth of upstream, like a small real service). Prints `READY <addr>`.
pub fn upstream() -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("serve-upstream: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async {
        let bind = SocketAddr::from(([127, 0, 0, 1], 0));
        let addr = match accessgate::cli::demo::echo_server(bind).await {
            Ok(a) => a,
            Err(e) => {
                eprintln!("serve-upstream: bind: {e}");
                return ExitCode::FAILURE;
            }
        };
        if ready(&addr.to_string()).is_err() {
            return ExitCode::FAILURE;
        }
        // The echo server's tasks run on this thread while we wait here.
        let _ = tokio::task::spawn_blocking(wait_for_stdin_eof).await;
        ExitCode::SUCCESS
    })
}
