//! End-to-end latency benchmark: a load driver, the gateway and an upstream on 127.0.0.1,
//! measured over TLS with HTTP/1.1 keep-alive and HTTP/2, closed and open loop, against
//! nginx and HAProxy when they are installed.
//!
//! Run: `cargo bench --bench proxy` (method, knobs and the latest table:
//! `benches/README.md`, section "End-to-end proxy benchmark"). Results: one table on
//! stdout and `target/bench/proxy.json`.
//!
//! Processes: the echo upstream and the gateway are children of this binary re-executed
//! with `--serve-upstream` / `--serve-gateway CONFIG` (same library code as the release
//! `accessgate` binary: the bench profile inherits release), pinned with `taskset` to
//! CPU 0; this process, the load driver, pins itself to CPU 1 before it starts any thread.
//!
//! Scenarios: (a) the upstream directly, plain HTTP; (b) the gateway with `auth = "none"`;
//! (c) JWT validation + 20 policies + state lookups on one cached token; (d) as (c) with a
//! different token on every request and `cache_capacity = 1`, so each request pays one RSA
//! verification; (e) as (c) with 1M devices in state; then the peers.
//!
//! Without `--bench` (as `cargo test --all-targets` runs bench binaries) it does nothing.

#[path = "proxy/chart.rs"]
mod chart;
#[path = "proxy/client.rs"]
mod client;
#[path = "proxy/driver.rs"]
mod driver;
#[path = "proxy/fault_soak.rs"]
mod fault_soak;
#[path = "proxy/fixture.rs"]
mod fixture;
#[path = "proxy/html.rs"]
mod html;
#[path = "proxy/pairs.rs"]
mod pairs;
#[path = "proxy/peers.rs"]
mod peers;
#[path = "proxy/phases.rs"]
mod phases;
#[path = "proxy/procs.rs"]
mod procs;
#[path = "proxy/report.rs"]
mod report;
#[path = "proxy/scenarios.rs"]
mod scenarios;
#[path = "proxy/serve.rs"]
mod serve;
#[path = "proxy/settings.rs"]
mod settings;
#[path = "proxy/special.rs"]
mod special;
#[path = "proxy/targets.rs"]
mod targets;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::json;

use procs::progress;
use scenarios::{Bench, GatewayScenario};
use settings::{ALL_SCENARIOS, Settings};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = args.iter().position(|a| a == "--serve-gateway") {
        return match args.get(i + 1) {
            Some(path) => serve::gateway(Path::new(path)),
            None => {
                eprintln!("--serve-gateway needs a config path");
                ExitCode::FAILURE
            }
        };
    }
    if args.iter().any(|a| a == "--serve-upstream") {
        return serve::upstream();
    }
    // BENCH_FAULT_SOAK=SECS and its child roles (benches/proxy/fault_soak.rs).
    if let Some(code) = fault_soak::dispatch(&args) {
        return code;
    }
    if !args.iter().any(|a| a == "--bench") {
        println!("proxy bench: not run (no --bench flag); run it with `cargo bench --bench proxy`");
        return ExitCode::SUCCESS;
    }
    match bench() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("proxy bench failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Reuse the big state file while its app check-in time is well inside the policy's
/// 24 h offline period; regenerate it otherwise.
fn ensure_state(path: &Path, filler: usize, devices: usize) -> Result<(), String> {
    let fresh = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .is_some_and(|age| age < Duration::from_secs(6 * 3600));
    if fresh {
        progress(&format!("reusing {}", path.display()));
        return Ok(());
    }
    progress(&format!("writing {} ({devices} devices)", path.display()));
    let tmp = path.with_extension("json.tmp");
    fixture::write_state(&tmp, filler, devices)?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}

fn bench() -> Result<(), String> {
    let settings = Settings::from_env()?;
    accessgate::transport::tls::install_provider();
    let fx = fixture::Fixture::prepare()?;
    let state_small = fx.dir.join("state-small.json");
    fixture::write_state(&state_small, 1000, 1000)?;
    let wants_e = settings.wants("e") && settings.idle_conns.is_none() && settings.soak.is_none();
    let state_big = fx
        .dir
        .join(format!("state-{}-devices.json", settings.devices_e));
    if wants_e {
        ensure_state(&state_big, 1000, settings.devices_e)?;
    }

    // Tokens outlive the whole run (a soak included).
    let lifetime = Duration::from_secs(7200) + settings.soak.unwrap_or_default();
    let token = fx.token(lifetime)?;
    // Minting is slow (one RSA signature each): do it on every core, before pinning.
    let pool = if settings.wants("d") && settings.idle_conns.is_none() && settings.soak.is_none() {
        progress(&format!(
            "minting {} distinct tokens for (d)",
            settings.token_pool
        ));
        fx.token_pool(settings.token_pool, lifetime)?
    } else {
        Vec::new()
    };
    let files = peers::PeerFiles::write(&fx, &token)?;

    let nofile = procs::raise_nofile(65_536);
    let pinning = procs::Pinning::setup();
    progress(&pinning.note);
    progress(&format!("open-file limit: {nofile}"));
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let tls = client::TlsClients::new(&fx.ca())?;
    let token = Arc::new(client::bearer_values(std::slice::from_ref(&token))?);
    let pool = Arc::new(client::bearer_values(&pool)?);

    // The driver: one thread (pinned above), so it never competes with the servers' core.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("driver runtime: {e}"))?;
    let (upstream_child, words) = procs::spawn_ready(
        "upstream",
        &exe,
        &["--serve-upstream"],
        pinning.server,
        Duration::from_secs(20),
    )?;
    let upstream = words
        .get(1)
        .and_then(|w| w.parse().ok())
        .ok_or_else(|| format!("upstream READY line without address: {words:?}"))?;
    progress(&format!(
        "upstream (echo, 1 thread) on {upstream}, pid {}",
        upstream_child.pid()
    ));
    let settings_json = json!({
        "duration_s": settings.duration.as_secs_f64(), "warmup_s": settings.warmup.as_secs_f64(),
        "conns": settings.conns, "h2_streams": settings.streams, "rate": settings.rate,
        "scenarios": settings.scenarios, "protos": settings.protos, "modes": settings.modes,
        "token_pool": settings.token_pool, "devices_e": settings.devices_e,
        "quick": settings.quick, "nofile": nofile,
        "cpus_servers": pinning.server, "cpus_driver": pinning.driver,
        "tls": "TLS 1.3, TLS13_AES_128_GCM_SHA256, X25519, ECDSA P-256 server certificate",
    });
    let mut b = Bench {
        fx,
        exe,
        tls,
        token,
        pool,
        upstream,
        upstream_pid: upstream_child.pid(),
        rows: Vec::new(),
        extras: report::Extras {
            pinning: pinning.note.clone(),
            settings: settings_json,
            ..report::Extras::default()
        },
        pinning,
        settings,
    };
    rt.block_on(run(&mut b, &state_small, &state_big, &files));
    drop(upstream_child);
    finish(&b)
}

async fn run(b: &mut Bench, small: &Path, big: &Path, files: &peers::PeerFiles) {
    if let Some(n) = b.settings.idle_conns {
        match special::idle_conns(b, n, small).await {
            Ok(v) => b.extras.special = Some(v),
            Err(e) => b.abort("idle", e),
        }
        return;
    }
    if let Some(secs) = b.settings.soak {
        match special::soak(b, secs, small).await {
            Ok(v) => b.extras.special = Some(v),
            Err(e) => b.abort("soak", e),
        }
        return;
    }
    for id in ALL_SCENARIOS {
        if !b.settings.wants(id) {
            continue;
        }
        match id {
            "a" => b.upstream_direct().await,
            "b" | "c" | "d" | "e" => {
                if id == "c" {
                    // The shipped defaults first: the row a user gets without tuning.
                    b.gateway(shipped_scenario(b, small, big)).await;
                }
                b.gateway(gateway_scenario(b, id, 1, true, small, big))
                    .await;
                if b.settings.two_workers() && id != "e" {
                    b.gateway(gateway_scenario(b, id, 2, false, small, big))
                        .await;
                }
            }
            // The peers run together, in their own order, after the gateway rows.
            _ => {}
        }
    }
    if peers::PEERS.iter().any(|p| b.settings.wants(p.id)) {
        b.peers(files).await;
    }
    if let Some(n) = b.settings.pairs {
        pairs::run(b, n, small, big).await;
    }
}

/// Row (s): scenario (c) with the config a user ships (decision log to a file, the
/// default runtime).
fn shipped_scenario<'a>(b: &Bench, small: &'a Path, big: &'a Path) -> GatewayScenario<'a> {
    let mut s = gateway_scenario(b, "s", 1, true, small, big);
    s.label = "(s) as (c), shipped defaults: decision log to a file".to_owned();
    s.worker_threads = 0;
    s.shipped = true;
    s
}

fn gateway_scenario<'a>(
    b: &Bench,
    id: &'a str,
    workers: usize,
    pinned: bool,
    small: &'a Path,
    big: &'a Path,
) -> GatewayScenario<'a> {
    let base = match id {
        "b" => "(b) gateway, auth none",
        "c" => "(c) gateway, JWT+20 policies, cached",
        "d" => "(d) gateway, fresh token/request",
        _ => "(e) as (c), 1M devices in state",
    };
    let label = if workers == 1 {
        base.to_owned()
    } else {
        format!("{base} [{workers} thr]")
    };
    GatewayScenario {
        id,
        label,
        auth: id != "b",
        // (d): every request brings a token the cache has not seen (a pool far larger
        // than the cache, used round robin), so each one is verified.
        cache_capacity: if id == "d" { 1 } else { 100_000 },
        state: if id == "e" { big } else { small },
        worker_threads: workers,
        pinned,
        // Every row sends the same request bytes, token included (the no-auth rows just
        // do not check it), so that rows differ only in the work the proxy does: the
        // token's 1.5 KB still crosses TLS, the proxy and the upstream everywhere.
        tokens: match id {
            "d" => b.pool.clone(),
            _ => b.token.clone(),
        },
        shipped: false,
    }
}

/// The latency charts and the HTML report (a failure here is reported, the run stands).
fn charts(b: &Bench) {
    let heading = format!(
        "{}; warm-up {:?}, measured {:?}, {} connections, {} h2 streams each{}",
        b.extras.pinning,
        b.settings.warmup,
        b.settings.duration,
        b.settings.conns,
        b.settings.streams,
        if b.settings.quick {
            "; BENCH_QUICK=1: smoke only, not comparable"
        } else {
            ""
        }
    );
    match html::write(
        &b.fx.dir,
        &b.rows,
        &heading,
        &targets::lines(&b.rows, &b.extras.pairs)
            .lines()
            .map(str::to_owned)
            .collect::<Vec<_>>(),
    ) {
        Ok(paths) => {
            for p in paths {
                println!("written: {}", p.display());
            }
        }
        Err(e) => eprintln!("charts not written: {e}"),
    }
}

/// Print the tables and write the JSON.
fn finish(b: &Bench) -> Result<(), String> {
    println!();
    println!(
        "accessgate end-to-end benchmark ({}; {})",
        b.extras.pinning,
        report::machine()["cpu_model"]
            .as_str()
            .unwrap_or("unknown CPU")
    );
    if b.extras.special.is_none() {
        println!(
            "warm-up {:?}, measured {:?}, {} connections, {} h2 streams each; TLS 1.3 AES-128-GCM",
            b.settings.warmup, b.settings.duration, b.settings.conns, b.settings.streams
        );
    }
    if b.settings.quick {
        println!("BENCH_QUICK=1: 1 s runs, smoke only; figures are not comparable");
    }
    println!(
        "[runtime] scheduler of the tuned and [2 thr] rows: {}",
        b.settings
            .scheduler
            .as_deref()
            .unwrap_or("the gateway's default (BENCH_SCHEDULER unset)")
    );
    if !b.rows.is_empty() {
        println!();
        print!("{}", report::table(&b.rows));
    }
    let phases = phases::table(&b.rows);
    if !phases.is_empty() {
        println!();
        print!("{phases}");
    }
    if !b.extras.pairs.is_empty() {
        println!();
        print!("{}", pairs::table(&b.extras.pairs));
    }
    let targets = targets::lines(&b.rows, &b.extras.pairs);
    if !targets.is_empty() {
        println!();
        print!("{targets}");
    }
    if !b.extras.memory.is_empty() {
        println!();
        print!("{}", report::memory_table(&b.extras.memory));
    }
    for (title, items) in [
        ("checks", &b.extras.checks),
        ("skipped", &b.extras.skipped),
        ("ABORTED", &b.extras.aborted),
    ] {
        for i in items {
            println!("{title}: {i}");
        }
    }
    if let Some(s) = b
        .extras
        .special
        .as_ref()
        .and_then(|s| s["summary"].as_str())
    {
        println!("{s}");
    }
    let path: PathBuf = b.fx.dir.join("proxy.json");
    report::write_json(&path, &b.rows, &b.extras)?;
    println!("\nwritten: {}", path.display());
    if !b.rows.is_empty() {
        charts(b);
    }
    if b.rows.iter().any(report::Row::flagged) || !b.extras.aborted.is_empty() {
        println!("NOTE: some rows are flagged (errors) or scenarios aborted; see above");
    }
    Ok(())
}
