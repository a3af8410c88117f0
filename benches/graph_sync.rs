//! One full Graph sync of a generated tenant (100k users, 300k managed devices, 300k app
//! registrations, nested groups, two app protection policies) from the in-process Graph
//! double on loopback, through the real connector (`GraphSource`), then one delta round.
//!
//! Prints the wall time of each round, peak resident memory (VmHWM from
//! /proc/self/status, before and after the sync: the double and its tenant live in this
//! process too, so the "before" figure is theirs), and requests sent per collection against
//! pages served (the connector must read each page exactly once). Exits 1 when a round
//! fails or a collection was read more often than it has pages.
//!
//! `cargo bench --bench graph_sync` (sizes: `GRAPH_BENCH_USERS`, `GRAPH_BENCH_DEVICES`,
//! `GRAPH_BENCH_REGISTRATIONS`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/graph_double/mod.rs"]
mod graph_double;

use std::time::{Duration, Instant};

use accessgate::config::{GraphApp, GraphCloud, GraphConfig, GraphCredential};
use accessgate::ops::metrics::Metrics;
use accessgate::state::graph::{Fetch, GraphSource, RetryPolicy};
use graph_double::{Collection, DoubleConfig, GraphDouble, INTUNE_A, generate};
use prometheus::core::Collector;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// (VmRSS, VmHWM) in MiB.
fn memory() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map(|kb| kb / 1024.0)
            .unwrap_or(f64::NAN)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// CPU seconds (user + system) this process has used: on a shared machine the wall time
/// says more about the neighbours than about the sync.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the ")" that ends the command name: utime is the 12th, stime the 13th.
    let rest = stat.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0.0))
        .collect();
    let ticks = 100.0; // USER_HZ on Linux
    (f.get(11).copied().unwrap_or(0.0) + f.get(12).copied().unwrap_or(0.0)) / ticks
}

/// Seconds the connector spent reading each collection (its
/// `accessgate_graph_sync_duration_seconds` sums), by collection.
fn read_times(m: &Metrics) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    for family in m.graph_sync_duration_seconds.collect() {
        for metric in family.get_metric() {
            let name = metric
                .get_label()
                .iter()
                .find(|l| l.name() == "collection")
                .map(|l| l.value().to_string())
                .unwrap_or_default();
            out.push((name, metric.get_histogram().get_sample_sum()));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The connector's own count: `accessgate_graph_requests_total` by (collection, status).
fn sent(m: &Metrics) -> Vec<(String, String, u64)> {
    let mut out = Vec::new();
    for family in m.graph_requests_total.collect() {
        for metric in family.get_metric() {
            let label = |name: &str| {
                metric
                    .get_label()
                    .iter()
                    .find(|l| l.name() == name)
                    .map(|l| l.value().to_string())
                    .unwrap_or_default()
            };
            let n = metric.get_counter().get_value() as u64;
            out.push((label("collection"), label("status"), n));
        }
    }
    out.sort();
    out
}

fn main() {
    let users = env_usize("GRAPH_BENCH_USERS", 100_000);
    let devices = env_usize("GRAPH_BENCH_DEVICES", 300_000);
    let registrations = env_usize("GRAPH_BENCH_REGISTRATIONS", 300_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let ok = rt.block_on(run(users, devices, registrations));
    if !ok {
        std::process::exit(1);
    }
}

async fn run(users: usize, devices: usize, registrations: usize) -> bool {
    let t = Instant::now();
    let g = generate(users, devices, registrations, 2026);
    eprintln!(
        "generated {users} users, {devices} devices, {registrations} registrations in {:.2?}",
        t.elapsed()
    );
    let apps: Vec<GraphApp> = g
        .apps
        .iter()
        .map(|(client, ios, android)| GraphApp {
            client_id: client.to_string(),
            ios_bundle_ids: ios.iter().map(|s| s.to_string()).collect(),
            android_package_ids: android.iter().map(|s| s.to_string()).collect(),
        })
        .collect();
    let dcfg = DoubleConfig::default();
    let dir = tempfile::tempdir().expect("temp dir");
    let secret = dir.path().join("graph-secret");
    std::fs::write(&secret, dcfg.client_secret.clone().unwrap_or_default()).expect("secret file");
    let cache = dir.path().join("cache");
    std::fs::create_dir_all(&cache).expect("cache dir");
    let double = GraphDouble::start(g.tenant, dcfg.clone()).await;
    let h = double.handle();
    let cfg = GraphConfig {
        tenant_id: dcfg.tenant_id.clone(),
        client_id: dcfg.client_id.clone(),
        credential: GraphCredential::SecretFile(secret),
        cloud: GraphCloud::Global,
        login_url: double.url(),
        graph_url: double.url(),
        licensed_service_plans: vec![INTUNE_A.to_string()],
        groups: Vec::new(),
        apps,
        warnings: Vec::new(),
    };
    let (rss0, hwm0) = memory();
    let metrics = Metrics::new();
    let source = GraphSource::new(
        &cfg,
        Some(&cache),
        Some(metrics.clone()),
        RetryPolicy::default(),
    )
    .expect("connector");

    let t = Instant::now();
    let cpu0 = cpu_seconds();
    let full = source.fetch(false).await;
    let full_wall = t.elapsed();
    let full_cpu = cpu_seconds() - cpu0;
    let times_full = read_times(&metrics);
    let (rss1, hwm1) = memory();
    let counters_full = h.counters();
    let sent_full = sent(&metrics);
    let full_counts = match &full {
        Ok(Fetch::State { state, .. }) => format!("{}", state.counts()),
        Err(e) => format!("FAILED: {e}"),
    };

    // A second round: users through the deltaLink (a few changes), Intune read again.
    let some_user = h.with_tenant(|t| t.users.first().map(|u| u.id.to_string()));
    if let Some(u) = &some_user {
        h.set_sign_in_sessions_valid_from(u, "2026-12-01T09:00:00Z");
    }
    h.reset_counters();
    let t = Instant::now();
    let cpu1 = cpu_seconds();
    let delta = source.fetch(true).await;
    let delta_wall = t.elapsed();
    let delta_cpu = cpu_seconds() - cpu1;
    let times_both = read_times(&metrics);
    let (rss2, hwm2) = memory();
    let counters_delta = h.counters();
    let sent_both = sent(&metrics);

    println!(
        "graph_sync: {users} users, {devices} managed devices, {registrations} app registrations"
    );
    println!("| round | wall time | CPU time (process, user + system) | result |");
    println!("|---|---|---|---|");
    println!(
        "| full sync | {:.2} s | {full_cpu:.2} s | {full_counts} |",
        full_wall.as_secs_f64()
    );
    println!(
        "| delta round | {:.2} s | {delta_cpu:.2} s | {} |",
        delta_wall.as_secs_f64(),
        match &delta {
            Ok(Fetch::State { state, .. }) => format!("{}", state.counts()),
            Err(e) => format!("FAILED: {e}"),
        }
    );
    println!();
    println!("| memory | VmRSS | VmHWM |");
    println!("|---|---|---|");
    println!("| before the sync (double + generated tenant) | {rss0:.0} MiB | {hwm0:.0} MiB |");
    println!("| after the full sync | {rss1:.0} MiB | {hwm1:.0} MiB |");
    println!("| after the delta round | {rss2:.0} MiB | {hwm2:.0} MiB |");
    println!();
    let mut ok = full.is_ok() && delta.is_ok();
    for (round, c) in [("full", &counters_full), ("delta", &counters_delta)] {
        println!("| {round} round: collection | requests (status: count) | pages served | items |");
        println!("|---|---|---|---|");
        for coll in c.collections() {
            let statuses: Vec<String> = c
                .requests
                .iter()
                .filter(|((cc, _), _)| *cc == coll)
                .map(|((_, s), n)| format!("{s}: {n}"))
                .collect();
            let (req, pages) = (c.requests(coll), c.pages(coll));
            let mark = if coll == Collection::Token || req == pages {
                ""
            } else {
                " MISMATCH"
            };
            if !mark.is_empty() {
                ok = false;
            }
            println!(
                "| {} | {req} ({}) | {pages}{mark} | {} |",
                coll.name(),
                statuses.join(", "),
                c.items(coll)
            );
        }
        println!();
    }
    println!(
        "| connector: collection | status | requests sent (full round) | requests sent (both rounds) |"
    );
    println!("|---|---|---|---|");
    for (coll, status, n) in &sent_both {
        let first = sent_full
            .iter()
            .find(|(c, s, _)| c == coll && s == status)
            .map(|x| x.2)
            .unwrap_or(0);
        println!("| {coll} | {status} | {first} | {n} |");
    }
    println!();
    println!("| connector: collection | read time, full round | read time, delta round |");
    println!("|---|---|---|");
    for (coll, both) in &times_both {
        let first = times_full
            .iter()
            .find(|(c, _)| c == coll)
            .map(|x| x.1)
            .unwrap_or(0.0);
        println!("| {coll} | {first:.2} s | {:.2} s |", both - first);
    }
    let sent_total: u64 = sent_full.iter().map(|x| x.2).sum();
    let received_total: u64 = counters_full.requests.values().sum();
    println!();
    println!(
        "full round: the connector counted {sent_total} requests, the double received {received_total}"
    );
    if sent_total != received_total {
        ok = false;
    }
    let targets = full_wall < Duration::from_secs(60) && hwm1 < 1024.0;
    println!(
        "targets (full sync < 60 s, peak < 1 GiB): {}",
        if targets { "met" } else { "NOT met" }
    );
    ok
}
