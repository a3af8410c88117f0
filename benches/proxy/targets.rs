//! The issue-13 target ratios, computed from the rows of one run (ratios within one run
//! are what count on a shared machine; absolute figures drift from run to run), or, for
//! the two that compare rows, from the paired windows of `BENCH_PAIRS` when it ran.

use std::fmt::Write as _;

use crate::pairs::{self, Pair, PairRun};
use crate::report::Row;

/// The closed-loop row of `scenario` for `proto`; `two` picks the 2-worker variant.
fn find<'a>(rows: &'a [Row], scenario: &str, proto: &str, two: bool) -> Option<&'a Row> {
    rows.iter().find(|r| {
        r.scenario == scenario
            && r.proto == proto
            && r.mode == "closed"
            && r.label.ends_with("[2 thr]") == two
    })
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}

/// `BENCH_PAIRS` ran, but every round had errors: say so rather than judge on nothing.
fn unjudged(out: &mut String, proto: &str, what: &str, rounds: usize) {
    let _ = writeln!(
        out,
        "target {proto}: {what}: not judged: all {rounds} paired windows had errors"
    );
}

/// One line per target and protocol whose rows were measured; empty when none were. The
/// log and workers targets are judged on the medians of `runs` (`BENCH_PAIRS`) when they
/// were measured, otherwise on the single rows.
pub fn lines(rows: &[Row], runs: &[PairRun]) -> String {
    let mut out = String::new();
    for proto in ["h1", "h2"] {
        let shipped = find(rows, "s", proto, false);
        let tuned = find(rows, "c", proto, false);
        let haproxy = find(rows, "haproxy", proto, false);
        if let (Some(s), Some(t)) = (shipped, tuned) {
            let x = s.rps / t.rps;
            // The decision log pair is this very ratio (row s over row c), measured in
            // interleaved windows: when it ran, it judges; the single rows are shown.
            match pairs::find(runs, Pair::Log, proto) {
                Some((_, Some(m))) => {
                    let _ = writeln!(
                        out,
                        "target {proto}: shipped defaults vs tuned (c): {:.2}x, median of {} paired windows (rounds {:.2}x .. {:.2}x; the table's single rows: {:.0} / {:.0} = {x:.2}x) (>= 0.90x: {})",
                        m.median,
                        m.used,
                        m.min,
                        m.max,
                        s.rps,
                        t.rps,
                        verdict(m.median >= 0.9)
                    );
                }
                _ => {
                    let _ = writeln!(
                        out,
                        "target {proto}: shipped defaults vs tuned (c): {:.0} / {:.0} = {x:.2}x (>= 0.90x: {})",
                        s.rps,
                        t.rps,
                        verdict(x >= 0.9)
                    );
                }
            }
            // The two rows differ in the decision log (and in the runtime only where the
            // default runtime differs from `worker_threads = 1`).
            if pairs::find(runs, Pair::Log, proto).is_none() {
                let cost = (t.rps - s.rps) / t.rps * 100.0;
                let _ = writeln!(
                    out,
                    "target {proto}: decision log on vs off: {cost:.1}% of throughput (< 3%: {})",
                    verdict(cost < 3.0)
                );
            }
        }
        match pairs::find(runs, Pair::Log, proto) {
            Some((_, Some(m))) => {
                // Cost = 1 - ratio, so the smallest ratio is the largest cost.
                let cost = |x: f64| (1.0 - x) * 100.0;
                let _ = writeln!(
                    out,
                    "target {proto}: decision log on vs off: {:.1}% of throughput, median of {} paired windows (rounds {:.1}% .. {:.1}%, {} left out for errors) (< 3%: {})",
                    cost(m.median),
                    m.used,
                    cost(m.max),
                    cost(m.min),
                    m.left_out,
                    verdict(cost(m.median) < 3.0)
                );
            }
            Some((n, None)) => unjudged(&mut out, proto, "decision log on vs off", n),
            None => {}
        }
        if let (Some(s), Some(h)) = (shipped, haproxy) {
            let x = s.rps / h.rps;
            let want = if proto == "h1" { 1.0 } else { 0.8 };
            let _ = writeln!(
                out,
                "target {proto}: shipped defaults vs HAProxy TLS no auth: {:.0} / {:.0} = {x:.2}x (>= {want:.2}x: {})",
                s.rps,
                h.rps,
                verdict(x >= want)
            );
        }
        let one = find(rows, "c", proto, false).and_then(Row::server_us_per_req);
        let two = find(rows, "c", proto, true).and_then(Row::server_us_per_req);
        match pairs::find(runs, Pair::Workers, proto) {
            Some((_, Some(m))) => {
                let _ = writeln!(
                    out,
                    "target {proto}: CPU per request, 2 workers vs 1 (c): {:.2}x, median of {} paired windows (rounds {:.2}x .. {:.2}x, {} left out for errors) (within 10%: {})",
                    m.median,
                    m.used,
                    m.min,
                    m.max,
                    m.left_out,
                    verdict(m.median <= 1.1)
                );
            }
            Some((n, None)) => unjudged(&mut out, proto, "CPU per request, 2 workers vs 1", n),
            None => {}
        }
        if let (Some(one), Some(two), None) = (one, two, pairs::find(runs, Pair::Workers, proto)) {
            let x = two / one;
            let _ = writeln!(
                out,
                "target {proto}: CPU per request, 2 workers vs 1 (c): {two:.1} / {one:.1} us/req = {x:.2}x (within 10%: {})",
                verdict(x <= 1.1)
            );
        }
        let one = find(rows, "haproxy", proto, false).and_then(Row::server_us_per_req);
        let two = find(rows, "haproxy-2t", proto, false).and_then(Row::server_us_per_req);
        if let (Some(one), Some(two)) = (one, two) {
            let _ = writeln!(
                out,
                "peer {proto}: HAProxy CPU per request, nbthread 2 vs 1: {two:.1} / {one:.1} us/req = {:.2}x",
                two / one
            );
        }
    }
    out
}
