//! `BENCH_PAIRS=N`: paired, interleaved closed-loop windows for the two issue-13 targets
//! that are ratios between rows (decision log on vs off; CPU per request with 2 workers vs
//! 1). Each table row is one window measured minutes after the other, and on a shared
//! machine two windows of the same config differ by about 5%: one pair of windows cannot
//! show a 3% difference. Here both gateways of a pair run side by side and each round
//! measures A then B (B then A on the next round, so neither always goes first and a slow
//! drift cancels out); the target is judged on the median of the per-round ratios, which
//! one disturbed round cannot move much.
//!
//! Runs after the normal scenarios (the table stays as it is); the gateways are fresh
//! processes with the same configs and pinning as their rows.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::{Value, json};

use crate::client::{self, Proto};
use crate::driver::{self, Mode};
use crate::procs::progress;
use crate::report::Row;
use crate::scenarios::{Bench, GatewayScenario, RunningGateway};

/// Which two rows a pair compares (A first in the names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pair {
    /// Row (s), shipped defaults with the decision log to a file, vs row (c), log off.
    Log,
    /// Row (c) `[2 thr]` (unpinned) vs row (c) (pinned), on server CPU per request.
    Workers,
}

impl Pair {
    fn name(self) -> &'static str {
        match self {
            Self::Log => "decision log",
            Self::Workers => "workers",
        }
    }

    fn ratio_of(self) -> &'static str {
        match self {
            Self::Log => "req/s of A / req/s of B",
            Self::Workers => "us/req of A / us/req of B",
        }
    }

    /// One round's ratio, A over B; `None` when a figure is missing (no CPU reading).
    fn ratio(self, a: &Row, b: &Row) -> Option<f64> {
        let x = match self {
            Self::Log => a.rps / b.rps,
            Self::Workers => a.server_us_per_req()? / b.server_us_per_req()?,
        };
        x.is_finite().then_some(x)
    }
}

/// One round: A's and B's windows, in the order they ran.
pub struct Round {
    pub a_first: bool,
    pub a: Row,
    pub b: Row,
    /// Connections each worker of A accepted during A's window (workers pair only): the
    /// kernel's `SO_REUSEPORT` hash decides this split.
    pub split: Vec<u64>,
}

impl Round {
    /// A window with errors is not a result, so its round is left out of the median.
    fn flagged(&self) -> bool {
        self.a.flagged() || self.b.flagged()
    }
}

/// Every round of one pair on one protocol.
pub struct PairRun {
    pub pair: Pair,
    pub proto: &'static str,
    pub rounds: Vec<Round>,
}

/// The median of the usable rounds' ratios, with their spread.
pub struct Summary {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub used: usize,
    pub left_out: usize,
}

impl PairRun {
    pub fn summary(&self) -> Option<Summary> {
        let mut r: Vec<f64> = self
            .rounds
            .iter()
            .filter(|x| !x.flagged())
            .filter_map(|x| self.pair.ratio(&x.a, &x.b))
            .collect();
        r.sort_by(f64::total_cmp);
        let n = r.len();
        let mid = r.get(n / 2).copied()?;
        let median = if n % 2 == 1 {
            mid
        } else {
            (r.get(n / 2 - 1).copied()? + mid) / 2.0
        };
        Some(Summary {
            median,
            min: r.first().copied()?,
            max: r.last().copied()?,
            used: n,
            left_out: self.rounds.len() - n,
        })
    }
}

/// The pair run of `pair` on `proto`, if `BENCH_PAIRS` measured one.
pub fn find(runs: &[PairRun], pair: Pair, proto: &str) -> Option<(usize, Option<Summary>)> {
    runs.iter()
        .find(|r| r.pair == pair && r.proto == proto)
        .map(|r| (r.rounds.len(), r.summary()))
}

/// Start the gateways, then for each protocol and pair measure `n` rounds.
pub async fn run(b: &mut Bench, n: usize, small: &Path, big: &Path) {
    if let Err(e) = run_inner(b, n, small, big).await {
        b.abort("pairs", e);
    }
}

async fn run_inner(b: &mut Bench, n: usize, small: &Path, big: &Path) -> Result<(), String> {
    let s = crate::shipped_scenario(b, small, big);
    let c = crate::gateway_scenario(b, "c", 1, true, small, big);
    let two = b
        .settings
        .two_workers()
        .then(|| crate::gateway_scenario(b, "c", 2, false, small, big));
    progress(&format!(
        "pairs: starting the gateways side by side for {n} rounds per protocol and pair"
    ));
    let gs = start(b, &s).await?;
    let gc = start(b, &c).await?;
    let g2 = match &two {
        Some(t) => Some(start(b, t).await?),
        None => None,
    };
    for proto in b.protos() {
        let mut pairs = vec![(Pair::Log, (&s, &gs), (&c, &gc))];
        if let (Some(t), Some(g)) = (&two, &g2) {
            pairs.push((Pair::Workers, (t, g), (&c, &gc)));
        }
        for (pair, a, bb) in pairs {
            let mut run = PairRun {
                pair,
                proto: proto.as_str(),
                rounds: Vec::with_capacity(n),
            };
            let result = rounds(b, &mut run, n, a, bb).await;
            b.extras.pairs.push(run);
            result?;
        }
    }
    Ok(())
}

type Side<'s, 'a> = (&'s GatewayScenario<'a>, &'s RunningGateway);

async fn rounds(
    b: &Bench,
    run: &mut PairRun,
    n: usize,
    a: Side<'_, '_>,
    other: Side<'_, '_>,
) -> Result<(), String> {
    let proto = if run.proto == "h2" {
        Proto::H2
    } else {
        Proto::H1
    };
    for i in 0..n {
        let a_first = i % 2 == 0;
        let workers = (run.pair == Pair::Workers).then_some(a.0.worker_threads);
        let (ra, rb, split) = if a_first {
            let (ra, split) = window(b, a, proto, workers).await?;
            (ra, window(b, other, proto, None).await?.0, split)
        } else {
            let rb = window(b, other, proto, None).await?.0;
            let (ra, split) = window(b, a, proto, workers).await?;
            (ra, rb, split)
        };
        let round = Round {
            a_first,
            a: ra,
            b: rb,
            split,
        };
        progress(&format!(
            "pairs {} {}: {}",
            run.pair.name(),
            run.proto,
            round_line(run.pair, i, &round)
        ));
        run.rounds.push(round);
    }
    Ok(())
}

async fn start(b: &mut Bench, s: &GatewayScenario<'_>) -> Result<RunningGateway, String> {
    let gw = b.start_gateway(s).await?;
    let checked = b.verify_answers(gw.addr, &s.tokens, s.auth).await?;
    b.extras
        .checks
        .push(format!("pairs {}: {checked}", s.label));
    Ok(gw)
}

/// One closed-loop window (with the usual warm-up) and, when `workers` is given, how many
/// connections each worker accepted during it.
async fn window(
    b: &Bench,
    (s, gw): Side<'_, '_>,
    proto: Proto,
    workers: Option<usize>,
) -> Result<(Row, Vec<u64>), String> {
    let target = b.target(gw.addr);
    let load = b.load(
        proto,
        Mode::Closed,
        &s.tokens,
        &[gw.child.pid(), b.upstream_pid],
    );
    let before = match workers {
        Some(_) => Some(client::admin_get(gw.admin, "/metrics").await?.1),
        None => None,
    };
    let out = driver::run(&target, &load).await?;
    let mut split = Vec::new();
    if let (Some(w), Some(before)) = (workers, before) {
        let after = client::admin_get(gw.admin, "/metrics").await?.1;
        for i in 0..w {
            let f = format!("accessgate_worker_connections_total{{worker=\"{i}\"}}");
            let d = client::metric_sum(&after, &f) - client::metric_sum(&before, &f);
            split.push(d.max(0.0) as u64);
        }
    }
    Ok((Row::new(s.id, &s.label, &load, &out, true), split))
}

fn side(r: &Row) -> String {
    let per = r
        .server_us_per_req()
        .map_or_else(|| "-".to_owned(), |c| format!("{c:.1}"));
    let errors = r.errors + r.non2xx;
    let flag = if errors > 0 {
        format!(" FLAGGED: {errors} errors")
    } else {
        String::new()
    };
    format!("{:.0} req/s {per} us/req{flag}", r.rps)
}

fn round_line(pair: Pair, i: usize, r: &Round) -> String {
    let ratio = pair
        .ratio(&r.a, &r.b)
        .map_or_else(|| "-".to_owned(), |x| format!("{x:.3}"));
    let mut line = format!(
        "round {} ({} first): A {} | B {} | ratio {ratio}",
        i + 1,
        if r.a_first { "A" } else { "B" },
        side(&r.a),
        side(&r.b),
    );
    if !r.split.is_empty() {
        let s: Vec<String> = r.split.iter().map(u64::to_string).collect();
        let _ = write!(line, " | A's connections per worker {}", s.join("/"));
    }
    if r.flagged() {
        line.push_str(" (left out of the median)");
    }
    line
}

/// Every round's figures, then the median with its spread, per protocol and pair.
pub fn table(runs: &[PairRun]) -> String {
    let mut out = String::new();
    for run in runs {
        let (Some(first), n) = (run.rounds.first(), run.rounds.len()) else {
            continue;
        };
        let _ = writeln!(
            out,
            "pairs {} {}: A = {}, B = {}; ratio = {}; {n} rounds of closed-loop windows, order alternating",
            run.pair.name(),
            run.proto,
            first.a.label,
            first.b.label,
            run.pair.ratio_of()
        );
        for (i, r) in run.rounds.iter().enumerate() {
            let _ = writeln!(out, "  {}", round_line(run.pair, i, r));
        }
        match run.summary() {
            Some(s) => {
                let _ = writeln!(
                    out,
                    "  median ratio {:.3} (min {:.3}, max {:.3}) over {} rounds, {} left out (errors)",
                    s.median, s.min, s.max, s.used, s.left_out
                );
            }
            None => {
                let _ = writeln!(out, "  no round without errors: no median");
            }
        }
    }
    out
}

/// The rounds for `proxy.json`.
pub fn json(runs: &[PairRun]) -> Value {
    let runs: Vec<Value> = runs
        .iter()
        .map(|run| {
            let rounds: Vec<Value> = run
                .rounds
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    json!({
                        "round": i + 1, "a_first": r.a_first, "flagged": r.flagged(),
                        "ratio": run.pair.ratio(&r.a, &r.b),
                        "a": r.a.json(), "b": r.b.json(),
                        "a_connections_per_worker": r.split,
                    })
                })
                .collect();
            let s = run.summary();
            json!({
                "pair": run.pair.name(), "proto": run.proto, "ratio_of": run.pair.ratio_of(),
                "median": s.as_ref().map(|s| s.median), "min": s.as_ref().map(|s| s.min),
                "max": s.as_ref().map(|s| s.max), "used": s.as_ref().map_or(0, |s| s.used),
                "left_out": s.as_ref().map_or(run.rounds.len(), |s| s.left_out),
                "rounds": rounds,
            })
        })
        .collect();
    Value::Array(runs)
}
