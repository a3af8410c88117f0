//! Metric families (prefix `accessgate_`) and their per-route handles.
//!
//! Label values come only from closed sets (route names from config, [`Outcome`]s, policy
//! names from config, fixed reason strings) so cardinality is bounded by configuration, never
//! by traffic. Hot-path counters are resolved to concrete handles once per config snapshot
//! ([`RouteMetrics`]), so a request touches atomics only: no label hashing, no `MetricVec`
//! lock.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::respond::Outcome;

/// Histogram buckets in seconds, fine enough below a millisecond (the gateway's own cost
/// is tens of microseconds) and wide enough to see a slow upstream.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1,
    0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// All metric families, registered in one registry that `/metrics` encodes.
#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    pub requests_total: IntCounterVec,
    pub request_duration_seconds: HistogramVec,
    pub upstream_duration_seconds: HistogramVec,
    pub policy_evaluations_total: IntCounterVec,
    pub token_cache_hits_total: IntCounter,
    pub token_cache_misses_total: IntCounter,
    pub token_rejections_total: IntCounterVec,
    pub jwks_refresh_total: IntCounterVec,
    pub state_age_seconds: prometheus::Gauge,
    pub state_fail_open_total: IntCounter,
    pub state_refresh_total: IntCounterVec,
    pub reloads_total: IntCounterVec,
    pub config_info: IntGaugeVec,
    pub open_connections: IntGauge,
    pub connections_total: IntCounter,
    /// Connections accepted by each worker's accept loop (one loop, worker 0, unless
    /// `scheduler = "per_core"`): shows how the kernel spreads them.
    pub worker_connections_total: IntCounterVec,
    pub tls_handshake_failures_total: IntCounter,
    pub decision_log_dropped_total: IntCounter,
    pub phase_duration_seconds: HistogramVec,
    /// Graph connector: requests by collection (or `token`) and HTTP status.
    pub graph_requests_total: IntCounterVec,
    /// Graph connector: time to read each collection in a round.
    pub graph_sync_duration_seconds: HistogramVec,
    /// Records in the policy state the Graph connector last built, by kind.
    pub state_records: IntGaugeVec,
}

/// The Graph connector's `collection` label values (plus `token`).
pub const GRAPH_COLLECTIONS: &[&str] = &[
    "users",
    "groups",
    "managedDevices",
    "iosManagedAppProtections",
    "androidManagedAppProtections",
    "managedAppRegistrations",
];

/// Syncs take seconds to minutes, not microseconds.
const SYNC_BUCKETS: &[f64] = &[
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

fn counter_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help).namespace("accessgate"), labels)
        .expect("static metric definition is valid");
    r.register(Box::new(c.clone()))
        .expect("metric registered once");
    c
}

fn counter(r: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::with_opts(Opts::new(name, help).namespace("accessgate"))
        .expect("static metric definition is valid");
    r.register(Box::new(c.clone()))
        .expect("metric registered once");
    c
}

fn histogram_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> HistogramVec {
    let h = HistogramVec::new(
        HistogramOpts::new(name, help)
            .namespace("accessgate")
            .buckets(LATENCY_BUCKETS.to_vec()),
        labels,
    )
    .expect("static metric definition is valid");
    r.register(Box::new(h.clone()))
        .expect("metric registered once");
    h
}

impl Metrics {
    /// A fresh registry with every family registered (and process metrics on Linux).
    #[allow(clippy::expect_used)] // static definitions: failure is a programming error
    pub fn new() -> Self {
        let r = Registry::new();
        let requests_total = counter_vec(
            &r,
            "requests_total",
            "Requests by route and decision.",
            &["route", "decision"],
        );
        let request_duration_seconds = histogram_vec(
            &r,
            "request_duration_seconds",
            "Time from request head received to response head sent, by route.",
            &["route"],
        );
        let upstream_duration_seconds = histogram_vec(
            &r,
            "upstream_duration_seconds",
            "Time the upstream took to answer with its response head, by route.",
            &["route"],
        );
        let policy_evaluations_total = counter_vec(
            &r,
            "policy_evaluations_total",
            "Policy evaluations by policy, mode and Graph-style result (report-only included).",
            &["policy", "mode", "result"],
        );
        let token_cache_hits_total =
            counter(&r, "token_cache_hits_total", "Verified-token cache hits.");
        let token_cache_misses_total = counter(
            &r,
            "token_cache_misses_total",
            "Verified-token cache misses.",
        );
        let token_rejections_total = counter_vec(
            &r,
            "token_rejections_total",
            "Bearer tokens refused, by reason.",
            &["reason"],
        );
        let jwks_refresh_total = counter_vec(
            &r,
            "jwks_refresh_total",
            "JWKS fetches by issuer and outcome.",
            &["issuer", "outcome"],
        );
        let state_age_seconds = prometheus::Gauge::with_opts(
            Opts::new("state_age_seconds", "Age of the policy state in use.")
                .namespace("accessgate"),
        )
        .expect("static metric definition is valid");
        r.register(Box::new(state_age_seconds.clone()))
            .expect("metric registered once");
        let state_fail_open_total = counter(
            &r,
            "state_fail_open_total",
            "Requests let through on stale state because fail_open = true.",
        );
        let state_refresh_total = counter_vec(
            &r,
            "state_refresh_total",
            "Policy state loads by outcome (updated, unchanged, error).",
            &["outcome"],
        );
        let reloads_total = counter_vec(
            &r,
            "reloads_total",
            "Reloads by what (config, tls, state) and outcome (success, error).",
            &["what", "outcome"],
        );
        let config_info = IntGaugeVec::new(
            Opts::new(
                "config_info",
                "Always 1; the hash label names the live config.",
            )
            .namespace("accessgate"),
            &["hash"],
        )
        .expect("static metric definition is valid");
        r.register(Box::new(config_info.clone()))
            .expect("metric registered once");
        let open_connections = IntGauge::with_opts(
            Opts::new("open_connections", "Client connections currently open.")
                .namespace("accessgate"),
        )
        .expect("static metric definition is valid");
        r.register(Box::new(open_connections.clone()))
            .expect("metric registered once");
        let connections_total = counter(&r, "connections_total", "Client connections accepted.");
        let worker_connections_total = counter_vec(
            &r,
            "worker_connections_total",
            "Client connections accepted, by the worker that accepted them.",
            &["worker"],
        );
        let tls_handshake_failures_total = counter(
            &r,
            "tls_handshake_failures_total",
            "TLS handshakes that failed or timed out.",
        );
        let decision_log_dropped_total = counter(
            &r,
            "decision_log_dropped_total",
            "Decision log lines dropped because the writer fell behind.",
        );
        let phase_duration_seconds = histogram_vec(
            &r,
            "phase_duration_seconds",
            "Time spent per request in each phase: authn, authz, upstream (to its response head), total.",
            &["phase"],
        );
        let graph_requests_total = counter_vec(
            &r,
            "graph_requests_total",
            "Microsoft Graph connector requests by collection (or token) and HTTP status.",
            &["collection", "status"],
        );
        let graph_sync_duration_seconds = HistogramVec::new(
            HistogramOpts::new(
                "graph_sync_duration_seconds",
                "Time the Graph connector took to read each collection in a round.",
            )
            .namespace("accessgate")
            .buckets(SYNC_BUCKETS.to_vec()),
            &["collection"],
        )
        .expect("static metric definition is valid");
        r.register(Box::new(graph_sync_duration_seconds.clone()))
            .expect("metric registered once");
        let state_records = IntGaugeVec::new(
            Opts::new(
                "state_records",
                "Records in the policy state the Graph connector last built, by kind.",
            )
            .namespace("accessgate"),
            &["kind"],
        )
        .expect("static metric definition is valid");
        r.register(Box::new(state_records.clone()))
            .expect("metric registered once");
        for c in GRAPH_COLLECTIONS.iter().chain(&["token"]) {
            graph_requests_total.with_label_values(&[c, "200"]);
        }
        for c in GRAPH_COLLECTIONS {
            graph_sync_duration_seconds.with_label_values(&[c]);
        }
        for kind in [
            "users",
            "groups",
            "devices",
            "app_protection_policies",
            "app_registrations",
        ] {
            state_records.with_label_values(&[kind]);
        }
        // Closed label sets known up front are created at zero, so every documented family
        // is present in the first scrape (alerts on `increase()` need a starting point).
        for what in ["config", "tls", "state"] {
            for outcome in ["success", "error"] {
                reloads_total.with_label_values(&[what, outcome]);
            }
        }
        for phase in ["authn", "authz", "upstream", "total"] {
            phase_duration_seconds.with_label_values(&[phase]);
        }
        for outcome in ["updated", "unchanged", "error"] {
            state_refresh_total.with_label_values(&[outcome]);
        }
        #[cfg(target_os = "linux")]
        {
            let pc = prometheus::process_collector::ProcessCollector::for_self();
            // Registration fails only if registered twice; a second registry in tests is fine.
            let _ = r.register(Box::new(pc));
        }
        Self {
            registry: r,
            requests_total,
            request_duration_seconds,
            upstream_duration_seconds,
            policy_evaluations_total,
            token_cache_hits_total,
            token_cache_misses_total,
            token_rejections_total,
            jwks_refresh_total,
            state_age_seconds,
            state_fail_open_total,
            state_refresh_total,
            reloads_total,
            config_info,
            open_connections,
            connections_total,
            worker_connections_total,
            tls_handshake_failures_total,
            decision_log_dropped_total,
            phase_duration_seconds,
            graph_requests_total,
            graph_sync_duration_seconds,
            state_records,
        }
    }

    /// Prometheus text exposition of every family.
    pub fn encode(&self) -> Vec<u8> {
        let mut buf = Vec::with_capacity(16 * 1024);
        // Encoding into a Vec cannot fail for well-formed families.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        buf
    }

    /// Resolve the per-route handles used on the hot path.
    pub fn route(&self, route: &str) -> RouteMetrics {
        RouteMetrics {
            requests: Outcome::ALL
                .iter()
                .map(|o| self.requests_total.with_label_values(&[route, o.as_str()]))
                .collect(),
            duration: self.request_duration_seconds.with_label_values(&[route]),
            upstream: self.upstream_duration_seconds.with_label_values(&[route]),
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Concrete metric handles for one route (one per [`Outcome`]).
#[derive(Clone, Debug)]
pub struct RouteMetrics {
    requests: Vec<IntCounter>,
    pub duration: Histogram,
    pub upstream: Histogram,
}

impl RouteMetrics {
    /// Count one request with its outcome.
    pub fn count(&self, outcome: Outcome) {
        if let Some(c) = self.requests.get(outcome as usize) {
            c.inc();
        }
    }
}
