//! The results: one table on stdout and `target/bench/proxy.json` for comparing runs.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::{Value, json};

use crate::driver::{Load, Mode, Outcome};

/// One measured row.
pub struct Row {
    pub scenario: String,
    pub label: String,
    pub proto: &'static str,
    pub mode: &'static str,
    pub conns: usize,
    pub streams: usize,
    pub offered: Option<f64>,
    pub rps: f64,
    /// Latency percentiles in microseconds: p50, p90, p99, p99.9.
    pub pct_us: [u64; 4],
    /// The percentile distribution for the chart (`chart::curve`).
    pub curve: Vec<(f64, f64)>,
    pub ok: u64,
    pub non2xx: u64,
    pub errors: u64,
    pub dropped: u64,
    /// Share of one core used by the server under test (gateway or peer) in the window.
    pub server_cpu: Option<f64>,
    pub upstream_cpu: Option<f64>,
    pub driver_cpu: f64,
    /// The gateway's own phase means over the window (gateway rows only).
    pub phases: Option<crate::phases::PhaseMeans>,
    pub notes: Vec<String>,
}

impl Row {
    /// `cpu` holds the CPU seconds of the watched pids (server, upstream), then the driver.
    pub fn new(scenario: &str, label: &str, load: &Load, out: &Outcome, has_server: bool) -> Self {
        let secs = out.window.as_secs_f64().max(1e-9);
        let share = |i: usize| out.cpu.get(i).map(|c| c / secs);
        let (server_cpu, upstream_cpu) = if has_server {
            (share(0), share(1))
        } else {
            (None, share(0))
        };
        let driver_cpu = out.cpu.last().map_or(0.0, |c| c / secs);
        let pct = |q: f64| out.hist.value_at_quantile(q);
        let mut notes = Vec::new();
        if out.errors + out.non2xx > 0 {
            notes.push(format!(
                "FLAGGED: {} errors, {} non-2xx (first: {})",
                out.errors,
                out.non2xx,
                out.first_problem.as_deref().unwrap_or("?")
            ));
        }
        if out.dropped > 0 {
            notes.push(format!(
                "saturated: {} scheduled requests never sent",
                out.dropped
            ));
        }
        // Open loop spins to pace sends precisely, so its driver CPU says nothing.
        if driver_cpu > 0.9 && matches!(load.mode, Mode::Closed) {
            notes.push(format!(
                "driver at {:.0}% of its core: may be the bottleneck",
                driver_cpu * 100.0
            ));
        }
        let streams = if load.proto == crate::client::Proto::H1 {
            1
        } else {
            load.streams
        };
        Self {
            scenario: scenario.to_owned(),
            label: label.to_owned(),
            proto: load.proto.as_str(),
            mode: load.mode.as_str(),
            conns: load.conns,
            streams,
            offered: match load.mode {
                Mode::Closed => None,
                Mode::Open(r) => Some(r),
            },
            rps: out.rps(),
            pct_us: [pct(0.5), pct(0.9), pct(0.99), pct(0.999)],
            curve: crate::chart::curve(&out.hist),
            ok: out.ok,
            non2xx: out.non2xx,
            errors: out.errors,
            dropped: out.dropped,
            server_cpu,
            upstream_cpu,
            driver_cpu,
            phases: None,
            notes,
        }
    }

    pub fn flagged(&self) -> bool {
        self.errors + self.non2xx > 0
    }

    /// Server CPU microseconds per answered request.
    pub fn server_us_per_req(&self) -> Option<f64> {
        let cpu = self.server_cpu?;
        (self.rps > 0.0).then(|| cpu / self.rps * 1e6)
    }

    pub fn json(&self) -> Value {
        json!({
            "scenario": self.scenario, "label": self.label, "proto": self.proto,
            "mode": self.mode, "conns": self.conns, "streams": self.streams,
            "offered_rps": self.offered, "rps": round(self.rps, 1),
            "p50_us": self.pct_us[0], "p90_us": self.pct_us[1],
            "p99_us": self.pct_us[2], "p999_us": self.pct_us[3],
            "ok": self.ok, "non2xx": self.non2xx, "errors": self.errors,
            "dropped": self.dropped, "flagged": self.flagged(),
            "server_cpu": self.server_cpu.map(|c| round(c, 3)),
            "server_cpu_us_per_req": self.server_us_per_req().map(|c| round(c, 2)),
            "upstream_cpu": self.upstream_cpu.map(|c| round(c, 3)),
            "driver_cpu": round(self.driver_cpu, 3),
            "phases": self.phases.as_ref().map(crate::phases::PhaseMeans::json),
            "notes": self.notes,
        })
    }
}

fn round(x: f64, digits: i32) -> f64 {
    let m = 10f64.powi(digits);
    (x * m).round() / m
}

fn ms(us: u64) -> String {
    format!("{:.2}", us as f64 / 1000.0)
}

/// The table, one line per row, notes below their row.
pub fn table(rows: &[Row]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<44} {:<5} {:<6} {:>8} {:>9} {:>7} {:>7} {:>7} {:>8} {:>7} {:>6} {:>7}",
        "scenario",
        "proto",
        "mode",
        "conns",
        "req/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "p99.9 ms",
        "errors",
        "srvCPU",
        "us/req"
    );
    for r in rows {
        let conns = format!("{}x{}", r.conns, r.streams);
        let cpu = r
            .server_cpu
            .map_or_else(|| "-".to_owned(), |c| format!("{:.0}%", c * 100.0));
        let per = r
            .server_us_per_req()
            .map_or_else(|| "-".to_owned(), |c| format!("{c:.1}"));
        let errors = r.errors + r.non2xx;
        let mark = if r.flagged() { "!" } else { "" };
        let _ = writeln!(
            s,
            "{:<44} {:<5} {:<6} {:>8} {:>9.0} {:>7} {:>7} {:>7} {:>8} {:>6}{:1} {:>6} {:>7}",
            r.label,
            r.proto,
            r.mode,
            conns,
            r.rps,
            ms(r.pct_us[0]),
            ms(r.pct_us[1]),
            ms(r.pct_us[2]),
            ms(r.pct_us[3]),
            errors,
            mark,
            cpu,
            per
        );
        for n in &r.notes {
            let _ = writeln!(s, "    ^ {n}");
        }
    }
    s
}

/// Everything else the JSON holds besides the rows.
#[derive(Default)]
pub struct Extras {
    pub pinning: String,
    pub settings: Value,
    /// (what, VmRSS KiB, VmHWM KiB).
    pub memory: Vec<(String, u64, u64)>,
    pub skipped: Vec<String>,
    pub aborted: Vec<String>,
    pub checks: Vec<String>,
    pub special: Option<Value>,
    /// `BENCH_PAIRS`: the paired windows.
    pub pairs: Vec<crate::pairs::PairRun>,
}

pub fn memory_table(memory: &[(String, u64, u64)]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<58} {:>10} {:>10}",
        "resident memory", "RSS MiB", "peak MiB"
    );
    for (what, rss, hwm) in memory {
        let _ = writeln!(
            s,
            "{:<58} {:>10.1} {:>10.1}",
            what,
            *rss as f64 / 1024.0,
            *hwm as f64 / 1024.0
        );
    }
    s
}

/// Write `proxy.json` with the machine it ran on.
pub fn write_json(path: &Path, rows: &[Row], x: &Extras) -> Result<(), String> {
    let doc = json!({
        "generated_unix": std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        "machine": machine(),
        "pinning": x.pinning,
        "settings": x.settings,
        "rows": rows.iter().map(Row::json).collect::<Vec<_>>(),
        "memory": x.memory.iter().map(|(w, r, h)| json!({"what": w, "rss_kib": r, "peak_kib": h})).collect::<Vec<_>>(),
        "checks": x.checks,
        "skipped": x.skipped,
        "aborted": x.aborted,
        "special": x.special,
        "pairs": crate::pairs::json(&x.pairs),
    });
    let text = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
    std::fs::write(path, text + "\n").map_err(|e| format!("{}: {e}", path.display()))
}

/// CPU model, core count, kernel: the "machine it ran on" line.
pub fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map_or_else(|| "unknown".to_owned(), |m| m.trim().to_owned());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or_else(|_| "unknown".to_owned(), |k| k.trim().to_owned());
    // Counted from cpuinfo: after pinning, available_parallelism() reports 1.
    let cpus = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    json!({"cpu_model": model, "cpus": cpus, "kernel": kernel})
}
