//! `accessgate_phase_duration_seconds{phase}`: the histograms of [`Phases`].

use std::time::Duration;

use prometheus::Histogram;

use crate::ops::metrics::Metrics;
use crate::timing::{Phase, Phases};

/// `accessgate_phase_duration_seconds{phase}` handles, resolved once (a request touches
/// atomics only).
#[derive(Clone, Debug)]
pub struct PhaseMetrics {
    by_phase: [Histogram; 4],
}

impl PhaseMetrics {
    pub fn new(m: &Metrics) -> Self {
        Self {
            by_phase: Phase::ALL.map(|p| m.phase_duration_seconds.with_label_values(&[p.as_str()])),
        }
    }

    /// Observe each phase that ran, and the total.
    pub fn observe(&self, phases: &Phases, total: Duration) {
        for (p, d) in phases.iter() {
            self.by_phase[p as usize].observe(d.as_secs_f64());
        }
        self.by_phase[Phase::Total as usize].observe(total.as_secs_f64());
    }
}

#[cfg(test)]
#[path = "phases_tests.rs"]
mod tests;
