//! The fault soak's report: the table per protocol and class, what the controller did,
//! the gateway's own counters, resident memory and the verdict (which decides the exit
//! code).

use std::fmt::Write as _;
use std::time::Duration;

use super::Events;
use super::expect::{CLASSES, Class};
use super::load;

/// "Flat": the last RSS sample within this of the one at 30 s.
const FLAT_MIB: f64 = 5.0;

pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Sum of a family's series whose labels include every `key="value"` in `labels`.
pub fn metric(text: &str, family: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let rest = l.strip_prefix(family)?;
            if !(rest.starts_with('{') || rest.starts_with(' ')) {
                return None;
            }
            let ok = labels
                .iter()
                .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")));
            ok.then(|| l.rsplit(' ').next()?.parse::<f64>().ok())?
        })
        .sum()
}

#[allow(clippy::too_many_arguments)]
pub fn report(
    st: &load::Stats,
    ev: &Events,
    m: &str,
    rss: &[(f64, u64)],
    worlds: usize,
    secs: Duration,
    gateway_alive: bool,
    break_class: Option<Class>,
) -> (String, bool) {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "\naccessgate fault soak: {secs:?}, {worlds} world versions"
    );
    if let Some(c) = break_class {
        let _ = writeln!(
            o,
            "BENCH_FAULT_SOAK_BREAK={}: that class is deliberately expected to get 200",
            c.as_str()
        );
    }
    let _ = writeln!(
        o,
        "{:<6}{:<10}{:>10}{:>10}{:>12}{:>8}{:>8}",
        "proto", "class", "sent", "right", "unservable", "wrong", "failed"
    );
    let mut tot = load::Counts::default();
    for (p, name) in [(0, "h1"), (1, "h2")] {
        for class in CLASSES {
            let c = st.counts[p][class.index()];
            tot.sent += c.sent;
            tot.right += c.right;
            tot.unservable += c.unservable;
            tot.wrong += c.wrong;
            tot.failed += c.failed;
            let _ = writeln!(
                o,
                "{name:<6}{:<10}{:>10}{:>10}{:>12}{:>8}{:>8}",
                class.as_str(),
                c.sent,
                c.right,
                c.unservable,
                c.wrong,
                c.failed
            );
        }
    }
    let _ = writeln!(
        o,
        "{:<16}{:>10}{:>10}{:>12}{:>8}{:>8}",
        "total", tot.sent, tot.right, tot.unservable, tot.wrong, tot.failed
    );
    let _ = writeln!(
        o,
        "{:.0} req/s; connections opened h1 {} h2 {}; certificate checked on {} handshakes, {} wrong; {} connection failures",
        tot.sent as f64 / secs.as_secs_f64(),
        st.conns_opened[0],
        st.conns_opened[1],
        st.cert_checks,
        st.cert_wrong,
        st.conn_failures
    );
    let reload = |what: &str, outcome: &str| {
        metric(
            m,
            "accessgate_reloads_total",
            &[("what", what), ("outcome", outcome)],
        )
    };
    let reload_errors = reload("config", "error");
    let _ = writeln!(
        o,
        "config reloads: {} triggered, {} confirmed live by config hash; reloads_total{{what=\"config\"}} success {} error {} (SIGHUP and the file watcher both reload)",
        ev.reloads_triggered,
        ev.reloads_confirmed,
        reload("config", "success"),
        reload_errors
    );
    let _ = writeln!(
        o,
        "certificate swaps: {} ({} verified on a new handshake); key rotations: {} announced+applied, {} withdrawals applied; JWKS flaps: {}",
        ev.cert_swaps, ev.cert_swaps_verified, ev.key_rotations, ev.key_withdrawals, ev.jwks_flaps
    );
    let _ = writeln!(
        o,
        "upstream restarts: {}; state flips applied: {}; state source faults: {}; jwks_refresh_total success {} error {}; state_refresh_total updated {} unchanged {} error {}",
        ev.upstream_restarts,
        ev.state_flips,
        ev.state_faults,
        metric(
            m,
            "accessgate_jwks_refresh_total",
            &[("outcome", "success")]
        ),
        metric(m, "accessgate_jwks_refresh_total", &[("outcome", "error")]),
        metric(
            m,
            "accessgate_state_refresh_total",
            &[("outcome", "updated")]
        ),
        metric(
            m,
            "accessgate_state_refresh_total",
            &[("outcome", "unchanged")]
        ),
        metric(m, "accessgate_state_refresh_total", &[("outcome", "error")]),
    );
    let mut line = String::from("gateway VmRSS MiB:");
    for (t, r) in rss {
        let _ = write!(line, " {t:.0}s={:.1}", mib(*r));
    }
    let _ = writeln!(o, "{line}");
    let base = rss
        .iter()
        .find(|(t, _)| *t >= 30.0)
        .or_else(|| rss.iter().find(|(t, _)| *t >= 10.0))
        .or(rss.first());
    let end = rss.last();
    let flat = match (base, end) {
        (Some(b), Some(e)) => {
            let d = (e.1 as f64 - b.1 as f64) / 1024.0;
            let flat = d <= FLAT_MIB;
            let _ = writeln!(
                o,
                "RSS {:.1} MiB at {:.0} s -> {:.1} MiB at the end ({d:+.1} MiB): {} (flat = within {FLAT_MIB} MiB)",
                mib(b.1),
                b.0,
                mib(e.1),
                if flat { "flat" } else { "NOT flat" }
            );
            flat
        }
        _ => {
            let _ = writeln!(o, "RSS: no samples");
            false
        }
    };
    for n in &ev.notes {
        let _ = writeln!(o, "note: {n}");
    }
    for p in &st.problems {
        let _ = writeln!(o, "problem: {p}");
    }
    for f in &ev.failures {
        let _ = writeln!(o, "FAILURE: {f}");
    }
    if !gateway_alive {
        let _ = writeln!(o, "FAILURE: the gateway process died");
    }
    let pass = tot.wrong == 0
        && tot.failed == 0
        && st.cert_wrong == 0
        && st.conn_failures == 0
        && ev.failures.is_empty()
        && reload_errors == 0.0
        && gateway_alive
        && flat;
    let _ = writeln!(
        o,
        "wrong decisions: {}; failed but servable: {}; unservable (upstream down): {}; verdict: {}",
        tot.wrong,
        tot.failed,
        tot.unservable,
        if pass { "PASS" } else { "FAIL" }
    );
    (o, pass)
}
