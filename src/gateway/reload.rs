//! Live reload: `SIGHUP`, or a change to the config file or the TLS files it names,
//! re-reads the config, builds the new snapshot aside and swaps it in (see
//! [`Gateway::apply_config`]). A bad version is refused, logged with the precise error and
//! counted (`accessgate_reloads_total{what,outcome}`); the running one keeps serving.
//! `SIGHUP` also reopens the decision log file (log rotation). `SIGTERM` / `SIGINT` end
//! the wait so the caller can drain.
//!
//! File watching uses the folders that hold the files, not the files themselves: editors
//! and Kubernetes ConfigMap/Secret updates replace files by rename, which a watch on the
//! old inode would miss. Events are debounced so a burst of writes is one reload.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::Gateway;

/// Quiet time after the last file event before reloading.
const DEBOUNCE: Duration = Duration::from_millis(300);

/// Serve until SIGTERM or SIGINT, reloading on SIGHUP and on file change.
pub async fn serve_until_stopped(gw: &Gateway, config_path: &Path) {
    let (tx, mut rx) = mpsc::channel::<()>(16);
    let mut _watcher = start_watcher(gw, config_path, tx.clone());
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
                _ = hup.recv() => {
                    tracing::info!("SIGHUP: reloading");
                    gw.reopen_decision_log();
                    reload_from_file(gw, config_path);
                    _watcher = start_watcher(gw, config_path, tx.clone());
                }
                Some(()) = rx.recv() => {
                    // Debounce: wait until events stop arriving.
                    while let Ok(Some(())) = tokio::time::timeout(DEBOUNCE, rx.recv()).await {}
                    tracing::info!("config or certificate files changed: reloading");
                    reload_from_file(gw, config_path);
                    // The set of watched files may have changed with the config.
                    _watcher = start_watcher(gw, config_path, tx.clone());
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (&mut rx, &mut _watcher);
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The files whose change triggers a config reload.
fn watched_files(gw: &Gateway, config_path: &Path) -> HashSet<PathBuf> {
    let snap = gw.snapshot().load();
    let l = &snap.config.listen;
    let mut files: HashSet<PathBuf> = [
        config_path.to_path_buf(),
        l.tls_cert.clone(),
        l.tls_key.clone(),
    ]
    .into_iter()
    .collect();
    if let Some(ca) = &l.client_ca {
        files.insert(ca.clone());
    }
    files.into_iter().map(|p| absolute(&p)).collect()
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Watch the folders of the config and TLS files; `None` (logged) if watching is not
/// possible, in which case SIGHUP still works.
fn start_watcher(
    gw: &Gateway,
    config_path: &Path,
    tx: mpsc::Sender<()>,
) -> Option<notify::RecommendedWatcher> {
    let files = watched_files(gw, config_path);
    let dirs: HashSet<PathBuf> = files
        .iter()
        .filter_map(|f| f.parent().map(Path::to_path_buf))
        .collect();
    let names: HashSet<std::ffi::OsString> = files
        .iter()
        .filter_map(|f| f.file_name().map(|n| n.to_os_string()))
        .collect();
    let handler = move |res: notify::Result<notify::Event>| {
        let Ok(ev) = res else { return };
        if matches!(ev.kind, notify::EventKind::Access(_)) {
            return;
        }
        // A file of ours, or a Kubernetes-style `..data` symlink swap in its folder.
        let relevant = ev.paths.iter().any(|p| {
            p.file_name()
                .is_some_and(|n| names.contains(n) || n.to_string_lossy().starts_with(".."))
        });
        if relevant {
            let _ = tx.try_send(());
        }
    };
    let mut watcher = match notify::recommended_watcher(handler) {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch config files; reload with SIGHUP");
            return None;
        }
    };
    for d in &dirs {
        if let Err(e) = watcher.watch(d, RecursiveMode::NonRecursive) {
            tracing::warn!(dir = %d.display(), error = %e, "cannot watch folder; reload with SIGHUP");
        }
    }
    Some(watcher)
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
