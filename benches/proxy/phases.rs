//! Where a gateway row's time went: the mean of each `accessgate_phase_duration_seconds`
//! phase over the row's window (warm-up included), from the gateway's own histograms read
//! just before and just after the load.
//!
//! The means come from the histograms' `_sum` and `_count`, not the buckets, so they are
//! exact; `total` is the stack's time from request head in to response head out, so what it
//! leaves out (TLS, HTTP parsing and framing, the response body's copy) is the rest of the
//! `us/req` CPU column. `other` is `total` minus the three phases: routing, the forwarding
//! headers, the decision log handover and the layers' own bookkeeping.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::report::Row;

const FAMILY: &str = "accessgate_phase_duration_seconds";
const PHASES: [&str; 4] = ["authn", "authz", "upstream", "total"];

/// Mean microseconds per request of each phase that ran in the window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PhaseMeans {
    /// authn, authz, upstream, total (in [`PHASES`] order); `None` when no request ran it.
    pub us: [Option<f64>; 4],
    /// Requests the `total` histogram counted in the window.
    pub requests: u64,
}

impl PhaseMeans {
    /// The window between two `/metrics` scrapes of one gateway; `None` when nothing was
    /// counted (the family is missing, or no request finished).
    pub fn between(before: &str, after: &str) -> Option<Self> {
        let mut us = [None; 4];
        let mut requests = 0;
        for (i, phase) in PHASES.iter().enumerate() {
            let sum = sample(after, "_sum", phase)? - sample(before, "_sum", phase)?;
            let count = sample(after, "_count", phase)? - sample(before, "_count", phase)?;
            if count >= 1.0 {
                us[i] = Some(sum / count * 1e6);
                if *phase == "total" {
                    requests = count as u64;
                }
            }
        }
        (requests > 0).then_some(Self { us, requests })
    }

    /// `total` minus the phases that ran.
    pub fn other(&self) -> Option<f64> {
        let total = self.us[3]?;
        Some((total - self.us[..3].iter().flatten().sum::<f64>()).max(0.0))
    }

    pub fn json(&self) -> Value {
        json!({
            "authn_us": self.us[0].map(round2), "authz_us": self.us[1].map(round2),
            "upstream_us": self.us[2].map(round2), "total_us": self.us[3].map(round2),
            "other_us": self.other().map(round2), "requests": self.requests,
        })
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The value of `accessgate_phase_duration_seconds{suffix}{phase="..."}` (`None` if absent
/// or unparsable: a scrape without the family must not read as zeros).
fn sample(text: &str, suffix: &str, phase: &str) -> Option<f64> {
    let label = format!("phase=\"{phase}\"");
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| {
            l.strip_prefix(FAMILY)
                .and_then(|r| r.strip_prefix(suffix))
                .and_then(|r| r.strip_prefix('{'))
                .and_then(|r| r.split('}').next())
                .is_some_and(|labels| labels.split(',').any(|kv| kv == label))
        })
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
}

/// The phase table: one line per gateway row that has phases, empty when none has.
pub fn table(rows: &[Row]) -> String {
    let with: Vec<(&Row, &PhaseMeans)> = rows
        .iter()
        .filter_map(|r| r.phases.as_ref().map(|p| (r, p)))
        .collect();
    if with.is_empty() {
        return String::new();
    }
    let mut s = String::new();
    let _ = writeln!(
        s,
        "where the time goes (mean us per request, the gateway's accessgate_phase_duration_seconds over each window; us/req is all of its CPU):"
    );
    let _ = writeln!(
        s,
        "{:<44} {:<5} {:<6} {:>8} {:>8} {:>9} {:>8} {:>8} {:>7}",
        "scenario", "proto", "mode", "authn", "authz", "upstream", "other", "total", "us/req"
    );
    let cell = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |x| format!("{x:.1}"));
    for (r, p) in with {
        let _ = writeln!(
            s,
            "{:<44} {:<5} {:<6} {:>8} {:>8} {:>9} {:>8} {:>8} {:>7}",
            r.label,
            r.proto,
            r.mode,
            cell(p.us[0]),
            cell(p.us[1]),
            cell(p.us[2]),
            cell(p.other()),
            cell(p.us[3]),
            cell(r.server_us_per_req())
        );
    }
    s
}
