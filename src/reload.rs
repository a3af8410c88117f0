//! Live reload: `SIGHUP` re-reads the config file (and with it TLS material), builds
//! the new snapshot aside, and swaps it in; a bad version is refused, logged and counted,
//! and the running one keeps serving. `SIGTERM` / `SIGINT` end the wait.

use std::path::Path;

use crate::Gateway;

/// Serve until SIGTERM or SIGINT, reloading on SIGHUP.
pub async fn serve_until_stopped(gw: &Gateway, config_path: &Path) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (mut term, mut int, mut hup) = match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::hangup()),
        ) {
            (Ok(t), Ok(i), Ok(h)) => (t, i, h),
            _ => {
                tracing::error!("cannot install signal handlers; stopping on Ctrl-C only");
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        loop {
            tokio::select! {
                _ = term.recv() => { tracing::info!("SIGTERM: draining"); return; }
                _ = int.recv() => { tracing::info!("SIGINT: draining"); return; }
                _ = hup.recv() => reload_from_file(gw, config_path),
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = config_path;
        let _ = gw;
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Re-read `path` and apply it; on any error keep the running config.
pub fn reload_from_file(gw: &Gateway, path: &Path) {
    match crate::config::load(path) {
        Ok(cfg) => match gw.apply_config(cfg) {
            Ok(()) => tracing::info!(path = %path.display(), "reload applied"),
            Err(e) => {
                tracing::error!(path = %path.display(), error = %e, "reload refused; the running config stays")
            }
        },
        Err(e) => {
            gw.metrics()
                .reloads_total
                .with_label_values(&["config", "error"])
                .inc();
            tracing::error!(path = %path.display(), error = %e, "reload refused; the running config stays");
        }
    }
}
