//! The decision log: one JSON line per request (decision id, route, resource, user, app,
//! device, client IP, decision, reason, policies, phase latencies, and access-log fields).
//!
//! The request task does not format anything: it hands the [`Line`] (owned facts and `Arc`s
//! of what the steps produced) to the writer thread (`observe::writer`), which formats
//! and batches. That is cheaper on the request path than formatting there (measured in
//! `benches/decision_log.rs`; figures in `benches/README.md`) and keeps the clock
//! formatting, escaping and policy listing off it. If the writer falls behind, lines are
//! dropped and counted (`accessgate_decision_log_dropped_total`) rather than slowing
//! requests. `allow` lines may be sampled; denials never are.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::{Method, Request};
use prometheus::IntCounter;

use crate::authn::Principal;
use crate::authorize::AuthzOutcome;
use crate::config::{DecisionLogTarget, LogConfig};
use crate::ids::DecisionId;
use crate::observe::writer::{LogWriter, Record, Sink};
use crate::ops::metrics::Metrics;
use crate::respond::{Outcome, Verdict};
use crate::route::RouteMatch;
use crate::timing::Phases;

/// Lines queued between request tasks and the writer thread (each slot holds a [`Line`]
/// inline, so the queue is allocated once and a request allocates nothing for its line).
const CHANNEL_LINES: usize = 8 * 1024;

/// What the log line needs from the request, captured before it moves inward.
#[derive(Debug)]
pub struct RequestFacts {
    method: Method,
    /// Host, then the path without the query string (queries may carry secrets): one
    /// allocation for both.
    text: String,
    host_len: usize,
}

impl RequestFacts {
    pub fn capture<B>(req: &Request<B>) -> Self {
        let host = req
            .uri()
            .authority()
            .map(|a| a.as_str())
            .or_else(|| {
                req.headers()
                    .get(http::header::HOST)
                    .and_then(|h| h.to_str().ok())
            })
            .unwrap_or("");
        let path = req.uri().path();
        let mut text = String::with_capacity(host.len() + path.len());
        text.push_str(host);
        text.push_str(path);
        Self {
            method: req.method().clone(),
            text,
            host_len: host.len(),
        }
    }

    /// Facts without a request (the formatter's tests build many).
    #[cfg(test)]
    pub(crate) fn from_parts(method: Method, host: &str, path: &str) -> Self {
        Self {
            method,
            text: format!("{host}{path}"),
            host_len: host.len(),
        }
    }

    pub(super) fn method(&self) -> &Method {
        &self.method
    }

    pub(super) fn host(&self) -> &str {
        self.text.get(..self.host_len).unwrap_or("")
    }

    pub(super) fn path(&self) -> &str {
        self.text.get(self.host_len..).unwrap_or("")
    }
}

/// One request's decision, as `observe` hands it to the writer (formatted there).
#[derive(Debug)]
pub struct Line {
    /// When the response head was ready (the line's `ts`).
    pub at: SystemTime,
    pub id: DecisionId,
    pub facts: RequestFacts,
    pub route: Option<RouteMatch>,
    pub principal: Option<Arc<Principal>>,
    pub client_ip: Option<IpAddr>,
    pub verdict: Verdict,
    pub status: u16,
    /// Response body size when known up front.
    pub bytes: Option<u64>,
    pub authz: Option<Arc<AuthzOutcome>>,
    pub phases: Phases,
    pub total: Duration,
}

/// Where lines go, and the counters for requests no route claimed.
pub struct DecisionLog {
    writer: Option<LogWriter<Line>>,
    /// Keep allow lines whose sample hash falls below this (u64::MAX = all).
    allow_threshold: u64,
    unrouted: Vec<IntCounter>,
}

impl std::fmt::Debug for DecisionLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecisionLog")
            .field("enabled", &self.writer.is_some())
            .finish()
    }
}

impl DecisionLog {
    /// Start the writer for `[log]`. A file target is opened for append now, so a bad path
    /// is a startup error, not a silent loss.
    pub fn new(cfg: &LogConfig, metrics: &Metrics) -> std::io::Result<Self> {
        let sink = match &cfg.decisions {
            DecisionLogTarget::Off => None,
            DecisionLogTarget::Stdout => Some(Sink::Stdout),
            DecisionLogTarget::File(p) => Some(Sink::File(p.clone())),
        };
        let allow_threshold = if cfg.allow_sample >= 1.0 {
            u64::MAX
        } else {
            (cfg.allow_sample.max(0.0) * u64::MAX as f64) as u64
        };
        match sink {
            None => Ok(Self::off(metrics)),
            Some(sink) => Self::with_sink(sink, CHANNEL_LINES, allow_threshold, metrics),
        }
    }

    /// A log to any sink with room for `capacity` queued lines (tests, benches).
    pub fn to_sink(sink: Sink, capacity: usize, metrics: &Metrics) -> std::io::Result<Self> {
        Self::with_sink(sink, capacity, u64::MAX, metrics)
    }

    fn with_sink(
        sink: Sink,
        capacity: usize,
        allow_threshold: u64,
        metrics: &Metrics,
    ) -> std::io::Result<Self> {
        let writer = LogWriter::start(sink, capacity, metrics.decision_log_dropped_total.clone())?;
        Ok(Self {
            writer: Some(writer),
            allow_threshold,
            unrouted: unrouted(metrics),
        })
    }

    /// A log that writes nothing (tests, benches).
    pub fn off(metrics: &Metrics) -> Self {
        Self {
            writer: None,
            allow_threshold: u64::MAX,
            unrouted: unrouted(metrics),
        }
    }

    /// Whether any line may be written (so callers can skip capturing facts).
    pub fn enabled(&self) -> bool {
        self.writer.is_some()
    }

    /// Count a request that matched no route.
    pub fn unrouted(&self, outcome: Outcome) {
        if let Some(c) = self.unrouted.get(outcome as usize) {
            c.inc();
        }
    }

    /// Whether a line for this outcome and id is to be written (log on, not sampled out).
    pub fn wants(&self, outcome: Outcome, id: DecisionId) -> bool {
        self.writer.is_some() && !self.sampled_out(outcome, id)
    }

    fn sampled_out(&self, outcome: Outcome, id: DecisionId) -> bool {
        if outcome != Outcome::Allow || self.allow_threshold == u64::MAX {
            return false;
        }
        // SipHash (std's DefaultHasher) of the id spreads consecutive ids evenly over u64,
        // so sampling keeps a fair share of any burst rather than a prefix of it.
        let mut h = std::collections::hash_map::DefaultHasher::new();
        std::hash::Hash::hash(&id, &mut h);
        std::hash::Hasher::finish(&h) > self.allow_threshold
    }

    /// Queue one line for the writer (never blocks; dropped and counted when full).
    pub fn write(&self, line: Line) {
        if let Some(w) = &self.writer
            && !self.sampled_out(line.verdict.outcome, line.id)
        {
            w.push(line);
        }
    }

    /// Reopen a file target by path (SIGHUP; rotation is also noticed on its own).
    pub fn reopen(&self) {
        if let Some(w) = &self.writer {
            w.reopen();
        }
    }

    /// Write out everything queued so far; false if the sink did not take it in `limit`.
    pub fn flush(&self, limit: Duration) -> bool {
        self.writer.as_ref().is_none_or(|w| w.flush(limit))
    }

    /// Write out everything accepted and stop the writer (shutdown); waits at most
    /// `limit`, false if the sink was stuck that long. Blocks.
    pub fn close(&self, limit: Duration) -> bool {
        self.writer.as_ref().is_none_or(|w| w.close(limit))
    }
}

fn unrouted(metrics: &Metrics) -> Vec<IntCounter> {
    Outcome::ALL
        .iter()
        .map(|o| metrics.requests_total.with_label_values(&["", o.as_str()]))
        .collect()
}

/// Formatted on the writer thread (`line_format`: byte for byte what the `write!`-based
/// formatter before it wrote, several times cheaper).
impl Record for Line {
    fn write_line(&self, s: &mut String) {
        super::line_format::write_line(self, s);
    }
}

#[cfg(test)]
#[path = "decision_log_tests.rs"]
mod tests;
