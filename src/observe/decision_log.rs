//! The decision log: one JSON line per request (decision id, route, resource, user, app,
//! device, client IP, decision, reason, policies, latencies, and access-log fields).
//!
//! Lines are formatted on the request's task and handed to a dedicated writer thread over
//! a bounded channel, so the hot path never blocks on stdout or a file. If the writer falls
//! behind, lines are dropped and counted (`accessgate_decision_log_dropped_total`) rather
//! than slowing requests. `allow` lines may be sampled; denials never are.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::IpAddr;
use std::path::Path;
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::time::Duration;

use http::{Method, Request};
use prometheus::IntCounter;

use crate::authn::Principal;
use crate::config::{DecisionLogTarget, LogConfig};
use crate::ids::DecisionId;
use crate::ops::metrics::Metrics;
use crate::respond::{Outcome, Verdict, push_json_str};
use crate::route::RouteMatch;

/// Lines buffered between request tasks and the writer thread.
const CHANNEL_LINES: usize = 16 * 1024;

/// What the log line needs from the request, captured before it moves inward.
#[derive(Debug)]
pub struct RequestFacts {
    method: Method,
    host: String,
    /// Path without the query string (queries may carry secrets).
    path: String,
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
            .unwrap_or("")
            .to_owned();
        Self {
            method: req.method().clone(),
            host,
            path: req.uri().path().to_owned(),
        }
    }
}

/// Where lines go, and the counters for requests no route claimed.
pub struct DecisionLog {
    tx: Option<SyncSender<String>>,
    /// Keep allow lines whose sample hash falls below this (u64::MAX = all).
    allow_threshold: u64,
    dropped: IntCounter,
    unrouted: Vec<IntCounter>,
}

impl std::fmt::Debug for DecisionLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecisionLog")
            .field("enabled", &self.tx.is_some())
            .finish()
    }
}

/// Everything one decision log line says, gathered by `observe` after the answer.
#[derive(Clone, Copy)]
pub struct Line<'a> {
    pub facts: &'a RequestFacts,
    pub id: DecisionId,
    pub rm: Option<&'a RouteMatch>,
    pub principal: Option<&'a Principal>,
    pub client_ip: Option<IpAddr>,
    pub verdict: Verdict,
    pub status: u16,
    pub elapsed: Duration,
    pub upstream: Option<Duration>,
    pub response_bytes: Option<u64>,
    /// The response extensions (the authorize step's policy results are read from them).
    pub extensions: &'a http::Extensions,
}

impl DecisionLog {
    /// Start the writer for `[log]`. A file target is opened for append now, so a bad path
    /// is a startup error, not a silent loss.
    pub fn new(cfg: &LogConfig, metrics: &Metrics) -> std::io::Result<Self> {
        let dropped = decision_log_dropped(metrics);
        let unrouted = Outcome::ALL
            .iter()
            .map(|o| metrics.requests_total.with_label_values(&["", o.as_str()]))
            .collect();
        let tx = match &cfg.decisions {
            DecisionLogTarget::Off => None,
            DecisionLogTarget::Stdout => Some(spawn_writer(Box::new(std::io::stdout()))?),
            DecisionLogTarget::File(p) => Some(spawn_writer(Box::new(open_append(p)?))?),
        };
        let allow_threshold = if cfg.allow_sample >= 1.0 {
            u64::MAX
        } else {
            (cfg.allow_sample.max(0.0) * u64::MAX as f64) as u64
        };
        Ok(Self {
            tx,
            allow_threshold,
            dropped,
            unrouted,
        })
    }

    /// A log that writes nothing (tests, benches).
    pub fn off(metrics: &Metrics) -> Self {
        Self {
            tx: None,
            allow_threshold: u64::MAX,
            dropped: decision_log_dropped(metrics),
            unrouted: Outcome::ALL
                .iter()
                .map(|o| metrics.requests_total.with_label_values(&["", o.as_str()]))
                .collect(),
        }
    }

    /// Whether any line may be written (so callers can skip capturing facts).
    pub fn enabled(&self) -> bool {
        self.tx.is_some()
    }

    /// Count a request that matched no route.
    pub fn unrouted(&self, outcome: Outcome) {
        if let Some(c) = self.unrouted.get(outcome as usize) {
            c.inc();
        }
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

    /// Format and queue one line.
    pub fn write(&self, line: &Line<'_>) {
        let Line {
            facts,
            id,
            rm,
            principal,
            client_ip,
            verdict,
            status,
            elapsed,
            upstream,
            response_bytes,
            extensions,
        } = *line;
        let Some(tx) = &self.tx else { return };
        if self.sampled_out(verdict.outcome, id) {
            return;
        }
        let mut s = String::with_capacity(512);
        s.push_str("{\"ts\":");
        push_json_str(&mut s, &now_rfc3339());
        let _ = write!(s, ",\"decision_id\":\"{id}\"");
        s.push_str(",\"method\":");
        push_json_str(&mut s, facts.method.as_str());
        s.push_str(",\"host\":");
        push_json_str(&mut s, &facts.host);
        s.push_str(",\"path\":");
        push_json_str(&mut s, &facts.path);
        if let Some(rm) = rm {
            let r = &rm.route().config;
            s.push_str(",\"route\":");
            push_json_str(&mut s, &r.name);
            s.push_str(",\"resource\":");
            push_json_str(&mut s, &r.resource);
        }
        let _ = write!(s, ",\"status\":{status}");
        if let Some(len) = response_bytes {
            let _ = write!(s, ",\"bytes\":{len}");
        }
        s.push_str(",\"decision\":");
        push_json_str(&mut s, verdict.outcome.as_str());
        if !verdict.reason.is_empty() {
            s.push_str(",\"reason\":");
            push_json_str(&mut s, verdict.reason);
        }
        if let Some(p) = principal {
            s.push_str(",\"user\":");
            push_json_str(&mut s, &p.user);
            if let Some(a) = &p.client_app {
                s.push_str(",\"app\":");
                push_json_str(&mut s, a);
            }
            if let Some(d) = &p.device {
                s.push_str(",\"device\":");
                push_json_str(&mut s, d);
            }
            s.push_str(",\"token_id\":");
            push_json_str(&mut s, &p.token_id);
        }
        if let Some(ip) = client_ip {
            let _ = write!(s, ",\"client_ip\":\"{ip}\"");
        }
        crate::authorize::write_policy_results(extensions, &mut s);
        let total_us = elapsed.as_micros();
        let _ = write!(s, ",\"latency_us\":{total_us}");
        if let Some(u) = upstream {
            let up_us = u.as_micros();
            let _ = write!(
                s,
                ",\"upstream_us\":{up_us},\"gateway_us\":{}",
                total_us.saturating_sub(up_us)
            );
        }
        s.push('}');
        s.push('\n');
        match tx.try_send(s) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => self.dropped.inc(),
        }
    }
}

fn decision_log_dropped(metrics: &Metrics) -> IntCounter {
    metrics.decision_log_dropped_total.clone()
}

fn open_append(p: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(p)
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", p.display())))
}

fn spawn_writer(out: Box<dyn std::io::Write + Send>) -> std::io::Result<SyncSender<String>> {
    let (tx, rx) = sync_channel::<String>(CHANNEL_LINES);
    std::thread::Builder::new()
        .name("decision-log".into())
        .spawn(move || {
            let mut w = std::io::BufWriter::with_capacity(64 * 1024, out);
            while let Ok(line) = rx.recv() {
                let _ = w.write_all(line.as_bytes());
                // Drain what is queued, then flush once: batches under load, prompt when idle.
                while let Ok(more) = rx.try_recv() {
                    let _ = w.write_all(more.as_bytes());
                }
                let _ = w.flush();
            }
        })?;
    Ok(tx)
}

fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    now.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
