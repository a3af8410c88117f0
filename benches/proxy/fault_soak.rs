//! `BENCH_FAULT_SOAK=SECS cargo bench --bench proxy`: the fault soak. Steady closed-loop
//! load on HTTP/1.1 and HTTP/2 while, on a fixed schedule (one 60 s cycle after another):
//! the upstream is killed and restarted on its port, the key server rotates its key
//! (announce the new one, sign with it once the gateway has it, withdraw the old one) and
//! flaps (500s, then refused connections), the state server fails (500, a body that is not
//! JSON, refused) and recovers, and changes the state (a user's device turns noncompliant
//! and back), the config is reloaded every 10 s (a harmless route renamed, `SIGHUP`) and
//! the certificate and key are swapped for a new pair.
//!
//! Every answer is judged against what its token class should get at that moment
//! (`fault_expect`); a run with a wrong decision, a request the gateway could have served
//! but did not, a handshake with the wrong certificate, a transition the gateway never
//! applied or a refused reload prints the evidence and exits 1. Bounded: every wait has a
//! limit and the load stops at SECS.

#[path = "fault_expect.rs"]
mod expect;
#[path = "fault_fixture.rs"]
mod fixture_f;
#[path = "fault_load.rs"]
mod load;
#[path = "fault_report.rs"]
mod report;
#[path = "fault_roles.rs"]
mod roles;
#[path = "fault_servers.rs"]
mod servers;

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::client::{self, Proto};
use crate::procs::{self, ChildGuard, progress};
use expect::{CLASSES, Change, Class, History, World};
use report::{metric, report};
use servers::{FaultServer, Mode};

/// The schedule repeats every cycle.
const CYCLE: f64 = 60.0;
/// A transition the gateway has not applied within this is a failure.
const APPLY_BOUND: Duration = Duration::from_secs(30);

/// Handle `--serve-fault-*` roles and the `BENCH_FAULT_SOAK` mode; `None`: not ours.
pub fn dispatch(args: &[String]) -> Option<ExitCode> {
    let arg = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .map(|i| args.get(i + 1).cloned().unwrap_or_default())
    };
    if let Some(p) = arg("--serve-fault-gateway") {
        return Some(roles::gateway(Path::new(&p)));
    }
    if let Some(a) = arg("--serve-fault-upstream") {
        return Some(roles::upstream(&a));
    }
    if !args.iter().any(|a| a == "--bench") {
        return None;
    }
    let v = std::env::var("BENCH_FAULT_SOAK")
        .ok()
        .filter(|v| !v.trim().is_empty())?;
    let secs = match v.trim().parse::<f64>() {
        Ok(s) if s.is_finite() && s >= 10.0 => Duration::from_secs_f64(s),
        _ => match humantime::parse_duration(v.trim()) {
            Ok(d) if d >= Duration::from_secs(10) => d,
            _ => {
                eprintln!("BENCH_FAULT_SOAK={v}: expected seconds (at least 10)");
                return Some(ExitCode::FAILURE);
            }
        },
    };
    let break_class = match std::env::var("BENCH_FAULT_SOAK_BREAK").ok().as_deref() {
        None | Some("") => None,
        Some(name) => match CLASSES.iter().find(|c| c.as_str() == name) {
            Some(c) => Some(*c),
            None => {
                eprintln!("BENCH_FAULT_SOAK_BREAK={name}: not a class");
                return Some(ExitCode::FAILURE);
            }
        },
    };
    Some(run(secs, break_class))
}

fn run(secs: Duration, break_class: Option<Class>) -> ExitCode {
    accessgate::transport::tls::install_provider();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("fault soak: runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(soak(secs, break_class)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("fault soak aborted: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Counters of what the controller did.
#[derive(Debug, Default)]
pub struct Events {
    pub upstream_restarts: u64,
    pub reloads_triggered: u64,
    pub reloads_confirmed: u64,
    pub cert_swaps: u64,
    pub cert_swaps_verified: u64,
    pub key_rotations: u64,
    pub key_withdrawals: u64,
    pub jwks_flaps: u64,
    pub state_flips: u64,
    pub state_faults: u64,
    pub failures: Vec<String>,
    pub notes: Vec<String>,
}

/// What both controller tasks share.
struct Ctl {
    t0: Instant,
    deadline: Instant,
    admin: SocketAddr,
    history: Arc<History>,
    events: Mutex<Events>,
}

impl Ctl {
    fn ev(&self) -> std::sync::MutexGuard<'_, Events> {
        self.events.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sleep until `offset` s after the start; `false` when a step there would not
    /// finish before the end (`need` s).
    async fn at(&self, offset: f64, need: f64) -> bool {
        let when = self.t0 + Duration::from_secs_f64(offset);
        if when + Duration::from_secs_f64(need) > self.deadline {
            return false;
        }
        tokio::time::sleep_until(when).await;
        true
    }

    async fn metrics(&self) -> String {
        client::admin_get(self.admin, "/metrics")
            .await
            .map(|r| r.1)
            .unwrap_or_default()
    }

    /// Wait (bounded) until the gateway has completed the fetch that first carried
    /// `srv`'s current document: its count of good fetches (`family` with any of
    /// `outcomes`) reaches the server's ordinal of that answer.
    async fn wait_fetched(&self, srv: &FaultServer, family: &str, outcomes: &[&str]) -> bool {
        let limit = (Instant::now() + APPLY_BOUND).min(self.deadline);
        loop {
            if let Some(n) = srv.first_good_of_current() {
                let m = self.metrics().await;
                let got: f64 = outcomes
                    .iter()
                    .map(|o| metric(&m, family, &[("outcome", o)]))
                    .sum();
                if got >= n as f64 {
                    return true;
                }
            }
            if Instant::now() >= limit {
                let what = format!(
                    "{}: the gateway did not apply document version within {:?}",
                    srv.name, APPLY_BOUND
                );
                if limit >= self.deadline {
                    self.ev().notes.push(format!("{what} (run ended)"));
                } else {
                    self.ev().failures.push(what);
                }
                return false;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn live_hash(text: &str) -> Option<String> {
    let line = text
        .lines()
        .find(|l| l.starts_with("accessgate_config_info{"))?;
    let start = line.find("hash=\"")? + 6;
    let end = line[start..].find('"')? + start;
    Some(line[start..end].to_owned())
}

fn sighup(pid: u32) -> Result<(), String> {
    std::process::Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .map_err(|e| format!("kill -HUP: {e}"))
        .and_then(|s| {
            if s.success() {
                Ok(())
            } else {
                Err(format!("kill -HUP {pid}: {s}"))
            }
        })
}

async fn spawn(name: &'static str, args: Vec<String>) -> Result<(ChildGuard, Vec<String>), String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    tokio::task::spawn_blocking(move || {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        procs::spawn_ready(name, &exe, &a, None, Duration::from_secs(30))
    })
    .await
    .map_err(|e| format!("{name}: {e}"))?
}

async fn soak(secs: Duration, break_class: Option<Class>) -> Result<bool, String> {
    let dir = crate::fixture::bench_dir().join("fault-soak");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let cycles = (secs.as_secs_f64() / CYCLE).ceil().max(1.0) as usize;
    progress(&format!(
        "fault soak: {secs:?}, {cycles} cycle(s); making {} certificate and {} key generations",
        cycles + 1,
        cycles + 2
    ));
    let certs = fixture_f::cert_gens(&dir, cycles + 1)?;
    let signers = tokio::task::spawn_blocking(move || fixture_f::signers(cycles + 2))
        .await
        .map_err(|e| e.to_string())??;
    let lifetime = secs + Duration::from_secs(7200);
    let tokens = signers
        .iter()
        .map(|s| fixture_f::tokens(s, lifetime))
        .collect::<Result<Vec<_>, _>>()?;
    let live = fixture_f::Live::new(&dir)?;
    live.install_cert(&certs[0])?;

    let jwks = FaultServer::start("jwks", fixture_f::jwks(&signers, 1 << 1), false).await?;
    let state = FaultServer::start("state", fixture_f::state(false), true).await?;
    let (up_child, words) = spawn(
        "upstream",
        vec!["--serve-fault-upstream".into(), "127.0.0.1:0".into()],
    )
    .await?;
    let upstream: SocketAddr = words
        .get(1)
        .and_then(|w| w.parse().ok())
        .ok_or("upstream READY line without address")?;
    live.write_config(upstream, jwks.addr, state.addr, 0)?;
    let (mut gw, words) = spawn(
        "gateway",
        vec![
            "--serve-fault-gateway".into(),
            live.config.display().to_string(),
        ],
    )
    .await?;
    let parse = |i: usize| words.get(i).and_then(|w| w.parse::<SocketAddr>().ok());
    let (addr, admin) = parse(1)
        .zip(parse(2))
        .ok_or("gateway READY line without addresses")?;
    let ready_by = Instant::now() + Duration::from_secs(30);
    while !matches!(client::admin_get(admin, "/readyz").await, Ok((s, _)) if s.is_success()) {
        if Instant::now() > ready_by {
            return Err("gateway not ready within 30 s".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    progress(&format!(
        "fault soak: gateway {addr} (admin {admin}, pid {}), upstream {upstream}, jwks {}, state {}",
        gw.pid(),
        jwks.addr,
        state.addr
    ));

    let history = Arc::new(History::new(World {
        upstream_down: false,
        jwks: Change::settled(1 << 1),
        sign_gen: 1,
        flip_noncompliant: Change::settled(false),
        cert: Change::settled(0),
    }));
    let cas: Vec<_> = certs.iter().map(|c| c.ca.clone()).collect();
    let [tls_h1, tls_h2] = load::client_configs(&cas)?;
    let shared = Arc::new(load::Shared {
        addr,
        tls_h1,
        tls_h2,
        certs: certs.iter().map(|c| c.cert_der.clone()).collect(),
        tokens,
        users: [
            fixture_f::USER_GOOD,
            fixture_f::USER_FLIP,
            fixture_f::USER_BLOCKED,
            fixture_f::USER_GOOD,
            fixture_f::USER_GOOD,
            fixture_f::USER_GOOD,
            fixture_f::USER_GOOD,
        ],
        history: history.clone(),
        stats: Mutex::new(load::Stats::default()),
        break_class,
    });
    let t0 = Instant::now();
    let deadline = t0 + secs;
    let ctl = Arc::new(Ctl {
        t0,
        deadline,
        admin,
        history: history.clone(),
        events: Mutex::new(Events::default()),
    });

    let mut conns = tokio::task::JoinSet::new();
    for i in 0..3 {
        let life = Duration::from_millis(3000 + 700 * i as u64);
        conns.spawn(load::connection(
            shared.clone(),
            Proto::H1,
            1,
            life,
            i,
            deadline,
        ));
    }
    for i in 0..2 {
        let life = Duration::from_millis(5000 + 1000 * i as u64);
        conns.spawn(load::connection(
            shared.clone(),
            Proto::H2,
            4,
            life,
            i * 2,
            deadline,
        ));
    }
    let pid = gw.pid();
    let rss = tokio::spawn(async move {
        let mut out = Vec::new();
        let mut k = 0u32;
        loop {
            let when = t0 + Duration::from_secs(10) * k;
            if when > deadline {
                break;
            }
            tokio::time::sleep_until(when).await;
            if let Some((r, _)) = procs::rss_kib(pid) {
                out.push((f64::from(k) * 10.0, r));
            }
            k += 1;
        }
        tokio::time::sleep_until(deadline).await;
        if let Some((r, _)) = procs::rss_kib(pid) {
            out.push((deadline.duration_since(t0).as_secs_f64(), r));
        }
        out
    });

    let reloader = reload_task(
        ctl.clone(),
        shared.clone(),
        &live,
        &certs,
        pid,
        upstream,
        &jwks,
        &state,
    );
    let faults = fault_task(ctl.clone(), up_child, upstream, &signers, &jwks, &state);
    let ((), up_child) = tokio::join!(reloader, faults);
    while conns.join_next().await.is_some() {}
    let rss = rss.await.unwrap_or_default();
    let m = ctl.metrics().await;
    let gateway_alive = gw.alive();
    drop(up_child);
    drop(gw);

    let stats = shared.stats.lock().unwrap_or_else(PoisonError::into_inner);
    let ev = ctl.ev();
    let (text, pass) = report(
        &stats,
        &ev,
        &m,
        &rss,
        history.len(),
        secs,
        gateway_alive,
        break_class,
    );
    println!("{text}");
    Ok(pass)
}

/// Config reloads every 10 s (at 5, 15, ... s) and a certificate swap at 40 s of every
/// cycle, one after the other so their reload counts never mix.
#[allow(clippy::too_many_arguments)]
async fn reload_task(
    ctl: Arc<Ctl>,
    sh: Arc<load::Shared>,
    live: &fixture_f::Live,
    certs: &[fixture_f::CertGen],
    pid: u32,
    upstream: SocketAddr,
    jwks: &FaultServer,
    state: &FaultServer,
) {
    let mut marker = 0usize;
    let mut cert = 0usize;
    let mut k = 0u32;
    loop {
        let t = 5.0 + 10.0 * f64::from(k);
        k += 1;
        if !ctl.at(t, 3.0).await {
            break;
        }
        marker += 1;
        ctl.ev().reloads_triggered += 1;
        let step = async {
            live.write_config(upstream, jwks.addr, state.addr, marker)?;
            let want = fixture_f::config_hash(&live.config)?;
            sighup(pid)?;
            let limit = Instant::now() + Duration::from_secs(10);
            loop {
                if live_hash(&ctl.metrics().await).as_deref() == Some(want.as_str()) {
                    return Ok::<_, String>(());
                }
                if Instant::now() > limit {
                    return Err(format!("config {want} not live 10 s after SIGHUP"));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        match step.await {
            Ok(()) => ctl.ev().reloads_confirmed += 1,
            Err(e) => ctl.ev().failures.push(format!("reload {marker}: {e}")),
        }
        // The certificate swap sits between the reloads at 35 and 45 s of a cycle.
        let swap_at = (t / CYCLE).floor() * CYCLE + 40.0;
        if t < swap_at && swap_at < t + 10.0 && cert + 1 < certs.len() && ctl.at(swap_at, 4.0).await
        {
            cert += 1;
            swap_cert(&ctl, &sh, live, &certs[cert], cert, pid).await;
        }
    }
}

async fn swap_cert(
    ctl: &Ctl,
    sh: &load::Shared,
    live: &fixture_f::Live,
    next: &fixture_f::CertGen,
    generation: usize,
    pid: u32,
) {
    let before = metric(
        &ctl.metrics().await,
        "accessgate_reloads_total",
        &[("what", "config"), ("outcome", "success")],
    );
    ctl.history.update(|w| w.cert = w.cert.to(generation));
    ctl.ev().cert_swaps += 1;
    let step = async {
        live.install_cert(next)?;
        sighup(pid)?;
        let limit = Instant::now() + Duration::from_secs(10);
        loop {
            let now = metric(
                &ctl.metrics().await,
                "accessgate_reloads_total",
                &[("what", "config"), ("outcome", "success")],
            );
            if now > before {
                break;
            }
            if Instant::now() > limit {
                return Err("no config reload 10 s after the certificate swap".to_owned());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let seen = load::probe_cert(sh).await?;
        if seen != next.cert_der {
            return Err(format!(
                "a new handshake after the reload still sees an old certificate (generation {:?})",
                sh.certs.iter().position(|c| *c == seen)
            ));
        }
        Ok::<_, String>(())
    };
    match step.await {
        Ok(()) => ctl.ev().cert_swaps_verified += 1,
        Err(e) => ctl
            .ev()
            .failures
            .push(format!("certificate swap {generation}: {e}")),
    }
    ctl.history.update(|w| w.cert = w.cert.applied());
}

/// Upstream restarts, key rotation and flaps, state failures and changes.
async fn fault_task(
    ctl: Arc<Ctl>,
    up: ChildGuard,
    upstream: SocketAddr,
    signers: &[accessgate::authn::dev::DevSigner],
    jwks: &FaultServer,
    state: &FaultServer,
) -> Option<ChildGuard> {
    let mut up = Some(up);
    let jwks_fam = "accessgate_jwks_refresh_total";
    let mut c = 0usize;
    loop {
        let base = CYCLE * c as f64;
        if !ctl.at(base + 8.0, 6.0).await {
            break;
        }
        // The upstream: killed, down 2 s, restarted on its port; "unservable" ends 2 s
        // after it is back (pooled connections to the dead one are gone by then).
        ctl.history.update(|w| w.upstream_down = true);
        let dead = up.take();
        let _ = tokio::task::spawn_blocking(move || drop(dead)).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        up = match spawn(
            "upstream",
            vec!["--serve-fault-upstream".into(), upstream.to_string()],
        )
        .await
        {
            Ok((child, _)) => Some(child),
            Err(e) => {
                ctl.ev().failures.push(format!("upstream restart: {e}"));
                return None;
            }
        };
        ctl.ev().upstream_restarts += 1;
        tokio::time::sleep(Duration::from_secs(2)).await;
        ctl.history.update(|w| w.upstream_down = false);

        // Key rotation, step 1: announce generation c+2 beside c+1; sign with it once
        // the gateway has it.
        let mut announced = false;
        if ctl.at(base + 14.0, 4.0).await {
            let set = (1u64 << (c + 1)) | (1u64 << (c + 2));
            // The window opens before the server changes, so no answer can precede it.
            ctl.history.update(|w| w.jwks = w.jwks.to(set));
            jwks.set_body(fixture_f::jwks(signers, set));
            if ctl.wait_fetched(jwks, jwks_fam, &["success"]).await {
                // The success counter moves just before the key set is swapped.
                tokio::time::sleep(Duration::from_millis(200)).await;
                ctl.ev().key_rotations += 1;
            }
            ctl.history.update(|w| {
                w.jwks = w.jwks.applied();
                w.sign_gen = c + 2;
            });
            announced = true;
        }
        if ctl.at(base + 20.0, 4.0).await {
            flip_state(&ctl, state, true).await;
        }
        // Step 2: withdraw generation c+1.
        if announced && ctl.at(base + 26.0, 4.0).await {
            let set = 1u64 << (c + 2);
            // The window opens before the server changes, so no answer can precede it.
            ctl.history.update(|w| w.jwks = w.jwks.to(set));
            jwks.set_body(fixture_f::jwks(signers, set));
            if ctl.wait_fetched(jwks, jwks_fam, &["success"]).await {
                tokio::time::sleep(Duration::from_millis(200)).await;
                ctl.ev().key_withdrawals += 1;
            }
            ctl.history.update(|w| w.jwks = w.jwks.applied());
        }
        // Sources failing, interleaved: nothing the gateway decides may change.
        for (t, srv, mode) in [
            (30.0, state, Mode::Error),
            (32.0, jwks, Mode::Error),
            (34.0, state, Mode::Garbage),
            (36.0, jwks, Mode::Refuse),
            (38.0, state, Mode::Refuse),
            (40.0, jwks, Mode::Serve),
            (42.0, state, Mode::Serve),
        ] {
            // Always recover, even when the run is about to end.
            if !ctl.at(base + t, 0.0).await && mode != Mode::Serve {
                continue;
            }
            if let Err(e) = srv.set_mode(mode).await {
                ctl.ev().failures.push(e);
            }
            if mode != Mode::Serve {
                if srv.name == "jwks" {
                    ctl.ev().jwks_flaps += 1;
                } else {
                    ctl.ev().state_faults += 1;
                }
            }
        }
        if ctl.at(base + 46.0, 3.0).await {
            flip_state(&ctl, state, false).await;
        }
        c += 1;
    }
    up
}

async fn flip_state(ctl: &Ctl, state: &FaultServer, noncompliant: bool) {
    ctl.history
        .update(|w| w.flip_noncompliant = w.flip_noncompliant.to(noncompliant));
    state.set_body(fixture_f::state(noncompliant));
    if ctl
        .wait_fetched(
            state,
            "accessgate_state_refresh_total",
            &["updated", "unchanged"],
        )
        .await
    {
        ctl.ev().state_flips += 1;
    }
    ctl.history
        .update(|w| w.flip_noncompliant = w.flip_noncompliant.applied());
}
