//! Where a request's time went, phase by phase.
//!
//! Each step times itself and writes its phase into one [`Phases`] value in the response
//! extensions (the request has moved inward by then; the response is the way back out).
//! The first step to answer inserts it, the others update it in place, so a request pays
//! one small allocation for all phases and no step needs a lock or shared state. `observe`
//! reads it for the decision log, the `accessgate_phase_duration_seconds` histograms and
//! the optional `Server-Timing` header.
//!
//! A module of its own (like `ids` and `body`) because every step writes it and `observe`
//! reads it: in `observe` it would make the steps and `observe` import each other.

use std::fmt::Write as _;
use std::time::Duration;

use http::HeaderValue;

/// The timed phases (`total` is the whole request, head in to response head out).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Authn,
    Authz,
    /// Request sent to the upstream until its response head arrived (or the error).
    Upstream,
    Total,
}

impl Phase {
    pub const ALL: [Phase; 4] = [Phase::Authn, Phase::Authz, Phase::Upstream, Phase::Total];

    /// The metric label, the `Server-Timing` metric name and the log field prefix.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Authn => "authn",
            Phase::Authz => "authz",
            Phase::Upstream => "upstream",
            Phase::Total => "total",
        }
    }
}

/// The phases that ran for one request (a phase that did not run is `None`: an
/// `auth = "none"` route has no authn/authz; a refusal has no upstream).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Phases {
    pub authn: Option<Duration>,
    pub authz: Option<Duration>,
    pub upstream: Option<Duration>,
}

impl Phases {
    /// Record `phase` into the response extensions.
    pub fn record(ext: &mut http::Extensions, phase: Phase, took: Duration) {
        match ext.get_mut::<Phases>() {
            Some(p) => p.set(phase, took),
            None => {
                let mut p = Phases::default();
                p.set(phase, took);
                ext.insert(p);
            }
        }
    }

    /// What the response extensions say (nothing recorded: no phase ran).
    pub fn of(ext: &http::Extensions) -> Self {
        ext.get::<Phases>().copied().unwrap_or_default()
    }

    fn set(&mut self, phase: Phase, took: Duration) {
        match phase {
            Phase::Authn => self.authn = Some(took),
            Phase::Authz => self.authz = Some(took),
            Phase::Upstream => self.upstream = Some(took),
            Phase::Total => {}
        }
    }

    /// The inner phases in order, with their names.
    pub fn iter(&self) -> impl Iterator<Item = (Phase, Duration)> {
        [
            (Phase::Authn, self.authn),
            (Phase::Authz, self.authz),
            (Phase::Upstream, self.upstream),
        ]
        .into_iter()
        .filter_map(|(p, d)| d.map(|d| (p, d)))
    }

    /// `Server-Timing: authn;dur=0.012, authz;dur=0.003, upstream;dur=1.2` (W3C Server
    /// Timing: `dur` in milliseconds), or `None` when no phase ran.
    pub fn server_timing(&self) -> Option<HeaderValue> {
        let mut s = String::with_capacity(64);
        for (phase, took) in self.iter() {
            if !s.is_empty() {
                s.push_str(", ");
            }
            s.push_str(phase.as_str());
            s.push_str(";dur=");
            push_millis(&mut s, took);
        }
        if s.is_empty() {
            return None;
        }
        // The String's buffer becomes the header's bytes, no copy.
        HeaderValue::from_maybe_shared(bytes::Bytes::from(s)).ok()
    }
}

/// Milliseconds with microsecond precision and no trailing zeros: 12 µs -> `0.012`,
/// 1200 µs -> `1.2`, 3 ms -> `3`.
fn push_millis(out: &mut String, d: Duration) {
    let us = d.as_micros();
    let (ms, frac) = (us / 1000, us % 1000);
    if frac == 0 {
        let _ = write!(out, "{ms}");
        return;
    }
    let (mut frac, mut width) = (frac, 3);
    while frac % 10 == 0 {
        frac /= 10;
        width -= 1;
    }
    let _ = write!(out, "{ms}.{frac:0width$}");
}

#[cfg(test)]
#[path = "timing_tests.rs"]
mod tests;
