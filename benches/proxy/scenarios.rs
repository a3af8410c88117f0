//! Running the scenarios: start what they need, check it answers as it should (200 for
//! the benchmark caller, 401 for no token and a forged one), measure every protocol x
//! mode, then read the gateway's own counters to confirm the scenario did what its name
//! says (cache hits for (c), misses for (d), policy evaluations per request).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{HeaderValue, StatusCode};

use crate::client::{self, Proto, Target, TlsClients};
use crate::driver::{self, Load, Mode};
use crate::fixture::{self, Fixture, GatewayVariant};
use crate::peers::{self, PeerFiles};
use crate::procs::{self, ChildGuard, Pinning, progress};
use crate::report::{Extras, Row};
use crate::settings::Settings;

/// Bound on a gateway becoming ready (the 1M-device state takes a while to load).
const READY_WAIT: Duration = Duration::from_secs(300);

/// Everything the scenarios share, and what they have measured so far.
pub struct Bench {
    pub settings: Settings,
    pub fx: Fixture,
    pub exe: PathBuf,
    pub pinning: Pinning,
    pub tls: TlsClients,
    /// The one (cached) token of (c)/(e) and the peers.
    pub token: Arc<Vec<HeaderValue>>,
    /// Distinct tokens for (d).
    pub pool: Arc<Vec<HeaderValue>>,
    pub upstream: SocketAddr,
    pub upstream_pid: u32,
    pub rows: Vec<Row>,
    pub extras: Extras,
}

/// A gateway scenario's shape.
pub struct GatewayScenario<'a> {
    pub id: &'a str,
    pub label: String,
    pub auth: bool,
    pub cache_capacity: u64,
    pub state: &'a Path,
    pub worker_threads: usize,
    pub pinned: bool,
    pub tokens: Arc<Vec<HeaderValue>>,
    /// Run the shipped defaults (see `fixture::GatewayVariant::shipped`).
    pub shipped: bool,
}

impl GatewayScenario<'_> {
    /// The id, plus the worker count when it is not the headline 1 (config file names,
    /// memory lines).
    fn tag(&self) -> String {
        if self.shipped {
            format!("{}-shipped", self.id)
        } else if self.worker_threads == 1 {
            self.id.to_owned()
        } else {
            format!("{}-{}t", self.id, self.worker_threads)
        }
    }
}

/// A running gateway child.
pub struct RunningGateway {
    pub child: ChildGuard,
    pub addr: SocketAddr,
    pub admin: SocketAddr,
}

fn forged(token: &HeaderValue) -> Option<HeaderValue> {
    // Flip one character well inside the signature (the last one may only carry padding
    // bits that a decoder ignores).
    let mut s = token.to_str().ok()?.to_owned();
    let at = s.len().checked_sub(10)?;
    let c = s.as_bytes().get(at).copied()?;
    let swap = if c == b'A' { "B" } else { "A" };
    s.replace_range(at..=at, swap);
    HeaderValue::from_str(&s).ok()
}

impl Bench {
    pub fn target(&self, addr: SocketAddr) -> Target {
        Target {
            addr,
            tls: Some(self.tls.clone()),
            path: fixture::PATH,
        }
    }

    pub fn memory(&mut self, what: String, pid: u32) {
        if let Some((rss, hwm)) = procs::rss_kib(pid) {
            progress(&format!("{what}: RSS {:.1} MiB", rss as f64 / 1024.0));
            self.extras.memory.push((what, rss, hwm));
        }
    }

    pub fn abort(&mut self, id: &str, why: String) {
        progress(&format!("scenario {id} ABORTED: {why}"));
        self.extras.aborted.push(format!("{id}: {why}"));
    }

    /// (a): the echo upstream straight, plain HTTP/1.1 (it speaks nothing else): the floor
    /// under every proxy row, without TLS.
    pub async fn upstream_direct(&mut self) {
        let target = Target {
            addr: self.upstream,
            tls: None,
            path: fixture::PATH,
        };
        if self.settings.protos.iter().any(|p| p == "h2") {
            self.extras
                .skipped
                .push("a/h2: the echo upstream speaks HTTP/1.1 only".to_owned());
        }
        let label = "(a) upstream direct, plain HTTP";
        let watch = vec![self.upstream_pid];
        if let Err(e) = self
            .matrix(
                "a",
                label,
                &target,
                &[Proto::H1],
                Arc::default(),
                watch,
                false,
                None,
            )
            .await
        {
            self.abort("a", e);
        }
    }

    /// Write the config, start the gateway child and wait for `/readyz`.
    pub async fn start_gateway(
        &mut self,
        s: &GatewayScenario<'_>,
    ) -> Result<RunningGateway, String> {
        let cfg = fixture::write_gateway_config(
            &self.fx,
            &GatewayVariant {
                name: &s.tag(),
                auth: s.auth,
                cache_capacity: s.cache_capacity,
                state: s.state,
                worker_threads: s.worker_threads,
                scheduler: self.settings.scheduler.as_deref(),
                upstream: self.upstream,
                shipped: s.shipped,
            },
        )?;
        let cpus = if s.pinned { self.pinning.server } else { None };
        let cfg_s = cfg.display().to_string();
        let (child, words) = procs::spawn_ready(
            &format!("gateway {}", s.id),
            &self.exe,
            &["--serve-gateway", &cfg_s],
            cpus,
            READY_WAIT,
        )?;
        let parse = |i: usize| -> Result<SocketAddr, String> {
            words
                .get(i)
                .and_then(|w| w.parse().ok())
                .ok_or_else(|| format!("gateway READY line without address {i}: {words:?}"))
        };
        let gw = RunningGateway {
            addr: parse(1)?,
            admin: parse(2)?,
            child,
        };
        let started = Instant::now();
        loop {
            match client::admin_get(gw.admin, "/readyz").await {
                Ok((StatusCode::OK, _)) => break,
                Ok((_, body)) if started.elapsed() > READY_WAIT => {
                    return Err(format!("gateway not ready within {READY_WAIT:?}: {body}"));
                }
                Err(e) if started.elapsed() > READY_WAIT => return Err(e),
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        Ok(gw)
    }

    /// Before measuring: the caller's request must be allowed (200), and where a token is
    /// required, none and a forged one must both be refused (401). Returns what was checked.
    pub async fn verify_answers(
        &self,
        addr: SocketAddr,
        tokens: &[HeaderValue],
        auth: bool,
    ) -> Result<String, String> {
        let target = self.target(addr);
        let first = tokens.first();
        let (status, body) = client::fetch(&target, first).await?;
        if status != StatusCode::OK {
            let snippet: String = body.chars().take(400).collect();
            return Err(format!(
                "the benchmark caller must be allowed (200) but got {status}: {snippet}"
            ));
        }
        if !auth {
            return Ok("200 for the caller".to_owned());
        }
        let (none, _) = client::fetch(&target, None).await?;
        let bad = first.and_then(forged);
        let (forged_status, _) = client::fetch(&target, bad.as_ref()).await?;
        if none != StatusCode::UNAUTHORIZED || forged_status != StatusCode::UNAUTHORIZED {
            return Err(format!(
                "token checks are not enforced: no token -> {none}, forged signature -> {forged_status} (expected 401 for both)"
            ));
        }
        Ok("200 for the caller, 401 without a token, 401 for a forged signature".to_owned())
    }

    /// (b)-(e): one gateway process per scenario, measured with every protocol and mode.
    pub async fn gateway(&mut self, s: GatewayScenario<'_>) {
        if let Err(e) = self.gateway_inner(&s).await {
            self.abort(s.id, e);
        }
    }

    async fn gateway_inner(&mut self, s: &GatewayScenario<'_>) -> Result<(), String> {
        progress(&format!("{}: starting gateway", s.label));
        let gw = self.start_gateway(s).await?;
        let pid = gw.child.pid();
        self.memory(format!("gateway {}: idle after start", s.tag()), pid);
        let checked = self.verify_answers(gw.addr, &s.tokens, s.auth).await?;
        self.extras.checks.push(format!("{}: {checked}", s.tag()));
        let before = client::admin_get(gw.admin, "/metrics").await?.1;
        let protos = self.protos();
        let target = self.target(gw.addr);
        let watch = vec![pid, self.upstream_pid];
        self.matrix(
            s.id,
            &s.label,
            &target,
            &protos,
            s.tokens.clone(),
            watch,
            true,
            Some(gw.admin),
        )
        .await?;
        let after = client::admin_get(gw.admin, "/metrics").await?.1;
        self.counters(&s.tag(), &before, &after);
        self.memory(format!("gateway {}: after the scenario", s.tag()), pid);
        Ok(())
    }

    /// What the gateway counted during the scenario.
    fn counters(&mut self, id: &str, before: &str, after: &str) {
        let delta = |f: &str| client::metric_sum(after, f) - client::metric_sum(before, f);
        let requests = delta("accessgate_requests_total");
        let hits = delta("accessgate_token_cache_hits_total");
        let misses = delta("accessgate_token_cache_misses_total");
        let evals = delta("accessgate_policy_evaluations_total");
        let per_req = if requests > 0.0 {
            evals / requests
        } else {
            0.0
        };
        let mut line = format!(
            "{id}: gateway counted {requests:.0} requests, token cache {hits:.0} hits / {misses:.0} misses, {per_req:.1} policy evaluations per request"
        );
        if !id.starts_with('b') && requests > 0.0 && evals == 0.0 {
            line.push_str(" (WARNING: no policy was evaluated: is authorize in the stack?)");
        }
        progress(&line);
        self.extras.checks.push(line);
    }

    pub fn protos(&self) -> Vec<Proto> {
        let mut v = Vec::new();
        for p in &self.settings.protos {
            v.push(if p == "h2" { Proto::H2 } else { Proto::H1 });
        }
        v
    }

    /// Every protocol x mode for one target. Open loop offers `BENCH_RATE`, or 70% of the
    /// closed-loop req/s just measured for the same protocol. With the gateway's `admin`
    /// address, each row also gets the gateway's phase split over its window.
    #[allow(clippy::too_many_arguments)]
    async fn matrix(
        &mut self,
        id: &str,
        label: &str,
        target: &Target,
        protos: &[Proto],
        tokens: Arc<Vec<HeaderValue>>,
        watch: Vec<u32>,
        has_server: bool,
        admin: Option<SocketAddr>,
    ) -> Result<(), String> {
        for &proto in protos {
            // Each protocol must answer 200 before it is measured (a server that refuses
            // HTTP/2 requests would otherwise produce a fast row of errors).
            let (status, body) = client::fetch_with(target, proto, tokens.first()).await?;
            if status != StatusCode::OK {
                let snippet: String = body.chars().take(300).collect();
                self.abort(
                    id,
                    format!(
                        "{}: first response {status}, not 200: {snippet}",
                        proto.as_str()
                    ),
                );
                continue;
            }
            let mut closed_rps = None;
            for mode in self.settings.modes.clone() {
                let mode = if mode == "closed" {
                    Mode::Closed
                } else {
                    let rate = match (self.settings.rate, closed_rps) {
                        (Some(r), _) => r,
                        (None, Some(c)) => 0.7 * c,
                        (None, None) => {
                            let calib = self.load(proto, Mode::Closed, &tokens, &watch);
                            0.7 * driver::run(target, &calib).await?.rps()
                        }
                    };
                    if rate < 1.0 {
                        self.abort(id, format!("{}: no rate to offer", proto.as_str()));
                        continue;
                    }
                    Mode::Open(rate)
                };
                let load = self.load(proto, mode, &tokens, &watch);
                let before = match admin {
                    Some(a) => Some(client::admin_get(a, "/metrics").await?.1),
                    None => None,
                };
                let out = driver::run(target, &load).await?;
                if matches!(mode, Mode::Closed) {
                    closed_rps = Some(out.rps());
                }
                let mut row = Row::new(id, label, &load, &out, has_server);
                if let (Some(a), Some(before)) = (admin, before) {
                    let after = client::admin_get(a, "/metrics").await?.1;
                    row.phases = crate::phases::PhaseMeans::between(&before, &after);
                    // The window's answered requests must all be in the gateway's count
                    // (it also counts the warm-up's), or the split is of something else.
                    if row.phases.is_none_or(|p| p.requests < out.ok) {
                        row.notes.push(format!(
                            "phase split missing or short: the gateway counted {} requests, the driver {} answers",
                            row.phases.map_or(0, |p| p.requests),
                            out.ok
                        ));
                        row.phases = None;
                    }
                }
                progress(&format!(
                    "{label} {} {}: {:.0} req/s, p99 {:.2} ms{}",
                    row.proto,
                    row.mode,
                    row.rps,
                    row.pct_us[2] as f64 / 1000.0,
                    if row.flagged() {
                        " (FLAGGED: errors)"
                    } else {
                        ""
                    }
                ));
                self.rows.push(row);
            }
        }
        Ok(())
    }

    pub fn load(
        &self,
        proto: Proto,
        mode: Mode,
        tokens: &Arc<Vec<HeaderValue>>,
        watch: &[u32],
    ) -> Load {
        Load {
            proto,
            mode,
            conns: self.settings.conns,
            streams: self.settings.streams,
            warmup: self.settings.warmup,
            duration: self.settings.duration,
            tokens: tokens.clone(),
            watch: watch.to_vec(),
            rss_every: None,
        }
    }

    /// The peers that are installed, each in front of the same upstream.
    pub async fn peers(&mut self, files: &PeerFiles) {
        for peer in &peers::PEERS {
            if !self.settings.wants(peer.id) {
                continue;
            }
            if !peers::installed(peer.program) {
                let msg = format!(
                    "{}: skipped: {} not installed (apt-get install {})",
                    peer.id, peer.program, peer.program
                );
                progress(&msg);
                self.extras.skipped.push(msg);
                continue;
            }
            if let Err(e) = self.peer(peer, files, 1).await {
                self.abort(peer.id, e);
            }
            // BENCH_ALL_CORES: HAProxy with 2 threads, unpinned, beside the gateway's
            // 2-worker rows.
            if self.settings.all_cores
                && peer.id == "haproxy"
                && let Err(e) = self.peer(peer, files, 2).await
            {
                self.abort("haproxy-2t", e);
            }
        }
    }

    async fn peer(
        &mut self,
        peer: &peers::Peer,
        files: &PeerFiles,
        threads: usize,
    ) -> Result<(), String> {
        let (id, label, cpus) = match (peer.id, threads) {
            ("nginx", _) => ("nginx", "nginx 1 worker, TLS, no auth", self.pinning.server),
            ("haproxy", 1) => (
                "haproxy",
                "haproxy nbthread 1, TLS, no auth",
                self.pinning.server,
            ),
            ("haproxy", _) => ("haproxy-2t", "haproxy nbthread 2, TLS, no auth", None),
            _ => (
                "haproxy-jwt",
                "haproxy nbthread 1, jwt_verify RS256",
                self.pinning.server,
            ),
        };
        progress(&format!("{label}: starting"));
        let (child, addr) = peers::start(peer, files, self.upstream, cpus, threads)?;
        // The same request bytes as every other row (see the note in benches/proxy.rs).
        let tokens = self.token.clone();
        let checked = self.verify_answers(addr, &tokens, peer.needs_token).await?;
        self.extras.checks.push(format!("{}: {checked}", peer.id));
        let target = self.target(addr);
        let watch = vec![child.pid(), self.upstream_pid];
        let protos = self.protos();
        self.matrix(id, label, &target, &protos, tokens, watch, true, None)
            .await?;
        self.memory(format!("{id}: after the scenario"), child.pid());
        Ok(())
    }
}
