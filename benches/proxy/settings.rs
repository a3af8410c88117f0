//! Run settings from `BENCH_*` environment variables, read once at start.
//!
//! Every knob has a default that gives the documented full run; `BENCH_QUICK=1` shrinks
//! the timings for smoke runs. A value that does not parse is an error naming the
//! variable, never a silent default: a typo in `BENCH_DURATION` must not turn a 60 s run
//! into a 10 s one without anyone noticing.

use std::time::Duration;

/// Scenario ids in run order; `BENCH_SCENARIOS` filters by these (`peers` = all peers).
pub const ALL_SCENARIOS: [&str; 8] = ["a", "b", "c", "d", "e", "nginx", "haproxy", "haproxy-jwt"];

/// What to run and for how long.
#[derive(Debug, Clone)]
pub struct Settings {
    pub duration: Duration,
    pub warmup: Duration,
    pub conns: usize,
    /// HTTP/2 concurrent streams per connection (HTTP/1.1 always has 1 in flight).
    pub streams: usize,
    /// Open-loop offered rate; `None` = 70% of the same scenario's closed-loop req/s.
    pub rate: Option<f64>,
    pub scenarios: Vec<String>,
    pub protos: Vec<String>,
    pub modes: Vec<String>,
    pub quick: bool,
    /// Distinct tokens minted for scenario (d).
    pub token_pool: usize,
    /// Devices in the state of scenario (e).
    pub devices_e: usize,
    /// Extra rows with `worker_threads = 2`, gateway unpinned.
    pub all_cores: bool,
    /// `BENCH_SCHEDULER`: `[runtime] scheduler` of every row but the shipped-defaults one
    /// (`None`: the gateway's default). `current_thread` has no 2-worker rows.
    pub scheduler: Option<String>,
    /// Special mode: open this many idle TLS connections and report RSS (no table).
    pub idle_conns: Option<usize>,
    /// Special mode: soak scenario (c) for this long, sampling RSS (no table).
    pub soak: Option<Duration>,
    /// `BENCH_PAIRS=N`: after the table, N rounds of paired closed-loop windows per
    /// protocol (`benches/proxy/pairs.rs`). The log and workers targets are ratios of two
    /// rows measured minutes apart, and two windows of one config drift about 5% apart on
    /// a shared machine: only interleaved A/B windows, judged on the median of their
    /// per-round ratios, can resolve a 3% or 10% difference. Needs scenario c.
    pub pairs: Option<usize>,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn duration(name: &str, default: Duration) -> Result<Duration, String> {
    match var(name) {
        None => Ok(default),
        Some(v) => {
            let v = v.trim();
            // Plain numbers are seconds; "500ms", "2m" go through humantime.
            if let Ok(secs) = v.parse::<f64>() {
                if secs.is_finite() && secs >= 0.0 {
                    return Ok(Duration::from_secs_f64(secs));
                }
                return Err(format!("{name}={v}: not a duration"));
            }
            humantime::parse_duration(v).map_err(|e| format!("{name}={v}: {e}"))
        }
    }
}

fn count(name: &str, default: usize) -> Result<usize, String> {
    match var(name) {
        None => Ok(default),
        Some(v) => match v.trim().parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!("{name}={v}: expected a positive integer")),
        },
    }
}

fn list(name: &str, allowed: &[&str], default: &[&str]) -> Result<Vec<String>, String> {
    let Some(v) = var(name) else {
        return Ok(default.iter().map(|s| (*s).to_owned()).collect());
    };
    let mut out = Vec::new();
    for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let item = item.to_ascii_lowercase();
        if item == "peers" && allowed.contains(&"nginx") {
            out.extend(["nginx", "haproxy", "haproxy-jwt"].map(str::to_owned));
        } else if allowed.contains(&item.as_str()) {
            out.push(item);
        } else {
            return Err(format!(
                "{name}: unknown item {item:?} (expected some of {})",
                allowed.join(",")
            ));
        }
    }
    Ok(out)
}

impl Settings {
    pub fn from_env() -> Result<Self, String> {
        let quick = var("BENCH_QUICK").is_some_and(|v| v != "0");
        let (d, w) = if quick {
            (Duration::from_secs(1), Duration::from_millis(300))
        } else {
            (Duration::from_secs(10), Duration::from_secs(2))
        };
        let rate = match var("BENCH_RATE") {
            None => None,
            Some(v) => match v.trim().parse::<f64>() {
                Ok(r) if r.is_finite() && r > 0.0 => Some(r),
                _ => return Err(format!("BENCH_RATE={v}: expected requests per second > 0")),
            },
        };
        let soak = match var("BENCH_SOAK") {
            None => None,
            Some(_) => Some(duration("BENCH_SOAK", Duration::ZERO)?),
        };
        Self {
            duration: duration("BENCH_DURATION", d)?,
            warmup: duration("BENCH_WARMUP", w)?,
            conns: count("BENCH_CONNS", 32)?,
            streams: count("BENCH_STREAMS", 10)?,
            rate,
            scenarios: list("BENCH_SCENARIOS", &ALL_SCENARIOS, &ALL_SCENARIOS)?,
            protos: list("BENCH_PROTOS", &["h1", "h2"], &["h1", "h2"])?,
            modes: list("BENCH_MODES", &["closed", "open"], &["closed", "open"])?,
            quick,
            token_pool: count("BENCH_TOKEN_POOL", 4096)?,
            devices_e: count("BENCH_DEVICES", 1_000_000)?,
            all_cores: var("BENCH_ALL_CORES").is_some_and(|v| v != "0"),
            scheduler: var("BENCH_SCHEDULER")
                .map(|_| {
                    list(
                        "BENCH_SCHEDULER",
                        &["per_core", "work_stealing", "current_thread"],
                        &[],
                    )
                })
                .transpose()?
                .and_then(|v| v.into_iter().next()),
            idle_conns: var("BENCH_IDLE_CONNS")
                .map(|_| count("BENCH_IDLE_CONNS", 10_000))
                .transpose()?,
            soak,
            pairs: None,
        }
        .with_pairs()
    }

    /// `BENCH_PAIRS`, refused where it would silently do nothing: the special modes print
    /// no table, and every pair has row (c) on one side.
    fn with_pairs(mut self) -> Result<Self, String> {
        let Some(v) = var("BENCH_PAIRS") else {
            return Ok(self);
        };
        let n = count("BENCH_PAIRS", 1)?;
        if self.idle_conns.is_some() || self.soak.is_some() {
            return Err(format!(
                "BENCH_PAIRS={v}: not with BENCH_IDLE_CONNS or BENCH_SOAK (they print no table)"
            ));
        }
        if !self.wants("c") {
            return Err(format!(
                "BENCH_PAIRS={v}: needs scenario c in BENCH_SCENARIOS (every pair has row c on one side)"
            ));
        }
        self.pairs = Some(n);
        Ok(self)
    }

    pub fn wants(&self, scenario: &str) -> bool {
        self.scenarios.iter().any(|s| s == scenario)
    }

    /// Whether the 2-worker rows run: `BENCH_ALL_CORES`, and a scheduler that has them.
    pub fn two_workers(&self) -> bool {
        self.all_cores && self.scheduler.as_deref() != Some("current_thread")
    }
}
