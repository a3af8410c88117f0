//! The two memory modes that replace the table: `BENCH_IDLE_CONNS=N` (RSS with N idle
//! TLS connections open) and `BENCH_SOAK=SECS` (scenario (c) at load, RSS sampled every
//! 10 s, to show bounded caches stay bounded).

use std::time::Duration;

use serde_json::{Value, json};

use crate::client::{self, Proto, Target};
use crate::driver::{self, Load, Mode};
use crate::fixture;
use crate::procs::{self, progress};
use crate::report::Row;
use crate::scenarios::{Bench, GatewayScenario};

fn scenario_c<'a>(b: &Bench, state: &'a std::path::Path) -> GatewayScenario<'a> {
    GatewayScenario {
        id: "c",
        label: "(c) gateway, JWT+20 policies, cached".to_owned(),
        auth: true,
        cache_capacity: 100_000,
        state,
        worker_threads: 1,
        pinned: true,
        tokens: b.token.clone(),
        shipped: false,
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// For each protocol of `BENCH_PROTOS`, open `n` TLS connections to a fresh gateway
/// running (c), each having served one request, and report the gateway's RSS before and
/// after.
pub async fn idle_conns(b: &mut Bench, n: usize, state: &std::path::Path) -> Result<Value, String> {
    let mut runs = Vec::new();
    let protos: Vec<Proto> = b
        .settings
        .protos
        .iter()
        .map(|p| if p == "h2" { Proto::H2 } else { Proto::H1 })
        .collect();
    for proto in protos {
        runs.push(idle_conns_one(b, n, state, proto).await?);
    }
    Ok(json!({ "mode": "idle_conns", "runs": runs }))
}

async fn idle_conns_one(
    b: &mut Bench,
    n: usize,
    state: &std::path::Path,
    proto: Proto,
) -> Result<Value, String> {
    let s = scenario_c(b, state);
    let gw = b.start_gateway(&s).await?;
    let pid = gw.child.pid();
    let (before, _) = procs::rss_kib(pid).ok_or("cannot read the gateway's RSS")?;
    let p = proto.as_str();
    progress(&format!("idle {p}: opening {n} TLS connections"));
    let target = Target {
        addr: gw.addr,
        tls: Some(b.tls.clone()),
        path: fixture::PATH,
    };
    let token = b.token.first().cloned();
    let (held, failed, problem) = driver::open_idle(&target, proto, n, 64, token).await;
    // Let the gateway settle (connections parked, buffers released) before reading.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (after, hwm) = procs::rss_kib(pid).ok_or("cannot read the gateway's RSS")?;
    let metrics = client::admin_get(gw.admin, "/metrics").await?.1;
    let open = client::metric_sum(&metrics, "accessgate_open_connections");
    let per_conn = (after.saturating_sub(before)) as f64 / held.len().max(1) as f64;
    let line = format!(
        "idle {p}: {} connections held ({failed} failed{}), gateway reports {open:.0} open; RSS {:.1} MiB before, {:.1} MiB after (peak {:.1} MiB), {per_conn:.1} KiB per connection",
        held.len(),
        problem.map(|p| format!(": {p}")).unwrap_or_default(),
        mib(before),
        mib(after),
        mib(hwm),
    );
    progress(&line);
    b.extras
        .memory
        .push((format!("gateway c ({p}): idle after start"), before, before));
    b.extras.memory.push((
        format!("gateway c ({p}): {} idle TLS connections", held.len()),
        after,
        hwm,
    ));
    drop(held);
    drop(gw);
    Ok(json!({
        "proto": p, "requested": n, "held": open, "failed": failed,
        "rss_before_kib": before, "rss_after_kib": after, "peak_kib": hwm,
        "kib_per_conn": per_conn, "summary": line,
    }))
}

/// Scenario (c), HTTP/1.1 closed loop for `secs`, with the gateway's RSS every 10 s.
pub async fn soak(b: &mut Bench, secs: Duration, state: &std::path::Path) -> Result<Value, String> {
    let s = scenario_c(b, state);
    let gw = b.start_gateway(&s).await?;
    let pid = gw.child.pid();
    let load = Load {
        proto: Proto::H1,
        mode: Mode::Closed,
        conns: b.settings.conns,
        streams: 1,
        warmup: Duration::ZERO,
        duration: secs,
        tokens: b.token.clone(),
        watch: vec![pid, b.upstream_pid],
        rss_every: Some((pid, Duration::from_secs(10))),
    };
    let target = Target {
        addr: gw.addr,
        tls: Some(b.tls.clone()),
        path: fixture::PATH,
    };
    progress(&format!("soak: scenario (c) for {secs:?}, RSS every 10 s"));
    let out = driver::run(&target, &load).await?;
    let row = Row::new("c-soak", "(c) soak", &load, &out, true);
    for (t, rss) in &out.rss {
        progress(&format!("soak: t={t:>5.0}s RSS {:.1} MiB", mib(*rss)));
    }
    // The first sample is before any request; growth is judged from the second on.
    let steady = out.rss.get(1).or(out.rss.first()).map_or(0, |s| s.1);
    let last = out.rss.last().map_or(0, |s| s.1);
    let summary = format!(
        "soak: {:.0} req/s over {secs:?}, {} errors; RSS {:.1} MiB at 10 s, {:.1} MiB at the end ({:+.1} MiB)",
        row.rps,
        row.errors + row.non2xx,
        mib(steady),
        mib(last),
        (last as f64 - steady as f64) / 1024.0
    );
    progress(&summary);
    let samples: Vec<Value> = out
        .rss
        .iter()
        .map(|(t, r)| json!({"t_s": t, "rss_kib": r}))
        .collect();
    b.rows.push(row);
    Ok(
        json!({"mode": "soak", "seconds": secs.as_secs_f64(), "samples": samples, "summary": summary}),
    )
}
