//! `Gateway`: the running proxy. Binds the listeners, publishes the first snapshot, starts
//! the background tasks, and owns the shutdown sequence. Used by `main`, tests and benches.

pub mod error;
pub mod reload;
mod workers;

pub use error::{ReloadError, StartError};

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;
use workers::{Serve, Serving};

use crate::config::{Config, Scheduler};
use crate::observe::decision_log::DecisionLog;
use crate::ops::metrics::Metrics;
use crate::snapshot::{SharedSnapshot, Snapshot};
use crate::state::{Freshness, StateStore};
use crate::transport::server::{ServerSettings, Shutdown};

/// Bind `addr` (the value of config key `key`) and read back the bound address.
async fn bind(
    key: &'static str,
    addr: SocketAddr,
) -> Result<(TcpListener, SocketAddr), StartError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { key, addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| StartError::LocalAddr { key, source })?;
    Ok((listener, local))
}

/// The client-facing listener(s) as bound at start.
struct Listeners {
    local_addr: SocketAddr,
    kind: Bound,
}

enum Bound {
    /// One listener, served on the caller's runtime.
    One(TcpListener),
    /// One per worker (`scheduler = "per_core"`), all on `local_addr`.
    PerWorker(Vec<std::net::TcpListener>),
}

impl Listeners {
    async fn bind(config: &Config, addr: SocketAddr) -> Result<Self, StartError> {
        const KEY: &str = "listen.address";
        if config.runtime.scheduler != Scheduler::PerCore {
            let (l, local_addr) = bind(KEY, addr).await?;
            return Ok(Self {
                local_addr,
                kind: Bound::One(l),
            });
        }
        let ls = crate::transport::reuseport::bind(addr, config.runtime.workers()).map_err(
            |source| StartError::Bind {
                key: KEY,
                addr,
                source,
            },
        )?;
        let local_addr = ls
            .first()
            .map(std::net::TcpListener::local_addr)
            .transpose()
            .map_err(|source| StartError::LocalAddr { key: KEY, source })?
            .unwrap_or(addr);
        Ok(Self {
            local_addr,
            kind: Bound::PerWorker(ls),
        })
    }
}

/// How long shutdown waits for the decision log to write what it accepted (a stuck sink
/// must not keep the process from exiting).
const LOG_CLOSE_LIMIT: Duration = Duration::from_secs(5);

/// How long shutdown waits for the state cache (`cache_dir`, source = "redis") to be
/// written: a write copies the whole snapshot (hundreds of MB at a million devices).
const STATE_CACHE_LIMIT: Duration = Duration::from_secs(20);

/// Knobs that are not config-file settings (tests, benches, the demo).
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    /// Write no decision log regardless of `[log] decisions` (tests, benches).
    pub quiet: bool,
}

/// A running gateway.
pub struct Gateway {
    local_addr: SocketAddr,
    admin_addr: Option<SocketAddr>,
    metrics: Metrics,
    shared: SharedSnapshot,
    state: Arc<StateStore>,
    tls: Arc<ArcSwap<ServerConfig>>,
    draining: Arc<AtomicBool>,
    drain_tx: watch::Sender<bool>,
    kill_tx: watch::Sender<bool>,
    permits: Arc<Semaphore>,
    max_connections: usize,
    grace: Duration,
    serving: Serving,
    admin_task: Option<JoinHandle<()>>,
    /// Kept to reopen its file on SIGHUP and to flush it at shutdown.
    log: Arc<DecisionLog>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("local_addr", &self.local_addr)
            .field("admin_addr", &self.admin_addr)
            .finish()
    }
}

impl Gateway {
    /// Bind, build and start serving `config`.
    pub async fn start(config: Config, opts: StartOptions) -> Result<Self, StartError> {
        crate::transport::tls::install_provider();
        let metrics = Metrics::new();
        let tls_cfg =
            crate::transport::tls::server_config(&config.listen).map_err(StartError::Tls)?;
        let tls = Arc::new(ArcSwap::new(tls_cfg));
        let settings = ServerSettings::from(&config.listen);
        let grace = config.runtime.shutdown_grace;
        let listen_addr = config.listen.address;
        let admin_cfg = config.admin.address;
        let log = if opts.quiet {
            DecisionLog::off(&metrics)
        } else {
            DecisionLog::new(&config.log, &metrics).map_err(StartError::DecisionLog)?
        };
        let config = Arc::new(config);
        let snapshot =
            Snapshot::build(config.clone(), &metrics, None).map_err(StartError::Snapshot)?;
        let shared: SharedSnapshot = Arc::new(ArcSwap::from_pointee(snapshot));
        // Policy state is needed only where requests are authorized; a gateway whose
        // routes are all `auth = "none"` neither loads nor waits for it.
        let state = if needs_state(&config) {
            StateStore::start(&config.state, &metrics).await
        } else {
            StateStore::without_state(Freshness::from(&config.state))
        };
        metrics
            .config_info
            .with_label_values(&[&config_hash(&config)])
            .set(1);

        let listeners = Listeners::bind(&config, listen_addr).await?;
        let local_addr = listeners.local_addr;

        let (drain_tx, drain_rx) = watch::channel(false);
        let (kill_tx, kill_rx) = watch::channel(false);
        let draining = Arc::new(AtomicBool::new(false));
        let max_connections = settings.max_connections;
        let permits = Arc::new(Semaphore::new(max_connections));

        let (admin_addr, admin_task) = match admin_cfg {
            Some(addr) => {
                let (l, a) = bind("admin.address", addr).await?;
                let ready = ready_check(shared.clone(), state.clone(), draining.clone());
                let before_scrape: crate::ops::admin::ScrapeHook = {
                    let state = state.clone();
                    Arc::new(move || state.observe_age(crate::clock::now()))
                };
                let jwks: crate::ops::admin::JwksRoute = {
                    let shared = shared.clone();
                    Arc::new(move |method, path| {
                        if path != crate::snapshot::assertion::JWKS_PATH {
                            return None;
                        }
                        let keys = shared.load().assertion.as_ref().map(|a| a.jwks())?;
                        Some(crate::forward::jwks::respond(method, keys))
                    })
                };
                let t = tokio::spawn(crate::ops::admin::run(
                    l,
                    metrics.clone(),
                    ready,
                    before_scrape,
                    jwks,
                    kill_rx.clone(),
                ));
                (Some(a), Some(t))
            }
            None => (None, None),
        };

        let log = Arc::new(log);
        let stack = crate::build_stack(shared.clone(), state.clone(), metrics.clone(), log.clone());
        let serve = Serve {
            tls: tls.clone(),
            settings,
            stack,
            metrics: metrics.clone(),
            permits: permits.clone(),
            shutdown: Shutdown {
                drain: drain_rx,
                kill: kill_rx,
            },
        };
        let serving = match listeners.kind {
            Bound::One(l) => workers::local(l, serve),
            Bound::PerWorker(ls) => workers::per_core(ls, serve)?,
        };
        tracing::info!(
            %local_addr,
            admin = ?admin_addr,
            scheduler = config.runtime.scheduler.name(),
            workers = config.runtime.workers(),
            "accessgate listening"
        );
        Ok(Self {
            local_addr,
            admin_addr,
            metrics,
            shared,
            state,
            tls,
            draining,
            drain_tx,
            kill_tx,
            permits,
            max_connections,
            grace,
            serving,
            admin_task,
            log,
        })
    }

    /// The bound client-facing address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The bound admin address, when the admin listener is on.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// The metric registry this gateway reports to.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The live snapshot handle (reload swaps it).
    pub fn snapshot(&self) -> &SharedSnapshot {
        &self.shared
    }

    /// The policy state store (its own background refresh; SIGHUP also refreshes it).
    pub fn state(&self) -> &Arc<StateStore> {
        &self.state
    }

    /// Reopen the decision log file by path (SIGHUP, after a log rotation).
    pub fn reopen_decision_log(&self) {
        self.log.reopen();
    }

    /// The live TLS config handle (certificate reload swaps it).
    pub fn tls(&self) -> &Arc<ArcSwap<ServerConfig>> {
        &self.tls
    }

    /// Stop accepting, let in-flight requests finish within the grace period, then close
    /// whatever is left. `/readyz` reports not ready from the first moment.
    pub async fn shutdown(self) {
        self.draining.store(true, Ordering::SeqCst);
        let _ = self.drain_tx.send(true);
        let all = u32::try_from(self.max_connections).unwrap_or(u32::MAX);
        // Every connection holds a permit: getting all of them back means all are closed.
        let drained = tokio::time::timeout(self.grace, self.permits.acquire_many(all)).await;
        if drained.is_err() {
            tracing::warn!(grace = ?self.grace, "shutdown grace period over; closing remaining connections");
        }
        let _ = self.kill_tx.send(true);
        self.serving.finished().await;
        if let Some(t) = self.admin_task {
            let _ = t.await;
        }
        // The state served reaches cache_dir (source = "redis"), so a restart while Redis
        // is down serves it with its last confirmation.
        if tokio::time::timeout(STATE_CACHE_LIMIT, self.state.flush_cache())
            .await
            .is_err()
        {
            tracing::warn!(limit = ?STATE_CACHE_LIMIT, "shutdown: the state cache was not written in time; the previous file stays");
        }
        // Every line accepted so far reaches the sink before we report stopped. The join
        // blocks, so it runs off the runtime's workers.
        let log = self.log;
        let _ = tokio::task::spawn_blocking(move || log.close(LOG_CLOSE_LIMIT)).await;
        tracing::info!("accessgate stopped");
    }
}

/// True when some route authorizes requests, so policy state must be loaded and fresh.
fn needs_state(config: &Config) -> bool {
    config
        .routes
        .iter()
        .any(|r| r.auth == crate::config::AuthMode::Required)
}

/// `/readyz`: keys for every issuer, fresh state (where needed), and not draining.
fn ready_check(
    shared: SharedSnapshot,
    state: Arc<StateStore>,
    draining: Arc<AtomicBool>,
) -> crate::ops::admin::ReadyCheck {
    Arc::new(move || {
        let mut why = Vec::new();
        if draining.load(Ordering::Relaxed) {
            why.push("shutting down".to_owned());
        }
        let snap = shared.load();
        if !snap.authn.is_ready() {
            why.push("signing keys not loaded for every issuer".to_owned());
        }
        if needs_state(&snap.config)
            && let Err(e) = state.readiness(crate::clock::now())
        {
            why.push(e);
        }
        if why.is_empty() { Ok(()) } else { Err(why) }
    })
}

/// A short stable hash naming a config version (`accessgate_config_info{hash}`).
pub fn config_hash(config: &Config) -> String {
    let text = format!("{config:?}");
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes());
    d.as_ref()[..6].iter().map(|b| format!("{b:02x}")).collect()
}

impl Gateway {
    /// Apply a new config without dropping a connection: build the snapshot aside, then
    /// swap it in; rebuild the TLS config so new handshakes use the new certificate.
    /// Routes, issuers, tokens, policies, approved apps, trusted proxies and TLS material
    /// reload live. A change that needs a restart (listen or admin address, `[listen]`
    /// limits and timeouts, `[runtime]`, `[log]`, `[state]`) is refused with a message
    /// saying so, and nothing changes.
    pub fn apply_config(&self, config: Config) -> Result<(), ReloadError> {
        let outcome = self.try_apply(config);
        let label = if outcome.is_ok() { "success" } else { "error" };
        self.metrics
            .reloads_total
            .with_label_values(&["config", label])
            .inc();
        outcome
    }

    fn try_apply(&self, config: Config) -> Result<(), ReloadError> {
        let current = self.shared.load_full();
        let old = &current.config;
        if config.listen.address != old.listen.address {
            return Err(ReloadError::NeedsRestart(format!(
                "listen.address changed ({} -> {}): that needs a restart; keeping the running config",
                old.listen.address, config.listen.address
            )));
        }
        if config.state.source != old.state.source
            || config.state.refresh != old.state.refresh
            || config.state.max_staleness != old.state.max_staleness
            || config.state.fail_open != old.state.fail_open
            || config.state.cache_dir != old.state.cache_dir
        {
            // With source = "graph" this includes the set of groups policies name: the
            // connector must resolve a new group before any policy may rely on it.
            return Err(ReloadError::NeedsRestart("[state] changed (with source = \"graph\": [graph], or the groups policies name): that needs a restart; keeping the running config".into()));
        }
        if needs_state(&config) && !needs_state(old) {
            return Err(ReloadError::NeedsRestart("the first route with auth = \"required\" needs policy state loaded at start: restart; keeping the running config".into()));
        }
        if ServerSettings::from(&config.listen) != ServerSettings::from(&old.listen) {
            return Err(ReloadError::NeedsRestart("[listen] limits or timeouts changed (max_connections, max_header_bytes, header_read_timeout, idle_timeout, handshake_timeout, h2_max_concurrent_streams): they are fixed for the listener's life and need a restart; keeping the running config".into()));
        }
        if config.runtime.worker_threads != old.runtime.worker_threads
            || config.runtime.scheduler != old.runtime.scheduler
            || config.runtime.shutdown_grace != old.runtime.shutdown_grace
        {
            return Err(ReloadError::NeedsRestart(
                "[runtime] changed: that needs a restart; keeping the running config".into(),
            ));
        }
        if config.log.decisions != old.log.decisions
            || config.log.allow_sample != old.log.allow_sample
            || config.log.level != old.log.level
        {
            return Err(ReloadError::NeedsRestart("[log] changed: the log sinks are opened at start, which needs a restart; keeping the running config".into()));
        }
        if config.admin.address != old.admin.address {
            return Err(ReloadError::NeedsRestart(
                "admin.address changed: that needs a restart; keeping the running config".into(),
            ));
        }
        let tls = crate::transport::tls::server_config(&config.listen).map_err(ReloadError::Tls)?;
        let hash = config_hash(&config);
        let config = Arc::new(config);
        let snapshot = Snapshot::build(config, &self.metrics, Some(&current))
            .map_err(ReloadError::Snapshot)?;
        self.tls.store(tls);
        self.shared.store(Arc::new(snapshot));
        self.metrics.config_info.reset();
        self.metrics.config_info.with_label_values(&[&hash]).set(1);
        tracing::info!(config = %hash, "config reloaded");
        Ok(())
    }

    /// Reload only the TLS certificate and key named by the live config.
    pub fn reload_tls(&self) -> Result<(), ReloadError> {
        let current = self.shared.load_full();
        let outcome =
            crate::transport::tls::server_config(&current.config.listen).map_err(ReloadError::Tls);
        let label = if outcome.is_ok() { "success" } else { "error" };
        self.metrics
            .reloads_total
            .with_label_values(&["tls", label])
            .inc();
        self.tls.store(outcome?);
        Ok(())
    }
}
