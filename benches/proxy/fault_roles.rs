//! The fault soak's child roles: `--serve-fault-gateway CONFIG` and
//! `--serve-fault-upstream ADDR`.
//!
//! Unlike `--serve-gateway` (which only waits for stdin), the fault gateway runs the same
//! reload loop as `accessgate run` (`serve_until_stopped`: SIGHUP and file watching), so the
//! soak exercises the reload path users get. The upstream binds a given address so that a
//! restarted upstream comes back on the port the gateway's config names.

use std::io::{Read as _, Write as _};
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use accessgate::{Gateway, StartOptions};

fn wait_for_stdin_eof() {
    let mut sink = [0u8; 64];
    let mut stdin = std::io::stdin().lock();
    while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
}

fn ready(words: &str) -> bool {
    let mut out = std::io::stdout().lock();
    writeln!(out, "READY {words}").is_ok() && out.flush().is_ok()
}

/// The gateway with live reload, until stdin closes (the harness going away).
pub fn gateway(config_path: &Path) -> ExitCode {
    let config = match accessgate::config::load(config_path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("serve-fault-gateway: {e}");
            return ExitCode::FAILURE;
        }
    };
    let rt = match accessgate::cli::runtime::build(&config.runtime) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("serve-fault-gateway: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async {
        let gw = match Gateway::start(config, StartOptions { quiet: false }).await {
            Ok(gw) => gw,
            Err(e) => {
                eprintln!("serve-fault-gateway: cannot start: {e}");
                return ExitCode::FAILURE;
            }
        };
        let admin = gw
            .admin_addr()
            .map_or_else(|| "-".to_owned(), |a| a.to_string());
        if !ready(&format!("{} {admin}", gw.local_addr())) {
            return ExitCode::FAILURE;
        }
        tokio::select! {
            _ = accessgate::gateway::reload::serve_until_stopped(&gw, config_path) => {}
            _ = tokio::task::spawn_blocking(wait_for_stdin_eof) => {}
        }
        gw.shutdown().await;
        ExitCode::SUCCESS
    })
}

/// The demo echo server on `addr` (retrying the bind for a while: the killed one's port
/// may take a moment to be free).
pub fn upstream(addr: &str) -> ExitCode {
    let Ok(bind) = addr.parse::<SocketAddr>() else {
        eprintln!("serve-fault-upstream: bad address {addr:?}");
        return ExitCode::FAILURE;
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("serve-fault-upstream: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async {
        let mut last = String::new();
        for _ in 0..100 {
            match accessgate::cli::demo::echo_server(bind).await {
                Ok(a) => {
                    if !ready(&a.to_string()) {
                        return ExitCode::FAILURE;
                    }
                    let _ = tokio::task::spawn_blocking(wait_for_stdin_eof).await;
                    return ExitCode::SUCCESS;
                }
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        eprintln!("serve-fault-upstream: cannot bind {bind}: {last}");
        ExitCode::FAILURE
    })
}
